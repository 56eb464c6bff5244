"""The direct operator call and the C++ philox key draw (Note [The direct operator call],
csrc/python/module.cpp): what they do when they run, that they refuse (return False, nothing
touched) everything else, and that the initializers really take them."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

import pyinit
import pyinit.philox as philox
from pyinit import _ops, _streams
from pyinit._ops import _C, direct_call
from tests.helpers import bitwise_equal


def _after_draws(g: torch.Generator, how: str) -> None:
    """Leaves `g` mid-block, or with a cached normal sample, or just after a twist."""
    if how == "odd":
        torch.randint(0, 10, (5,), generator=g)
    elif how == "normal_cache":
        torch.empty(3, dtype=torch.float64).normal_(generator=g)  # the serial path caches a sample
    elif how == "twist":
        torch.empty(624 * 2 - 3).uniform_(generator=g)


def _randint_key(g: torch.Generator) -> tuple[int, int]:
    """draw_key's definition (docs/philox_stream.md): torch.randint's words."""
    w = torch.randint(0, 2**32, (4,), dtype=torch.int64, generator=g).tolist()
    return w[0] | (w[1] << 32), w[2] | (w[3] << 32)


@pytest.mark.parametrize("how", ["fresh", "odd", "normal_cache", "twist"])
@pytest.mark.parametrize("explicit", [True, False])
def test_philox_key_is_randints_key(how, explicit):
    def fresh() -> torch.Generator:
        g = torch.Generator() if explicit else torch.default_generator
        g.manual_seed(1234)
        _after_draws(g, how)
        return g

    g = fresh()
    expected = _randint_key(g)
    expected_state = g.get_state()
    g = fresh()
    assert _C.philox_key(g if explicit else None) == expected
    assert torch.equal(g.get_state(), expected_state)
    g = fresh()
    assert _streams.draw_key(g if explicit else None) == expected
    assert torch.equal(g.get_state(), expected_state)


@pytest.mark.parametrize("how", ["fresh", "twist"])
def test_philox_call_draws_randints_key(how):
    g = torch.Generator().manual_seed(99)
    _after_draws(g, how)
    w = torch.empty(33, 7)
    assert _C.philox_call(_ops._HANDLES["philox_normal_"], g, w, 0.5, 2.0) is True
    g2 = torch.Generator().manual_seed(99)
    _after_draws(g2, how)
    key, offset = _randint_key(g2)
    expected = torch.empty(33, 7)
    _ops.ops.philox_normal_(expected, 0.5, 2.0, _streams._signed(key), _streams._signed(offset))
    assert bitwise_equal(w, expected)
    assert torch.equal(g.get_state(), g2.get_state())


def test_philox_key_leaves_other_generators_to_python():
    assert _C.philox_key("not a generator") is None
    w = torch.empty(4)
    before = torch.default_generator.get_state()
    handle = _ops._HANDLES["philox_uniform_"]
    assert _C.philox_call(handle, "g", w, 0.0, 1.0) is False
    assert _C.philox_call(handle, None, w.to(torch.int32), 0.0, 1.0) is False
    assert torch.equal(torch.default_generator.get_state(), before)
    if torch.cuda.is_available():
        assert _C.philox_key(torch.Generator(device="cuda")) is None


def test_direct_call_runs_the_operator_under_no_grad():
    w = torch.nn.Parameter(torch.empty(5, 7))
    version = w._version
    torch.manual_seed(3)
    assert direct_call("uniform_", w, -1.0, 1.0, None) is True
    assert torch.is_grad_enabled()
    assert w._version > version
    assert w.grad_fn is None and w.requires_grad
    torch.manual_seed(3)
    expected = torch.empty(5, 7).uniform_(-1.0, 1.0)
    assert bitwise_equal(w.detach(), expected)


def test_direct_call_takes_ints_for_floats_as_torch_ops():
    a, b = torch.empty(100), torch.empty(100)
    torch.manual_seed(0)
    assert direct_call("uniform_", a, -2, 3, None)
    torch.manual_seed(0)
    _ops.ops.uniform_(b, -2, 3, None)
    assert bitwise_equal(a, b)


class _Sub(torch.Tensor):
    pass


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: (torch.empty(4, dtype=torch.int32), 0.0, 1.0, None), id="int-dtype"),
        pytest.param(lambda: (torch.empty(4, device="meta"), 0.0, 1.0, None), id="meta"),
        pytest.param(lambda: (torch.empty(4).as_subclass(_Sub), 0.0, 1.0, None), id="subclass"),
        pytest.param(lambda: (torch.empty(4), 0.0, 1.0, "g"), id="not-a-generator"),
        pytest.param(lambda: (torch.empty(4), True, 1.0, None), id="bool-for-float"),
        pytest.param(lambda: (torch.empty(4), 0.0, 1.0, None, None), id="too-many"),
        pytest.param(lambda: (torch.empty(4), 0.0), id="missing-required"),
        pytest.param(lambda: (torch.empty(4).to_sparse(), 0.0, 1.0, None), id="sparse"),
        pytest.param(lambda: ("x", 0.0, 1.0, None), id="not-a-tensor"),
    ],
)
def test_direct_call_refuses_what_it_does_not_handle(make):
    args = make()
    g = torch.default_generator
    before = g.get_state()
    target = args[0]
    dense = isinstance(target, torch.Tensor) and target.layout == torch.strided
    snapshot = target.clone() if dense and not target.is_meta else None
    assert direct_call("uniform_", *args) is False
    assert torch.equal(g.get_state(), before)
    if snapshot is not None:
        assert bitwise_equal(target.as_subclass(torch.Tensor), snapshot.as_subclass(torch.Tensor))


def test_direct_call_refuses_inside_vmap_and_function_modes():
    seen = []

    def f(x):
        seen.append(direct_call("uniform_", x, 0.0, 1.0, None))
        return x

    torch.func.vmap(f, randomness="different")(torch.empty(3, 4))
    assert seen == [False]

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Mode():
        assert direct_call("uniform_", torch.empty(4), 0.0, 1.0, None) is False


def test_direct_call_raises_what_torch_ops_raises():
    w = torch.empty(1).expand(8)  # overlapping memory: the kernel refuses before writing
    with pytest.raises(RuntimeError) as direct:
        direct_call("uniform_", w, 0.0, 1.0, None)
    with pytest.raises(RuntimeError) as via_ops:
        _ops.ops.uniform_(w, 0.0, 1.0, None)
    assert str(direct.value) == str(via_ops.value)


def test_initializers_take_the_direct_path(monkeypatch):
    """With use_kernel and draw_key made to fail, the common calls still run (so they do not go
    through them), and write torch.nn.init's / the long path's values."""
    w = torch.empty(64, 32)
    torch.manual_seed(5)
    torch.nn.init.kaiming_uniform_(w)
    expected = w.clone()
    long_philox = torch.empty(64, 32)
    monkeypatch.setattr(_streams, "_DIRECT", False)
    torch.manual_seed(5)
    philox.kaiming_uniform_(long_philox)
    monkeypatch.setattr(_streams, "_DIRECT", True)

    def fail(*args, **kwargs):
        raise AssertionError("the long path ran")

    monkeypatch.setattr(_streams, "use_kernel", fail)
    monkeypatch.setattr(_streams, "draw_key", fail)
    torch.manual_seed(5)
    pyinit.kaiming_uniform_(w)
    assert bitwise_equal(w, expected)
    torch.manual_seed(5)
    philox.kaiming_uniform_(w)
    assert bitwise_equal(w, long_philox)


def test_failed_philox_call_gives_the_key_back():
    w = torch.empty(1).expand(8)
    g = torch.Generator().manual_seed(11)
    before = g.get_state()
    with pytest.raises(RuntimeError):
        philox.uniform_(w, generator=g)
    assert torch.equal(g.get_state(), before)
