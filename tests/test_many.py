"""The *_many_ operators: the values and generator state of one single-tensor call per tensor,
in list order; every entry validated before the first write (csrc/many.cpp,
csrc/cpu/philox_cpu.cpp)."""

from __future__ import annotations

import pytest
import torch

import pyinit  # noqa: F401  (registers the operators)

ops = torch.ops.pyinit


def _tensors():
    return [
        torch.empty(300, 7),
        torch.empty(5),
        torch.empty(0),
        torch.empty(9, 33).t(),  # not contiguous
        torch.empty(1000, dtype=torch.float64),
        torch.empty(77, dtype=torch.bfloat16),
        torch.empty(70000),
    ]


LOW = [-1.0, -2.0, 0.0, 0.5, -3.0, -1.0, 0.0]
HIGH = [1.0, 2.0, 1.0, 0.75, 3.0, 1.0, 1.0]
KEYS = [1, 2, 3, 4, 5, 6, 7]
OFFSETS = [9, 8, 7, 6, 5, 4, 3]


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_torch_stream_many_equals_one_call_per_tensor(kind):
    many, single = _tensors(), _tensors()
    torch.manual_seed(0)
    getattr(ops, f"{kind}_many_")(many, LOW, HIGH, None)
    after_many = torch.get_rng_state()
    torch.manual_seed(0)
    for t, a, b in zip(single, LOW, HIGH, strict=True):
        getattr(ops, f"{kind}_")(t, a, b, None)
    assert all(torch.equal(x, y) for x, y in zip(many, single, strict=True))
    assert torch.equal(after_many, torch.get_rng_state())
    assert [t._version for t in many] == [t._version for t in single]


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_philox_many_equals_one_call_per_tensor(kind):
    many, single = _tensors(), _tensors()
    getattr(ops, f"philox_{kind}_many_")(many, LOW, HIGH, KEYS, OFFSETS)
    for t, a, b, k, o in zip(single, LOW, HIGH, KEYS, OFFSETS, strict=True):
        getattr(ops, f"philox_{kind}_")(t, a, b, k, o, [], [])
    assert all(torch.equal(x, y) for x, y in zip(many, single, strict=True))
    assert [t._version for t in many] == [t._version for t in single]


@pytest.mark.parametrize(
    "op, args, message",
    [
        ("uniform_many_", (LOW, HIGH[:-1] + [-5.0], None), "uniform_ expects to return a"),
        ("normal_many_", (LOW, HIGH[:-1] + [-1.0], None), "normal expects std >= 0.0"),
        ("uniform_many_", (LOW[:-1], HIGH, None), "expected one entry per tensor"),
        ("philox_uniform_many_", (LOW, HIGH[:-1] + [-5.0], KEYS, OFFSETS), "uniform_ expects"),
        ("philox_normal_many_", (LOW, HIGH[:-1] + [-1.0], KEYS, OFFSETS), "normal expects std"),
        ("philox_normal_many_", (LOW, HIGH, KEYS[:-1], OFFSETS), "expected one entry per tensor"),
    ],
)
def test_a_bad_last_entry_raises_before_any_write(op, args, message):
    tensors = [t.fill_(0.25) for t in _tensors()]
    versions = [t._version for t in tensors]
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match=message):
        getattr(ops, op)(tensors, *args)
    assert all(bool((t == 0.25).all()) for t in tensors)
    assert [t._version for t in tensors] == versions
    assert torch.equal(torch.get_rng_state(), rng)
