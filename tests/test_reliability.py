"""pyinit treats unusual input as torch.nn.init does: patch_torch_init's reach, fills torch serves
itself, where fallback warnings point, validation before the philox stream draws (signatures:
tests/test_api.py)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.init as tinit
from helpers import bitwise_equal

import pyinit
from pyinit import _patch


def test_patch_reaches_names_bound_at_import():
    activation = torch.nn.modules.activation
    transformer = torch.nn.modules.transformer
    originals = (activation.xavier_uniform_, activation.constant_, transformer.xavier_uniform_)
    with pyinit.patch_torch_init():
        assert activation.xavier_uniform_ is pyinit.xavier_uniform_
        assert activation.constant_ is pyinit.constant_
        assert activation.xavier_normal_ is pyinit.xavier_normal_
        assert transformer.xavier_uniform_ is pyinit.xavier_uniform_
        torch.manual_seed(3)
        patched = torch.nn.MultiheadAttention(32, 4, kdim=16, vdim=16)  # xavier_uniform_ x3
    assert (activation.xavier_uniform_, activation.constant_, transformer.xavier_uniform_) == (
        originals
    )
    assert not _patch._bound_elsewhere
    torch.manual_seed(3)
    eager = torch.nn.MultiheadAttention(32, 4, kdim=16, vdim=16)
    for (name, a), b in zip(patched.state_dict().items(), eager.state_dict().values(), strict=True):
        assert bitwise_equal(a, b), name


def _outcome(fn, tensor, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn(tensor, *args)
            error = None
        except Exception as exc:  # noqa: BLE001  (compared with torch's)
            error = (type(exc), str(exc))
    return error, [(w.category, str(w.message)) for w in caught], tensor


FILL_CASES = {
    "zeros_ int64 buffer": ("zeros_", lambda: torch.full((2, 7), 5, dtype=torch.int64), ()),
    "ones_ bool": ("ones_", lambda: torch.zeros(3, dtype=torch.bool), ()),
    "constant_ int32": ("constant_", lambda: torch.zeros(4, dtype=torch.int32), (3,)),
    "ones_ expanded": ("ones_", lambda: torch.zeros(3, 4).expand(2, 3, 4), ()),
    "constant_ expanded": ("constant_", lambda: torch.zeros(3).expand(5, 3), (0.25,)),
    "zeros_ expanded": ("zeros_", lambda: torch.ones(1, 4).expand(3, 4), ()),
    "eye_ expanded": ("eye_", lambda: torch.zeros(3, 1).expand(3, 3), ()),
    "dirac_ empty kernel dim": ("dirac_", lambda: torch.empty(2, 2, 0), ()),
    "dirac_ empty channels": ("dirac_", lambda: torch.empty(0, 3, 3), ()),
    "dirac_ float groups": ("dirac_", lambda: torch.ones(4, 2, 3), (4.0,)),
    "dirac_ groups 0": ("dirac_", lambda: torch.ones(4, 2, 3), (0,)),
}


@pytest.mark.parametrize("case", sorted(FILL_CASES))
def test_fills_as_torch(case):
    """Same result, error (type and message), warnings and bytes as torch.nn.init; no
    PyinitFallbackWarning where torch's own path is simply the right one."""
    name, make, args = FILL_CASES[case]
    t_err, t_warn, t_out = _outcome(getattr(tinit, name), make(), *args)
    p_err, p_warn, p_out = _outcome(getattr(pyinit, name), make(), *args)
    assert p_err == t_err
    assert p_warn == t_warn
    assert bitwise_equal(p_out, t_out)


class _Sub(torch.Tensor):
    pass


