"""The variance-scaling family (JAX's / Keras 3's initializers on torch's layout), trunc_normal_tf_,
delta_orthogonal_ and orthogonal_columns_: formulas against hand-computed numbers, distributions
against scipy, bit-for-bit equality with the compositions they are defined as, in both streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import DEVICES, bitwise_equal, differing, make_generator, on_cuda
from scipy import stats
from torch import nn

import pyinit
from pyinit import _selection
from pyinit._streams import Stream

STREAMS = ["torch", "philox"]
ALIASES = {
    "lecun_uniform_": (1.0, "fan_in", "uniform"),
    "lecun_normal_": (1.0, "fan_in", "truncated_normal"),
    "glorot_uniform_": (1.0, "fan_avg", "uniform"),
    "glorot_normal_": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform_": (2.0, "fan_in", "uniform"),
    "he_normal_": (2.0, "fan_in", "truncated_normal"),
}
EXTENSIONS = [
    "variance_scaling_",
    *ALIASES,
    "trunc_normal_tf_",
    "delta_orthogonal_",
    "orthogonal_columns_",
]
# scipy.stats.truncnorm(-2, 2).std(), written out (the constant JAX and Keras divide by).
TRUNC_STD_2 = 0.87962566103423978


def _initializer(stream: str, name: str):
    return getattr(pyinit.philox if stream == "philox" else pyinit, name)


class _Recording(Stream):
    """A stream that records the final numbers each primitive is given and writes nothing."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def uniform_(self, tensor, a, b, generator=None):
        self.calls.append(("uniform_", a, b))
        return tensor

    def normal_(self, tensor, mean, std, generator=None):
        self.calls.append(("normal_", mean, std))
        return tensor

    def trunc_normal_(self, tensor, mean, std, a, b, generator=None):
        self.calls.append(("trunc_normal_", mean, std, a, b))
        return tensor


def _numbers(shape, *args) -> tuple:
    recording = _Recording()
    with _selection.selected(recording):
        pyinit.variance_scaling_(torch.empty(shape), *args)
    assert len(recording.calls) == 1
    return recording.calls[0]


# ---- the formulas, against numbers worked out by hand --------------------------------------------

# Linear(32, 64).weight is [64, 32]: fan_in 32, fan_out 64. Conv2d(8, 16, 3).weight is
# [16, 8, 3, 3]: fan_in 8*9 = 72, fan_out 16*9 = 144, fan_avg 108, fan_geo_avg sqrt(10368).
FAN_CASES = [
    ((64, 32), "fan_in", 32.0),
    ((64, 32), "fan_out", 64.0),
    ((64, 32), "fan_avg", 48.0),
    ((64, 32), "fan_geo_avg", 45.254833995939045),  # sqrt(2048)
    ((16, 8, 3, 3), "fan_in", 72.0),
    ((16, 8, 3, 3), "fan_out", 144.0),
    ((16, 8, 3, 3), "fan_avg", 108.0),
    ((16, 8, 3, 3), "fan_geo_avg", 101.82337649086284),  # sqrt(10368)
    ((5, 7, 2, 3, 4), "fan_in", 168.0),  # Conv3d: 7 * 24
]


@pytest.mark.parametrize("shape, mode, n", FAN_CASES, ids=lambda c: str(c))
def test_fans_on_torch_layout(shape, mode, n):
    scale = 3.0
    kind, mean, std = _numbers(shape, scale, mode, "untruncated_normal")
    assert (kind, mean) == ("normal_", 0.0)
    assert std == pytest.approx(math.sqrt(scale / n), rel=1e-15)
    kind, low, high = _numbers(shape, scale, mode, "uniform")
    assert kind == "uniform_" and low == -high
    assert high == pytest.approx(math.sqrt(3 * scale / n), rel=1e-15)
    kind, mean, s, a, b = _numbers(shape, scale, mode, "truncated_normal")
    assert (kind, mean) == ("trunc_normal_", 0.0)
    assert s == pytest.approx(math.sqrt(scale / n) / TRUNC_STD_2, rel=1e-15)
    assert (a, b) == (-2 * s, 2 * s)


