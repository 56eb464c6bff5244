"""pyinit.init_module_: rules, ties, strict, lazy modules, philox keys from names; D2L 5.2."""

from __future__ import annotations

import copy
import importlib.util
import math
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

import pyinit
from pyinit.reference import philox_numpy as ref

_EXAMPLE = pathlib.Path(__file__).parents[1] / "docs" / "examples" / "d2l_parameter_management.py"
_spec = importlib.util.spec_from_file_location("d2l_parameter_management", _EXAMPLE)
d2l = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(d2l)


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- the D2L chapter, step by step -----------------------------------------------------------


@pytest.mark.parametrize("step", d2l.STEPS, ids=lambda s: s.__name__)
def test_d2l_chapter_step_is_bit_identical(step):
    hand, rules, same_rng = d2l.run(step)
    assert hand is not rules
    assert d2l.same(hand, rules)
    assert same_rng
    # The step did something: the weights are not all zero and differ from a fresh seed-0 net's.
    assert any(p.abs().sum() > 0 for p in rules.parameters())


def test_d2l_steps_differ_from_each_other():
    """Guards against a comparison that holds whatever the rules do."""
    normal, _, _ = d2l.run(d2l.step_normal)
    custom, _, _ = d2l.run(d2l.step_custom)
    assert not d2l.same(normal, custom)


# ---- rules -----------------------------------------------------------------------------------


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.LayerNorm(3))


def test_first_matching_rule_wins_and_unmatched_keep_values():
    torch.manual_seed(0)
    net = _mlp()
    before = _state(net)
    report = pyinit.init_module_(
        net, [("0.weight", "zeros_"), (nn.Linear, "ones_"), ("*.weight", ("constant_", {"val": 3}))]
    )
    assert torch.equal(net[0].weight, torch.zeros(8, 4))
    assert torch.equal(net[0].bias, torch.ones(8))
    assert torch.equal(net[2].weight, torch.ones(3, 8))
    assert torch.equal(net[3].weight, torch.full((3,), 3.0))
    assert torch.equal(net[3].bias, before["3.bias"])  # no rule
    assert report["3.bias"].status == "kept"
    assert report["0.weight"].rule == 0 and report["0.bias"].rule == 1
    assert report["3.weight"].action == "constant_(val=3)"


def test_predicate_tuple_of_types_callable_and_none():
    torch.manual_seed(0)
    net = _mlp()
    before = _state(net)
    seen = []

    def halve(t):
        seen.append(t.shape)
        t.mul_(0.5)

    pyinit.init_module_(
        net,
        {
            (lambda name, module, t: t.dim() == 1 and name.startswith("2.")): None,
            (nn.Linear, nn.LayerNorm): {"weight": halve},
        },
    )
    assert torch.equal(net[0].weight, before["0.weight"] * 0.5)
    assert torch.equal(net[3].weight, before["3.weight"] * 0.5)
    assert torch.equal(net[2].bias, before["2.bias"])
    assert seen == [torch.Size([8, 4]), torch.Size([3, 8]), torch.Size([3])]
    assert not net[0].weight.requires_grad or net[0].weight.grad_fn is None


def test_generator_goes_to_initializers_that_take_one():
    net_a, net_b = _mlp(), _mlp()
    g = torch.Generator().manual_seed(7)
    pyinit.init_module_(
        net_a, {nn.Linear: {"weight": "kaiming_uniform_", "bias": "zeros_"}}, generator=g
    )
    g2 = torch.Generator().manual_seed(7)
    for layer in (net_b[0], net_b[2]):
        torch.nn.init.kaiming_uniform_(layer.weight, generator=g2)
        torch.nn.init.zeros_(layer.bias)
    assert torch.equal(net_a[0].weight, net_b[0].weight)
    assert torch.equal(net_a[2].weight, net_b[2].weight)
    assert torch.equal(g.get_state(), g2.get_state())


