"""What only CUDA has, in the torch stream: torch's grid sizes and offset increments, generator
offsets, large non-contiguous views, graph capture, the 32-bit indexing split and a second GPU, bit
for bit against live torch on the GPU (skipped without one); and CPU-only checks of the index math
the kernels rest on (tests/cuda_model.py).

Every initializer x dtype x shape, the views, generators and generator state are compared on CUDA
by the shared tables of tests/test_bitwise.py (their device axis): this file does not repeat them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.init as tinit
from cuda_model import (
    pyinit_cuda_writes,
    split_32bit_1d,
    split_increments,
    torch_cuda_launch,
    torch_cuda_slots,
    torch_cuda_slots_by_loop,
    uniform_float32,
)
from helpers import HAS_CUDA, bitwise_equal, cuda_only, differing, dtypes

import pyinit

ops = torch.ops.pyinit


# --------------------------------------------------------------------------------------------------
# CPU-only: the model of the index math


@pytest.mark.parametrize(
    "numel,unroll,increment",
    [
        (1, 4, 4),
        (270_336, 4, 4),
        (1_081_344, 4, 4),
        (1_081_345, 4, 8),
        (3_000_017, 4, 12),
        (1_081_345, 2, 12),
    ],
)
def test_launch_policy_h100(numel, unroll, increment):
    # Increments measured with torch 2.11 on an H100 SXM (132 SMs, 2048 threads/SM).
    assert torch_cuda_launch(numel, 132, 2048, unroll)[3] == increment


@pytest.mark.parametrize("numel", [1, 255, 256, 257, 1000, 2048, 5000])
@pytest.mark.parametrize("unroll", [2, 4])
def test_closed_form_matches_torch_loop(numel, unroll):
    _, threads, _, _ = torch_cuda_launch(numel, sm_count=1, max_threads_per_sm=1024, unroll=unroll)
    closed = np.stack(torch_cuda_slots(numel, threads, unroll), axis=1)
    assert np.array_equal(closed, torch_cuda_slots_by_loop(numel, threads, unroll))


@pytest.mark.parametrize("numel", [1, 7, 1000, 4099, 9000])
@pytest.mark.parametrize("unroll,group", [(4, 4), (4, 8), (2, 2)])
@pytest.mark.parametrize("grid_threads", [256, 768, 4096])
def test_pyinit_layout_writes_each_element_once_with_torch_slot(numel, unroll, group, grid_threads):
    _, threads, _, _ = torch_cuda_launch(numel, sm_count=2, max_threads_per_sm=1024, unroll=unroll)
    writes = pyinit_cuda_writes(numel, threads, unroll, group, grid_threads)
    elements = [w[0] for w in writes]
    assert sorted(elements) == list(range(numel))
    closed = np.stack(torch_cuda_slots(numel, threads, unroll), axis=1)
    for li, thread, call, lane in writes:
        assert tuple(closed[li]) == (thread, call, lane)


def test_split_pieces():
    assert split_32bit_1d(2**29 - 1, 4) == [(0, 2**29 - 1)]
    assert split_32bit_1d(2**30, 4) == [(0, 2**29), (2**29, 2**29)]
    assert split_32bit_1d(2**29 + 1, 4) == [(0, 2**28), (2**28, 2**28 + 1)]
    pieces = split_32bit_1d(3 * 2**30, 2)
    assert sum(n for _, n in pieces) == 3 * 2**30 and len(pieces) == 4
    _, total = split_increments(2**30, 4, 132, 2048, 4)
    assert (
        total
        == torch_cuda_launch(2**30, 132, 2048, 4)[3] + 2 * torch_cuda_launch(2**29, 132, 2048, 4)[3]
    )


# --------------------------------------------------------------------------------------------------
# GPU: bit for bit against torch

# Around the sizes where torch's grid stops growing (270_336 = 132 SMs x 2048 threads on an H100 or
# H200) and where its offset increment goes from 4 to 8 (1_081_344 = 4 elements per thread).
GRID_EDGES = [270_335, 270_336, 270_337, 1_081_344, 1_081_345]


def _cuda_gen(seed: int) -> torch.Generator:
    gen = torch.Generator(device="cuda")
    gen.manual_seed(seed)
    return gen


def _compare(shape, dtype, ours, theirs, seed=1234, offset=0, layout=None, use_generator=True):
    """ours(t, gen) vs theirs(t, gen) from equal generator states (an explicit CUDA generator, or
    the default one with gen None): same values, same offsets after the call."""
    results = []
    for fill in (ours, theirs):
        if use_generator:
            gen = source = _cuda_gen(seed)
        else:
            torch.cuda.manual_seed(seed)
            gen, source = None, torch.cuda.default_generators[torch.cuda.current_device()]
        source.set_offset(offset)
        t = torch.empty(shape, device="cuda", dtype=dtype)
        if layout is not None:
            t = layout(t)
        fill(t, gen)
        results.append((t, source.get_offset()))
    (a, off_a), (b, off_b) = results
    assert bitwise_equal(a, b), differing(a, b)
    assert off_a == off_b


def _masked_composition(t, g):
    t.uniform_(-10, 10, generator=g)
    t *= t.abs() >= 5


GRID_OPS = {
    "uniform_": (
        lambda t, g: ops.uniform_(t, -0.3, 0.7, g),
        lambda t, g: t.uniform_(-0.3, 0.7, generator=g),
    ),
    "normal_": (
        lambda t, g: ops.normal_(t, 0.5, 2.0, g),
        lambda t, g: t.normal_(0.5, 2.0, generator=g),
    ),
    "masked_uniform_": (
        lambda t, g: ops.masked_uniform_(t, -10.0, 10.0, 5.0, g),
        _masked_composition,
    ),
}


@cuda_only
@dtypes
@pytest.mark.parametrize("numel", GRID_EDGES, ids=str)
@pytest.mark.parametrize("op", list(GRID_OPS))
@pytest.mark.parametrize("use_generator", [False, True], ids=["default_gen", "explicit_gen"])
def test_grid_edges(op, numel, dtype, use_generator):
    ours, theirs = GRID_OPS[op]
    _compare((numel,), dtype, ours, theirs, use_generator=use_generator)


@cuda_only
@pytest.mark.parametrize("numel", [1, 1000, 1_081_345], ids=str)
def test_numpy_model_matches_torch_uniform(numel):
    """The CPU model of the mapping (used above without a GPU) against torch itself."""
    props = torch.cuda.get_device_properties(0)
    sm, mtps = props.multi_processor_count, props.max_threads_per_multi_processor
    gen = _cuda_gen(1234)
    gen.set_offset(4000)
    t = torch.empty(numel, device="cuda").uniform_(-10, 10, generator=gen)
    model, increment = uniform_float32(1234, 4000, numel, sm, mtps, -10.0, 10.0)
    assert np.array_equal(t.cpu().numpy(), model)
    assert gen.get_offset() == 4000 + increment


LAYOUTS = {
    "transposed": lambda t: t.view(t.shape[0] // 4, 4, -1).transpose(0, 2),
    "sliced": lambda t: t.view(t.shape[0] // 4, 4, -1)[:, 1:3],
    "strided_1d": lambda t: t.view(-1)[::3],
}


@cuda_only
@dtypes
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", ["uniform_", "normal_"])
def test_non_contiguous(dtype, layout, op):
    shape = (4 * 70_000 * 3,)
    if op == "uniform_":
        ours, theirs = (
            (lambda t, g: ops.uniform_(t, 0.0, 1.0, g)),
            (lambda t, g: t.uniform_(0, 1, generator=g)),
        )
    else:
        ours, theirs = (
            (lambda t, g: ops.normal_(t, 0.0, 1.0, g)),
            (lambda t, g: t.normal_(0, 1, generator=g)),
        )
    _compare(shape, dtype, ours, theirs, layout=LAYOUTS[layout])


@cuda_only
@pytest.mark.parametrize("offset", [0, 4000, 2**40])
def test_generator_offsets(offset):
    _compare(
        (1_081_345,),
        torch.float32,
        lambda t, g: ops.uniform_(t, 0, 1, g),
        lambda t, g: t.uniform_(0, 1, generator=g),
        seed=2**63 + 5,
        offset=offset,
    )


@cuda_only
@dtypes
@pytest.mark.parametrize("shape", [(1_081_345,), (512, 513)], ids=str)
@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (-0.5, 1.0), (-0.2, 0.9)], ids=str)
def test_trunc_normal_grid_sizes(shape, dtype, bounds):
    # Each redraw round of the rejection loop reserves offsets for the whole tensor at torch's grid.
    a, b = bounds
    _compare(
        shape,
        dtype,
        lambda t, g: pyinit.trunc_normal_(t, 0.1, 1.0, a, b, generator=g),
        lambda t, g: tinit.trunc_normal_(t, 0.1, 1.0, a, b, generator=g),
    )


CAPTURED = {
    "uniform_": (
        lambda x: ops.uniform_(x, -1.0, 1.0, None),
        lambda x: x.uniform_(-1, 1),
        lambda x: x,
    ),
    "normal_": (lambda x: ops.normal_(x, 0.0, 1.0, None), lambda x: x.normal_(0, 1), lambda x: x),
    # torch's side: the captured uniform_, masked after each replay (outside the graph).
    "masked_uniform_": (
        lambda x: ops.masked_uniform_(x, -10.0, 10.0, 5.0, None),
        lambda x: x.uniform_(-10, 10),
        lambda x: x * (x.abs() >= 5),
    ),
}


@cuda_only
@pytest.mark.parametrize("op", list(CAPTURED))
def test_graph_capture_replays_like_torch(op):
    def replays(fill, after):
        torch.cuda.manual_seed(123)
        x = torch.empty(1_081_345, device="cuda")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            fill(x)
        out = []
        for _ in range(2):
            graph.replay()
            out.append(after(x.clone()))
        return out

    ours_fill, theirs_fill, after = CAPTURED[op]
    ours, theirs = replays(ours_fill, lambda x: x), replays(theirs_fill, after)
    assert not bitwise_equal(ours[0], ours[1])
    assert bitwise_equal(ours[0], theirs[0]) and bitwise_equal(ours[1], theirs[1])


def _has_memory(gib: float) -> bool:
    return HAS_CUDA and torch.cuda.get_device_properties(0).total_memory >= gib * 2**30


@pytest.mark.cuda
@pytest.mark.skipif(not _has_memory(24), reason="needs a CUDA GPU with 24 GiB")
@pytest.mark.parametrize(
    "numel,dtype", [(2**30, torch.float32), (2**31 + 5, torch.bfloat16)], ids=str
)
def test_32bit_split(numel, dtype):
    """Above 2 GiB of extent (the second above 2^31 elements) offsets are reserved per piece."""
    _compare(
        (numel,),
        dtype,
        lambda t, g: ops.uniform_(t, 0, 1, g),
        lambda t, g: t.uniform_(0, 1, generator=g),
    )
    torch.cuda.empty_cache()


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA or torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    gen = torch.Generator(device="cuda:1")
    results = []
    for ours in (True, False):
        gen.manual_seed(9)
        t = torch.empty(1_081_345, device="cuda:1")
        ops.normal_(t, 0.0, 1.0, gen) if ours else t.normal_(0, 1, generator=gen)
        results.append(t)
    assert bitwise_equal(*results)
