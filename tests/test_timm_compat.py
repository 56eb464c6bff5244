"""pyinit.timm against timm's own initializers, bit for bit (values, generator state, version
counter), and whole timm models under the patch against plain timm.

The kernel tests compare with timm's composition of torch operators written out here, so they run
without timm too; the tests marked `needs_timm` compare with timm's functions and skip cleanly
when timm is not importable (run them with a python that has timm, e.g. /work/venv214)."""

from __future__ import annotations

import math
import os
import warnings

import pytest
import torch
from helpers import CUDA_MARKS, bitwise_equal, differing, same_construction
from helpers import TRUNC_DTYPES as DTYPES
from helpers import TRUNC_PARAMS as PARAMS
from helpers import TRUNC_SHAPES as SHAPES
from helpers import run_draw as run
from helpers import same_draw as assert_same

import pyinit
from pyinit import timm as ptimm

try:
    import timm
    from timm.layers import weight_init as timm_init
except Exception:  # noqa: BLE001  (a broken torchvision makes timm's import fail in many ways)
    timm = None

# CI's torch 2.14.1 leg installs timm and sets PYINIT_REQUIRE_TIMM=1: there these tests must run.
if timm is None and os.environ.get("PYINIT_REQUIRE_TIMM") == "1":
    raise RuntimeError("PYINIT_REQUIRE_TIMM=1 but timm is not importable")
needs_timm = pytest.mark.skipif(timm is None, reason="timm is not importable")
CPU_FUSED = ptimm._fused_reason(torch.empty(2)) is None