def test_visiting_order_is_module_apply_order():
    """Children before their parent, each module's parameters in registration order."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.own = nn.Parameter(torch.empty(5))
            self.inner = nn.Linear(3, 3)

    torch.manual_seed(0)
    m = Block()
    hand = Block()
    torch.manual_seed(1)
    pyinit.init_module_(m, {"*": ("normal_", {})})
    torch.manual_seed(1)

    def visit(mod):
        for p in mod._parameters.values():
            torch.nn.init.normal_(p)

    hand.apply(visit)
    assert _equal(_state(m), _state(hand))
    assert list(pyinit.init_module_(m, {"*": None})) == ["inner.weight", "inner.bias", "own"]


def test_strict_names_every_uncovered_parameter_and_writes_nothing():
    torch.manual_seed(0)
    net = _mlp()
    before = _state(net)
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match=r"no rule covers 2\.bias, 3\.weight, 3\.bias"):
        pyinit.init_module_(net, {"0.*": "normal_", "2.weight": "normal_"}, strict=True)
    assert _equal(_state(net), before)
    assert torch.equal(torch.get_rng_state(), rng)
    report = pyinit.init_module_(net, {"0.*": "normal_", "*": None}, strict=True)
    assert report["3.bias"].status == "kept"


@pytest.mark.parametrize(
    "rules, error, message",
    [
        ({nn.Linear: "nonexistent_"}, ValueError, "not an in-place pyinit initializer"),
        ({nn.Linear: "calculate_gain"}, ValueError, "not an in-place pyinit initializer"),
        ({nn.Linear: ("normal_", {"sd": 1})}, TypeError, "unexpected keyword argument 'sd'"),
        ({"*.weight": {"weight": "zeros_"}}, TypeError, "needs a module-type match"),
        ({3: "zeros_"}, TypeError, "a match is a module type"),
        ({nn.Linear: 5}, TypeError, "cannot use 5"),
    ],
)
def test_bad_rules_raise_before_writing(rules, error, message):
    net = _mlp()
    before = _state(net)
    with pytest.raises(error, match=message):
        pyinit.init_module_(net, rules)
    assert _equal(_state(net), before)


def test_buffers_are_matched_only_when_asked():
    bn = nn.Sequential(nn.BatchNorm1d(4))
    bn[0].running_mean.fill_(3)
    pyinit.init_module_(bn, {"*.running_mean": "zeros_"})
    assert torch.equal(bn[0].running_mean, torch.full((4,), 3.0))
    report = pyinit.init_module_(bn, {"*.running_mean": "zeros_"}, buffers=True)
    assert torch.equal(bn[0].running_mean, torch.zeros(4))
    assert report["0.running_mean"].buffer


# ---- tied parameters -----------------------------------------------------------------------------


class TiedLM(nn.Module):
    def __init__(self, vocab=50, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.body = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight


def test_tied_parameter_is_initialized_once():
    torch.manual_seed(0)
    lm = TiedLM()
    torch.manual_seed(1)
    report = pyinit.init_module_(lm, {"*.weight": ("normal_", {"std": 0.02})})
    after = torch.get_rng_state()
    assert lm.head.weight is lm.embed.weight
    assert report["head.weight"].status == "tied"
    assert report["head.weight"].tied_to == "embed.weight"
    # One draw for the tied tensor: the same as initializing embed and body once each.
    torch.manual_seed(0)
    hand = TiedLM()
    torch.manual_seed(1)
    torch.nn.init.normal_(hand.embed.weight, std=0.02)
    torch.nn.init.normal_(hand.body.weight, std=0.02)
    assert torch.equal(torch.get_rng_state(), after)
    assert _equal(_state(lm), _state(hand))


def test_rules_that_disagree_on_a_tied_tensor_raise():
    lm = TiedLM()
    before = _state(lm)
    with pytest.raises(ValueError, match="rules disagree on one tied tensor: embed.weight"):
        pyinit.init_module_(lm, {nn.Embedding: {"weight": "normal_"}, nn.Linear: "zeros_"})
    assert _equal(_state(lm), before)
    # Equal actions from two rules agree.
    pyinit.init_module_(lm, {nn.Embedding: {"weight": "ones_"}, "head.*": "ones_"})
    assert torch.equal(lm.head.weight, torch.ones(50, 16))


def test_tie_carried_by_a_later_name():
    """The first name a rule matches initializes the tensor, even when an unmatched alias comes
    first in visiting order."""
    lm = TiedLM()
    report = pyinit.init_module_(lm, {"head.weight": "ones_"})
    assert torch.equal(lm.embed.weight, torch.ones(50, 16))
    assert report["head.weight"].status == "initialized"
    assert report["embed.weight"].status == "tied"


# ---- lazy modules ------------------------------------------------------------------------------


def test_lazy_parameters_raise_with_their_names():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 1))
    with pytest.raises(
        ValueError, match=r"not materialized yet \(lazy modules\): 0\.weight, 0\.bias"
    ):
        pyinit.init_module_(net, {nn.Linear: "zeros_"})


def test_lazy_forward_runs_after_the_first_forward_only():
    net = nn.Sequential(nn.LazyLinear(3))
    report = pyinit.init_module_(net, {nn.Linear: "ones_"}, lazy="forward")
    assert report.pending and len(report) == 0
    net(torch.rand(2, 5))
    assert not report.pending
    assert torch.equal(net[0].weight, torch.ones(3, 5))
    net[0].weight.data.zero_()
    net(torch.rand(2, 5))  # the hook ran once
    assert torch.equal(net[0].weight, torch.zeros(3, 5))


def test_lazy_forward_raises_when_a_lazy_module_did_not_run():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.LazyLinear(2)
            self.unused = nn.LazyLinear(2)

        def forward(self, x):
            return self.used(x)

    m = TwoBranches()
    pyinit.init_module_(m, {nn.Linear: "zeros_"}, lazy="forward")
    with pytest.raises(RuntimeError, match="still not materialized.*unused.weight"):
        m(torch.rand(1, 3))


# ---- the philox stream: keys from names ----------------------------------------------------------


def _philox_init(module, rules, seed=5, **kw):
    g = torch.Generator().manual_seed(seed)
    with pyinit.stream("philox"):
        return pyinit.init_module_(module, rules, generator=g, **kw)


def test_philox_keys_come_from_seed_and_name():
    net = _mlp()
    rng = torch.get_rng_state()
    _philox_init(net, {nn.Linear: {"weight": ("uniform_", {"a": -1.0, "b": 2.0})}})
    assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn from the default generator
    for name in ("0.weight", "2.weight"):
        key, offset = ref.name_key(5, name)
        t = dict(net.named_parameters())[name]
        expected = ref.uniform(key, offset, np.arange(t.numel(), dtype=np.uint64), -1.0, 2.0)
        np.testing.assert_array_equal(t.detach().numpy().ravel(), expected)


def test_philox_values_do_not_depend_on_order_subset_or_repetition():
    rules = {nn.Linear: {"weight": "kaiming_uniform_", "bias": ("normal_", {"std": 0.1})}}
    full = _mlp()
    _philox_init(full, rules)
    subset = _mlp()
    _philox_init(subset, [("2.weight", "kaiming_uniform_")])
    assert torch.equal(subset[2].weight, full[2].weight)
    twice = _mlp()
    _philox_init(twice, rules)
    _philox_init(twice, rules)
    assert _equal(_state(twice), _state(full))
    # Another registration order: the same names get the same values.
    reordered = nn.Sequential()
    reordered.add_module("2", nn.Linear(8, 3))
    reordered.add_module("0", nn.Linear(4, 8))
    _philox_init(reordered, rules)
    assert torch.equal(reordered[0].weight, full[2].weight)  # module "2"
    assert torch.equal(getattr(reordered, "0").bias, full[0].bias)
    # Another seed, other values.
    other = _mlp()
    _philox_init(other, rules, seed=6)
    assert not torch.equal(other[0].weight, full[0].weight)


def test_philox_kaiming_bound_from_fans():
    net = nn.Sequential(nn.Linear(64, 32))
    _philox_init(net, {"0.weight": ("kaiming_uniform_", {"a": math.sqrt(5)})})
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))  # torch's calculate_gain("leaky_relu", a)
    bound = math.sqrt(3.0) * (gain / math.sqrt(64))
    w = net[0].weight
    key, offset = ref.name_key(5, "0.weight")
    expected = ref.uniform(key, offset, np.arange(w.numel(), dtype=np.uint64), -bound, bound)
    np.testing.assert_array_equal(w.detach().numpy().ravel(), expected)


# ---- what makes init_module_ fast must not change what it writes (Note [Per-tensor objects]) ----


class _MyLinear(nn.Linear):
    pass


def _mixed() -> nn.Sequential:
    """Layers whose weights share shapes with other layers' and differ in type, dtype and shape, in
    an order that interleaves them: the replayed bounds must follow each tensor's own shape."""
    return nn.Sequential(
        nn.Linear(16, 8),
        _MyLinear(8, 16),
        nn.Linear(16, 8),
        nn.Linear(16, 8, dtype=torch.float64),
        nn.Conv2d(3, 4, 3),
        nn.Linear(8, 16, dtype=torch.bfloat16),
        _MyLinear(16, 8),
        nn.Linear(4, 8, bias=False),
    )


