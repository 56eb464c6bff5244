"""Whole-model initialization: ``init_module_(module, rules)``.

    pyinit.init_module_(net, {nn.Linear: {"weight": ("normal_", {"std": 0.01}), "bias": "zeros_"}})

is the rule-table form of the loop users write by hand (``net.apply(init_normal)``, D2L 5.2), and in
the torch stream it writes the same values: modules are visited in ``Module.apply`` order (children
before their parent), each module's own parameters in registration order, and every rule runs the
pyinit initializer it names (bit-identical to torch.nn.init's). A storage reachable under several
names (a shared layer, a tied embedding and head) is initialized once. In the philox stream each
parameter's key comes from the seed and its qualified name (docs/philox_stream.md, "Keys from
names"), so values do not depend on visiting order, on the subset initialized, or on repetition.
See docs/model_init.md.
"""

from __future__ import annotations

import contextlib
import fnmatch
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from . import _sharding
from . import init as _init
from ._batch import BatchingStream
from ._selection import current_stream, selected
from ._streams import PhiloxStream, name_key

__all__ = ["init_module_", "InitReport", "ParamInit"]

# What a rule can say to do: an initializer name, (name, kwargs), a callable taking the tensor, or
# None (keep the current values, and count the tensor as covered for strict=True).
Action = str | tuple | Callable[[Tensor], Any] | None
Match = type | tuple | str | Callable[[str, nn.Module, Tensor], bool]


@dataclass(frozen=True)
class _Resolved:
    """One normalized action: `label` names it in reports and error messages."""

    label: str
    name: str | None = None  # a pyinit initializer
    kwargs: tuple[tuple[str, Any], ...] = ()
    fn: Callable[[Tensor], Any] | None = None  # a user callable
    keep: bool = False

    def run(self, tensor: Tensor, generator: torch.Generator | None) -> None:
        if self.keep:
            return
        if self.fn is not None:
            with torch.no_grad():
                self.fn(tensor)
            return
        initializer, kwargs, takes_generator = self._bound
        if generator is not None and takes_generator:
            kwargs = {**kwargs, "generator": generator}
        initializer(tensor, **kwargs)

    def __post_init__(self) -> None:
        # (the initializer, its keyword arguments, whether it takes a generator), found once.
        if self.name is not None:
            bound = (
                getattr(_init, self.name),
                dict(self.kwargs),
                "generator" in _parameters_of(self.name),
            )
            object.__setattr__(self, "_bound", bound)


_KEEP = _Resolved(label="kept (rule says None)", keep=True)
_signatures: dict[str, Mapping[str, inspect.Parameter]] = {}


def _parameters_of(name: str) -> Mapping[str, inspect.Parameter]:
    if name not in _signatures:
        _signatures[name] = inspect.signature(getattr(_init, name)).parameters
    return _signatures[name]


def _resolve(action: Action, where: str) -> _Resolved:
    if action is None:
        return _KEEP
    if isinstance(action, str):
        action = (action, {})
    if isinstance(action, tuple):
        if len(action) != 2 or not isinstance(action[0], str) or not isinstance(action[1], Mapping):
            raise TypeError(f"{where}: expected (initializer name, kwargs dict), got {action!r}")
        name, kwargs = action
        if name not in _init.__all__ or not name.endswith("_"):
            raise ValueError(f"{where}: {name!r} is not an in-place pyinit initializer")
        accepted = _parameters_of(name)
        for key in kwargs:
            if key not in accepted or key == "tensor":
                raise TypeError(f"{where}: {name}() got an unexpected keyword argument {key!r}")
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return _Resolved(label=f"{name}({args})", name=name, kwargs=tuple(kwargs.items()))
    if callable(action):
        label = getattr(action, "__qualname__", None) or repr(action)
        return _Resolved(label=f"{label}(tensor)", fn=action)
    raise TypeError(f"{where}: cannot use {action!r} as an initializer")


@dataclass(frozen=True)
class _Rule:
    index: int
    match: Match
    action: _Resolved | dict[str, _Resolved]

    def action_for(self, qualname: str, module: nn.Module, pname: str, tensor: Tensor):
        """The rule's action for this tensor, or None when the rule does not match it."""
        m = self.match
        if isinstance(m, type) or (
            isinstance(m, tuple) and m and all(isinstance(t, type) for t in m)
        ):
            if not isinstance(module, m):
                return None
            if isinstance(self.action, dict):
                return self.action.get(pname)
            return self.action
        if isinstance(m, str):
            return self.action if fnmatch.fnmatchcase(qualname, m) else None
        return self.action if m(qualname, module, tensor) else None


def _rules_from(rules: Mapping[Match, Any] | Iterable[tuple[Match, Any]]) -> list[_Rule]:
    pairs = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    out = []
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"rules: expected (match, action) pairs, got {pair!r}")
        match, value = pair
        where = f"rule {index} ({_describe_match(match)})"
        is_type = isinstance(match, type) or (
            isinstance(match, tuple) and match and all(isinstance(t, type) for t in match)
        )
        if not (is_type or isinstance(match, str) or callable(match)):
            raise TypeError(f"{where}: a match is a module type, a name glob or a predicate")
        if isinstance(value, Mapping):
            if not is_type:
                raise TypeError(f"{where}: a dict of parameter names needs a module-type match")
            action: Any = {str(k): _resolve(v, f"{where}[{k!r}]") for k, v in value.items()}
        else:
            action = _resolve(value, where)
        out.append(_Rule(index, match, action))
    return out


