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
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch.overrides import has_torch_function as _has_torch_function

from . import _sharding
from . import init as _init
from ._batch import BatchingStream
from ._ops import _C
from ._selection import current_stream, selected
from ._streams import NameKeys, PhiloxStream

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
        # (the initializer, its keyword arguments, whether it takes a generator), found once, and
        # whether its final numbers may be replayed (Note [Replayed bounds]).
        replayable = False
        if self.name is not None:
            initializer = getattr(_init, self.name)
            bound = (initializer, dict(self.kwargs), "generator" in _parameters_of(self.name))
            object.__setattr__(self, "_bound", bound)
            replayable = any(initializer is f for f in _ONE_DRAW)
        object.__setattr__(self, "replayable", replayable)


# Note [Replayed bounds]
# ~~~~~~~~~~~~~~~~~~~~~~
# These initializers make exactly one uniform_/normal_ stream call whose numbers (bounds, mean,
# std) depend only on the tensor's shape and the rule's keyword arguments; their only other paths
# are a zero-element tensor (a warning, no call) and __torch_function__ (the tensor, or a mode,
# overrides the call). So within one init_module_ call, once such an action has been run on a plain
# tensor of some shape and its call was batched (BatchingStream.seen), the next plain tensor of that
# shape with no __torch_function__ gets the same (kind, p1, p2, generator) put straight into the
# batch, without running the initializer's Python again: the values and generator states are those
# of running it. The memo lives for one call (rules, kwargs and initializers may change between
# calls) and is keyed by the action object and the shape; a tensor the batch does not take (an
# inference tensor, a dtype or device without a kernel) runs the initializer as before.
_ONE_DRAW = (
    _init.uniform_,
    _init.normal_,
    _init.kaiming_uniform_,
    _init.kaiming_normal_,
    _init.xavier_uniform_,
    _init.xavier_normal_,
)


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
    # What kind of match, found once: the type(s) for isinstance, else a compiled glob, else None
    # (a predicate).
    types: type | tuple | None = None
    glob: Callable[[str], Any] | None = None


def _is_types(match: Any) -> bool:
    return isinstance(match, type) or (
        isinstance(match, tuple) and bool(match) and all(isinstance(t, type) for t in match)
    )


def _rules_from(rules: Mapping[Match, Any] | Iterable[tuple[Match, Any]]) -> list[_Rule]:
    pairs = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    out = []
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"rules: expected (match, action) pairs, got {pair!r}")
        match, value = pair
        where = f"rule {index} ({_describe_match(match)})"
        is_type = _is_types(match)
        if not (is_type or isinstance(match, str) or callable(match)):
            raise TypeError(f"{where}: a match is a module type, a name glob or a predicate")
        if isinstance(value, Mapping):
            if not is_type:
                raise TypeError(f"{where}: a dict of parameter names needs a module-type match")
            action: Any = {str(k): _resolve(v, f"{where}[{k!r}]") for k, v in value.items()}
        else:
            action = _resolve(value, where)
        # fnmatch.fnmatchcase(name, match) is re.compile(fnmatch.translate(match)).match(name).
        glob = re.compile(fnmatch.translate(match)).match if isinstance(match, str) else None
        out.append(_Rule(index, match, action, match if is_type else None, glob))
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


class InitReport(Mapping[str, ParamInit]):
    """Per qualified name, what init_module_ did. ``pending`` is True while a lazy model waits for
    its first forward (``lazy="forward"``)."""

    def __init__(
        self,
        entries: Mapping[str, ParamInit] | None = None,
        pending: bool = False,
        operator_calls: int = 0,  # batched uniform_/normal_ operator calls (the rest one by one)
    ) -> None:
        self._entries: dict[str, ParamInit] = dict(entries) if entries is not None else {}
        # init_module_ appends one (name, status, action, rule, tied_to, buffer) tuple per tensor;
        # the ParamInit objects are made when the report is read. Tuples of strings and numbers
        # leave the garbage collector's lists at its next pass, so a large model's report does not
        # make later collections slower (Note [Per-tensor objects]).
        self._rows: list[tuple] = []
        self.pending = pending
        self.operator_calls = operator_calls

    @property
    def entries(self) -> dict[str, ParamInit]:
        rows = self._rows
        if rows:
            self._rows = []
            self._entries.update((row[0], ParamInit(*row)) for row in rows)
        return self._entries

    def __getitem__(self, name: str) -> ParamInit:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InitReport):
            return NotImplemented
        return (self.entries, self.pending, self.operator_calls) == (
            other.entries,
            other.pending,
            other.operator_calls,
        )

    __hash__ = None  # type: ignore[assignment]

    def with_status(self, status: str) -> list[str]:
        return [n for n, e in self.entries.items() if e.status == status]

    def __str__(self) -> str:
        if self.pending:
            return "InitReport(pending: runs after the model's first forward)"
        entries = self.entries
        width = max((len(n) for n in entries), default=4)
        lines = []
        for n, e in entries.items():
            what = {"initialized": e.action, "tied": f"tied to {e.tied_to}", "kept": "kept"}.get(
                e.status, e.status
            )
            rule = f"  [rule {e.rule}]" if e.rule is not None else ""
            lines.append(f"{n:<{width}}  {what}{rule}")
        return "\n".join(lines)

    __repr__ = __str__


