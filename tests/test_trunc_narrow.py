"""trunc_normal_'s uniform-proposal branch (torch >= 2.12, mass inside [a, b] at most 0.3) in the
CPU torch stream: pyinit::trunc_normal_uniform_ (Note [trunc_normal_ by uniform proposals],
csrc/cpu/torch_stream_trunc_uniform_cpu.cpp) writes what torch.nn.init.trunc_normal_ writes, leaves
the generator where torch leaves it and moves the version counter as torch does (1 when every first
proposal is accepted, else 2), with no fallback. The parallel draw (MT19937 jump-ahead) is covered
with the other torch-stream primitives in tests/test_mt_jump.py."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.init as tinit
from helpers import DTYPES, assert_passes_at_capabilities, bitwise_equal, differing

import pyinit
from pyinit import _support

pytestmark = pytest.mark.skipif(
    _support.torch_version() < (2, 12), reason="torch < 2.12 has no uniform-proposal branch"
)

# (mean, std, a, b): mass inside [a, b] at most 0.3. A narrow window at the mode (almost every first
# proposal accepted), a window in one tail (many rounds), a window away from the mean on the other
# side, a tiny std, a window beyond 2 std (torch's warning), a point window and a reversed-sign std.
WINDOWS = {
    "centered": (0.0, 1.0, -0.2, 0.2),
    "tail": (0.0, 1.0, 1.0, 2.0),
    "offset": (0.5, 0.3, 1.0, 1.5),
    "tiny_std": (0.0, 0.02, -0.004, 0.003),
    "far_mean": (2.0, 1.0, -1.0, -0.5),
    "point": (0.3, 1.0, 0.25, 0.25),
    "negative_std": (0.0, -1.0, -0.2, 0.2),
}
SHAPES = [(1,), (7,), (33, 5), (4095,), (4097,), (40000,), (300, 140)]


def _dtype_id(d: torch.dtype) -> str:
    return str(d).removeprefix("torch.")


def _run(window, shape, dtype, transposed=False, use_generator=True, predrawn=0):
    mean, std, a, b = WINDOWS[window]
    outcomes = []
    for lib in (tinit, pyinit):
        torch.manual_seed(3)
        gen = torch.Generator().manual_seed(123) if use_generator else None
        if predrawn:
            torch.empty(predrawn).uniform_(generator=gen)
        base = torch.empty(shape[::-1] if transposed else shape, dtype=dtype)
        tensor = base.t() if transposed else base
        before = tensor._version
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's far-mean warning, on both sides
            warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
            out = lib.trunc_normal_(tensor, mean, std, a, b, generator=gen)
        assert out is tensor
        states = [torch.get_rng_state()] + ([gen.get_state()] if gen is not None else [])
        outcomes.append((base, states, tensor._version - before))
    (t_out, t_states, t_moved), (p_out, p_states, p_moved) = outcomes
    assert bitwise_equal(p_out, t_out), differing(p_out, t_out)
    assert all(torch.equal(x, y) for x, y in zip(p_states, t_states, strict=True)), "generator"
    assert p_moved == t_moved, f"version moved by {p_moved}, torch's by {t_moved}"
    return t_moved


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch(window, dtype, shape):
    _run(window, shape, dtype)


@pytest.mark.parametrize("window", ["centered", "tail"])
@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
def test_transposed_view(window, dtype):
    _run(window, (300, 140), dtype, transposed=True)


@pytest.mark.parametrize("predrawn", [0, 101, 624])
@pytest.mark.parametrize("use_generator", [False, True], ids=["default_gen", "explicit_gen"])
def test_generator_positions(predrawn, use_generator):
    _run("tail", (5000,), torch.float32, use_generator=use_generator, predrawn=predrawn)
    _run("tail", (5000,), torch.float64, use_generator=use_generator, predrawn=predrawn)


def test_both_version_counts_are_covered():
    # A single accepted round writes once; a second round adds torch's copy_.
    assert _run("point", (1,), torch.float32) == 1
    assert _run("tail", (1000,), torch.float32) == 2


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts(threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _run("tail", (70001,), torch.float32)
        _run("centered", (300, 140), torch.bfloat16)
    finally:
        torch.set_num_threads(previous)


def test_runs_the_kernel(monkeypatch):
    # The operator itself is called (no composition of torch ops, no fallback).
    calls = []
    real = pyinit._streams._call_op

    def spy(op, *args):
        calls.append(op)
        return real(op, *args)

    monkeypatch.setattr(pyinit._streams, "_call_op", spy)
    pyinit.trunc_normal_(torch.empty(100), 0.0, 1.0, 0.0, 0.5)
    assert calls == ["trunc_normal_uniform_"]


def test_without_mkl_falls_back_visibly(monkeypatch):
    # torch's CPU log_ is MKL's (csrc/cpu/mkl_vml.h); a torch without MKL computes another log.
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: False)
    monkeypatch.setattr(_support, "_warned", set(), raising=False)
    torch.manual_seed(1)
    expected = tinit.trunc_normal_(torch.empty(100), 0.0, 1.0, 0.0, 0.5)
    torch.manual_seed(1)
    with pytest.warns(pyinit.PyinitFallbackWarning, match="without MKL"):
        got = pyinit.trunc_normal_(torch.empty(100), 0.0, 1.0, 0.0, 0.5)
    assert torch.equal(got, expected)


def test_reversed_bounds_raise_like_torch():
    # p < 0 takes the uniform branch; uniform_'s check raises before anything is drawn or written.
    errors = []
    for lib in (tinit, pyinit):
        gen = torch.Generator().manual_seed(5)
        tensor = torch.zeros(10)
        state, version = gen.get_state(), tensor._version
        with pytest.raises(RuntimeError) as info:
            lib.trunc_normal_(tensor, 0.0, 1.0, 0.5, -0.5, generator=gen)
        errors.append(str(info.value))
        assert torch.equal(gen.get_state(), state) and tensor._version == version
        assert torch.equal(tensor, torch.zeros(10))
    assert errors[0] == errors[1]


def test_cpu_capabilities():
    # The arithmetic follows torch's vectorized ops at every ATen capability, and the log is MKL's
    # whichever code path MKL dispatches to; the last two windows take the normal-proposal rounds
    # (normal_resample: batched lanes on AVX2, one pair per element on DEFAULT).
    script = (
        "import torch, pyinit, torch.nn.init as t\n"
        "bad = []\n"
        "windows = ((0., 1., -0.2, 0.2), (0., 1., 1., 2.), (0., 1., -2., 2.), (.5, 2., -1., 1.5))\n"
        "for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):\n"
        "    for w in windows:\n"
        "        x, y = torch.empty(4099, dtype=dtype), torch.empty(4099, dtype=dtype)\n"
        "        torch.manual_seed(0); t.trunc_normal_(x, *w)\n"
        "        torch.manual_seed(0); pyinit.trunc_normal_(y, *w)\n"
        "        if not torch.equal(x.view(-1).view(torch.uint8), y.view(-1).view(torch.uint8)):\n"
        "            bad.append((dtype, w))\n"
        "print(torch.backends.cpu.get_cpu_capability(), bad)\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    assert_passes_at_capabilities(script, python_args=("-W", "error::UserWarning"))