def composition(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """timm 1.0's _trunc_normal_, step by step (the reference without timm)."""
    with torch.no_grad():
        low = 2 * ((1.0 + math.erf((a - mean) / std / math.sqrt(2.0))) / 2.0) - 1
        high = 2 * ((1.0 + math.erf((b - mean) / std / math.sqrt(2.0))) / 2.0) - 1
        tensor.uniform_(low, high)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


def composition_tf(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    with torch.no_grad():
        composition(tensor, 0, 1.0, a, b)
        tensor.mul_(std).add_(mean)
    return tensor


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_trunc_normal_matches_composition(shape, dtype, params):
    ours = run(ptimm.trunc_normal_, shape, dtype, **params)
    assert_same(ours, run(composition, shape, dtype, **params))


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("shape", [(2049,), (64, 3, 7, 7)], ids=str)
def test_trunc_normal_tf_matches_composition(shape, params):
    ours = run(ptimm.trunc_normal_tf_, shape, torch.float32, **params)
    assert_same(ours, run(composition_tf, shape, torch.float32, **params))


EDGES = [
    dict(mean=-0.0, std=-1.0, a=0.0, b=0.0),  # every value -0.0 before the clamp to [+0, +0]
    dict(mean=-0.0, std=-1.0, a=-0.0, b=-0.0),
    dict(std=float("inf"), a=-1.0, b=1.0),  # NaN through erfinv and clamp
    dict(a=float("-inf"), b=float("inf")),  # uniform_(-1, 1): erfinv(-1) = -inf
    dict(mean=float("nan")),  # uniform_'s own error
    dict(a=True, b=2),  # a bool argument: timm's composition, unchanged
]


@pytest.mark.parametrize("params", EDGES, ids=str)
def test_edge_arguments(params):
    outcomes = []
    for fn in (ptimm.trunc_normal_, composition):
        try:
            outcomes.append(run(fn, (2049,), torch.float32, **params))
        except RuntimeError as e:
            outcomes.append(str(e))
    if isinstance(outcomes[1], str):
        assert outcomes[0] == outcomes[1]
    else:
        assert_same(*outcomes)


@pytest.mark.parametrize("layout", ["permuted", "strided"])
def test_layouts(layout):
    # permuted: dense, the fused kernel; strided: not dense, the composition (with a warning).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyinit.PyinitFallbackWarning)
        ours = run(ptimm.trunc_normal_, (40, 33), torch.float32, layout=layout, std=0.02)
    assert_same(ours, run(composition, (40, 33), torch.float32, layout=layout, std=0.02))


@pytest.mark.skipif(not CPU_FUSED, reason="the fused kernel does not run with this torch")
def test_fused_kernel_runs_and_thread_count_does_not_matter():
    ref = run(composition, (1 << 16,), torch.float32, std=0.02)
    threads = torch.get_num_threads()
    try:
        for n in sorted({1, 2, threads}):
            torch.set_num_threads(n)
            with warnings.catch_warnings():
                warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
                assert_same(run(ptimm.trunc_normal_, (1 << 16,), torch.float32, std=0.02), ref)
    finally:
        torch.set_num_threads(threads)


def test_half_falls_back_visibly():
    t = torch.empty(100, dtype=torch.float16)
    expected = r"pyinit\.timm\.trunc_normal_: .*float16"
    with pytest.warns(pyinit.PyinitFallbackWarning, match=expected):
        ptimm.trunc_normal_(t, std=0.02)
    assert_same(
        run(ptimm.trunc_normal_, (100,), torch.bfloat16), run(composition, (100,), torch.bfloat16)
    )


@CUDA_MARKS[0]
@CUDA_MARKS[1]
@pytest.mark.parametrize("post", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_kernel_matches_composition(monkeypatch, dtype, post):
    # Never run yet (no GPU so far): the Python layer takes this path only with the variable set.
    monkeypatch.setenv("PYINIT_ALLOW_UNVERIFIED", "1")
    fn, ref = (ptimm.trunc_normal_, composition)
    if post:
        fn, ref = (ptimm.trunc_normal_tf_, composition_tf)
    results = []
    for f in (fn, ref):
        t = torch.empty(1000, 333, dtype=dtype, device="cuda")
        torch.cuda.manual_seed(3)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
            f(t, mean=0.1, std=0.02, a=-0.5, b=0.5)
        results.append((t, torch.cuda.get_rng_state()))
    assert bitwise_equal(results[0][0], results[1][0]), differing(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_cuda_falls_back_without_the_variable(monkeypatch):
    monkeypatch.delenv("PYINIT_ALLOW_UNVERIFIED", raising=False)
    t = torch.empty(4, device="meta")
    assert ptimm._fused_reason(t) is None  # meta: no device check
    if torch.cuda.is_available():
        assert "GPU" in ptimm._fused_reason(torch.empty(4, device="cuda"))


def test_unverified_torch_falls_back(monkeypatch):
    monkeypatch.setattr(ptimm, "_VERIFIED_TORCH", ())
    monkeypatch.delenv("PYINIT_ALLOW_UNVERIFIED", raising=False)
    with pytest.warns(pyinit.PyinitFallbackWarning, match="not verified against torch"):
        ptimm.trunc_normal_(torch.empty(3))
    ours = run(ptimm.trunc_normal_, (300,), torch.float32, std=0.02)
    assert_same(ours, run(composition, (300,), torch.float32, std=0.02))


def test_meta_is_a_no_op():
    t = torch.empty(3, 4, device="meta")
    assert ptimm.trunc_normal_(t) is t
    assert ptimm.trunc_normal_tf_(t) is t


def test_errors_leave_tensor_and_generator_untouched():
    t = torch.arange(12.0).reshape(3, 4)
    state = torch.get_rng_state()
    # a > b: uniform_'s own error, before anything is drawn.
    with pytest.raises(RuntimeError) as ours:
        ptimm.trunc_normal_(t, a=1.0, b=-1.0)
    with pytest.raises(RuntimeError) as theirs:
        composition(t.clone(), a=1.0, b=-1.0)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ZeroDivisionError):
        ptimm.trunc_normal_(t, std=0.0)
    assert torch.equal(t, torch.arange(12.0).reshape(3, 4))
    assert torch.equal(torch.get_rng_state(), state)


def test_far_mean_warning():
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        ptimm.trunc_normal_(torch.empty(5), mean=10.0, std=1.0, a=-2.0, b=2.0)


def test_returns():
    t = torch.empty(4, 5)
    assert ptimm.trunc_normal_(t) is t
    assert ptimm.trunc_normal_tf_(t) is t
    assert ptimm.variance_scaling_(t) is None
    assert ptimm.lecun_normal_(t) is None


# ---- against timm itself ------------------------------------------------------------------------


@needs_timm
@pytest.mark.parametrize("name", ["trunc_normal_", "trunc_normal_tf_"])
@pytest.mark.parametrize("params", PARAMS[:4], ids=str)
def test_matches_timm(name, params):
    ours, theirs = getattr(ptimm, name), getattr(timm_init, name)
    for shape, dtype in [((768, 3072), torch.float32), ((7, 5), torch.float64)]:
        assert_same(run(ours, shape, dtype, **params), run(theirs, shape, dtype, **params))


@needs_timm
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_matches_timm(mode, distribution):
    kwargs = dict(scale=2.0, mode=mode, distribution=distribution)
    for shape in [(64, 3, 7, 7), (256, 33)]:
        ours = run(ptimm.variance_scaling_, shape, torch.float32, **kwargs)
        assert_same(ours, run(timm_init.variance_scaling_, shape, torch.float32, **kwargs))


@needs_timm
def test_lecun_normal_matches_timm():
    shape = (96, 48, 3, 3)
    assert_same(
        run(ptimm.lecun_normal_, shape, torch.float32),
        run(timm_init.lecun_normal_, shape, torch.float32),
    )


@needs_timm
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(mode="fan_geo"), UnboundLocalError),
        (dict(distribution="laplace"), ValueError),
    ],
)
def test_variance_scaling_errors_match_timm(kwargs, error):
    with pytest.raises(error) as ours:
        ptimm.variance_scaling_(torch.empty(4, 5), **kwargs)
    with pytest.raises(error) as theirs:
        timm_init.variance_scaling_(torch.empty(4, 5), **kwargs)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed") as ours:
        ptimm.variance_scaling_(torch.empty(4))