def test_hand_computed_numbers():
    # lecun_normal_ on [64, 32]: sqrt(1/32) / 0.87962566103423978 = 0.2009680971434913...
    assert _numbers((64, 32), 1.0, "fan_in", "truncated_normal")[2] == pytest.approx(
        0.20096809714349134, rel=1e-15
    )
    # he_uniform_ on [16, 8, 3, 3]: sqrt(6/72) = sqrt(1/12) = 0.28867513459481287
    assert _numbers((16, 8, 3, 3), 2.0, "fan_in", "uniform")[2] == pytest.approx(
        0.28867513459481287, rel=1e-15
    )
    # glorot_normal_ on [64, 32]: sqrt(2/96) / 0.8796... = 0.14433756729740643 / 0.8796...
    assert _numbers((64, 32), 1.0, "fan_avg", "truncated_normal")[2] == pytest.approx(
        0.16408976419321178, rel=1e-15
    )
    assert stats.truncnorm(-2, 2).std() == pytest.approx(TRUNC_STD_2, rel=1e-15)


@pytest.mark.parametrize("name", list(ALIASES))
def test_aliases_pass_jax_choices(name):
    recording = _Recording()
    with _selection.selected(recording):
        getattr(pyinit, name)(torch.empty(16, 8, 3, 3))
    expected = _numbers((16, 8, 3, 3), *ALIASES[name])
    assert recording.calls == [expected]


# ---- distributions against scipy -----------------------------------------------------------------

KS_SHAPE = (400, 512)  # 204800 values; fan_in 512, fan_out 400


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_distribution_ks_and_moments(stream, distribution):
    scale, n = 2.0, 512
    sigma = math.sqrt(scale / n)
    w = torch.empty(KS_SHAPE, dtype=torch.float64)
    _initializer(stream, "variance_scaling_")(
        w, scale, "fan_in", distribution, generator=make_generator("cpu", 1234)
    )
    x = w.numpy().ravel()
    if distribution == "truncated_normal":
        s = sigma / TRUNC_STD_2
        dist = stats.truncnorm(-2, 2, scale=s)
    elif distribution == "untruncated_normal":
        dist = stats.norm(scale=sigma)
    else:
        limit = math.sqrt(3 * scale / n)
        dist = stats.uniform(-limit, 2 * limit)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-4
    # The standard deviation is sigma whatever the distribution (JAX's definition of the family).
    assert abs(x.mean()) < 5 * sigma / math.sqrt(x.size)
    assert x.std() == pytest.approx(sigma, rel=0.01)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_bounds_respected_exactly(stream, device, dtype):
    shape = (256, 300)
    for distribution in ("truncated_normal", "uniform"):
        _, *numbers = _numbers(shape, 1.0, "fan_avg", distribution)
        low, high = numbers[-2:]
        w = torch.empty(shape, dtype=dtype, device=device)
        _initializer(stream, "variance_scaling_")(
            w, 1.0, "fan_avg", distribution, generator=make_generator(device, 5)
        )
        # The bounds as the dtype holds them (torch's trunc_normal_ rejects against those).
        lo, hi = (torch.tensor(v, dtype=dtype).item() for v in (low, high))
        assert w.min().item() >= lo and w.max().item() <= hi, distribution
        assert w.min().item() < 0.9 * lo and w.max().item() > 0.9 * hi  # and they are reached


def test_trunc_normal_tf_distribution():
    w = torch.empty(1 << 17, dtype=torch.float64)
    pyinit.trunc_normal_tf_(w, mean=0.5, std=0.1, a=-1.0, b=3.0, generator=make_generator("cpu", 9))
    x = w.numpy()
    assert x.min() >= 0.5 - 0.1 - 1e-15 and x.max() <= 0.5 + 0.3 + 1e-15
    assert stats.kstest(x, stats.truncnorm(-1.0, 3.0, loc=0.5, scale=0.1).cdf).pvalue > 1e-4


# ---- bit for bit: each name is the composition it is defined as ----------------------------------


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(ALIASES))
def test_alias_equals_variance_scaling(stream, device, name):
    for shape in [(33, 17), (16, 8, 3, 3)]:
        g1, g2 = make_generator(device, 11), make_generator(device, 11)
        ours = _initializer(stream, name)(torch.empty(shape, device=device), generator=g1)
        ref = _initializer(stream, "variance_scaling_")(
            torch.empty(shape, device=device), *ALIASES[name], generator=g2
        )
        assert bitwise_equal(ours, ref), differing(ours, ref)
        assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
