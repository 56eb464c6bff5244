"""The torch stream's operators on blocks of a tensor (uniform_blocks_, masked_uniform_blocks_,
normal_blocks_, trunc_normal_blocks_; Note [The torch stream on blocks], csrc/torch_blocks.h):
each block gets exactly the values torch's own call on the whole tensor writes there, and the
generator ends where that call leaves it. On CUDA each block is computed alone (Note [The torch
stream on a block], csrc/cuda/torch_stream_kernels.cu); the CUDA cases skip without a GPU."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from helpers import DEVICES, bitwise_equal, differing, dtypes, on_cuda

import pyinit  # noqa: F401  (registers the operators)

ops = torch.ops.pyinit

# torch's own call on the whole tensor, and the operator on blocks, with the same arguments.
CALLS = {
    "uniform_blocks_": (
        lambda t, g: t.uniform_(-1.5, 2.0, generator=g),
        lambda blocks, shape, starts, g: ops.uniform_blocks_(blocks, -1.5, 2.0, shape, starts, g),
    ),
    "normal_blocks_": (
        lambda t, g: t.normal_(0.25, 2.0, generator=g),
        lambda blocks, shape, starts, g: ops.normal_blocks_(blocks, 0.25, 2.0, shape, starts, g),
    ),
    "masked_uniform_blocks_": (
        lambda t, g: t.mul_(t.uniform_(-10.0, 10.0, generator=g).abs() >= 5.0),
        lambda blocks, shape, starts, g: ops.masked_uniform_blocks_(
            blocks, -10.0, 10.0, 5.0, shape, starts, g
        ),
    ),
    # the zero pattern from the default CPU generator, seeded alike for both calls (its state is
    # compared in test_sparse_moves_the_default_generator)
    "sparse_blocks_": (
        lambda t, g: (torch.manual_seed(5), torch.nn.init.sparse_(t, 0.3, std=0.5, generator=g)),
        lambda blocks, shape, starts, g: (
            torch.manual_seed(5),
            ops.sparse_blocks_(blocks, math.ceil(0.3 * shape[0]), 0.5, shape, starts, g),
        ),
    ),
    # torch's normal-proposal rounds (mass inside [a, b] > 0.3): about 1 value in 13 resampled
    "trunc_normal_blocks_": (
        lambda t, g: torch.nn.init.trunc_normal_(t, 0.1, 1.5, -2.0, 2.5, generator=g),
        lambda blocks, shape, starts, g: ops.trunc_normal_blocks_(
            blocks, 0.1, 1.5, -2.0, 2.5, shape, starts, g
        ),
    ),
}

# (global shape, blocks as (start, size)): row shards (FSDP2's Shard(0)), an uneven one, column
# shards (Shard(1): strided blocks), the two blocks of a _StridedShard, a 3-D block, the whole
# tensor, one element, a size around the 16-element Box-Muller blocks of CPU normal_.
LAYOUTS = {
    "rows": ((10, 7), [((0, 0), (4, 7)), ((4, 0), (6, 7))]),
    "uneven_row": ((11, 3), [((9, 0), (2, 3))]),
    "columns": ((9, 8), [((0, 3), (9, 5))]),
    "strided_shard": ((12, 4), [((2, 0), (2, 4)), ((8, 0), (2, 4))]),
    "3d": ((4, 5, 6), [((1, 2, 0), (2, 3, 6))]),
    "whole": ((33, 65), [((0, 0), (33, 65))]),
    "one": ((5, 5), [((4, 4), (1, 1))]),
    "tail16": ((37,), [((3,), (30,))]),
}


def _region(start, size):
    return tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))


def _check(op, device, dtype, shape, layout, transposed=False, seed=7):
    whole_call, block_call = CALLS[op]
    gen = torch.Generator(device=device).manual_seed(seed)
    expected = torch.empty(shape, dtype=dtype, device=device)
    whole_call(expected, gen)
    state = gen.get_state()
    blocks = []
    for _, size in layout:
        if transposed:  # a block the kernel cannot write row-major in place
            block = torch.full(size[::-1], float("nan"), dtype=dtype, device=device).t()
        else:
            block = torch.full(size, float("nan"), dtype=dtype, device=device)
        blocks.append(block)
    versions = [b._version for b in blocks]
    gen.manual_seed(seed)
    block_call(blocks, list(shape), [s for start, _ in layout for s in start], gen)
    for block, (start, size), version in zip(blocks, layout, versions, strict=True):
        want = expected[_region(start, size)]
        assert bitwise_equal(block.contiguous(), want.contiguous()), differing(block, want)
        assert block._version > version
    assert torch.equal(gen.get_state(), state), "the generator is not where the whole call left it"


@pytest.mark.parametrize("device", DEVICES)
@dtypes
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", list(CALLS))
def test_blocks_equal_the_whole_call(op, layout, dtype, device):
    shape, blocks = LAYOUTS[layout]
    if op == "sparse_blocks_" and len(shape) != 2:
        pytest.skip("sparse_ takes 2-D tensors")
    _check(op, device, dtype, shape, blocks)


@pytest.mark.parametrize(
    "layout",
    [
        [((0, 0), (150, 257)), ((150, 0), (150, 257))],  # rows
        [((0, 100), (300, 64))],  # a column shard: one run per row
        [((40, 0), (40, 257)), ((190, 0), (40, 257))],  # a _StridedShard's two blocks
        [((0, 0), (300, 130)), ((10, 120), (200, 137))],  # overlapping blocks, each written
    ],
    ids=["rows", "columns", "strided", "overlapping"],
)
@pytest.mark.parametrize("op", list(CALLS))
def test_cpu_draws_at_every_thread_count(op, layout, threads, draw):
    """CPU: the whole tensor's words in parallel ranges (pieces that cross the blocks' runs) or
    through the pipeline, each block's elements written straight from them."""
    _check(op, "cpu", torch.float32, (300, 257), layout)
    _check(op, "cpu", torch.float64, (300, 257), layout)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", list(CALLS))
