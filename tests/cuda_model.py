"""NumPy model of torch's CUDA uniform_ element mapping and of pyinit's CUDA thread layout.

Mirrors csrc/pyinit/curand_philox.h (Note [torch CUDA element mapping]),
csrc/cuda/torch_stream_kernels.cu (Note [pyinit's CUDA thread layout]) and csrc/cuda/index_split.h
(Note [The 32-bit indexing split]) so that the index math can be tested without a GPU. Box-Muller is
not modelled: curand uses the hardware __sincosf. The Philox4x32-10 block function is the philox
stream's oracle (pyinit/reference/philox_numpy.py, checked against the Random123 known answers in
tests/test_philox_kat.py): curand's and torch's CUDA Philox compute the same function, only the
counter and key words differ (raw_words).
"""

from __future__ import annotations

import numpy as np

from pyinit.reference.philox_numpy import philox4x32_10  # torch's CUDA Philox is the same function

LOW32 = np.uint64(0xFFFFFFFF)
BLOCK = 256
INT32_MAX = 2**31 - 1


def torch_cuda_launch(numel: int, sm_count: int, max_threads_per_sm: int, unroll: int):
    """(blocks, threads S, calls per thread, offset increment) of torch's calc_execution_policy."""
    blocks = min((numel + BLOCK - 1) // BLOCK, sm_count * (max_threads_per_sm // BLOCK))
    threads = blocks * BLOCK
    calls = (numel - 1) // (threads * unroll) + 1
    return blocks, threads, calls, calls * 4


def torch_cuda_slots(numel: int, threads: int, unroll: int):
    """(thread, call, lane) of every linear index, closed form."""
    li = np.arange(numel, dtype=np.int64)
    rnd = li // threads
    return li % threads, rnd // unroll, rnd % unroll


def torch_cuda_slots_by_loop(numel: int, threads: int, unroll: int):
    """The same map, by running torch's grid-stride loop thread by thread."""
    slots = np.full((numel, 3), -1, dtype=np.int64)
    rounded = ((numel - 1) // (threads * unroll) + 1) * threads * unroll
    for t in range(threads):
        for call, base in enumerate(range(t, rounded, threads * unroll)):
            for lane in range(unroll):
                li = base + threads * lane
                if li < numel:
                    slots[li] = (t, call, lane)
    return slots


def pyinit_cuda_writes(numel: int, threads: int, unroll: int, group: int, grid_threads: int):
    """Every (element, thread, call, lane) pyinit's kernel writes (for_each_item + store_group)."""
    groups = threads // group
    calls = (numel - 1) // (threads * unroll) + 1
    writes = []
    for first in range(grid_threads):
        call, g = divmod(first, groups)
        call_step, group_step = divmod(grid_threads, groups)
        while call < calls:
            t0 = g * group
            base = call * threads * unroll + t0
            if base < numel:
                for lane in range(unroll):
                    li = base + lane * threads
                    for v in range(group):
                        if li + v < numel:
                            writes.append((li + v, t0 + v, call, lane))
            g += group_step
            call += call_step
            if g >= groups:
                g -= groups
                call += 1
    return writes


def raw_words(
    seed: int, offset: int, numel: int, sm_count: int, max_threads_per_sm: int, unroll: int = 4
):
    """The Philox block of every element (4 x numel uint32) and the offset increment."""
    _, threads, _, increment = torch_cuda_launch(numel, sm_count, max_threads_per_sm, unroll)
    thread, call, lane = torch_cuda_slots(numel, threads, unroll)
    counter = np.uint64(offset // 4) + call.astype(np.uint64)
    t = thread.astype(np.uint64)
    block = philox4x32_10(
        (counter & LOW32).astype(np.uint32),
        (counter >> np.uint64(32)).astype(np.uint32),
        (t & LOW32).astype(np.uint32),
        (t >> np.uint64(32)).astype(np.uint32),
        np.uint32(seed & 0xFFFFFFFF),
        np.uint32(seed >> 32),
    )
    return np.stack(block), lane, increment


def uniform_float32(seed, offset, numel, sm_count, max_threads_per_sm, low, high):
    """torch.cuda uniform_ on float32: curand's x * 2^-32 + 2^-33, then an fma (in float64)."""
    block, lane, increment = raw_words(seed, offset, numel, sm_count, max_threads_per_sm)
    words = block[lane, np.arange(numel)]
    rand = (words.astype(np.float32) * np.float32(2.0**-32) + np.float32(2.0**-33)).astype(
        np.float32
    )
    lo, hi = np.float32(low), np.float32(high)
    width = np.float32(hi - lo)
    # A float64 product of two floats is exact: rounding product + lo to float32 is the fma, up to a
    # (rare) double rounding of the float64 sum.
    value = (rand.astype(np.float64) * np.float64(width) + np.float64(lo)).astype(np.float32)
    value[value == hi] = lo
    return value, increment


def split_32bit_1d(numel: int, stride_bytes: int, start: int = 0):
    """TensorIterator's with_32bit_indexing pieces of a 1-d iteration, in launch order."""
    if numel <= INT32_MAX and 1 + (numel - 1) * stride_bytes <= INT32_MAX:
        return [(start, numel)]
    first = numel // 2
    return split_32bit_1d(first, stride_bytes, start) + split_32bit_1d(
        numel - first, stride_bytes, start + first
    )


def split_increments(
    numel: int, element_size: int, sm_count: int, max_threads_per_sm: int, unroll: int
):
    """Offsets torch reserves for one call: the whole tensor, then each piece if it splits."""
    pieces = split_32bit_1d(numel, element_size)
    total = torch_cuda_launch(numel, sm_count, max_threads_per_sm, unroll)[3]
    if len(pieces) > 1:
        total += sum(
            torch_cuda_launch(n, sm_count, max_threads_per_sm, unroll)[3] for _, n in pieces
        )
    return pieces, total