def test_variance_scaling_is_one_primitive_call(stream, device):
    # The whole family writes exactly what the primitive with the final numbers writes.
    shape = (20, 6, 5)
    for distribution, primitive in [
        ("truncated_normal", "trunc_normal_"),
        ("untruncated_normal", "normal_"),
        ("uniform", "uniform_"),
    ]:
        _, *numbers = _numbers(shape, 0.5, "fan_out", distribution)
        g1, g2 = make_generator(device, 3), make_generator(device, 3)
        ours = _initializer(stream, "variance_scaling_")(
            torch.empty(shape, device=device), 0.5, "fan_out", distribution, g1
        )
        ref = _initializer(stream, primitive)(torch.empty(shape, device=device), *numbers, g2)
        assert bitwise_equal(ours, ref), (distribution, differing(ours, ref))
        assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_trunc_normal_tf_equals_composition(stream, device, dtype):
    args = dict(mean=0.25, std=0.02, a=-1.5, b=2.5)
    g1, g2 = make_generator(device, 21), make_generator(device, 21)
    ours = _initializer(stream, "trunc_normal_tf_")(
        torch.empty(50, 37, dtype=dtype, device=device), **args, generator=g1
    )
    ref = torch.empty(50, 37, dtype=dtype, device=device)
    _initializer(stream, "trunc_normal_")(ref, 0.0, 1.0, args["a"], args["b"], generator=g2)
    ref.mul_(args["std"]).add_(args["mean"])
    assert bitwise_equal(ours, ref), differing(ours, ref)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_glorot_he_uniform_match_torch_names_in_distribution():
    # The same uniform_ draw as xavier_uniform_ / kaiming_uniform_(relu); the bound is computed
    # as JAX computes it and may differ in its last bit.
    for ours, theirs in [
        (pyinit.glorot_uniform_, lambda w, g: pyinit.xavier_uniform_(w, generator=g)),
        (
            pyinit.he_uniform_,
            lambda w, g: pyinit.kaiming_uniform_(w, nonlinearity="relu", generator=g),
        ),
    ]:
        a = ours(torch.empty(64, 48), generator=make_generator("cpu", 4))
        b = theirs(torch.empty(64, 48), make_generator("cpu", 4))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


# ---- delta_orthogonal_ ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(8, 8, 3), (16, 8, 3, 3), (12, 5, 4, 2), (6, 6, 3, 3, 3)])
def test_delta_orthogonal(stream, device, shape):
    gain = 1.7
    g1, g2 = make_generator(device, 8), make_generator(device, 8)
    w = torch.full(shape, 9.0, dtype=torch.float64, device=device)
    _initializer(stream, "delta_orthogonal_")(w, gain, generator=g1)
    centre = (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))  # JAX's centre
    c = w[centre]
    eye = torch.eye(shape[1], dtype=torch.float64, device=device)
    torch.testing.assert_close(c.T @ c, gain**2 * eye, atol=1e-12, rtol=0)
    rest = torch.ones(shape, dtype=torch.bool, device=device)
    rest[centre] = False
    assert torch.all(w[rest] == 0)
    # The centre is orthogonal_ of an [out, in] matrix, from the same generator state.
    matrix = _initializer(stream, "orthogonal_")(
        torch.empty(shape[:2], dtype=torch.float64, device=device), gain, generator=g2
    )
    assert bitwise_equal(c.contiguous(), matrix)
    assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize(
    "shape, message",
    [
        ((4, 4), "only tensors with 3, 4, or 5 dimensions are supported"),
        ((2, 2, 2, 2, 2, 2), "only tensors with 3, 4, or 5 dimensions are supported"),
        ((4, 8, 3, 3), r"in_channels \(dim 1, 8\) must be less than or equal to out_channels"),
    ],
)
def test_delta_orthogonal_errors_leave_everything_untouched(shape, message):
    w = torch.full(shape, 3.0)
    g = make_generator("cpu", 1)
    state, default = g.get_state(), torch.get_rng_state()
    for fn in (pyinit.delta_orthogonal_, pyinit.philox.delta_orthogonal_):
        with pytest.raises(ValueError, match=message):
            fn(w, generator=g)
        with pytest.raises(ValueError, match=message):
            fn(w)
    assert torch.all(w == 3.0)
    assert torch.equal(g.get_state(), state) and torch.equal(torch.get_rng_state(), default)


