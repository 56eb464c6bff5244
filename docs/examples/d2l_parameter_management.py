"""D2L 5.2 "Parameter Management", rewritten with pyinit's model-level calls.

Each step builds the chapter's network twice under the same seed: once as the chapter writes it
(``net.apply`` with hand-written ``torch.nn.init`` loops), once with ``pyinit.init_module_`` /
``pyinit.deferred``, and checks that every parameter and the generator state are the same, bit for
bit. Run it: ``python docs/examples/d2l_parameter_management.py``; tests/test_model_init.py runs
every step.
"""

from __future__ import annotations

import torch
from torch import nn

import pyinit


def lazy_net() -> nn.Sequential:
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))


def _materialized(seed: int) -> nn.Sequential:
    """The chapter's lazy net after its first forward on torch.rand(2, 4), from `seed`."""
    torch.manual_seed(seed)
    x = torch.rand(2, 4)
    net = lazy_net()
    net(x)
    return net


def init_normal(module):
    """The chapter's built-in initialization, by hand: weights N(0, 0.01), biases zero."""
    if type(module) is nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)


# init_normal as init_module_ rules.
NORMAL_RULES = {nn.Linear: {"weight": ("normal_", {"mean": 0, "std": 0.01}), "bias": "zeros_"}}


def same(a: nn.Module, b: nn.Module) -> bool:
    """Every parameter and buffer equal, bit for bit."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def run(step) -> tuple[nn.Module, nn.Module, bool]:
    """(hand-written net, pyinit net, whether the generator ended in the same state)."""
    states = []

    def mark():
        states.append(torch.get_rng_state())

    hand, rules = step(mark=mark)
    return hand, rules, len(states) == 2 and torch.equal(states[0], states[1])


def step_normal(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """Built-in initialization: weights N(0, 0.01), biases zero."""

    hand = _materialized(seed)
    hand.apply(init_normal)
    mark()
    rules = _materialized(seed)
    pyinit.init_module_(rules, NORMAL_RULES)
    mark()
    return hand, rules


def step_constant(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """Weights 1, biases zero."""

    def init_constant(module):
        if type(module) is nn.Linear:
            nn.init.constant_(module.weight, 1)
            nn.init.zeros_(module.bias)

    hand = _materialized(seed)
    hand.apply(init_constant)
    mark()
    rules = _materialized(seed)
    pyinit.init_module_(rules, {nn.Linear: {"weight": ("constant_", {"val": 1}), "bias": "zeros_"}})
    mark()
    return hand, rules


def step_per_layer(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """Xavier for the first layer, the constant 42 for the second."""

    def init_xavier(module):
        if type(module) is nn.Linear:
            nn.init.xavier_uniform_(module.weight)

    def init_42(module):
        if type(module) is nn.Linear:
            nn.init.constant_(module.weight, 42)

    hand = _materialized(seed)
    hand[0].apply(init_xavier)
    hand[2].apply(init_42)
    mark()
    rules = _materialized(seed)
    pyinit.init_module_(
        rules, {"0.weight": "xavier_uniform_", "2.weight": ("constant_", {"val": 42})}
    )
    mark()
    return hand, rules


def step_custom(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """The chapter's custom initializer: U(-10, 10), then zero every |w| < 5 (pyinit's fused
    masked_uniform_)."""

    def my_init(module):
        if type(module) is nn.Linear:
            nn.init.uniform_(module.weight, -10, 10)
            module.weight.data *= module.weight.data.abs() >= 5

    hand = _materialized(seed)
    hand.apply(my_init)
    mark()
    rules = _materialized(seed)
    pyinit.init_module_(rules, {nn.Linear: {"weight": "masked_uniform_"}})
    mark()
    return hand, rules


def step_direct_edit(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """Setting parameters directly after the custom init, as the chapter does."""
    hand, rules = step_custom(seed, mark)
    for net in (hand, rules):
        net[0].weight.data[:] += 1
        net[0].weight.data[0, 0] = 42
    return hand, rules


def step_tied(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """A shared layer used twice: initialized once."""

    def build():
        torch.manual_seed(seed)
        x = torch.rand(2, 4)
        shared = nn.LazyLinear(8)
        net = nn.Sequential(
            nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1)
        )
        net(x)
        return net

    hand = build()
    hand.apply(init_normal)
    mark()
    rules = build()
    pyinit.init_module_(rules, NORMAL_RULES)
    mark()
    assert rules[2].weight is rules[4].weight
    return hand, rules


def step_lazy_forward(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """Rules given before the lazy network has run: they run after its first forward."""

    hand = _materialized(seed)
    hand.apply(init_normal)
    mark()
    torch.manual_seed(seed)
    x = torch.rand(2, 4)
    rules = lazy_net()
    report = pyinit.init_module_(
        rules,
        NORMAL_RULES,
        lazy="forward",
    )
    assert report.pending
    rules(x)
    mark()
    assert not report.pending
    return hand, rules


def step_deferred(seed: int = 0, mark=lambda: None) -> tuple[nn.Module, nn.Module]:
    """The chapter's (eager) MLP built deferred, then materialized: the same weights."""

    def build():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    torch.manual_seed(seed)
    eager = build()
    mark()
    with pyinit.deferred():
        net = build()
    torch.manual_seed(seed)
    pyinit.materialize_(net, "cpu")
    mark()
    return eager, net


STEPS = [
    step_normal,
    step_constant,
    step_per_layer,
    step_custom,
    step_direct_edit,
    step_tied,
    step_lazy_forward,
    step_deferred,
]


def main() -> None:
    for step in STEPS:
        hand, rules, same_rng = run(step)
        values = "same values" if same(hand, rules) else "DIFFERENT VALUES"
        rng = "same generator state" if same_rng else "DIFFERENT GENERATOR STATE"
        print(f"{step.__name__:<18} {values}, {rng}")


if __name__ == "__main__":
    main()