def test_non_contiguous_block(op, device):
    _check(op, device, torch.float32, (9, 8), [((0, 3), (9, 5))], transposed=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", list(CALLS))
def test_empty_shard_moves_the_generator(op, device):
    """A rank with an empty shard passes its empty local tensor: nothing written, the generator
    moved as the whole call moves it (the next rank-local draw then agrees with one device)."""
    _check(op, device, torch.float32, (6, 4), [((6, 0), (0, 4))])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("zeros", [0, 1, 4, -2])
def test_sparse_moves_the_default_generator(zeros, device):
    """sparse_blocks_ draws every column's permutation from the default CPU generator after the
    values (also when nothing is zeroed), as torch's sparse_ does: that generator, and the next
    draw from it, end where the whole call leaves them."""
    shape, (start, size) = (10, 6), ((3, 2), (5, 3))
    gen = torch.Generator(device=device).manual_seed(2)
    torch.manual_seed(11)
    expected = torch.empty(shape, device=device)
    ops.sparse_(expected, zeros, 0.5, gen)  # the single-tensor operator, itself bitwise torch's
    after, state = torch.get_rng_state(), gen.get_state()
    gen.manual_seed(2)
    torch.manual_seed(11)
    block = torch.full(size, float("nan"), device=device)
    ops.sparse_blocks_([block], zeros, 0.5, list(shape), list(start), gen)
    assert bitwise_equal(block, expected[_region(start, size)])
    assert torch.equal(torch.get_rng_state(), after)
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("device", DEVICES)
def test_default_generator(device):
    """Without a generator: the device's default one, left where the whole call leaves it."""
    shape, layout = LAYOUTS["columns"]
    (start, size) = layout[0]
    torch.manual_seed(3)
    expected = torch.empty(shape, device=device).normal_(0, 1)
    expected_next = torch.empty(5, device=device).uniform_()
    torch.manual_seed(3)
    block = torch.empty(size, device=device)
    ops.normal_blocks_([block], 0.0, 1.0, list(shape), list(start))
    assert bitwise_equal(block, expected[_region(start, size)])
    assert bitwise_equal(torch.empty(5, device=device).uniform_(), expected_next)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "call,error",
    [
        (lambda b, g: ops.uniform_blocks_(b, 2.0, 1.0, [6, 4], [0, 0], g), "expects to return"),
        (lambda b, g: ops.normal_blocks_(b, 0.0, -1.0, [6, 4], [0, 0], g), "std >= 0.0"),
        (
            lambda b, g: ops.trunc_normal_blocks_(b, 0.0, -1.0, -2.0, 2.0, [6, 4], [0, 0], g),
            "std >= 0.0",
        ),
        (lambda b, g: ops.uniform_blocks_(b, 0.0, 1.0, [6, 4], [0], g), "one entry per dimension"),
        (lambda b, g: ops.uniform_blocks_(b, 0.0, 1.0, [5, 4], [3, 0], g), "does not fit"),
        # The dispatcher refuses an empty list (it dispatches on the tensors).
        (lambda b, g: ops.uniform_blocks_([], 0.0, 1.0, [6, 4], [], g), "no tensor arguments"),
    ],
    ids=["bounds", "std", "trunc_std", "starts", "outside", "no_blocks"],
)
def test_bad_input_leaves_everything_untouched(call, error, device):
    gen = torch.Generator(device=device).manual_seed(1)
    block = torch.zeros(3, 4, device=device)
    state, version = gen.get_state(), block._version
    with pytest.raises(RuntimeError, match=error):
        call([block], gen)
    assert torch.equal(gen.get_state(), state)
    assert block._version == version and not block.any()