def test_delta_orthogonal_bad_generator_leaves_tensor_untouched():
    w = torch.full((8, 4, 3, 3), 3.0)
    with pytest.raises(TypeError):
        pyinit.delta_orthogonal_(w, generator="not a generator")
    assert torch.all(w == 3.0)


# ---- orthogonal_columns_ -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
def test_orthogonal_columns_axis_zero_is_orthogonal_(stream, device):
    for shape in [(6, 10), (10, 6), (4, 3, 5)]:
        for axis in (0, -len(shape)):
            g1, g2 = make_generator(device, 2), make_generator(device, 2)
            ours = _initializer(stream, "orthogonal_columns_")(
                torch.empty(shape, device=device), 1.5, axis, g1
            )
            ref = _initializer(stream, "orthogonal_")(torch.empty(shape, device=device), 1.5, g2)
            assert bitwise_equal(ours, ref), differing(ours, ref)
            assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "shape, axis", [((6, 10), -1), ((10, 6), 1), ((4, 3, 5), -1), ((4, 3, 5), 1), ((2, 9, 3), 1)]
)
def test_orthogonal_columns(stream, device, shape, axis):
    gain = 0.5
    g1, g2 = make_generator(device, 6), make_generator(device, 6)
    w = _initializer(stream, "orthogonal_columns_")(
        torch.empty(shape, dtype=torch.float64, device=device), gain, axis, g1
    )
    m = w.movedim(axis, -1).reshape(-1, shape[axis])  # rows x columns
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T
    eye = torch.eye(min(rows, cols), dtype=torch.float64, device=device)
    torch.testing.assert_close(gram, gain**2 * eye, atol=1e-12, rtol=0)
    # The transpose of orthogonal_ on a [columns, rows] matrix, from the same generator state.
    drawn = _initializer(stream, "orthogonal_")(
        torch.empty((cols, rows), dtype=torch.float64, device=device), gain, g2
    )
    assert bitwise_equal(m, drawn.t().contiguous())
    assert torch.equal(g1.get_state(), g2.get_state())


def test_orthogonal_columns_errors_leave_everything_untouched():
    w = torch.full((4, 5), 3.0)
    g = make_generator("cpu", 1)
    state = g.get_state()
    with pytest.raises(IndexError, match="Dimension out of range"):
        pyinit.orthogonal_columns_(w, column_axis=2, generator=g)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions"):
        pyinit.orthogonal_columns_(torch.empty(4), generator=g)
    with pytest.raises(TypeError):
        pyinit.orthogonal_columns_(w, generator="not a generator")
    assert torch.all(w == 3.0) and torch.equal(g.get_state(), state)


# ---- bad input: ValueError before anything is drawn or written -----------------------------------

BAD_ARGS = [
    ((1.0, "fan_sum", "uniform"), "invalid mode for variance scaling initializer: 'fan_sum'"),
    ((1.0, "FAN_IN", "uniform"), "invalid mode for variance scaling initializer: 'FAN_IN'"),
    ((1.0, "fan_in", "gaussian"), "invalid distribution for variance scaling initializer"),
    ((1.0, "fan_in", "normal"), "'normal' is ambiguous"),
    ((0.0, "fan_in", "uniform"), "Argument `scale` must be a positive finite float"),
    ((-2.0, "fan_in", "uniform"), "Received: scale=-2.0"),
    ((math.nan, "fan_in", "uniform"), "Received: scale=nan"),
    ((math.inf, "fan_in", "uniform"), "Received: scale=inf"),
    ((True, "fan_in", "uniform"), "Received: scale=True"),
]


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("args, message", BAD_ARGS, ids=lambda c: str(c))
def test_bad_arguments_leave_everything_untouched(stream, args, message):
    w = torch.full((6, 4), 3.0)
    g = make_generator("cpu", 1)
    state, default, version = g.get_state(), torch.get_rng_state(), w._version
    fn = _initializer(stream, "variance_scaling_")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fn(w, *args, generator=g)
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
        fn(torch.empty(5), generator=g)
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
        _initializer(stream, "lecun_normal_")(torch.empty(5))
    assert torch.all(w == 3.0) and w._version == version
    assert torch.equal(g.get_state(), state) and torch.equal(torch.get_rng_state(), default)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", EXTENSIONS)
