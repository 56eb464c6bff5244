"""The kernels run (not a fallback to torch), and the fallbacks are taken on purpose and visibly."""

from __future__ import annotations

import warnings

import pytest
import torch

import pyinit
from pyinit import _support


@pytest.fixture
def torch_distributions_disabled(monkeypatch):
    """Makes torch's own random and fill methods raise: what still works ran pyinit's kernels."""

    def forbidden(*args, **kwargs):
        raise AssertionError("torch's implementation was called")

    for name in ("uniform_", "normal_", "fill_", "zero_", "mul_", "copy_", "__setitem__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    monkeypatch.setattr(torch, "randperm", forbidden)
    monkeypatch.setattr(torch, "eye", forbidden)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernels_run_without_torch_distributions(torch_distributions_disabled, dtype):
    w = torch.empty(64, 48, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", _support.PyinitFallbackWarning)
        pyinit.uniform_(w)
        pyinit.normal_(w)
        pyinit.trunc_normal_(w, std=0.02)
        pyinit.masked_uniform_(w)
        pyinit.xavier_uniform_(w)
        pyinit.kaiming_normal_(w)
        pyinit.sparse_(w, 0.5)
        pyinit.constant_(w, 0.25)
        pyinit.zeros_(w)
        pyinit.ones_(w)
        pyinit.eye_(w)
        pyinit.dirac_(torch.empty(4, 4, 3, dtype=dtype))
    assert torch.isfinite(w.float()).all()


def test_kernel_ops_are_registered_for_cpu():
    for op in (
        "uniform_",
        "normal_",
        "masked_uniform_",
        "trunc_normal_",
        "sparse_",
        "fill_",
        "eye_",
        "dirac_",
        "orthogonal_finish_",
    ):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"pyinit::{op}", "CPU")


def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(_support, "_warned", set())


@pytest.mark.parametrize(
    "tensor, reason",
    [
        (torch.empty(4, 4, dtype=torch.complex64), "dtype torch.complex64"),
        (torch.empty(4, 4).to_sparse(), "layout torch.sparse_coo"),
    ],
)
def test_fallback_is_visible_and_exact(monkeypatch, tensor, reason):
    _fresh_warnings(monkeypatch)
    assert _support.fallback_reason(tensor, "uniform_") == reason
    if tensor.layout != torch.strided:
        return
    torch.manual_seed(0)
    expected = tensor.clone().uniform_()
    torch.manual_seed(0)
    with pytest.warns(_support.PyinitFallbackWarning, match="using torch's implementation"):
        pyinit.uniform_(tensor)
    assert torch.equal(tensor, expected)


def test_fallback_warns_once(monkeypatch):
    _fresh_warnings(monkeypatch)
    t = torch.empty(3, dtype=torch.complex64)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pyinit.uniform_(t)
        pyinit.uniform_(t)
    assert sum(issubclass(w.category, _support.PyinitFallbackWarning) for w in record) == 1


def test_unverified_torch_version_falls_back(monkeypatch):
    _fresh_warnings(monkeypatch)
    monkeypatch.setattr(_support, "torch_version", lambda: (2, 10))
    reason = _support.fallback_reason(torch.empty(3), "uniform_")
    assert reason is not None and "not verified" in reason
    monkeypatch.setenv("PYINIT_ALLOW_UNVERIFIED", "1")
    assert _support.fallback_reason(torch.empty(3), "uniform_") is None


def test_trunc_normal_narrow_bounds_run_the_kernel(monkeypatch):
    # The uniform-proposal branch of torch >= 2.12 (mass inside [a, b] <= 0.3): a kernel, no
    # fallback warning (tests/test_trunc_narrow.py compares it with torch in depth).
    _fresh_warnings(monkeypatch)
    torch.manual_seed(1)
    expected = torch.nn.init.trunc_normal_(torch.empty(100), 0.0, 1.0, 0.0, 0.5)
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", _support.PyinitFallbackWarning)
        got = pyinit.trunc_normal_(torch.empty(100), 0.0, 1.0, 0.0, 0.5)
    assert torch.equal(got, expected)


def test_non_dense_trunc_normal_falls_back_visibly(monkeypatch):
    _fresh_warnings(monkeypatch)
    base = torch.zeros(10, 9)
    with pytest.warns(_support.PyinitFallbackWarning, match="non-dense"):
        pyinit.trunc_normal_(base[:, ::2])


def test_half_orthogonal_computes_in_float():
    # torch's QR raises for float16; pyinit factorizes in float32 and rounds once.
    w = torch.empty(8, 5, dtype=torch.float16)
    pyinit.orthogonal_(w)
    q = w.float()
    assert torch.allclose(q.t() @ q, torch.eye(5), atol=5e-3)