_NAMED_CHILDREN = nn.Module.named_children


class _Visits:
    """The tensors init_module_ visits, in visiting order, as parallel lists (one list per field
    rather than one object per tensor: Note [Per-tensor objects])."""

    __slots__ = (
        "names", "modules", "pnames", "tensors", "buffer", "addresses", "codes", "lazy",
        "rules", "actions", "keys", "ties",
    )  # fmt: skip

    def __init__(self) -> None:
        self.names: list[str] = []  # qualified names
        self.modules: list[nn.Module] = []  # the module that holds each tensor
        self.pnames: list[str] = []  # the name within that module
        self.tensors: list[Tensor] = []
        self.buffer: list[bool] = []
        # Of each plain tensor, data_ptr() (None where it has no data: _alias_keys starts from
        # them) and _C.tensor_code; None for the other tensors (csrc/python/model_facts.cpp).
        self.addresses: list[int | None] = []
        self.codes: list[int | None] = []
        self.lazy: list[str] = []  # names of UninitializedParameters and UninitializedBuffers
        # Found by _run: the matching rule and its action (None: no rule matched), the alias key,
        # and the visits of each alias key that several visits have.
        self.rules: list[_Rule | None] = []
        self.actions: list[_Resolved | None] = []
        self.keys: list[Any] = []
        self.ties: dict[Any, list[int]] = {}


def _visits(module: nn.Module, buffers: bool) -> _Visits:
    """Every parameter (and buffer, with `buffers`) in Module.apply's order: each child
    (named_children() order, a child listed twice under one parent once) before its parent, each
    module's own tensors in registration order."""
    out = _Visits()
    names, modules, pnames, tensors = out.names, out.modules, out.pnames, out.tensors
    flags, lazy = out.buffer, out.lazy

    def add(m: nn.Module, prefix: str, table: dict, is_buffer: bool) -> None:
        for pname, t in table.items():
            if t is None:
                continue
            name = prefix + pname
            names.append(name)
            modules.append(m)
            pnames.append(pname)
            tensors.append(t)
            flags.append(is_buffer)
            if type(t) is not nn.Parameter and type(t) is not Tensor and is_lazy(t):
                lazy.append(name)

    def visit(m: nn.Module, prefix: str) -> None:
        if type(m).named_children is _NAMED_CHILDREN:  # its loop, without a generator per module
            memo = set()
            for name, child in m._modules.items():
                if child is not None and child not in memo:
                    memo.add(child)
                    visit(child, prefix + name + ".")
        else:
            for name, child in m.named_children():
                visit(child, prefix + name + ".")
        if m._parameters:
            add(m, prefix, m._parameters, False)
        if buffers and m._buffers:
            add(m, prefix, m._buffers, True)

    visit(module, "")
    out.addresses, out.codes = _C.tensor_facts(tensors)
    return out


def _alias_key(tensor: Tensor) -> tuple:
    """Tensors with equal keys are the same elements (a tied parameter under several names): the
    same first element (device, address), shape, strides and dtype."""
    if _sharding.is_dtensor(tensor):  # its local shard stands for it
        local = tensor.to_local()
        if local.is_meta or local.numel() == 0:
            # The DTensor itself (to_local() makes a new view each call): a tie whose shard is
            # empty on this rank is still one tensor here, as on the other ranks.
            return ("object", id(tensor))
        tensor = local
    if tensor.is_meta or tensor.numel() == 0:
        return ("object", id(tensor))
    return (tensor.device, tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype)