def _describe_match(match: Any) -> str:
    if isinstance(match, type):
        return match.__name__
    if isinstance(match, tuple):
        return "(" + ", ".join(getattr(t, "__name__", repr(t)) for t in match) + ")"
    if isinstance(match, str):
        return repr(match)
    return getattr(match, "__qualname__", repr(match))


@dataclass(slots=True)
class ParamInit:
    """What one parameter (or buffer) got."""

    name: str
    status: str  # "initialized", "tied", "kept", "pending"
    action: str | None = None  # the initializer, e.g. "normal_(std=0.01)"
    rule: int | None = None  # index of the rule that matched
    tied_to: str | None = None  # for status "tied": the name that was initialized
    buffer: bool = False


@dataclass
class InitReport(Mapping[str, ParamInit]):
    """Per qualified name, what init_module_ did. ``pending`` is True while a lazy model waits for
    its first forward (``lazy="forward"``)."""

    entries: dict[str, ParamInit] = field(default_factory=dict)
    pending: bool = False
    operator_calls: int = 0  # batched uniform_/normal_ operator calls (the rest run one by one)

    def __getitem__(self, name: str) -> ParamInit:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def with_status(self, status: str) -> list[str]:
        return [n for n, e in self.entries.items() if e.status == status]

    def __str__(self) -> str:
        if self.pending:
            return "InitReport(pending: runs after the model's first forward)"
        width = max((len(n) for n in self.entries), default=4)
        lines = []
        for n, e in self.entries.items():
            what = {"initialized": e.action, "tied": f"tied to {e.tied_to}", "kept": "kept"}.get(
                e.status, e.status
            )
            rule = f"  [rule {e.rule}]" if e.rule is not None else ""
            lines.append(f"{n:<{width}}  {what}{rule}")
        return "\n".join(lines)

    __repr__ = __str__


def _apply_order(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(qualified prefix, module) in Module.apply's order: each child (children() order, a child
    listed twice under one parent once) before its parent."""
    for name, child in module.named_children():
        yield from _apply_order(child, f"{prefix}{name}.")
    yield prefix, module


def _alias_key(tensor: Tensor) -> tuple:
    """Tensors with equal keys are the same elements (a tied parameter under several names): the
    same first element (device, address), shape, strides and dtype."""
    if _sharding.is_dtensor(tensor):  # its local shard stands for it
        tensor = tensor.to_local()
    if tensor.is_meta or tensor.numel() == 0:
        return ("object", id(tensor))
    return (tensor.device, tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype)


@dataclass(slots=True)
class _Visit:
    qualname: str
    module: nn.Module
    pname: str
    tensor: Tensor
    buffer: bool
    rule: _Rule | None = None
    action: _Resolved | None = None
    alias: tuple = ()


def _visits(module: nn.Module, buffers: bool) -> list[_Visit]:
    visits = []
    for prefix, m in _apply_order(module):
        for pname, p in m._parameters.items():
            if p is not None:
                visits.append(_Visit(prefix + pname, m, pname, p, False))
        if buffers:
            for bname, b in m._buffers.items():
                if b is not None:
                    visits.append(_Visit(prefix + bname, m, bname, b, True))
    return visits


def init_module_(
    module: nn.Module,
    rules: Mapping[Match, Any] | Iterable[tuple[Match, Any]],
    *,
    generator: torch.Generator | None = None,
    strict: bool = False,
    buffers: bool = False,
    lazy: str = "raise",
) -> InitReport:
    """Initialize the parameters of `module` by rules; returns what each one got.

    `rules` maps a match to an action (a dict, or a list of (match, action) pairs); the first
    matching rule wins. A match is a module type or tuple of types (``isinstance``), a glob on the
    qualified name (``"2.weight"``, ``"*.bias"``, ``"layers.*.attn.*"``) or a predicate
    ``(qualified_name, module, tensor) -> bool``. An action is a pyinit initializer name
    (``"zeros_"``), ``(name, kwargs)`` (``("normal_", {"std": 0.01})``), a callable taking the
    tensor (run under no_grad), or None (keep); for a module type, also a dict from parameter name
    to action (``{nn.Linear: {"weight": ..., "bias": "zeros_"}}``).

    Tensors no rule matches keep their values; with ``strict=True`` the call raises, naming every
    uncovered parameter, before anything is written. With ``buffers=True`` buffers are matched too.
    A tensor reachable under several names is initialized once, at the first name a rule matches;
    rules that give its names different actions raise. ``generator`` goes to every initializer that
    takes one. Lazy parameters (``UninitializedParameter``): ``lazy="raise"`` raises listing them;
    ``lazy="forward"`` runs this call right after the module's next forward (the returned report
    is filled then).

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> rule = {"weight": ("normal_", {"std": 0.01}), "bias": "zeros_"}
        >>> pyinit.init_module_(net, {nn.Linear: rule})
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"init_module_ expects an nn.Module, got {type(module).__name__}")
    if lazy not in ("raise", "forward"):
        raise ValueError(f"lazy must be 'raise' or 'forward', got {lazy!r}")
    parsed = _rules_from(rules)
    report = InitReport()
    visits = _visits(module, buffers)
    uninitialized = [v.qualname for v in visits if is_lazy(v.tensor)]
    if uninitialized:
        if lazy == "raise":
            raise ValueError(
                "init_module_: these parameters are not materialized yet (lazy modules): "
                + ", ".join(uninitialized)
                + ". Run a forward first, or pass lazy='forward'."
            )
        return _after_first_forward(module, parsed, report, generator, strict, buffers)
    _run(module, parsed, visits, report, generator, strict)
    return report