def test_inference_tensor_refused_before_drawing(stream, name):
    with torch.inference_mode():
        w = torch.zeros(8, 4, 3, 3)
    g = make_generator("cpu", 1)
    state, default = g.get_state(), torch.get_rng_state()
    with pytest.raises(
        RuntimeError, match="Inplace update to inference tensor outside InferenceMode"
    ):
        _initializer(stream, name)(w, generator=g)
    assert torch.all(w == 0)
    assert torch.equal(g.get_state(), state) and torch.equal(torch.get_rng_state(), default)


def test_scale_accepts_ints_and_numpy_floats():
    for scale in (2, np.float32(2.0), np.float64(2.0)):
        assert _numbers((8, 4), scale, "fan_in", "uniform")[2] == pytest.approx(math.sqrt(6 / 4))


# ---- tensors: versions, meta, empty, views -------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", EXTENSIONS)
def test_writes_bump_version_keep_grad_and_meta_is_a_no_op(stream, name):
    fn = _initializer(stream, name)
    w = nn.Parameter(torch.empty(8, 4, 3, 3))
    version = w._version
    assert fn(w) is w
    assert w._version > version and w.requires_grad and w.grad_fn is None
    m = torch.empty(8, 4, 3, 3, device="meta")
    state = torch.get_rng_state()
    assert fn(m) is m and m.is_meta
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", [n for n in EXTENSIONS if n != "trunc_normal_tf_"])
def test_zero_element_tensors_draw_nothing(name):
    state = torch.get_rng_state()
    shape = (0, 0, 3) if name == "delta_orthogonal_" else (0, 5)
    w = torch.empty(shape)
    assert getattr(pyinit, name)(w) is w
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("transposed", [False, True])
def test_torch_stream_equals_torch_nn_init(transposed):
    # The torch stream promises torch.nn.init's values: the family is torch's own primitive with
    # the final numbers, on contiguous tensors and on a transposed (dense) view alike.
    def tensor():
        base = torch.zeros(30, 40)
        return base.t() if transposed else base

    for distribution, torch_fn in [
        ("truncated_normal", torch.nn.init.trunc_normal_),
        ("untruncated_normal", torch.nn.init.normal_),
        ("uniform", torch.nn.init.uniform_),
    ]:
        _, *numbers = _numbers(tuple(tensor().shape), 1.5, "fan_avg", distribution)
        g1, g2 = make_generator("cpu", 13), make_generator("cpu", 13)
        ours = pyinit.variance_scaling_(tensor(), 1.5, "fan_avg", distribution, g1)
        theirs = torch_fn(tensor(), *numbers, generator=g2)
        assert bitwise_equal(ours, theirs), (distribution, differing(ours, theirs))
        assert torch.equal(g1.get_state(), g2.get_state())
    g1, g2 = make_generator("cpu", 14), make_generator("cpu", 14)
    ours = pyinit.trunc_normal_tf_(tensor(), 0.1, 0.02, -1.0, 2.0, generator=g1)
    theirs = torch.nn.init.trunc_normal_(tensor(), 0.0, 1.0, -1.0, 2.0, generator=g2)
    assert bitwise_equal(ours, theirs.mul_(0.02).add_(0.1))


def test_fallback_warning_names_the_alias():
    # torch's trunc_normal_ runs for a non-dense view (docs/decisions.md); the warning names the
    # initializer the user called.
    view = torch.empty(40, 30)[:, ::2]
    with pytest.warns(pyinit.PyinitFallbackWarning, match=r"pyinit\.he_normal_: .*non-dense view"):
        pyinit.he_normal_(view)


# ---- model level: deferred(), init_module_, the philox namespace ---------------------------------


