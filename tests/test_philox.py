"""The philox stream (docs/philox_stream.md): kernels against the NumPy oracle, thread count, SIMD
path, views, shards, seeding and generators, the stream switch, distributions, and CUDA vs CPU."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from helpers import bitwise_equal, cuda_only, dtypes
from scipy import stats

import pyinit
from pyinit import philox
from pyinit.reference import philox_math as pm
from pyinit.reference import philox_numpy as ref

ops = torch.ops.pyinit
KEY, OFFSET = (
    0x9E3779B97F4A7C15,
    0xFFFFFFFFFFFFF000,
)  # the counter wraps around 2^64 in larger tensors
SIZES = [1, 7, 31, 33, 100, 1000, 4099]

# (name, op arguments, oracle)
TRUNC_CASES = [
    (0.0, 1.0, -2.0, 2.0),
    (0.0, 0.02, -2.0, 2.0),
    (0.0, 1.0, 0.5, 0.9),
    (1.0, 1.0, 3.0, 5.0),
    (0.0, 1.0, -7.0, -6.0),
]


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def _np_dtype(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _run_op(
    kind: str, t: torch.Tensor, params: tuple, key=KEY, offset=OFFSET, **shard
) -> torch.Tensor:
    getattr(ops, f"philox_{kind}")(
        t,
        *params,
        _signed(key),
        _signed(offset),
        shard.get("global_shape", []),
        shard.get("start", []),
    )
    return t


def _oracle(kind: str, params: tuple, idx: np.ndarray, dtype: torch.dtype, key=KEY, offset=OFFSET):
    fn = {
        "uniform_": ref.uniform,
        "normal_": ref.normal,
        "masked_uniform_": ref.masked_uniform,
        "trunc_normal_": ref.trunc_normal,
    }[kind]
    return fn(key, offset, idx, *params, dtype=_np_dtype(dtype))


KINDS = [
    ("uniform_", (-2.0, 3.0)),
    ("masked_uniform_", (-10.0, 10.0, 5.0)),
    ("normal_", (0.5, 2.0)),
] + [("trunc_normal_", case) for case in TRUNC_CASES + [(0.0, 1.0, -38.0, -37.0)]]  # + a deep tail
kinds = pytest.mark.parametrize(
    "kind,params", KINDS, ids=lambda x: x if isinstance(x, str) else str(x)
)


# ---- the kernels against the NumPy oracle --------------------------------------------------------


@kinds
@dtypes
@pytest.mark.parametrize("n", SIZES)
def test_cpu_matches_oracle(kind, params, dtype, n):
    got = _run_op(kind, torch.empty(n, dtype=dtype), params).double().numpy()
    expected = _oracle(kind, params, np.arange(n, dtype=np.uint64), dtype).astype(np.float64)
    assert np.array_equal(got.view(np.uint64), expected.view(np.uint64))  # bit for bit, every dtype


@pytest.mark.parametrize(
    "kind,params", KINDS[:3], ids=lambda x: x if isinstance(x, str) else str(x)
)
@dtypes
def test_portable_and_avx2_paths_agree(kind, params, dtype, monkeypatch):
    n = 32 * 40 + 5
    monkeypatch.setenv("PYINIT_PHILOX_SIMD", "0")
    portable = _run_op(kind, torch.empty(n, dtype=dtype), params)
    monkeypatch.setenv("PYINIT_PHILOX_SIMD", "1")
    simd = _run_op(kind, torch.empty(n, dtype=dtype), params)
    assert bitwise_equal(portable, simd)


def test_float32_transforms_are_accurate():
    """The float32 polynomials (the definition) against float64 math: ln within 1 ulp-ish,
    cos/sin/normal within a few ulps of float32 results of exact math."""
    w = ref.bits(1, 2, np.arange(1 << 16, dtype=np.uint64))
    u1 = ((w >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * np.float32(2.0**-24)
    log_err = np.abs(ref.log_float(u1).astype(np.float64) - np.log(u1.astype(np.float64)))
    assert np.all(
        log_err <= 2 * np.spacing(np.abs(np.log(u1)).astype(np.float32)).astype(np.float64)
    )
    c, s = ref.cossin_turn(w)
    angle = 2 * np.pi * (w >> np.uint32(8)).astype(np.float64) / 2**24
    assert np.max(np.abs(c - np.cos(angle))) < 2e-7 and np.max(np.abs(s - np.sin(angle))) < 2e-7


def _ulps(got: np.ndarray, exact) -> float:
    """Largest error of float64 `got` in ulps of the exact values (mpmath numbers)."""
    worst = 0.0
    for g, e in zip(got.tolist(), exact, strict=True):
        ulp = max(float(np.spacing(abs(float(e)))), 5e-324)  # subnormal results: the ulp is 2^-1074
        worst = max(worst, float(abs(g - e)) / ulp)
    return worst


def test_double_math_is_accurate():
    """pyinit's own float64 functions (the definition of the float64 stream, Note [philox double
    math]) against mpmath at 40 digits: within 1 ulp (log, exp, sin, cos) and 2 ulp (erfc) on
    random samples of the ranges the stream uses (the kernels give the same bits, see
    test_cpu_matches_oracle)."""
    mpmath = pytest.importorskip("mpmath")  # a dependency of sympy, so of torch
    mpmath.mp.dps = 40
    rng = np.random.default_rng(2024)
    n = 1500
    cases = [
        (pm.log, mpmath.log, rng.integers(1, 2**53, n) * 2.0**-53, 1.0),  # Box-Muller's u1
        (pm.log, mpmath.log, np.exp(rng.uniform(math.log(5e-324), 700.0, n)), 1.0),
        (pm.exp, mpmath.exp, rng.uniform(-745.0, 709.7, n), 1.0),
        (pm.exp, mpmath.exp, rng.uniform(-1.0, 1.0, n), 1.0),
        (pm.sin_reduced, mpmath.sin, rng.uniform(0.0, math.pi / 4, n), 1.0),
        (pm.cos_reduced, mpmath.cos, rng.uniform(0.0, math.pi / 4, n), 1.0),
        (pm.erfc, mpmath.erfc, rng.uniform(-0.5, 0.5, n), 2.0),
        (pm.erfc, mpmath.erfc, rng.uniform(-6.0, 6.0, n), 2.0),
        (pm.erfc, mpmath.erfc, rng.uniform(0.5, 27.3, n), 2.0),  # to the subnormal results
        (
            pm.erfc,
            mpmath.erfc,
            np.array([-38.0, -27.0, -1e-300, 0.0, 26.9, 38.0 / math.sqrt(2)]),
            2.0,
        ),
    ]
    for fn, exact, x, bound in cases:
        got = fn(x)
        assert _ulps(got, [exact(mpmath.mpf(v)) for v in x.tolist()]) <= bound, fn.__name__
    assert pm.log(np.array([1.0, 0.0]))[0] == 0.0 and pm.log(np.array([0.0]))[0] == -np.inf
    assert pm.exp(np.array([710.0, -746.0])).tolist() == [np.inf, 0.0]
    assert pm.erfc(np.array([30.0, -30.0, np.inf])).tolist() == [0.0, 2.0, 0.0]


def test_normal_cdf_and_ndtri_are_accurate():
    from scipy import special

    x = np.linspace(-37.5, 8.0, 20001)
    assert np.max(np.abs(pm.normal_cdf(x) / special.ndtr(x) - 1)) < 2e-13  # x / sqrt(2) rounding
    lower = np.logspace(-307, math.log10(0.49), 5000)
    assert np.max(np.abs(pm.ndtri(lower) / special.ndtri(lower) - 1)) < 1e-14
    # above 1/2 ndtri is ill-conditioned in p (p's own rounding moves x by ~1e-16 / phi(x)): the
    # backward error is checked there
    upper = 1 - np.logspace(-16, math.log10(0.5), 2000)
    assert np.max(np.abs(special.ndtr(pm.ndtri(upper)) - upper)) < 1e-15
    assert pm.ndtri(np.array([0.0, 1.0])).tolist() == [-np.inf, np.inf]


def test_math_tables_are_the_tools_output():
    """The coefficient tables of philox_math.h and philox_math.py are what
    tools/philox_math_coeffs.py derives."""
    pytest.importorskip("mpmath")
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
    result = subprocess.run(
        [sys.executable, os.path.join(tool, "philox_math_coeffs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


_ORACLE_SCRIPT = """
import sys, numpy as np
from pyinit.reference import philox_numpy as ref
i = np.arange(4099, dtype=np.uint64)
out = [ref.normal(11, 22, i, 0.5, 2.0, dtype="float64")]
out += [ref.trunc_normal(11, 22, i, *c, dtype=d) for c in {cases!r} for d in ("float64", "float32")]
np.save(sys.argv[1], np.concatenate([o.astype(np.float64) for o in out]))
from numpy._core._multiarray_umath import __cpu_features__ as features
print(" ".join(name for name in {disabled!r} if features.get(name)))
"""


def test_oracle_ignores_numpy_cpu_features(tmp_path):
    """The oracle gives the same bits with NumPy's AVX-512 loops disabled (its float64 math is
    +, -, *, /, sqrt only). Only features this CPU has are disabled, so the test runs anywhere
    (on a CPU without AVX-512 both runs use the same loops)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    wanted = ["X86_V4", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR", "AVX512F"]
    disabled = [f for f in wanted if f in __cpu_dispatch__ and __cpu_features__.get(f)]
    cases = [c for c in TRUNC_CASES] + [(0.0, 1.0, -38.0, -37.0)]
    script = _ORACLE_SCRIPT.format(cases=cases, disabled=disabled)
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(disabled))
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(pyinit.__file__))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    results = []
    for run_env in (env, dict(env, NPY_DISABLE_CPU_FEATURES="")):
        path = tmp_path / f"oracle{len(results)}.npy"
        proc = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            env=run_env,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append((np.load(path), proc.stdout.split()))
    (without, still_on), (with_all, _) = results
    assert still_on == []  # the features were really disabled in the first run
    in_process = np.load(tmp_path / "oracle1.npy")  # the default loops, as in this process
    assert np.array_equal(without.view(np.uint64), with_all.view(np.uint64))
    assert np.array_equal(in_process.view(np.uint64), with_all.view(np.uint64))