def _alias_keys(visits: _Visits) -> tuple[list, dict[Any, list[int]]]:
    """Each visit's alias key, and the visits of every key that several visits have (the ties).

    Equal _alias_keys have equal addresses, so a tensor whose address no other tensor has is its
    own alias group and its address can stand for its key: the full key is made only where
    addresses collide (ties; meta and empty tensors) and for tensors other than plain ones."""
    coarse: list[Any] = visits.addresses
    full: dict[int, tuple] = {}
    if None in coarse:
        coarse = list(coarse)
        for i, address in enumerate(coarse):
            if address is None:
                key = full[i] = _alias_key(visits.tensors[i])
                coarse[i] = key if key[0] == "object" else key[1]
    if len(set(coarse)) == len(coarse):
        return coarse, {}
    seen: set = set()
    collided = {k for k in coarse if k in seen or seen.add(k)}
    keys = [
        (full[i] if i in full else _alias_key(t)) if k in collided else k
        for i, (k, t) in enumerate(zip(coarse, visits.tensors, strict=True))
    ]
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return keys, {k: g for k, g in groups.items() if len(g) > 1}


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
    uninitialized = visits.lazy
    if uninitialized:
        if lazy == "raise":
            raise ValueError(
                "init_module_: these parameters are not materialized yet (lazy modules): "
                + ", ".join(uninitialized)
                + ". Run a forward first, or pass lazy='forward'."
            )
        return _after_first_forward(module, parsed, report, generator, strict, buffers)
    _run(parsed, visits, report, generator, strict)
    return report


def _after_first_forward(module, parsed, report, generator, strict, buffers) -> InitReport:
    report.pending = True

    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        handle.remove()
        visits = _visits(mod, buffers)
        still = visits.lazy
        if still:
            raise RuntimeError(
                "init_module_(lazy='forward'): still not materialized after the first forward: "
                + ", ".join(still)
            )
        _run(parsed, visits, report, generator, strict)
        report.pending = False

    handle = module.register_forward_hook(hook)
    return report


# Note [Per-tensor objects]
# ~~~~~~~~~~~~~~~~~~~~~~~~~
# init_module_ on a model with thousands of parameters spends its time in Python per tensor, so
# the per-tensor work is kept to what the tensor needs: the visits are parallel lists, the rules a
# module's type rules out are dropped once per module, an alias key is the tensor's address unless
# addresses collide, the report holds one tuple per tensor, and initializers whose final numbers
# only depend on the shape are replayed (Note [Replayed bounds]). Objects that the garbage collector
# tracks and that live until the call returns (one per tensor, formerly about five) also move to
# its oldest generation at the collections the call itself triggers, and enough of them make the
# next full collection (~150 ms with torch loaded) land in a later init_module_ call.


def _match(parsed: list[_Rule], visits: _Visits) -> None:
    """The first matching rule of each visit and its action; None where no rule matches."""
    n = len(visits.names)
    rules_of: list[_Rule | None] = [None] * n
    actions_of: list[_Resolved | None] = [None] * n
    visits.rules, visits.actions = rules_of, actions_of
    names, pnames, tensors = visits.names, visits.pnames, visits.tensors
    last: nn.Module | None = None
    candidates: list[_Rule] = []
    for i, m in enumerate(visits.modules):
        if m is not last:  # the rules that can match this module's tensors, in order
            last = m
            candidates = [r for r in parsed if r.types is None or isinstance(m, r.types)]
        for rule in candidates:
            if rule.types is not None:
                action = rule.action
                if isinstance(action, dict):
                    action = action.get(pnames[i])
            elif rule.glob is not None:
                action = rule.action if rule.glob(names[i]) is not None else None
            else:
                action = rule.action if rule.match(names[i], m, tensors[i]) else None
            if action is not None:
                rules_of[i], actions_of[i] = rule, action
                break