@needs_timm
def test_patch_installs_everywhere_and_restores():
    import timm.layers
    import timm.models.vision_transformer as vit

    before = (timm.layers.trunc_normal_, timm_init.trunc_normal_, vit.trunc_normal_)
    with pyinit.patch_timm():
        assert timm.layers.trunc_normal_ is ptimm.trunc_normal_
        assert timm_init.trunc_normal_tf_ is ptimm.trunc_normal_tf_
        assert vit.trunc_normal_ is ptimm.trunc_normal_
        assert vit.lecun_normal_ is ptimm.lecun_normal_
        with pyinit.patch_timm():  # nested: the outer block restores
            pass
        assert vit.trunc_normal_ is ptimm.trunc_normal_
    assert (timm.layers.trunc_normal_, timm_init.trunc_normal_, vit.trunc_normal_) == before
    with pyinit.patch_torch_init(timm=True):
        assert vit.trunc_normal_ is ptimm.trunc_normal_
    assert vit.trunc_normal_ is before[2]


@needs_timm
def test_patch_refuses_unverified_timm(monkeypatch):
    monkeypatch.setattr(ptimm, "VERIFIED_TIMM_VERSIONS", ())
    monkeypatch.delenv("PYINIT_ALLOW_UNVERIFIED", raising=False)
    with pytest.warns(pyinit.PyinitFallbackWarning, match="is not verified"):
        with pyinit.patch_timm():
            assert timm_init.trunc_normal_ is not ptimm.trunc_normal_


MODELS = ["vit_tiny_patch16_224", "convnext_atto", "vit_small_patch16_224"]


@needs_timm
@pytest.mark.parametrize("model", MODELS)
def test_whole_model_matches_plain_timm(model):
    kwargs = dict(pretrained=False)
    if model.startswith("vit_small"):
        kwargs["weight_init"] = "jax"  # lecun_normal_ on the patch embedding, xavier and normal_
    same_construction(
        lambda: timm.create_model(model, **kwargs),
        lambda: pyinit.patch_torch_init(timm=True),
        model,
        strict=CPU_FUSED,
    )
