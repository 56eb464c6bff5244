"""Shared test axes (devices x dtypes) and comparison helpers.

The device axis always holds CUDA: its cases are collected everywhere, carry the `cuda` marker and
are skipped without a GPU, so one table runs on both devices and CI lists what it did not run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from pyinit import PyinitFallbackWarning

HAS_CUDA = torch.cuda.is_available()
CUDA_MARKS = (pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"))


def on_cuda(*values, id: str | None = None):
    """A parameter set for a CUDA case: collected everywhere, skipped without a GPU."""
    return pytest.param(*values, marks=CUDA_MARKS, id=id)


def cuda_only(test):
    """Marks a test that needs a CUDA GPU (`cuda` marker, skipped without one)."""
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DEVICES = ["cpu", on_cuda("cuda")]

# 1 element, below/at/above the 16-element Box-Muller block, odd sizes, sizes not a multiple of 16.
SHAPES = [(1,), (7,), (15,), (16,), (17,), (1000,), (33, 65), (4, 3, 5), (1009, 3)]

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
devices = pytest.mark.parametrize("device", DEVICES)
shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
# CPU thread counts matter to the CPU kernels only: the CUDA case runs once.
device_threads = pytest.mark.parametrize(
    "device,threads", [("cpu", 1), ("cpu", 2), on_cuda("cuda", 1)], ids=["cpu-1", "cpu-2", "cuda"]
)


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype, device and bits (so +0.0 != -0.0 and NaN == NaN of the same payload)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    int_type = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return torch.equal(a.contiguous().view(int_type), b.contiguous().view(int_type))


def differing(a: torch.Tensor, b: torch.Tensor) -> str:
    """A failure message: how many values of `a` and `b` differ."""
    return f"{(a != b).sum().item()} of {a.numel()} values differ"


def make_generator(device: str, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def rng_states(device: str, gen: torch.Generator | None = None) -> list[torch.Tensor]:
    """Every generator state a call on `device` may advance: the default CPU generator's (sparse_
    draws its zero pattern there on every device), the default CUDA generator's on CUDA, and
    `gen`'s. All are CPU byte tensors."""
    states = [torch.get_rng_state()]
    if torch.device(device).type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    if gen is not None:
        states.append(gen.get_state())
    return states


def states_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def run_draw(fn, shape, dtype, seed=1234, layout="contiguous", predraw=0, args=(), **kwargs):
    """(values, generator state after, version counter bump) of fn(t, *args, **kwargs) on a fresh
    tensor t (NaN-filled; `layout` "permuted": dense, not contiguous; "strided": not dense), the
    CPU generator seeded with `seed` and then advanced by `predraw` float64 draws (an MT19937
    state in mid-block, not just after a seed). UserWarnings are silenced."""
    t = torch.full(shape, float("nan"), dtype=dtype)
    if layout == "permuted" and t.dim() >= 2:
        t = t.transpose(0, -1).contiguous().transpose(0, -1)
    elif layout == "strided":
        t = torch.full((*shape[:-1], shape[-1] * 2), float("nan"), dtype=dtype)[..., ::2]
    torch.manual_seed(seed)
    if predraw:
        torch.empty(predraw, dtype=torch.float64).uniform_()
    version = t._version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fn(t, *args, **kwargs)
    return t, torch.get_rng_state(), t._version - version


def same_draw(ours, theirs) -> None:
    """Assert two run_draw results are the same: bits, generator state, version counter."""
    (a, state_a, version_a), (b, state_b, version_b) = ours, theirs
    assert bitwise_equal(a, b), differing(a, b)
    assert torch.equal(state_a, state_b), "generator state differs"
    assert version_a == version_b


# timm's inverse-CDF truncated normal (pyinit.timm, pyinit.transformers): sizes around the fused
# kernel's 2048-element chunk; (mean, std, a, b) sets with integer arguments and a narrow window.
TRUNC_SHAPES = [(1,), (7,), (2047,), (2049,), (300, 257), (64, 3, 7, 7)]
TRUNC_DTYPES = [torch.float32, torch.float64]
TRUNC_PARAMS = [
    dict(),
    dict(std=0.02),
    dict(mean=0.5, std=0.3, a=-0.1, b=1.0),
    dict(mean=-1.0, std=2.0, a=-3.0, b=0.5),
    dict(std=1e-6, a=-1e-6, b=3e-6),
    dict(mean=3, std=1, a=0, b=4),
]


def same_construction(build, patch, label: str, strict: bool = True) -> None:
    """Assert that `build()` inside `patch()` gives, after the same torch.manual_seed, the
    parameters (bit for bit) and generator state that plain `build()` gives. `strict`: no
    PyinitFallbackWarning allowed (where pyinit's kernels are expected to run)."""
    torch.manual_seed(0)
    plain = build()
    state = torch.get_rng_state()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        if strict:
            warnings.simplefilter("error", PyinitFallbackWarning)
        with patch():
            patched = build()
    assert torch.equal(torch.get_rng_state(), state)
    ours, theirs = dict(patched.named_parameters()), dict(plain.named_parameters())
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert bitwise_equal(ours[name].detach(), value.detach()), f"{label}.{name}"


def assert_passes_at_capabilities(script: str, python_args=(), capabilities=("default", "avx2")):
    """Runs `script` in a fresh interpreter at each ATen CPU capability (ATEN_CPU_CAPABILITY, which
    also picks pyinit's CPU kernels) and asserts that it exits 0 there."""
    for capability in capabilities:
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
        run = subprocess.run(
            [sys.executable, *python_args, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, (capability, run.stdout, run.stderr)