def _by_hand(net: nn.Module, rules: list) -> None:
    """init_module_'s rules written as the loop users write: Module.apply order, first rule that
    matches, torch.nn.init's functions (the torch stream's values are theirs, bit for bit)."""
    import fnmatch

    names = {id(m): n for n, m in net.named_modules()}

    def visit(m):
        prefix = names[id(m)] + "." if names[id(m)] else ""
        for pname, p in m._parameters.items():
            if p is None:
                continue
            for match, action in rules:
                if isinstance(match, str):
                    hit = action if fnmatch.fnmatchcase(prefix + pname, match) else None
                elif isinstance(m, match):
                    hit = action.get(pname) if isinstance(action, dict) else action
                else:
                    hit = None
                if hit is not None:
                    name, kwargs = (hit, {}) if isinstance(hit, str) else hit
                    getattr(torch.nn.init, name)(p, **kwargs)
                    break

    net.apply(visit)


_RULE_SETS = [
    [(nn.Linear, {"weight": ("kaiming_uniform_", {"a": math.sqrt(5)}), "bias": "normal_"})],
    [
        (_MyLinear, {"weight": ("xavier_normal_", {"gain": 2.0})}),  # its bias: the next rule
        (nn.Linear, {"weight": "kaiming_normal_", "bias": ("uniform_", {"a": -0.5, "b": 0.5})}),
        ("*.weight", ("xavier_uniform_", {})),
    ],
    [
        ("[0-2].*", ("normal_", {"std": 0.02})),
        ("*.weight", ("kaiming_uniform_", {"mode": "fan_out"})),
    ],
]


