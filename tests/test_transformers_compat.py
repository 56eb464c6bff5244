"""pyinit.transformers against transformers' own copies of timm's initializers (SigLIP, SigLIP2,
Phi-4-multimodal), bit for bit (values, generator state, version counter), and whole SigLIP models
under the patch against plain transformers.

The tests marked `needs_transformers` skip cleanly when transformers is not importable; with
PYINIT_REQUIRE_TRANSFORMERS=1 its absence is an error instead. The fused kernel itself is covered
by tests/test_timm_compat.py (these functions are pyinit.timm's)."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import pathlib
import re
import sys
import warnings

import pytest
import torch
from helpers import TRUNC_DTYPES as DTYPES
from helpers import TRUNC_PARAMS as PARAMS
from helpers import TRUNC_SHAPES as SHAPES
from helpers import run_draw as run
from helpers import same_construction
from helpers import same_draw as assert_same

import pyinit
from pyinit import timm as ptimm
from pyinit import transformers as ptf

try:
    import transformers
    from transformers import SiglipConfig, SiglipModel, SiglipVisionModel
    from transformers.models.siglip import modeling_siglip
except Exception:  # noqa: BLE001  (a transformers that does not import is absent for these tests)
    transformers = None

if transformers is None and os.environ.get("PYINIT_REQUIRE_TRANSFORMERS") == "1":
    raise RuntimeError("PYINIT_REQUIRE_TRANSFORMERS=1 but transformers is not importable")
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers not importable")
CPU_FUSED = ptimm._fused_reason(torch.empty(2)) is None


def _defining_modules():
    """The modules of ptf.MODULES that import here (Phi-4-multimodal may need more packages)."""
    found = []
    for name in ptf.MODULES:
        try:
            found.append(importlib.import_module(name))
        except Exception:  # noqa: BLE001, PERF203
            continue
    return found


DEFINING = _defining_modules() if transformers is not None else []
MODULE_IDS = [m.__name__.rsplit(".", 1)[-1] for m in DEFINING]

# (seed, float64 draws after seeding): fresh states and ones in mid-block.
GENERATORS = [(1234, 0), (0, 7), (2**40 + 3, 1000)]


# ---- without transformers: what differs from pyinit.timm -----------------------------------------


def test_returns_and_reuse():
    t = torch.empty(4, 5)
    assert ptf.trunc_normal_tf_(t) is None
    assert ptf._trunc_normal_(t, 0.0, 1.0, -2.0, 2.0) is None
    assert ptf.default_flax_embed_init(t) is None
    assert ptf.variance_scaling_ is ptimm.variance_scaling_
    assert ptf.lecun_normal_ is ptimm.lecun_normal_
    assert pyinit.transformers is ptf


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_same_values_as_pyinit_timm(params):
    assert_same(
        run(ptf.trunc_normal_tf_, (2049,), torch.float32, **params),
        run(ptimm.trunc_normal_tf_, (2049,), torch.float32, **params),
    )
    p = {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0, **params}
    args = (p["mean"], p["std"], p["a"], p["b"])
    with torch.no_grad():
        ours = run(ptf._trunc_normal_, (300, 7), torch.float64, args=args)
    assert_same(ours, run(ptimm.trunc_normal_, (300, 7), torch.float64, **p))


def test_default_flax_embed_init_is_normal_at_fan_in():
    def reference(t):
        with torch.no_grad():
            t.normal_(std=math.sqrt(1.0 / t.shape[1]))

    assert_same(
        run(ptf.default_flax_embed_init, (1000, 64), torch.float32),
        run(reference, (1000, 64), torch.float32),
    )


def test_trunc_normal_under_autograd_runs_the_operators():
    # transformers' _trunc_normal_ has no no_grad: a leaf that requires grad refuses the in-place
    # operators; a non-leaf records them. Both as torch does, with a visible fallback.
    leaf = torch.zeros(10, requires_grad=True)
    state = torch.get_rng_state()
    with pytest.warns(pyinit.PyinitFallbackWarning, match=r"pyinit\.transformers\._trunc_normal_"):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            ptf._trunc_normal_(leaf, 0.0, 1.0, -2.0, 2.0)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(leaf, torch.zeros(10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyinit.PyinitFallbackWarning)
        x = torch.zeros(10, requires_grad=True) * 1.0
        ptf._trunc_normal_(x, 0.0, 1.0, -2.0, 2.0)
    assert x.grad_fn is not None and x.grad_fn.name() == "ClampBackward1"


def test_half_falls_back_visibly():
    expected = r"pyinit\.transformers\.trunc_normal_tf_: .*float16"
    with pytest.warns(pyinit.PyinitFallbackWarning, match=expected):
        ptf.trunc_normal_tf_(torch.empty(100, dtype=torch.float16), std=0.02)


# ---- against transformers itself ----------------------------------------------------------------


@needs_transformers
def test_modules_list_is_complete():
    # Every file of the installed transformers that defines one of the helpers is in MODULES.
    root = pathlib.Path(transformers.__file__).parent
    pattern = re.compile(r"^def ({})\(".format("|".join(ptf._NAMES)), re.MULTILINE)
    defining = {
        "transformers." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in root.rglob("modeling_*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    }
    assert defining == set(ptf.MODULES)
    assert modeling_siglip in DEFINING


@needs_transformers
@pytest.mark.parametrize("module", DEFINING, ids=MODULE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_trunc_normal_tf_matches(module, shape, dtype):
    for params in PARAMS:
        ours = run(ptf.trunc_normal_tf_, shape, dtype, **params)
        assert_same(ours, run(module.trunc_normal_tf_, shape, dtype, **params))


@needs_transformers
@pytest.mark.parametrize("module", DEFINING, ids=MODULE_IDS)
@pytest.mark.parametrize(("seed", "predraw"), GENERATORS)
def test_generator_states(module, seed, predraw):
    for fn in ("trunc_normal_tf_", "lecun_normal_", "default_flax_embed_init"):
        ours, theirs = getattr(ptf, fn), getattr(module, fn)
        shape = (129, 77)
        assert_same(
            run(ours, shape, torch.float32, seed=seed, predraw=predraw),
            run(theirs, shape, torch.float32, seed=seed, predraw=predraw),
        )


@needs_transformers
@pytest.mark.parametrize("module", DEFINING, ids=MODULE_IDS)
@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_private_trunc_normal_matches(module, params):
    p = {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0, **params}
    args = (p["mean"], p["std"], p["a"], p["b"])
    for shape, dtype in [((768, 3072), torch.float32), ((7, 5), torch.float64)]:
        with torch.no_grad():
            ours = run(ptf._trunc_normal_, shape, dtype, args=args)
            theirs = run(module._trunc_normal_, shape, dtype, args=args)
        assert_same(ours, theirs)


@needs_transformers
@pytest.mark.parametrize("module", DEFINING, ids=MODULE_IDS)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_matches(module, mode, distribution):
    kwargs = dict(scale=2.0, mode=mode, distribution=distribution)
    for shape, dtype in [((64, 3, 7, 7), torch.float32), ((256, 33), torch.float64)]:
        ours = run(ptf.variance_scaling_, shape, dtype, **kwargs)
        assert_same(ours, run(module.variance_scaling_, shape, dtype, **kwargs))


@needs_transformers
@pytest.mark.parametrize("module", DEFINING, ids=MODULE_IDS)
@pytest.mark.parametrize("dtype", [*DTYPES, torch.bfloat16, torch.float16], ids=str)
def test_lecun_and_flax_embed_match(module, dtype):
    # bfloat16/float16: not fused (the composition, with a warning), the same values all the same.
    for fn in ("lecun_normal_", "default_flax_embed_init"):
        for shape in [(96, 48, 3, 3), (32000, 64), (5, 1)]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pyinit.PyinitFallbackWarning)
                ours = run(getattr(ptf, fn), shape, dtype)
            assert_same(ours, run(getattr(module, fn), shape, dtype))


@needs_transformers
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [(dict(mode="fan_geo"), UnboundLocalError), (dict(distribution="laplace"), ValueError)],
)
def test_errors_match(kwargs, error):
    state = torch.get_rng_state()
    with pytest.raises(error) as ours:
        ptf.variance_scaling_(torch.empty(4, 5), **kwargs)
    with pytest.raises(error) as theirs:
        modeling_siglip.variance_scaling_(torch.empty(4, 5), **kwargs)
    assert str(ours.value) == str(theirs.value)
    for fn in (ptf.lecun_normal_, modeling_siglip.lecun_normal_):
        with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
            fn(torch.empty(4))
    with pytest.raises(RuntimeError) as ours:
        ptf.trunc_normal_tf_(torch.empty(4), a=1.0, b=-1.0)
    with pytest.raises(RuntimeError) as theirs:
        modeling_siglip.trunc_normal_tf_(torch.empty(4), a=1.0, b=-1.0)
    assert str(ours.value) == str(theirs.value)
    assert torch.equal(torch.get_rng_state(), state)


@needs_transformers
def test_far_bounds_warning_matches():
    for fn in (ptf.trunc_normal_tf_, modeling_siglip.trunc_normal_tf_):
        with pytest.warns(UserWarning, match="mean is more than 2 std from"):
            fn(torch.empty(5), a=3.0, b=4.0)


# ---- the patch ----------------------------------------------------------------------------------


@needs_transformers
def test_patch_installs_everywhere_and_restores(monkeypatch):
    # A transformers module that imported a copy (none does in 4.57.1; a later model file could).
    importer = type(modeling_siglip)("transformers._pyinit_test_importer")
    importer.lecun_normal_ = modeling_siglip.lecun_normal_
    monkeypatch.setitem(sys.modules, importer.__name__, importer)
    before = {
        (m, name): getattr(m, name) for m in DEFINING for name in ptf._NAMES if hasattr(m, name)
    }
    assert len(before) == 5 * len(DEFINING)
    with pyinit.patch_transformers():
        for m, name in before:
            assert getattr(m, name) is getattr(ptf, name), (m.__name__, name)
        with pyinit.patch_transformers():  # nested: the outer block restores
            pass
        assert modeling_siglip.lecun_normal_ is ptf.lecun_normal_
        assert importer.lecun_normal_ is ptf.lecun_normal_
    assert importer.lecun_normal_ is modeling_siglip.lecun_normal_
    assert all(getattr(m, name) is fn for (m, name), fn in before.items())
    with pyinit.patch_torch_init(transformers=True):
        assert modeling_siglip.trunc_normal_tf_ is ptf.trunc_normal_tf_
        assert torch.nn.init.xavier_uniform_ is pyinit.xavier_uniform_
    assert modeling_siglip.trunc_normal_tf_ is before[(modeling_siglip, "trunc_normal_tf_")]
    assert torch.nn.init.xavier_uniform_ is not pyinit.xavier_uniform_


@needs_transformers
def test_patch_with_timm_too():
    # Both patches at once (pyinit.timm's variance_scaling_ is also transformers'): each restores
    # its own.
    pytest.importorskip("timm")
    with pyinit.patch_torch_init(timm=True, transformers=True):
        assert modeling_siglip.variance_scaling_ is ptimm.variance_scaling_
    assert modeling_siglip.variance_scaling_ is not ptimm.variance_scaling_


@needs_transformers
@pytest.mark.parametrize("allow", ["0", "1"])
def test_unverified_transformers(monkeypatch, allow):
    # Nothing installed for an unverified version, visibly, unless PYINIT_ALLOW_UNVERIFIED=1.
    monkeypatch.setattr(ptf, "VERIFIED_TRANSFORMERS_VERSIONS", ())
    monkeypatch.setenv("PYINIT_ALLOW_UNVERIFIED", allow)
    allowed = allow == "1"
    refused = pytest.warns(
        pyinit.PyinitFallbackWarning,
        match=f"transformers {transformers.__version__} is not verified",
    )
    with contextlib.nullcontext() if allowed else refused, pyinit.patch_transformers():
        assert (modeling_siglip.lecun_normal_ is ptf.lecun_normal_) == allowed


@needs_transformers
def test_torch_init_table_keeps_the_patch(tmp_path):
    # Note [transformers' TORCH_INIT_FUNCTIONS]: from_pretrained's no_init_weights() puts back the
    # functions transformers saved at import; under the patch those are pyinit's, after it torch's.
    from transformers import modeling_utils

    table = modeling_utils.TORCH_INIT_FUNCTIONS
    torch_normal = torch.nn.init.normal_
    tiny_model(SiglipModel).save_pretrained(tmp_path)
    with pyinit.patch_torch_init(transformers=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transformers' own notices about the checkpoint
            SiglipModel.from_pretrained(tmp_path)
        assert torch.nn.init.normal_ is pyinit.normal_
    assert torch.nn.init.normal_ is torch_normal and table["normal_"] is torch_normal
    # A table that had caught pyinit's functions (transformers imported inside a patch) is mended.
    with pyinit.patch_torch_init():
        table["normal_"] = torch.nn.init.normal_
        with pyinit.patch_transformers():
            pass
    assert table["normal_"] is torch_normal


def tiny_config(config_class=None):
    config_class = config_class or SiglipConfig
    text = dict(
        vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=16,
    )  # fmt: skip
    vision = dict(
        hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8,
    )  # fmt: skip
    return config_class(text_config=text, vision_config=vision)


def tiny_model(model_class):
    if model_class is SiglipVisionModel:
        return model_class(tiny_config().vision_config)
    if model_class.__name__.startswith("Siglip2"):
        from transformers import Siglip2Config

        return model_class(tiny_config(Siglip2Config))
    return model_class(tiny_config())


def _model_classes():
    if transformers is None:
        return []
    from transformers import Siglip2Model, SiglipForImageClassification

    return [SiglipModel, SiglipVisionModel, SiglipForImageClassification, Siglip2Model]


@needs_transformers
@pytest.mark.parametrize("model_class", _model_classes(), ids=lambda c: c.__name__)
def test_whole_model_matches_plain_transformers(model_class):
    same_construction(
        lambda: tiny_model(model_class),
        lambda: pyinit.patch_torch_init(transformers=True),
        model_class.__name__,
        strict=CPU_FUSED,
    )