def _after_first_forward(module, parsed, report, generator, strict, buffers) -> InitReport:
    report.pending = True

    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        handle.remove()
        visits = _visits(mod, buffers)
        still = [v.qualname for v in visits if is_lazy(v.tensor)]
        if still:
            raise RuntimeError(
                "init_module_(lazy='forward'): still not materialized after the first forward: "
                + ", ".join(still)
            )
        _run(mod, parsed, visits, report, generator, strict)
        report.pending = False

    handle = module.register_forward_hook(hook)
    return report


def _run(module, parsed, visits, report, generator, strict) -> None:
    # 1. Match every name, check aliases and coverage: nothing is written before all checks pass.
    groups: dict[tuple, list[_Visit]] = {}
    for v in visits:
        for rule in parsed:
            action = rule.action_for(v.qualname, v.module, v.pname, v.tensor)
            if action is not None:
                v.rule, v.action = rule, action
                break
        v.alias = _alias_key(v.tensor)
        groups.setdefault(v.alias, []).append(v)
    for aliases in groups.values():
        if len(aliases) == 1:
            continue
        chosen = {v.action for v in aliases if v.action is not None}
        if len(chosen) > 1:
            said = "; ".join(
                f"{v.qualname}: {v.action.label} (rule {v.rule.index})"
                for v in aliases
                if v.action is not None
            )
            raise ValueError(f"init_module_: rules disagree on one tied tensor: {said}")
    if strict:
        uncovered = [
            v.qualname
            for aliases in groups.values()
            if all(v.action is None for v in aliases)
            for v in aliases
            if not v.buffer
        ]
        if uncovered:
            raise ValueError("init_module_(strict=True): no rule covers " + ", ".join(uncovered))
    # 2. Initialize, in visiting order, each tensor once. Named initializers run in a
    #    BatchingStream: runs of uniform_/normal_ calls become one *_many_ call (pyinit/_batch.py).
    stream = current_stream()
    philox = stream if isinstance(stream, PhiloxStream) else None
    seed = None
    if philox is not None:
        seed = (generator if generator is not None else torch.default_generator).initial_seed()
    batch = BatchingStream(stream) if philox is None or philox.shard is None else None
    done: dict[tuple, str] = {}
    with selected(batch) if batch is not None else contextlib.nullcontext():
        _initialize(visits, groups, done, report, stream, philox, seed, batch, generator)
    if batch is not None:
        batch.flush()
        report.operator_calls = batch.calls
    # Aliases visited before the name that carried the rule are ties too.
    for v in visits:
        key = v.alias
        if v.qualname not in report.entries and key in done:
            report.entries[v.qualname] = ParamInit(
                v.qualname, "tied", tied_to=done[key], buffer=v.buffer
            )


def _initialize(visits, groups, done, report, stream, philox, seed, batch, generator) -> None:
    for v in visits:
        key = v.alias
        if key in done:
            report.entries[v.qualname] = ParamInit(
                v.qualname, "tied", tied_to=done[key], buffer=v.buffer
            )
            continue
        if v.action is None:
            matched_alias = any(a.action is not None for a in groups[key])
            if not matched_alias:
                report.entries[v.qualname] = ParamInit(v.qualname, "kept", buffer=v.buffer)
            continue  # an alias later in the order carries the rule
        done[key] = v.qualname
        if v.action.keep:
            report.entries[v.qualname] = ParamInit(
                v.qualname, "kept", v.action.label, v.rule.index, buffer=v.buffer
            )
            continue
        key = name_key(seed, v.qualname) if philox is not None else None
        if v.action.fn is not None or batch is None:
            # A user callable may read what it writes: everything before it is written first.
            if batch is not None:
                batch.flush()
            name_keyed = PhiloxStream(shard=philox.shard, key=key) if philox is not None else stream
            with selected(name_keyed):
                v.action.run(v.tensor, generator)
        else:
            if key is not None:
                batch.set_key(key)
            v.action.run(v.tensor, generator)
        report.entries[v.qualname] = ParamInit(
            v.qualname, "initialized", v.action.label, v.rule.index, buffer=v.buffer
        )