@pytest.mark.parametrize("rules", _RULE_SETS, ids=["linear", "subclass-first", "globs"])
def test_replayed_bounds_equal_torch_per_tensor(rules):
    torch.manual_seed(0)
    net = _mixed()
    hand = copy.deepcopy(net)  # the tensors no rule matches keep these values
    torch.manual_seed(3)
    report = pyinit.init_module_(net, rules)
    after = torch.get_rng_state()
    torch.manual_seed(3)
    _by_hand(hand, rules)
    assert torch.equal(torch.get_rng_state(), after)
    assert _equal(_state(net), _state(hand))
    assert report.operator_calls >= 1  # the batch ran (else this tests nothing)


def test_rules_changing_between_calls_on_one_model():
    """Nothing from one call (matches, replayed bounds, batch decisions) is reused by the next."""
    torch.manual_seed(0)
    net = _mixed()
    hand = copy.deepcopy(net)
    for seed, rules in enumerate(_RULE_SETS + _RULE_SETS[::-1]):
        torch.manual_seed(seed)
        pyinit.init_module_(net, rules)
        torch.manual_seed(seed)
        _by_hand(hand, rules)
        assert _equal(_state(net), _state(hand)), rules


def test_subclass_rule_and_glob_matching_some_names():
    net = _mixed()
    before = _state(net)
    report = pyinit.init_module_(
        net, [(_MyLinear, {"weight": "zeros_"}), ("[13].bias", "ones_"), ("6.*", "ones_")]
    )
    assert torch.equal(net[1].weight, torch.zeros(16, 8))  # _MyLinear weight: rule 0
    assert torch.equal(net[1].bias, torch.ones(16))  # rule 0 has no bias: rule 1's glob
    assert torch.equal(net[3].bias, torch.ones(8, dtype=torch.float64))
    assert torch.equal(net[6].weight, torch.zeros(8, 16)) and torch.equal(
        net[6].bias, torch.ones(8)
    )
    assert [report[n].rule for n in ("1.weight", "1.bias", "3.bias", "6.weight", "6.bias")] == [
        0, 1, 1, 0, 2,
    ]  # fmt: skip
    for name in ("0.weight", "0.bias", "2.weight", "3.weight", "4.weight", "7.weight"):
        assert report[name].status == "kept"
        assert torch.equal(dict(net.named_parameters())[name], before[name])


