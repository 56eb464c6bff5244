"""pyinit mirrors nn.init: names, signatures, defaults, errors, warnings, hooks, meta tensors."""

from __future__ import annotations

import contextlib
import inspect
import typing
import warnings

import pytest
import torch
import torch.nn.init as tinit

import pyinit

PRIVATE_HELPERS = [
    "_calculate_fan_in_and_fan_out",
    "_calculate_correct_fan",
    "_no_grad_uniform_",
    "_no_grad_normal_",
    "_no_grad_trunc_normal_",
    "_no_grad_fill_",
    "_no_grad_zero_",
]


def test_every_public_name_is_mirrored():
    missing = [name for name in tinit.__all__ if not hasattr(pyinit, name)]
    assert missing == []
    assert set(tinit.__all__) <= set(pyinit.__all__)
    for name in PRIVATE_HELPERS:
        assert callable(getattr(pyinit, name))


@pytest.mark.parametrize("name", list(tinit.__all__) + PRIVATE_HELPERS)
def test_signatures_match(name):
    # Annotations included: tools that read them (config builders, docs) see torch's objects.
    assert inspect.signature(getattr(pyinit, name)) == inspect.signature(getattr(tinit, name))


def test_calculate_gain_values_and_types():
    for nl in typing.get_args(tinit._NonlinearityType):
        ours, theirs = pyinit.calculate_gain(nl), tinit.calculate_gain(nl)
        assert ours == theirs and type(ours) is type(theirs)
    assert pyinit.calculate_gain("leaky_relu", 0.2) == tinit.calculate_gain("leaky_relu", 0.2)
    assert pyinit.calculate_gain("leaky_relu", 3) == tinit.calculate_gain("leaky_relu", 3)


