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


# ---- the CPU torch-stream fusion (Note [Many calls, one draw], torch_stream_many_cpu.cpp) -------


def _run_tensors(kind):
    """Runs that cross the pipeline's 2^15-element blocks and each other's ends, split by a dtype
    change (double: 2 words per element), by tensors normal_many_ cannot fuse (numel % 16 != 0,
    fewer than 16, not contiguous: one call each, in place), and empty tensors."""
    shapes = [(128, 256), (256,), (40000,), (48,), (16,), (3000, 16), (32,)]
    out = [torch.empty(s) for s in shapes]
    out += [torch.empty(777, dtype=torch.float64), torch.empty(4096, dtype=torch.float64)]
    out += [torch.empty(33, 48, dtype=torch.bfloat16), torch.empty(64, dtype=torch.float16)]
    out += [torch.empty(0), torch.empty(70001), torch.empty(12), torch.empty(64, 32).t()]
    out += [torch.empty(16, 16), torch.empty(65536)]
    return out


def _one_call_each(kind, tensors, p1, p2, generator):
    for t, a, b in zip(tensors, p1, p2, strict=True):
        getattr(ops, f"{kind}_")(t, a, b, generator)


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_fused_runs_equal_one_call_per_tensor(kind, threads, draw):
    many, single = _run_tensors(kind), _run_tensors(kind)
    n = len(many)
    p1 = [(-1.0 - i / 7) if kind == "uniform" else i / 3 for i in range(n)]
    p2 = [(1.0 + i / 5) if kind == "uniform" else 0.5 + i / 11 for i in range(n)]
    for generator in (None, torch.Generator().manual_seed(5)):
        start = 123 if generator is None else 5
        torch.manual_seed(start)
        if generator is not None:
            generator.manual_seed(start)
        gen_state = (generator or torch.default_generator).get_state()
        getattr(ops, f"{kind}_many_")(many, p1, p2, generator)
        after_many = (generator or torch.default_generator).get_state()
        (generator or torch.default_generator).set_state(gen_state)
        _one_call_each(kind, single, p1, p2, generator)
        after_single = (generator or torch.default_generator).get_state()
        for i, (x, y) in enumerate(zip(many, single, strict=True)):
            assert torch.equal(x, y), f"tensor {i} {tuple(x.shape)} {x.dtype}"
        assert torch.equal(after_many, after_single)
        assert [t._version for t in many] == [t._version for t in single]


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_fused_run_equals_torch_nn_init(kind):
    """The same bytes as torch.nn.init's own calls, one per tensor, after a run of 200 Linear-like
    tensors (the shape of init_module_'s batches)."""
    tensors = [torch.empty(64, 48) if i % 2 == 0 else torch.empty(64) for i in range(200)]
    reference = [torch.empty_like(t) for t in tensors]
    torch.manual_seed(9)
    fn = torch.nn.init.uniform_ if kind == "uniform" else torch.nn.init.normal_
    for t in reference:
        fn(t, -0.5 if kind == "uniform" else 0.0, 0.5 if kind == "uniform" else 0.02)
    state = torch.get_rng_state()
    torch.manual_seed(9)
    p1 = [-0.5 if kind == "uniform" else 0.0] * 200
    p2 = [0.5 if kind == "uniform" else 0.02] * 200
    getattr(ops, f"{kind}_many_")(tensors, p1, p2, None)
    assert all(torch.equal(x, y) for x, y in zip(tensors, reference, strict=True))
    assert torch.equal(torch.get_rng_state(), state)