def test_bad_bounds_message_is_torchs():
    """The same message as torch's uniform_ on the whole tensor."""
    with pytest.raises(RuntimeError) as theirs:
        torch.empty(6, 4).uniform_(2.0, 1.0)
    with pytest.raises(RuntimeError) as ours:
        ops.uniform_blocks_([torch.empty(3, 4)], 2.0, 1.0, [6, 4], [0, 0])
    assert str(theirs.value).splitlines()[0] == str(ours.value).splitlines()[0]


# CUDA: sizes around torch's grid (S = 256 * blocks threads, U = 4 or 2 values per thread per call),
# where the element map changes; blocks that start and end mid-call.
CUDA_SHAPES = [(1_081_345,), (1100, 1000), (3, 270_337)]


@pytest.mark.parametrize("device", [on_cuda("cuda")])
@dtypes
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=str)
@pytest.mark.parametrize("op", list(CALLS))
def test_cuda_grid_sizes(op, shape, dtype, device):
    if op == "sparse_blocks_" and len(shape) != 2:
        pytest.skip("sparse_ takes 2-D tensors")
    rows = shape[0]
    if len(shape) == 1:
        layout = [((rows // 3,), (rows // 2,))]
    else:  # a row shard and a column shard of the same tensor
        layout = [((rows // 2, 0), (rows - rows // 2, shape[1])), ((0, 7), (rows, shape[1] // 3))]
    _check(op, device, dtype, shape, layout)


@pytest.mark.parametrize("op", sorted(CALLS))
def test_cpu_blocks_allocate_no_whole_tensor(op):
    # One row of a (4096, 8193) float32 tensor (128 MiB): the operator draws the whole tensor's
    # words but holds no tensor of its size, so the process's peak memory (ru_maxrss, in a fresh
    # interpreter) grows by far less than 128 MiB; a whole temporary, written, would add all of it.
    # One thread: the serial draw, whose one buffer cannot grow (the pipeline's overflow buffers for
    # a descheduled consumer could, on a loaded box). trunc_normal_blocks_ also holds its pending
    # indices and a pointer each (16 bytes per value outside [-2.5, 2.5]: about 6 MiB here).
    script = (
        "import resource, torch, pyinit\n"
        "torch.set_num_threads(1)\n"
        f"op = getattr(torch.ops.pyinit, {op!r})\n"
        "args = {'uniform_blocks_': (-1.0, 1.0), 'normal_blocks_': (0.0, 1.0),\n"
        "        'masked_uniform_blocks_': (-10.0, 10.0, 5.0),\n"
        "        'trunc_normal_blocks_': (0.0, 1.0, -2.5, 2.5), 'sparse_blocks_': (41, 0.5)}["
        + repr(op)
        + "]\n"
        "block, g = torch.empty(1, 8193), torch.Generator().manual_seed(0)\n"
        "op([block], *args, [64, 8193], [7, 0], g)\n"  # warm-up (code, thread buffers), small
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "op([block], *args, [4096, 8193], [9, 0], g)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grown)\n"
        "raise SystemExit(0 if grown < 32 * 1024 else 1)\n"  # KiB
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, (run.stdout, run.stderr)
