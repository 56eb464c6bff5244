"""patch_torch_init(): torch.nn modules construct through pyinit and get torch's own weights."""

from __future__ import annotations

import torch
import torch.nn.init as tinit

import pyinit


def _build():
    return torch.nn.Sequential(
        torch.nn.Linear(37, 19), torch.nn.Conv2d(3, 8, 3), torch.nn.Embedding(11, 5)
    )


def test_modules_construct_through_pyinit_with_torch_weights(monkeypatch):
    torch.manual_seed(0)
    reference = _build()
    calls = []
    original = pyinit.init._no_grad_uniform_
    monkeypatch.setattr(
        pyinit.init, "_no_grad_uniform_", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    torch.manual_seed(0)
    with pyinit.patch_torch_init():
        assert tinit.kaiming_uniform_ is pyinit.kaiming_uniform_
        model = _build()
    assert tinit.kaiming_uniform_ is not pyinit.kaiming_uniform_
    assert calls, "nn modules did not call pyinit"
    for a, b in zip(reference.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_restore():
    pyinit.patch_torch_init()
    try:
        assert tinit.normal_ is pyinit.normal_
    finally:
        pyinit.restore_torch_init()
    assert tinit.normal_ is not pyinit.normal_