def _run(parsed, visits, report, generator, strict) -> None:
    # 1. Match every name, check aliases and coverage: nothing is written before all checks pass.
    _match(parsed, visits)
    visits.keys, visits.ties = _alias_keys(visits)
    names, flags, rules_of, actions_of = visits.names, visits.buffer, visits.rules, visits.actions
    keys, groups = visits.keys, visits.ties
    for members in groups.values():
        chosen = {actions_of[i] for i in members if actions_of[i] is not None}
        if len(chosen) > 1:
            said = "; ".join(
                f"{names[i]}: {actions_of[i].label} (rule {rules_of[i].index})"
                for i in members
                if actions_of[i] is not None
            )
            raise ValueError(f"init_module_: rules disagree on one tied tensor: {said}")
    if strict:
        uncovered = []
        for i, action in enumerate(actions_of):
            members = groups.get(keys[i]) if groups else None
            if members is None:
                if action is None and not flags[i]:
                    uncovered.append(names[i])
            elif members[0] == i and all(actions_of[j] is None for j in members):
                uncovered.extend(names[j] for j in members if not flags[j])
        if uncovered:
            raise ValueError("init_module_(strict=True): no rule covers " + ", ".join(uncovered))
    # 2. Initialize, in visiting order, each tensor once. Named initializers run in a
    #    BatchingStream: runs of uniform_/normal_ calls become one *_many_ call (pyinit/_batch.py).
    stream = current_stream()
    philox = stream if isinstance(stream, PhiloxStream) else None
    name_keys = None
    if philox is not None:
        seed = (generator if generator is not None else torch.default_generator).initial_seed()
        name_keys = NameKeys(seed)
    batch = BatchingStream(stream) if philox is None or philox.shard is None else None
    done: dict[Any, str] = {}  # alias key of a tie -> the name that initialized it
    with selected(batch) if batch is not None else contextlib.nullcontext():
        later = _initialize(visits, done, report, stream, philox, name_keys, batch, generator)
    if batch is not None:
        batch.flush()
        report.operator_calls = batch.calls
    # Aliases visited before the name that carried the rule are ties too.
    for i in later:
        if keys[i] in done:
            report._rows.append((names[i], "tied", None, None, done[keys[i]], flags[i]))


def _initialize(visits, done, report, stream, philox, name_keys, batch, generator) -> list[int]:
    """Phase 2 of _run; returns the visits left for the end (aliases of a tensor that a later name
    carries the rule for)."""
    rows = report._rows
    names, tensors, flags = visits.names, visits.tensors, visits.buffer
    rules_of, actions_of, keys, groups = visits.rules, visits.actions, visits.keys, visits.ties
    later: list[int] = []
    # Each initialized name's philox (key, offset), for the replayed calls, found in one pass.
    philox_keys = philox_offsets = [0] * len(names)
    if philox is not None and batch is not None:
        philox_keys, philox_offsets = _C.name_keys(
            name_keys.seed,
            [
                n if a is not None and not a.keep else None
                for n, a in zip(names, actions_of, strict=True)
            ],
        )
    codes = visits.codes
    replayed: dict[tuple, tuple] = {}  # (id(action), shape) -> what reached the batch
    for i, action in enumerate(actions_of):
        name = names[i]
        members = groups.get(keys[i]) if groups else None
        if members is not None:
            key = keys[i]
            if key in done:
                rows.append((name, "tied", None, None, done[key], flags[i]))
                continue
            if action is None:
                if any(actions_of[j] is not None for j in members):
                    later.append(i)  # an alias later in the order carries the rule
                else:
                    rows.append((name, "kept", None, None, None, flags[i]))
                continue
            done[key] = name
        elif action is None:
            rows.append((name, "kept", None, None, None, flags[i]))
            continue
        if action.keep:
            rows.append((name, "kept", action.label, rules_of[i].index, None, flags[i]))
            continue
        tensor = tensors[i]
        if action.fn is not None or batch is None:
            # A user callable may read what it writes: everything before it is written first.
            if batch is not None:
                batch.flush()
            if philox is not None:
                name_keyed = PhiloxStream(shard=philox.shard, key=name_keys(name))
            else:
                name_keyed = stream
            with selected(name_keyed):
                action.run(tensor, generator)
        elif (
            action.replayable
            and (type(tensor) is nn.Parameter or type(tensor) is Tensor)
            and not _has_torch_function((tensor,))
        ):
            memo_key = (id(action), tensor.shape)
            call = replayed.get(memo_key)
            if call is None or not batch.add(
                call[0],
                tensor,
                call[1],
                call[2],
                call[3],
                philox_keys[i],
                philox_offsets[i],
                codes[i],
            ):
                if philox is not None:
                    batch.set_key(name_keys(name))
                batch.seen = None
                action.run(tensor, generator)
                seen = batch.seen
                if seen is not None and seen[1] is tensor:
                    replayed[memo_key] = (seen[0], seen[2], seen[3], seen[4])
        else:
            if philox is not None:
                batch.set_key(name_keys(name))
            action.run(tensor, generator)
        rows.append((name, "initialized", action.label, rules_of[i].index, None, flags[i]))
    return later
