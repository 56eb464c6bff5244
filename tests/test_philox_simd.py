"""The philox stream's CPU kernel variants (portable, AVX2, AVX-512; PYINIT_PHILOX_SIMD selects one
per call, docs/philox_stream.md) give the same bits as each other and as the NumPy oracle, for every
op, float dtype, size around the tile (32 elements) and AVX-512 vector (two tiles) boundaries, and
sharded blocks. AVX-512 cases skip on a CPU without it (the kernels then never select it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import DTYPES, bitwise_equal
from test_philox import KEY, OFFSET, _run_op, _signed  # OFFSET: the counter wraps at element 2^14
from test_philox import _oracle as philox_oracle

from pyinit.reference import philox_numpy as ref

HAS_AVX512 = torch.backends.cpu.get_cpu_capability() == "AVX512"  # the philox kernels follow it
HAS_AVX2 = torch.backends.cpu.get_cpu_capability() != "DEFAULT"
# PYINIT_PHILOX_SIMD values: "0" portable, "avx2" at most AVX2, unset the best the CPU has.
VARIANTS = [
    "0",
    pytest.param("avx2", marks=pytest.mark.skipif(not HAS_AVX2, reason="no AVX2")),
    pytest.param(None, marks=pytest.mark.skipif(not HAS_AVX512, reason="no AVX-512")),
]
variants = pytest.mark.parametrize("simd", VARIANTS, ids=["portable", "avx2", "avx512"])

ops = torch.ops.pyinit
# Tile = 32 elements, AVX-512 vector = 2 tiles, group = 4 tiles (128 elements); a big odd size.
SIZES = [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 160, 511, 512, 513, 4099]
BIG = 100_003
KINDS = [
    ("uniform_", (-2.0, 3.0)),
    ("masked_uniform_", (-10.0, 10.0, 5.0)),
    ("normal_", (0.5, 2.0)),
    ("trunc_normal_", (0.0, 1.0, -2.0, 2.0)),  # rejection
    ("trunc_normal_", (0.0, 1.0, -0.4, 0.4)),  # rejection, p = 0.31: many rounds
    ("trunc_normal_", (0.0, 1.0, 0.5, 0.9)),  # inverse CDF
]
kinds = pytest.mark.parametrize(
    "kind,params", KINDS, ids=lambda x: x if isinstance(x, str) else ",".join(map(str, x))
)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))


def _set(monkeypatch, simd: str | None) -> None:
    if simd is None:
        monkeypatch.delenv("PYINIT_PHILOX_SIMD", raising=False)
    else:
        monkeypatch.setenv("PYINIT_PHILOX_SIMD", simd)


def _op(kind, t, params, offset=OFFSET, global_shape=(), start=()):
    return _run_op(
        kind, t, params, offset=offset, global_shape=list(global_shape), start=list(start)
    )


def _oracle(kind, params, idx, dtype, offset=OFFSET) -> torch.Tensor:
    v = philox_oracle(kind, params, idx, dtype, offset=offset)
    return torch.from_numpy(np.asarray(v, dtype=np.float64)).to(dtype)


def _all_variants(monkeypatch, make) -> list[torch.Tensor]:
    """make() under each variant this CPU has."""
    out = []
    for simd in ["0"] + (["avx2"] if HAS_AVX2 else []) + ([None] if HAS_AVX512 else []):
        _set(monkeypatch, simd)
        out.append(make())
    return out


@variants
@kinds
@dtypes
def test_variant_matches_oracle(simd, kind, params, dtype, monkeypatch):
    _set(monkeypatch, simd)
    for n in SIZES:
        got = _op(kind, torch.empty(n, dtype=dtype), params)
        expected = _oracle(kind, params, np.arange(n, dtype=np.uint64), dtype)
        assert bitwise_equal(got, expected), (n, simd)


@kinds
@dtypes
def test_variants_agree_big_odd(kind, params, dtype, monkeypatch):
    results = _all_variants(monkeypatch, lambda: _op(kind, torch.empty(BIG, dtype=dtype), params))
    assert all(bitwise_equal(results[0], r) for r in results[1:])


@variants
@pytest.mark.parametrize(
    "kind,params", KINDS[:5], ids=lambda x: x if isinstance(x, str) else ",".join(map(str, x))
)
def test_variant_sharded_blocks(simd, kind, params, monkeypatch):
    """Blocks that start inside a tile and inside a vector: runs of every alignment."""
    _set(monkeypatch, simd)
    shape = (9, 131)
    for start, local in [
        ((0, 0), (9, 131)),
        ((1, 5), (7, 100)),
        ((2, 17), (3, 114)),
        ((8, 1), (1, 33)),
    ]:
        got = _op(kind, torch.empty(local), params, global_shape=shape, start=start)
        idx = ref.global_indices(shape, start, local)
        assert bitwise_equal(got, _oracle(kind, params, idx, torch.float32).reshape(local)), start


# The low counter word crosses 2^32 inside a group of 16 blocks (the vector kernels' carry path).
CARRY_OFFSET = 0xFFFFFFF5


@variants
@pytest.mark.parametrize("offset", [OFFSET, CARRY_OFFSET, 0x1FFFFFFF9, 0], ids=hex)
@pytest.mark.parametrize("stream", [0, 1, 7])
def test_variant_bits_match_oracle(simd, offset, stream, monkeypatch):
    _set(monkeypatch, simd)
    for n in SIZES + [BIG]:
        got = torch.empty(n, dtype=torch.int32)
        ops.philox_bits_(got, _signed(KEY), _signed(offset), stream, [], [])
        expected = ref.bits(KEY, offset, np.arange(n, dtype=np.uint64), stream).view(np.int32)
        assert np.array_equal(got.numpy(), expected), n


@variants
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64], ids=str)
def test_variant_carry_values(simd, dtype, monkeypatch):
    _set(monkeypatch, simd)
    for kind, params in KINDS[:3]:
        got = _op(kind, torch.empty(700, dtype=dtype), params, offset=CARRY_OFFSET)
        idx = np.arange(700, dtype=np.uint64)
        assert bitwise_equal(got, _oracle(kind, params, idx, dtype, offset=CARRY_OFFSET)), kind


def _sparse(t, num_zeros, std):
    ops.philox_sparse_(t, num_zeros, std, _signed(KEY), _signed(OFFSET), [], [])
    return t


@variants
@pytest.mark.parametrize("shape", [(50, 12), (100, 33), (70, 200), (300, 17), (40, 513)], ids=str)
@pytest.mark.parametrize("sparsity", [0.1, 0.5])
def test_variant_sparse_matches_oracle(simd, shape, sparsity, monkeypatch):
    """Scan and zero rows: every element size (bool 1, half 2, float 4, double 8 bytes)."""
    _set(monkeypatch, simd)
    num_zeros = math.ceil(sparsity * shape[0])
    mask = torch.from_numpy(ref.sparse_zero_mask(KEY, OFFSET, *shape, num_zeros))
    assert torch.equal(~_sparse(torch.ones(shape, dtype=torch.bool), num_zeros, None), mask)
    for dtype in (torch.float16, torch.float32, torch.float64):
        values = _oracle("normal_", (0.0, 0.5), np.arange(math.prod(shape), dtype=np.uint64), dtype)
        expected = torch.where(mask, torch.zeros((), dtype=dtype), values.reshape(shape))
        assert bitwise_equal(_sparse(torch.empty(shape, dtype=dtype), num_zeros, 0.5), expected)


def test_variants_agree_many(monkeypatch):
    """The fused *_many_ ops go through the same tile kernels."""
    sizes = [1, 33, 129, 4099]

    def make():
        ts = [torch.empty(n) for n in sizes]
        k, o = [_signed(KEY + i) for i in range(4)], [_signed(OFFSET)] * 4
        ops.philox_normal_many_(ts, [0.0] * 4, [1.0] * 4, k, o)
        us = [torch.empty(n, dtype=torch.bfloat16) for n in sizes]
        ops.philox_uniform_many_(us, [-1.0] * 4, [1.0] * 4, k, o)
        return torch.cat(ts + [u.float() for u in us])

    results = _all_variants(monkeypatch, make)
    assert all(bitwise_equal(results[0], r) for r in results[1:])


def test_simd_variable_values(monkeypatch):
    """Any other PYINIT_PHILOX_SIMD value is the best variant (the same bits in any case)."""
    expected = _op("normal_", torch.empty(999), (0.0, 1.0))
    for value in ("1", "avx512", "junk", ""):
        monkeypatch.setenv("PYINIT_PHILOX_SIMD", value)
        assert bitwise_equal(_op("normal_", torch.empty(999), (0.0, 1.0)), expected), value