class JaxStyle(nn.Module):
    """A model initialized the way a port from Flax/Keras does."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3)
        self.block = nn.Conv2d(16, 16, 3)
        self.proj = nn.Conv1d(16, 24, 5)
        self.fc = nn.Linear(16, 32)
        self.head = nn.Linear(32, 10)
        self.embed = nn.Parameter(torch.empty(10, 16))
        pyinit.he_normal_(self.stem.weight)
        pyinit.delta_orthogonal_(self.block.weight, gain=math.sqrt(2))
        pyinit.orthogonal_columns_(self.proj.weight, column_axis=1)
        pyinit.lecun_normal_(self.fc.weight)
        pyinit.glorot_uniform_(self.head.weight)
        pyinit.variance_scaling_(self.embed[:4], 0.1, "fan_geo_avg", "uniform")
        pyinit.trunc_normal_tf_(self.embed[4:], std=0.02)


@pytest.mark.parametrize("stream", STREAMS)
def test_deferred_equals_eager(stream):
    # patch_torch_init: the layers' own reset_parameters run through pyinit in both builds.
    with pyinit.stream(stream), pyinit.patch_torch_init():
        torch.manual_seed(0)
        with pyinit.deferred():
            deferred = JaxStyle()
        assert all(p.is_meta for p in deferred.parameters())
        torch.manual_seed(0)
        eager = JaxStyle()
        after = torch.get_rng_state()
        torch.manual_seed(0)
        pyinit.materialize_(deferred, "cpu")
        assert torch.equal(torch.get_rng_state(), after)
    for (name, a), (_, b) in zip(
        eager.state_dict().items(), deferred.state_dict().items(), strict=True
    ):
        assert bitwise_equal(a, b), name


@pytest.mark.parametrize("stream", STREAMS)
def test_init_module_rules_by_name(stream):
    def build():
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(8, 16), nn.Conv2d(4, 8, 3))

    rules = {
        nn.Linear: {"weight": "lecun_normal_", "bias": "zeros_"},
        nn.Conv2d: {"weight": ("variance_scaling_", {"scale": 2.0, "mode": "fan_out"})},
    }
    with pyinit.stream(stream):
        net = build()
        torch.manual_seed(5)
        pyinit.init_module_(net, rules)
        if stream == "torch":  # the same calls, one by one
            ref = build()
            torch.manual_seed(5)
            pyinit.lecun_normal_(ref[0].weight)
            pyinit.zeros_(ref[0].bias)
            pyinit.variance_scaling_(ref[1].weight, 2.0, "fan_out")
            for a, b in zip(net.parameters(), ref.parameters(), strict=True):
                assert bitwise_equal(a.detach(), b.detach())
    assert net[0].weight.abs().max() <= 2 * math.sqrt(1 / 8) / TRUNC_STD_2


def test_philox_namespace_has_them():
    for name in EXTENSIONS:
        assert name in pyinit.philox.__all__ and name in pyinit.__all__
        assert getattr(pyinit.philox, name).__module__ == "pyinit.philox"


def test_philox_differs_from_torch_stream():
    a = pyinit.lecun_normal_(torch.empty(16, 16), generator=make_generator("cpu", 0))
    b = pyinit.philox.lecun_normal_(torch.empty(16, 16), generator=make_generator("cpu", 0))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", ["variance_scaling_", *ALIASES])
def test_init_shard_equals_whole(name):
    shape = (30, 20)
    torch.manual_seed(7)
    whole = getattr(pyinit.philox, name)(torch.empty(shape))
    torch.manual_seed(7)
    local = pyinit.philox.init_shard_(torch.empty(17, 20), shape, (13, 0), name)
    assert bitwise_equal(local, whole[13:])


@pytest.mark.parametrize(
    "name", ["trunc_normal_tf_", "delta_orthogonal_", "orthogonal_columns_", "orthogonal_"]
)
def test_init_shard_refuses_whole_tensor_initializers(name):
    with pytest.raises(NotImplementedError, match="needs the whole tensor"):
        pyinit.philox.init_shard_(torch.empty(4, 4, 3), (8, 4, 3), (0, 0, 0), name)


@pytest.mark.parametrize("device", ["cpu", on_cuda("cuda")])
def test_no_fallback_warning(device, recwarn):
    for name in EXTENSIONS:
        getattr(pyinit, name)(torch.empty(8, 4, 3, 3, device=device))
    assert not [w for w in recwarn if issubclass(w.category, pyinit.PyinitFallbackWarning)]
