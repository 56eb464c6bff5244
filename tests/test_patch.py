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


def _fake_transformers(monkeypatch):
    """A stand-in for transformers.modeling_utils: its TORCH_INIT_FUNCTIONS table (taken from
    torch.nn.init when the module loads) and no_init_weights(), which sets torch.nn.init's
    functions to a no-op and then back from the table, as every from_pretrained does."""
    import contextlib
    import sys
    import types

    module = types.ModuleType("transformers.modeling_utils")
    module.TORCH_INIT_FUNCTIONS = {n: getattr(tinit, n) for n in ("normal_", "uniform_", "zeros_")}

    @contextlib.contextmanager
    def no_init_weights():
        for name in module.TORCH_INIT_FUNCTIONS:
            setattr(tinit, name, lambda *args, **kwargs: None)
        try:
            yield
        finally:
            for name, fn in module.TORCH_INIT_FUNCTIONS.items():
                setattr(tinit, name, fn)

    module.no_init_weights = no_init_weights
    monkeypatch.setitem(sys.modules, "transformers.modeling_utils", module)
    return module


def test_from_pretrained_inside_a_plain_patch_keeps_it(monkeypatch):
    """Note [transformers' TORCH_INIT_FUNCTIONS]: transformers loaded before the patch. A
    from_pretrained inside a plain patch_torch_init() leaves pyinit's functions in place; after the
    patch, torch's are back in torch.nn.init and in the table."""
    torch_normal = tinit.normal_
    fake = _fake_transformers(monkeypatch)
    with pyinit.patch_torch_init():
        with fake.no_init_weights():
            pass
        assert tinit.normal_ is pyinit.normal_ and tinit.uniform_ is pyinit.uniform_
    assert tinit.normal_ is torch_normal and fake.TORCH_INIT_FUNCTIONS["normal_"] is torch_normal
    with fake.no_init_weights():
        pass
    assert tinit.normal_ is torch_normal


def test_transformers_loaded_inside_a_plain_patch_does_not_keep_it(monkeypatch):
    """transformers loaded inside the patch: its table caught pyinit's functions, which every later
    from_pretrained would put back into torch.nn.init, long after the patch ended."""
    torch_normal = tinit.normal_
    with pyinit.patch_torch_init():
        fake = _fake_transformers(monkeypatch)
        assert fake.TORCH_INIT_FUNCTIONS["normal_"] is pyinit.normal_
    assert fake.TORCH_INIT_FUNCTIONS["normal_"] is torch_normal
    with fake.no_init_weights():
        pass
    assert tinit.normal_ is torch_normal and tinit.zeros_ is fake.TORCH_INIT_FUNCTIONS["zeros_"]