def test_philox_replayed_bounds_equal_one_tensor_per_call():
    """In the philox stream a tensor's values depend only on its name, shape and rule: initializing
    the whole model (bounds replayed across same-shape tensors) equals one call per parameter."""
    import fnmatch

    rules = _RULE_SETS[1]
    whole = _mixed()
    single = copy.deepcopy(whole)  # the tensors no rule matches keep these values
    report = _philox_init(whole, rules)
    assert report.operator_calls >= 1
    done = 0
    for name, _ in list(single.named_parameters()):
        module_name, _, pname = name.rpartition(".")
        module = single.get_submodule(module_name)
        for match, action in rules:
            if isinstance(match, str):
                hit = action if fnmatch.fnmatchcase(name, match) else None
            else:
                hit = action.get(pname) if isinstance(module, match) else None
            if hit is not None:
                _philox_init(single, [(name, hit)])
                done += 1
                break
    assert done >= 10
    assert _equal(_state(whole), _state(single))


def test_ties_by_address_meta_and_views():
    """A tie is the same elements: one Parameter under two names, or two Parameter objects on one
    storage view; not two views of one buffer, nor meta or empty tensors (they have no address)."""
    flat = torch.zeros(8)
    m = nn.Module()
    m.a = nn.Linear(2, 2)
    m.b = nn.Linear(2, 2)
    m.b.weight = nn.Parameter(m.a.weight.data)  # another Parameter object, same elements
    m.c = nn.Module()
    m.c.lo = nn.Parameter(flat[:4])
    m.c.hi = nn.Parameter(flat[4:])
    m.e1 = nn.Parameter(torch.empty(0))
    m.e2 = nn.Parameter(torch.empty(0))
    m.meta = nn.Linear(2, 2, device="meta")
    report = pyinit.init_module_(m, {"*": "ones_"})
    assert report["b.weight"].status == "tied" and report["b.weight"].tied_to == "a.weight"
    for name in ("c.lo", "c.hi", "e1", "e2", "meta.weight", "meta.bias", "a.bias", "b.bias"):
        assert report[name].status == "initialized", name
    assert torch.equal(flat, torch.ones(8))


def test_name_keys_in_cpp_equal_the_oracle():
    from pyinit import _C
    from pyinit._streams import NameKeys, _signed, name_key

    names = ["", "a", "0.weight", "é.ü.名前", "x" * 127, "x" * 128, "x" * 129, "y" * 300]
    names += [f"layers.{i}.attn.q_proj.weight" for i in range(50)]
    for seed in (0, 5, 2**63 - 1, 2**63, 2**64 - 1):
        keys, offsets = _C.name_keys(seed, [*names, None])
        assert keys[-1] == offsets[-1] == 0
        for name, key, offset in zip(names, keys, offsets, strict=False):
            expected = ref.name_key(seed, name)
            assert (key, offset) == (_signed(expected[0]), _signed(expected[1])), (seed, name)
            assert name_key(seed, name) == NameKeys(seed)(name) == expected
    with pytest.raises(UnicodeEncodeError):
        _C.name_keys(0, ["\ud800"])  # as name.encode("utf-8")
    with pytest.raises(TypeError):
        _C.name_keys(0, [b"bytes"])


def test_tensor_facts():
    from pyinit import _C

    class Sub(torch.Tensor):
        pass

    p, t = nn.Parameter(torch.zeros(3, 4)), torch.ones(5, dtype=torch.float64)
    sparse = torch.zeros(3).to_sparse()
    sub = torch.zeros(2).as_subclass(Sub)
    addresses, codes = _C.tensor_facts([p, t, t[1:], sparse, sub])
    assert addresses[:3] == [p.data_ptr(), t.data_ptr(), t[1:].data_ptr()]
    assert addresses[3] is None and addresses[4] is None and codes[4] is None
    assert codes[0] != codes[1] and codes[1] == codes[2]  # Parameter vs float64 Tensor; a view
    assert codes[0] & 0xFFFFFF == codes[1] & 0xFFFFFF  # one device
    with torch.inference_mode():
        inference = torch.zeros(5, dtype=torch.float64)
    assert _C.tensor_code(inference) != codes[1]
    assert _C.tensor_code(sub) is None