def _error_of(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


ERROR_CASES = [
    ("xavier_uniform_ 1-D", lambda m: m.xavier_uniform_(torch.empty(3))),
    ("xavier_normal_ 1-D", lambda m: m.xavier_normal_(torch.empty(3))),
    ("kaiming_uniform_ 1-D", lambda m: m.kaiming_uniform_(torch.empty(3))),
    ("kaiming_normal_ bad mode", lambda m: m.kaiming_normal_(torch.empty(3, 4), mode="fan_avg")),
    (
        "kaiming_uniform_ bad nonlinearity",
        lambda m: m.kaiming_uniform_(torch.empty(3, 4), nonlinearity="gelu"),
    ),
    ("calculate_gain bad", lambda m: m.calculate_gain("gelu")),
    ("calculate_gain bool", lambda m: m.calculate_gain("leaky_relu", True)),
    ("sparse_ 3-D", lambda m: m.sparse_(torch.empty(2, 3, 4), 0.1)),
    ("eye_ 3-D", lambda m: m.eye_(torch.empty(2, 3, 4))),
    ("dirac_ 2-D", lambda m: m.dirac_(torch.empty(2, 3))),
    ("dirac_ groups", lambda m: m.dirac_(torch.empty(5, 3, 3), groups=2)),
    ("orthogonal_ 1-D", lambda m: m.orthogonal_(torch.empty(3))),
    ("xavier_uniform_ 0x0", lambda m: m.xavier_uniform_(torch.empty(0, 0))),
    ("uniform_ from > to", lambda m: m.uniform_(torch.empty(3), 2.0, 1.0)),
    ("uniform_ half overflow", lambda m: m.uniform_(torch.empty(3, dtype=torch.half), -1e5, 1.0)),
    ("uniform_ range overflow", lambda m: m.uniform_(torch.empty(3, dtype=torch.half), -6e4, 6e4)),
    ("normal_ negative std", lambda m: m.normal_(torch.empty(3), 0.0, -1.0)),
    ("normal_ int tensor", lambda m: m.normal_(torch.empty(3, dtype=torch.long))),
    ("uniform_ expanded", lambda m: m.uniform_(torch.empty(1, 3).expand(4, 3))),
    ("trunc_normal_ zero std", lambda m: m.trunc_normal_(torch.empty(3), std=0.0)),
    ("orthogonal_ non-viewable", lambda m: m.orthogonal_(torch.empty(4, 3, 2).transpose(0, 2))),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_match(case):
    _, fn = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _error_of(lambda: fn(tinit))
        ours = _error_of(lambda: fn(pyinit))
    assert theirs is not None
    assert ours == theirs


def test_failed_call_leaves_tensor_untouched():
    t = torch.full((4, 4), 7.0)
    with pytest.raises(RuntimeError):
        pyinit.uniform_(t, 3.0, 1.0)
    with pytest.raises(RuntimeError):
        pyinit.normal_(t, 0.0, -2.0)
    assert torch.equal(t, torch.full((4, 4), 7.0))


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_zero_element_warning(name):
    for lib in (tinit, pyinit):
        torch.manual_seed(0)
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            getattr(lib, name)(torch.empty(0, 3))


def test_trunc_normal_far_mean_warning():
    # The window holds almost no mass: torch's uniform-proposal branch (a pyinit kernel), which
    # warns as torch does, and writes what torch writes.
    out = []
    for lib in (tinit, pyinit):
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
            with pytest.warns(UserWarning, match="mean is more than 2 std from"):
                out.append(lib.trunc_normal_(torch.empty(100), mean=10.0, std=1.0, a=-2.0, b=2.0))
    assert torch.equal(out[0], out[1])


DEPRECATED = [n for n in tinit.__all__ if not n.endswith("_") and n != "calculate_gain"]


@pytest.mark.parametrize("name", DEPRECATED)
def test_deprecated_aliases(name):
    fn = getattr(pyinit, name)
    assert fn.__name__ == name
    args = {"constant": (0.5,), "sparse": (0.1,)}.get(name, ())
    shape = (3, 4, 3) if name == "dirac" else (4, 4)
    msg = f"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`."
    with pytest.warns(FutureWarning) as record:
        fn(torch.empty(shape), *args)
    assert str(record[0].message) == msg


class _Logged(torch.Tensor):
    calls: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


@pytest.mark.parametrize("name", ["uniform_", "normal_", "constant_", "kaiming_uniform_"])
def test_torch_function_hooks(name):
    args = {"constant_": (0.5,)}.get(name, ())
    seen = []
    for lib in (tinit, pyinit):
        _Logged.calls = []
        t = torch.empty(4, 4).as_subclass(_Logged)
        # A tensor subclass takes torch's implementation, visibly.
        with contextlib.ExitStack() as stack:
            if lib is pyinit:
                stack.enter_context(pytest.warns(pyinit.PyinitFallbackWarning, match="subclass"))
            getattr(lib, name)(t, *args)
        seen.append(_Logged.calls[0])
    # torch.nn.init's hook hands its own function to __torch_function__; pyinit hands pyinit's.
    assert seen[0] == seen[1] == name


@pytest.mark.parametrize("name", [n for n in tinit.__all__ if n.endswith("_")])
def test_meta_tensors(name):
    shape = (6, 4, 3) if name == "dirac_" else (6, 4)
    args = {"constant_": (0.5,), "sparse_": (0.1,)}.get(name, ())
    t = torch.empty(shape, device="meta")
    assert getattr(pyinit, name)(t, *args) is t
    assert t.is_meta


def test_returns_the_same_tensor_and_keeps_grad():
    w = torch.nn.Parameter(torch.empty(5, 5))
    for fn in (
        pyinit.uniform_,
        pyinit.normal_,
        pyinit.xavier_uniform_,
        pyinit.kaiming_normal_,
        pyinit.trunc_normal_,
        pyinit.orthogonal_,
        pyinit.eye_,
        pyinit.zeros_,
    ):
        assert fn(w) is w
        assert w.requires_grad and w.grad_fn is None


GENERATOR_INITS = [
    ("uniform_", ()),
    ("normal_", ()),
    ("trunc_normal_", ()),
    ("xavier_uniform_", ()),
    ("kaiming_normal_", ()),
    ("orthogonal_", ()),
    ("sparse_", (0.5,)),
]


@pytest.mark.parametrize("name, args", GENERATOR_INITS, ids=[n for n, _ in GENERATOR_INITS])
def test_non_generator_object_gives_torchs_type_error(name, args):
    # torch's argument parser raises TypeError; the dispatcher would raise RuntimeError.
    errors = []
    for lib in (tinit, pyinit):
        t = torch.zeros(4, 5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback warning either: this is torch's error path
            with pytest.raises(TypeError) as info:
                getattr(lib, name)(t, *args, generator="not a generator")
        errors.append(str(info.value))
        assert torch.equal(t, torch.zeros(4, 5))
    assert errors[0] == errors[1]


def test_masked_uniform_non_generator_object_type_error():
    with pytest.raises(TypeError, match="must be torch.Generator"):
        pyinit.masked_uniform_(torch.zeros(3), generator=0)


# torch's random initializers (those that take a generator), and pyinit's own.
PHILOX_INITIALIZERS = [
    n for n in tinit.__all__ if "generator" in inspect.signature(getattr(tinit, n)).parameters
] + ["masked_uniform_"]


def test_philox_mirrors_every_random_initializer():
    # pyinit.philox's initializers are generated from init.py's (those that take a generator).
    assert set(PHILOX_INITIALIZERS) <= set(pyinit.philox.__all__)
    assert {"init_shard_", "draw_key"} <= set(pyinit.philox.__all__)
    for name in pyinit.philox.__all__:
        fn = getattr(pyinit.philox, name)
        assert fn.__name__ == name
        if name in ("init_shard_", "draw_key"):
            continue
        assert fn.__module__ == "pyinit.philox"
        assert inspect.signature(fn) == inspect.signature(getattr(pyinit, name))
        assert "philox stream" in fn.__doc__