# ---- views, threads, shards ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,params", KINDS[:4], ids=lambda x: x if isinstance(x, str) else str(x)
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64], ids=str)
def test_view_gets_contiguous_values(kind, params, dtype):
    base = torch.zeros(40, 70, dtype=dtype)
    views = [base[:, ::2], base.t(), base[3:30, 5:66]]
    for view in views:
        _run_op(kind, view, params)
        expected = _run_op(kind, torch.empty(view.shape, dtype=dtype), params)
        assert bitwise_equal(view.contiguous(), expected)


@pytest.mark.parametrize(
    "kind,params", KINDS[:4], ids=lambda x: x if isinstance(x, str) else str(x)
)
def test_thread_count_does_not_change_values(kind, params):
    n = (1 << 17) + 77  # several parallel chunks
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _run_op(kind, torch.empty(n), params)
        torch.set_num_threads(max(2, before))
        many = _run_op(kind, torch.empty(n), params)
        torch.set_num_threads(3)
        three = _run_op(kind, torch.empty(n), params)
    finally:
        torch.set_num_threads(before)
    assert bitwise_equal(one, many) and bitwise_equal(one, three)


def _splits(size: int) -> list[list[tuple[int, int]]]:
    even = [(0, size // 2), (size // 2, size - size // 2)]
    uneven = [(0, 1), (1, size // 3), (1 + size // 3, size - 1 - size // 3)]
    return [even, uneven]


@pytest.mark.parametrize("shape", [(37, 66), (5, 9, 70)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(
    "kind,params", KINDS[:4], ids=lambda x: x if isinstance(x, str) else str(x)
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_shards_equal_whole(shape, kind, params, dtype):
    whole = _run_op(kind, torch.empty(shape, dtype=dtype), params)
    for dim in range(len(shape)):
        for split in _splits(shape[dim]):
            for begin, length in split:
                local_shape = list(shape)
                local_shape[dim] = length
                start = [0] * len(shape)
                start[dim] = begin
                local = _run_op(
                    kind,
                    torch.empty(local_shape, dtype=dtype),
                    params,
                    global_shape=list(shape),
                    start=start,
                )
                assert bitwise_equal(local, whole.narrow(dim, begin, length))


def test_shard_checks_fit():
    with pytest.raises(RuntimeError, match="does not fit"):
        _run_op("uniform_", torch.empty(4, 4), (0.0, 1.0), global_shape=[6, 6], start=[3, 0])


@pytest.mark.parametrize(
    "init,args",
    [
        ("kaiming_uniform_", ()),
        ("xavier_normal_", ()),
        ("uniform_", ()),
        ("trunc_normal_", (0.0, 0.02)),
        ("sparse_", (0.3,)),
        ("masked_uniform_", ()),
    ],
)
def test_init_shard_equals_whole(init, args):
    shape = (30, 20)
    torch.manual_seed(7)
    whole = getattr(philox, init)(torch.empty(shape), *args)
    for start, local_shape in [
        ((0, 0), (13, 20)),
        ((13, 0), (17, 20)),
        ((0, 7), (30, 9)),
        ((4, 3), (5, 6)),
    ]:
        torch.manual_seed(7)
        local = philox.init_shard_(torch.empty(local_shape), shape, start, init, *args)
        expected = whole[start[0] : start[0] + local_shape[0], start[1] : start[1] + local_shape[1]]
        assert bitwise_equal(local, expected), (init, start)


def test_init_shard_explicit_key_and_errors():
    torch.manual_seed(3)
    key = philox.draw_key()
    a = philox.init_shard_(torch.empty(2, 3), (4, 3), (2, 0), "normal_", key=key)
    b = philox.init_shard_(torch.empty(2, 3), (4, 3), (2, 0), philox.normal_, key=key)
    assert bitwise_equal(a, b)
    with pytest.raises(ValueError):
        philox.init_shard_(torch.empty(2, 3), (4, 3), (3, 0), "normal_")
    with pytest.raises(NotImplementedError):
        philox.init_shard_(torch.empty(2, 3), (4, 3), (0, 0), "orthogonal_")


# ---- seeds, generators, the stream switch --------------------------------------------------------

RANDOM_INITS = [
    ("uniform_", ()),
    ("normal_", ()),
    ("trunc_normal_", ()),
    ("xavier_uniform_", ()),
    ("xavier_normal_", ()),
    ("kaiming_uniform_", ()),
    ("kaiming_normal_", ()),
    ("orthogonal_", ()),
    ("sparse_", (0.5,)),
    ("masked_uniform_", ()),
]
random_inits = pytest.mark.parametrize("init,args", RANDOM_INITS, ids=[n for n, _ in RANDOM_INITS])


@random_inits
def test_seed_and_successive_calls(init, args):
    fn = getattr(philox, init)
    torch.manual_seed(11)
    first = fn(torch.empty(16, 24), *args)
    second = fn(torch.empty(16, 24), *args)
    torch.manual_seed(11)
    again = fn(torch.empty(16, 24), *args)
    assert bitwise_equal(first, again)
    assert not torch.equal(first, second)


@random_inits
def test_generator_is_honoured(init, args):
    fn = getattr(philox, init)
    kw = {"generator": torch.Generator().manual_seed(5)}
    a = fn(torch.empty(16, 24), *args, **kw)
    state = torch.get_rng_state()
    b = fn(torch.empty(16, 24), *args, generator=torch.Generator().manual_seed(5))
    c = fn(torch.empty(16, 24), *args, generator=torch.Generator().manual_seed(6))
    assert torch.equal(state, torch.get_rng_state())  # the default generator is not used
    assert bitwise_equal(a, b) and not torch.equal(a, c)
    if init == "sparse_":
        assert torch.equal(a == 0, b == 0) and not torch.equal(a == 0, c == 0)


def test_sparse_pattern_matches_oracle():
    g = torch.Generator().manual_seed(9)
    w = philox.sparse_(torch.empty(50, 12), 0.3, generator=g)
    key, offset = philox.draw_key(torch.Generator().manual_seed(9))
    mask = ref.sparse_zero_mask(key, offset, 50, 12, math.ceil(0.3 * 50))
    assert np.array_equal((w == 0).numpy(), mask)
    assert torch.all((w == 0).sum(0) == 15)
    values = ref.normal(key, offset, np.arange(600, dtype=np.uint64), 0.0, 0.01).reshape(50, 12)
    assert np.array_equal(w.numpy()[~mask], values[~mask])


SPARSE_SHAPES = [(50, 12), (1024, 70), (7, 5), (100, 33), (3, 300), (200, 257)]


def _sparse_op(t, num_zeros, std, key=KEY, offset=OFFSET, **shard):
    ops.philox_sparse_(
        t,
        num_zeros,
        std,
        _signed(key),
        _signed(offset),
        shard.get("global_shape", []),
        shard.get("start", []),
    )
    return t


@pytest.mark.parametrize("shape", SPARSE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sparsity", [0.01, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("simd", ["1", "0"])
@pytest.mark.parametrize("slack", [None, "0"], ids=["default", "fallback"])
def test_sparse_kernel_matches_oracle(shape, sparsity, simd, slack, monkeypatch):
    # slack 0 (testing only) sends most columns through the every-row fallback of the selection.
    monkeypatch.setenv("PYINIT_PHILOX_SIMD", simd)
    if slack is not None:
        monkeypatch.setenv("PYINIT_PHILOX_SPARSE_SLACK", slack)
    rows, cols = shape
    num_zeros = math.ceil(sparsity * rows)
    mask = ref.sparse_zero_mask(KEY, OFFSET, rows, cols, num_zeros)
    keep = _sparse_op(torch.ones(shape, dtype=torch.bool), num_zeros, None)
    assert np.array_equal((~keep).numpy(), mask)
    w = _sparse_op(torch.empty(shape), num_zeros, 0.5)
    values = _run_op("normal_", torch.empty(shape), (0.0, 0.5))
    expected = torch.where(torch.from_numpy(mask), torch.zeros(()), values)
    assert bitwise_equal(w, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_sparse_kernel_dtypes_and_views(dtype):
    shape, num_zeros = (70, 90), 9
    mask = torch.from_numpy(ref.sparse_zero_mask(KEY, OFFSET, *shape, num_zeros))
    values = _run_op("normal_", torch.empty(shape, dtype=dtype), (0.0, 0.02))
    expected = torch.where(mask, torch.zeros((), dtype=dtype), values)
    assert bitwise_equal(_sparse_op(torch.empty(shape, dtype=dtype), num_zeros, 0.02), expected)
    base = torch.full((90, 70), 7.0, dtype=dtype)
    assert bitwise_equal(_sparse_op(base.t(), num_zeros, 0.02), expected)  # through a buffer
    # the zeros alone: in place, through the strides
    keep = torch.ones(90, 70, dtype=torch.bool).t()
    assert torch.equal(~_sparse_op(keep, num_zeros, None), mask)
    # num_zeros 0 and >= rows
    assert bitwise_equal(_sparse_op(torch.empty(shape, dtype=dtype), 0, 0.02), values)
    assert torch.all(_sparse_op(torch.empty(shape, dtype=dtype), 70, 0.02) == 0)


def test_sparse_kernel_threads_and_shards():
    shape, num_zeros = (300, 700), 31
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, max(2, before), 3):
            torch.set_num_threads(threads)
            results.append(_sparse_op(torch.empty(shape), num_zeros, 1.0))
    finally:
        torch.set_num_threads(before)
    whole = results[0]
    assert all(bitwise_equal(whole, r) for r in results[1:])
    for start, local_shape in [((0, 0), (300, 45)), ((0, 45), (300, 655)), ((17, 33), (100, 301))]:
        local = _sparse_op(
            torch.empty(local_shape), num_zeros, 1.0, global_shape=list(shape), start=list(start)
        )
        expected = whole[start[0] : start[0] + local_shape[0], start[1] : start[1] + local_shape[1]]
        assert bitwise_equal(local, expected), start


def test_draw_key_definition():
    g = torch.Generator().manual_seed(123)
    words = torch.randint(
        0, 2**32, (4,), dtype=torch.int64, generator=torch.Generator().manual_seed(123)
    )
    w = [int(x) for x in words]
    assert philox.draw_key(g) == (w[0] | w[1] << 32, w[2] | w[3] << 32)
    torch.manual_seed(4)
    key, offset = philox.draw_key()
    t = philox.uniform_(torch.empty(100), generator=torch.Generator().manual_seed(4))
    assert np.array_equal(
        t.numpy(), ref.uniform(key, offset, np.arange(100, dtype=np.uint64), 0.0, 1.0)
    )


def test_stream_switch_and_context():
    assert pyinit.get_stream() == "torch"
    torch.manual_seed(2)
    expected = philox.kaiming_uniform_(torch.empty(8, 9))
    with pyinit.stream("philox"):
        assert pyinit.get_stream() == "philox"
        torch.manual_seed(2)
        assert bitwise_equal(pyinit.kaiming_uniform_(torch.empty(8, 9)), expected)
        with pyinit.stream("torch"):
            torch.manual_seed(2)
            got = pyinit.kaiming_uniform_(torch.empty(8, 9))
            torch.manual_seed(2)
            assert bitwise_equal(got, torch.nn.init.kaiming_uniform_(torch.empty(8, 9)))
    assert pyinit.get_stream() == "torch"
    pyinit.set_stream("philox")
    try:
        torch.manual_seed(2)
        assert bitwise_equal(pyinit.kaiming_uniform_(torch.empty(8, 9)), expected)
    finally:
        pyinit.set_stream("torch")
    with pytest.raises(ValueError):
        pyinit.set_stream("mt19937")


def test_meta_and_fallbacks():
    state = torch.get_rng_state()
    philox.normal_(torch.empty(3, 4, device="meta"))
    assert torch.equal(state, torch.get_rng_state())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        philox.uniform_(torch.empty(5, dtype=torch.complex64))
    assert any(issubclass(w.category, pyinit.PyinitFallbackWarning) for w in caught)


def test_opcheck():
    for name, args in [
        ("philox_uniform_", (-1.0, 1.0)),
        ("philox_normal_", (0.0, 1.0)),
        ("philox_masked_uniform_", (-1.0, 1.0, 0.5)),
        ("philox_trunc_normal_", (0.0, 1.0, -2.0, 2.0)),
        ("philox_sparse_", (3, 0.5)),
    ]:
        torch.library.opcheck(getattr(ops, name), (torch.empty(5, 6), *args, 1, 2, [], []))


# ---- distributions -------------------------------------------------------------------------------

N_STAT = 1 << 17


def _sample(kind: str, params: tuple, n: int = N_STAT) -> np.ndarray:
    return _run_op(kind, torch.empty(n, dtype=torch.float64), params, key=12345, offset=0).numpy()


def test_ks_uniform_and_normal():
    assert (
        stats.kstest(_sample("uniform_", (-2.0, 3.0)), stats.uniform(-2.0, 5.0).cdf).pvalue > 1e-3
    )
    assert stats.kstest(_sample("normal_", (0.5, 2.0)), stats.norm(0.5, 2.0).cdf).pvalue > 1e-3
    f32 = _run_op("normal_", torch.empty(N_STAT), (0.0, 1.0), key=99, offset=0).double().numpy()
    assert stats.kstest(f32, stats.norm().cdf).pvalue > 1e-3


@pytest.mark.parametrize("case", TRUNC_CASES, ids=str)
def test_ks_trunc_normal(case):
    mean, std, a, b = case
    for dtype in (torch.float64, torch.float32):
        x = (
            _run_op("trunc_normal_", torch.empty(N_STAT, dtype=dtype), case, key=777, offset=0)
            .double()
            .numpy()
        )
        assert x.min() >= a and x.max() <= b
        dist = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
        assert stats.kstest(x, dist.cdf).pvalue > 1e-3


def test_ks_masked_uniform_mixture():
    x = _sample("masked_uniform_", (-10.0, 10.0, 5.0))
    assert abs(np.mean(x == 0) - 0.5) < 4 * math.sqrt(0.25 / N_STAT)
    nonzero = x[x != 0]
    assert np.all(np.abs(nonzero) >= 5)

    def mixture_cdf(v):  # 1/2 point mass at 0, 1/4 uniform on [-10, -5) and on [5, 10)
        return np.clip((v + 10) / 20, 0, 0.25) + 0.5 * (v >= 0) + np.clip((v - 5) / 20, 0, 0.25)

    assert stats.kstest(nonzero, lambda v: (mixture_cdf(v) - 0.5 * (v >= 0)) * 2).pvalue > 1e-3


def test_moments_of_initializers():
    torch.manual_seed(0)
    w = philox.kaiming_normal_(torch.empty(512, 256), nonlinearity="relu")
    assert abs(w.std().item() / math.sqrt(2 / 256) - 1) < 0.01 and abs(w.mean().item()) < 1e-3
    w = philox.kaiming_uniform_(torch.empty(512, 256), a=math.sqrt(5))
    bound = math.sqrt(6 / ((1 + 5) * 256))
    assert w.abs().max().item() <= bound and abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.01
    w = philox.xavier_uniform_(torch.empty(300, 200))
    assert abs(w.var().item() / (2 / 500) - 1) < 0.02
    w = philox.trunc_normal_(torch.empty(256, 256), std=0.02)
    assert abs(w.std().item() / 0.02 - 1) < 0.01 and w.abs().max().item() <= 2
    q = philox.orthogonal_(torch.empty(64, 100))
    assert torch.allclose(q @ q.T, torch.eye(64), atol=1e-5)


# ---- CUDA ----------------------------------------------------------------------------------------


@cuda_only
@kinds
@dtypes
def test_cuda_matches_cpu(kind, params, dtype):
    for n in (1, 33, 4099, (1 << 20) + 3):
        cpu = _run_op(kind, torch.empty(n, dtype=dtype), params)
        gpu = _run_op(kind, torch.empty(n, dtype=dtype, device="cuda"), params).cpu()
        assert bitwise_equal(cpu, gpu)


@cuda_only
def test_cuda_shards_views_and_seed():
    whole = _run_op("normal_", torch.empty(37, 66, device="cuda"), (0.0, 1.0))
    local = _run_op(
        "normal_",
        torch.empty(10, 20, device="cuda"),
        (0.0, 1.0),
        global_shape=[37, 66],
        start=[20, 40],
    )
    assert bitwise_equal(local, whole[20:30, 40:60])
    view = torch.empty(66, 37, device="cuda").t()
    assert bitwise_equal(_run_op("normal_", view, (0.0, 1.0)), whole)
    torch.manual_seed(0)
    a = philox.kaiming_uniform_(torch.empty(64, 64, device="cuda")).cpu()
    torch.manual_seed(0)
    assert bitwise_equal(a, philox.kaiming_uniform_(torch.empty(64, 64)))