def test_fallback_warning_points_at_the_caller_once_per_initializer():
    w = torch.empty(8, 8).as_subclass(_Sub)
    with pytest.warns(pyinit.PyinitFallbackWarning) as first:
        pyinit.kaiming_uniform_(w)
    with pytest.warns(pyinit.PyinitFallbackWarning) as second:
        pyinit.uniform_(w)  # another public initializer, same kernel: its own warning
    for record, public in ((first, "kaiming_uniform_"), (second, "uniform_")):
        (warning,) = record.list
        assert warning.filename == __file__
        assert str(warning.message).startswith(f"pyinit.{public}: using torch's implementation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pyinit.uniform_(w)  # once per (initializer, reason)


def test_philox_fallback_warning_points_at_the_caller():
    w = torch.empty(8, 8).as_subclass(_Sub)
    with pytest.warns(pyinit.PyinitFallbackWarning, match="pyinit.philox.uniform_") as record:
        pyinit.philox.uniform_(w)
    assert record.list[0].filename == __file__


BAD_CALLS = {
    "uniform_ a > b": ("uniform_", lambda: torch.empty(64), (2.0, 1.0), {}),
    "uniform_ nan": ("uniform_", lambda: torch.empty(64), (float("nan"), 1.0), {}),
    "normal_ std < 0": ("normal_", lambda: torch.empty(64), (0.0, -1.0), {}),
    "trunc_normal_ a > b": ("trunc_normal_", lambda: torch.empty(64), (0.0, 1.0, 2.0, 1.0), {}),
    "uniform_ expanded": ("uniform_", lambda: torch.zeros(3).expand(4, 3), (), {}),
    "kaiming_uniform_ 1-d": ("kaiming_uniform_", lambda: torch.empty(5), (), {}),
    "sparse_ int64": ("sparse_", lambda: torch.zeros(4, 4, dtype=torch.int64), (0.5,), {}),
    "uniform_ generator str": ("uniform_", lambda: torch.empty(8), (), {"generator": "seed"}),
    "sparse_ generator str": ("sparse_", lambda: torch.empty(4, 4), (0.5,), {"generator": 1}),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_philox_refuses_before_drawing(case):
    """The philox stream validates before it draws its key: torch's exception (type and message)
    and every generator where it was."""
    name, make, args, kwargs = BAD_CALLS[case]
    with pytest.raises(Exception) as expected:
        getattr(tinit, name)(make(), *args, **kwargs)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyinit.PyinitFallbackWarning)  # sparse_ int64: torch's
        with pytest.raises(Exception) as got:
            getattr(pyinit.philox, name)(make(), *args, **kwargs)
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))
    assert torch.equal(torch.get_rng_state(), state)


# ---- torch.func.vmap: torch's own random operators implement its randomness modes -------------

VMAP_CASES = [
    ("uniform_", {"a": -1.0, "b": 2.0}),
    ("normal_", {"std": 0.5}),
    ("trunc_normal_", {"std": 0.5}),
    ("kaiming_uniform_", {}),
    ("xavier_normal_", {}),
    ("zeros_", {}),
    ("constant_", {"val": 2.0}),
]


def _vmapped(fn, kwargs, randomness):
    x = torch.zeros(3, 4, 5)
    torch.manual_seed(0)
    try:
        out = torch.func.vmap(lambda t: fn(t, **kwargs), randomness=randomness)(x)
    except Exception as exc:  # compared with torch's below
        return type(exc), str(exc), torch.get_rng_state()
    return out, None, torch.get_rng_state()


