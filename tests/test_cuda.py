"""CUDA kernels of the torch stream: bit for bit against live torch on the GPU (skipped without
one), and CPU-only checks of the index math they rest on (tests/cuda_model.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.init as tinit
from cuda_model import (
    philox4x32_10,
    pyinit_cuda_writes,
    split_32bit_1d,
    split_increments,
    torch_cuda_launch,
    torch_cuda_slots,
    torch_cuda_slots_by_loop,
    uniform_float32,
)
from helpers import bitwise_equal, dtypes

import pyinit

ops = torch.ops.pyinit
HAS_CUDA = torch.cuda.is_available()
cuda_only = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")


# --------------------------------------------------------------------------------------------------
# CPU-only: the model of the index math


def test_philox_known_answers():
    kat = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ]
    for counter, key, expected in kat:
        assert tuple(int(w) for w in philox4x32_10(*counter, *key)) == expected


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

H100_EDGES = [270_335, 270_336, 270_337, 1_081_344, 1_081_345]
SHAPES = [(1,), (17,), (1000,), (33, 65), *((n,) for n in H100_EDGES)]
shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))


def _cuda_gen(seed: int) -> torch.Generator:
    gen = torch.Generator(device="cuda")
    gen.manual_seed(seed)
    return gen


def _compare(shape, dtype, ours, theirs, seed=1234, offset=0, layout=None):
    """ours(t, gen) vs theirs(t, gen) from equal generator states: same values, same offsets."""
    results = []
    for fill in (ours, theirs):
        gen = _cuda_gen(seed)
        gen.set_offset(offset)
        t = torch.empty(shape, device="cuda", dtype=dtype)
        if layout is not None:
            t = layout(t)
        fill(t, gen)
        results.append((t, gen.get_offset()))
    (a, off_a), (b, off_b) = results
    assert bitwise_equal(a, b), f"{(a != b).sum().item()} of {a.numel()} values differ"
    assert off_a == off_b


@cuda_only
@dtypes
@shapes
def test_uniform(shape, dtype):
    _compare(
        shape,
        dtype,
        lambda t, g: ops.uniform_(t, -0.3, 0.7, g),
        lambda t, g: t.uniform_(-0.3, 0.7, generator=g),
    )


@cuda_only
@dtypes
@shapes
def test_normal(shape, dtype):
    _compare(
        shape,
        dtype,
        lambda t, g: ops.normal_(t, 0.5, 2.0, g),
        lambda t, g: t.normal_(0.5, 2.0, generator=g),
    )


@cuda_only
@dtypes
@shapes
def test_masked_uniform_equals_composition(shape, dtype):
    def composition(t, g):
        t.uniform_(-10, 10, generator=g)
        t *= t.abs() >= 5

    _compare(shape, dtype, lambda t, g: ops.masked_uniform_(t, -10.0, 10.0, 5.0, g), composition)


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
@pytest.mark.parametrize("op", ["uniform_", "normal_"])
def test_default_generator(op):
    results = []
    for fill in ("ours", "theirs"):
        torch.cuda.manual_seed(77)
        t = torch.empty(1_081_345, device="cuda")
        if op == "uniform_":
            ops.uniform_(t, -1.0, 1.0, None) if fill == "ours" else t.uniform_(-1, 1)
        else:
            ops.normal_(t, 0.0, 1.0, None) if fill == "ours" else t.normal_(0, 1)
        results.append((t, torch.cuda.default_generators[0].get_offset()))
    assert bitwise_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]


@cuda_only
def test_zero_elements_draw_nothing():
    gen = _cuda_gen(3)
    for op in (lambda t: ops.uniform_(t, 0, 1, gen), lambda t: ops.normal_(t, 0, 1, gen)):
        op(torch.empty(0, 5, device="cuda"))
    assert gen.get_offset() == 0


def _trunc_reference(t, mean, std, a, b, gen):
    """torch >= 2.12's rejection loop with normal proposals (the op's contract, written out)."""
    t.normal_(mean, std, generator=gen)
    lo, hi = torch.tensor(a, dtype=t.dtype), torch.tensor(b, dtype=t.dtype)
    while True:
        mask = (t < lo.to(t.device)) | (t > hi.to(t.device))
        if not mask.any():
            return
        t.copy_(torch.where(mask, torch.empty_like(t).normal_(mean, std, generator=gen), t))


@cuda_only
@dtypes
@pytest.mark.parametrize("shape", [(1,), (1000,), (1_081_345,), (512, 513)], ids=str)
@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (-0.5, 1.0), (-0.2, 0.9)], ids=str)
def test_trunc_normal(shape, dtype, bounds):
    a, b = bounds
    _compare(
        shape,
        dtype,
        lambda t, g: ops.trunc_normal_(t, 0.1, 1.0, a, b, g),
        lambda t, g: _trunc_reference(t, 0.1, 1.0, a, b, g),
    )


@cuda_only
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 1.0])
def test_sparse(sparsity):
    results = []
    for fill in ("ours", "theirs"):
        torch.manual_seed(11)
        gen = _cuda_gen(5)
        t = torch.empty(300, 40, device="cuda")
        if fill == "ours":
            ops.sparse_(t, math.ceil(sparsity * 300), 0.02, gen)
        else:
            tinit.sparse_(t, sparsity, 0.02, generator=gen)
        results.append((t, gen.get_offset(), torch.get_rng_state()))
    assert bitwise_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    assert torch.equal(results[0][2], results[1][2])


@cuda_only
@dtypes
def test_deterministic_initializers(dtype):
    for shape, ours, theirs in [
        ((37, 53), lambda t: ops.fill_(t, 0.1), lambda t: t.fill_(0.1)),
        ((37, 53), lambda t: ops.eye_(t), lambda t: tinit.eye_(t)),
        ((8, 3, 3, 5), lambda t: ops.dirac_(t, 2), lambda t: tinit.dirac_(t, 2)),
        ((6, 4, 5), lambda t: ops.dirac_(t, 1), lambda t: tinit.dirac_(t, 1)),
    ]:
        for layout in (lambda t: t, lambda t: t.transpose(0, 1)):
            a = layout(torch.full(shape, 7.0, device="cuda", dtype=dtype))
            b = a.clone()
            ours(a)
            theirs(b)
            assert bitwise_equal(a, b)


@cuda_only
@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (16, 4, 3)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_orthogonal(shape, dtype):
    _compare(
        shape,
        dtype,
        lambda t, g: pyinit.orthogonal_(t, 1.5, generator=g),
        lambda t, g: tinit.orthogonal_(t, 1.5, generator=g),
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