@pytest.mark.parametrize("randomness", ["different", "same", "error"])
@pytest.mark.parametrize("name, kwargs", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
def test_vmap_behaves_as_torch(name, kwargs, randomness):
    expected = _vmapped(getattr(torch.nn.init, name), kwargs, randomness)
    random = name not in ("zeros_", "constant_")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _vmapped(getattr(pyinit, name), kwargs, randomness)
    fallbacks = [w for w in caught if issubclass(w.category, pyinit.PyinitFallbackWarning)]
    if isinstance(expected[0], torch.Tensor):
        assert torch.equal(got[0], expected[0])
        # randomness="different" gives each batch element its own values, "same" one set
        if random:
            assert torch.equal(got[0][0], got[0][1]) == (randomness == "same")
    else:
        assert got[0] is expected[0] and got[1] == expected[1]
    assert torch.equal(got[2], expected[2])
    # A random initializer says that it runs torch's operators under vmap; fills are torch's path.
    assert bool(fallbacks) == random
    if fallbacks:
        assert "torch.func transform" in str(fallbacks[0].message)


# ---- philox orthogonal_: the same values for any thread count ------------------------------------


@pytest.mark.parametrize("shape", [(64, 48), (300, 1000), (16, 3, 3, 3)])
def test_philox_orthogonal_is_independent_of_the_thread_count(shape):
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            w = torch.empty(shape, dtype=torch.float64)
            torch.manual_seed(0)
            pyinit.philox.orthogonal_(w)
            results.append(w)
        assert all(torch.equal(results[0], r) for r in results[1:])
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads


# ---- the philox operators that draw their own key (what torch.compile graphs call) --------------

DRAWN = {
    "uniform_": ((-1.0, 2.0), lambda t, g: pyinit.philox.uniform_(t, -1.0, 2.0, generator=g)),
    "normal_": ((0.5, 2.0), lambda t, g: pyinit.philox.normal_(t, 0.5, 2.0, generator=g)),
    "masked_uniform_": (
        (-10.0, 10.0, 5.0),
        lambda t, g: pyinit.philox.masked_uniform_(t, generator=g),
    ),
    "trunc_normal_": (
        (0.0, 0.02, -0.04, 0.04),
        lambda t, g: pyinit.philox.trunc_normal_(t, 0.0, 0.02, -0.04, 0.04, generator=g),
    ),
    "sparse_": ((3, 0.01), lambda t, g: pyinit.philox.sparse_(t, 0.25, generator=g)),
}


@pytest.mark.parametrize("explicit", [False, True], ids=["default-generator", "generator"])
@pytest.mark.parametrize("name", list(DRAWN))
def test_drawn_operator_equals_the_eager_call(name, explicit):
    params, eager_call = DRAWN[name]
    op = getattr(torch.ops.pyinit, f"philox_{name}drawn_")

    def generator():
        return torch.Generator().manual_seed(11) if explicit else None

    torch.manual_seed(5)
    g = generator()
    expected = eager_call(torch.empty(12, 20), g)
    expected_state = (g or torch.default_generator).get_state()
    torch.manual_seed(5)
    g = generator()
    got = torch.empty(12, 20)
    version = got._version
    op(got, *params, g)
    assert bitwise_equal(got, expected)
    assert torch.equal((g or torch.default_generator).get_state(), expected_state)
    assert got._version - version == (1 + 20 if name == "sparse_" else 1)


def test_drawn_operator_failure_gives_the_key_back():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    expanded = torch.zeros(1, 8).expand(4, 8)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.ops.pyinit.philox_normal_drawn_(expanded, 0.0, 1.0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.count_nonzero(expanded) == 0


def test_meta_kernel_checks_and_counts_as_torch_meta_ops():
    # torch's meta in-place ops: std checked (message of torch's Python meta function), no bounds
    # check for uniform_, one version bump, an empty tensor's too; nothing drawn.
    state = torch.get_rng_state()
    for make in (lambda: torch.empty(3, 5, device="meta"), lambda: torch.empty(0, device="meta")):
        theirs, ours = make(), make()
        theirs.uniform_(1.0, 0.0)
        torch.ops.pyinit.uniform_(ours, 1.0, 0.0)
        torch.ops.pyinit.philox_uniform_(ours, 1.0, 0.0, 1, 2)
        assert (theirs._version, ours._version) == (1, 2)
    for std in (-1.0, -0.5, math.nan, -1e300, -(2.0**60)):
        with pytest.raises(RuntimeError) as theirs:
            torch.empty(3, device="meta").normal_(0.0, std)
        for op in (torch.ops.pyinit.normal_, torch.ops.pyinit.philox_normal_drawn_):
            with pytest.raises(RuntimeError) as ours:
                op(torch.empty(3, device="meta"), 0.0, std)
            assert str(ours.value).splitlines()[0] == str(theirs.value)
    assert torch.equal(torch.get_rng_state(), state)
