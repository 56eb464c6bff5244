"""Deferred construction: build a model without memory or randomness, then materialize it equal to
eager construction.

    with pyinit.deferred():
        model = Model(cfg)                  # meta tensors; no generator is consumed
    pyinit.materialize_(model, "cpu")       # == Model(cfg) built eagerly from here, bit for bit

Inside the block factories make meta tensors (``torch.device("meta")``), torch.nn.init runs through
pyinit (``patch_torch_init``, reaching bindings in every loaded module), and a dispatch mode records
every operator that touches a meta tensor: allocations, pyinit's initializer operators with their
final numbers, torch's random and in-place operators (``weight.data.normal_()``), views and
arithmetic. ``materialize_`` replays the record in order on the target device, with each meta
storage standing for one real storage, so every operator sees the values and generator state it
would have seen eagerly; allocations and initializer operators run pyinit's kernels (torch's random
operators too, where a pyinit kernel gives torch's values). Parameters and buffers are then
swapped in, one real tensor per meta tensor, so ties stay ties.

What cannot be replayed raises: reading a meta tensor's values during construction (``.item()``),
a random operator on a real tensor inside the block, lazy modules, tensors the record never made.
See docs/model_init.md.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from . import _patch, _sharding, _support
from ._ops import ops
from ._streams import _BLOCK_OPS, _signed, default_generator, draw_key
from ._support import fallback_reason

__all__ = ["deferred", "materialize_"]

_META = torch.device("meta")
_SEEDED = torch.Tag.nondeterministic_seeded


@dataclass
class _Entry:
    func: Any
    args: tuple
    kwargs: dict
    out: Any
    # For a philox operator whose key is drawn when the call runs: the generator to draw from.
    draw_from: Any = None
    draws_key: bool = False


@dataclass
class _Record:
    entries: list[_Entry] = field(default_factory=list)
    # storage ids of the meta tensors the record made (the entries keep the tensors alive)
    made: set[int] = field(default_factory=set)
    replayed_on: torch.device | None = None
    real: dict[int, torch.UntypedStorage] = field(default_factory=dict)
    # module -> {parameter or buffer name: the meta tensor registered under it}: what a sharded
    # model (FSDP2 replaces its parameters by DTensors) is materialized from.
    sources: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    # storage id -> (its whole view, func, args, kwargs): the last write of a storage that a sharded
    # materialize_ computes shard by shard (Note [Sharded replay]); keys already drawn.
    pending: dict[int, tuple] = field(default_factory=dict)


def _storage_id(t: Tensor) -> int:
    return t.untyped_storage()._cdata


@dataclass(frozen=True)
class _MetaRef:
    """A meta tensor as an operator saw it: its storage and its view at that moment (an in-place
    metadata operator such as t_() changes the tensor object later). Holding the tensor keeps the
    storage, and so its id, alive."""

    tensor: Tensor
    storage: int
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    @staticmethod
    def of(x: Any) -> Any:
        if isinstance(x, Tensor) and x.is_meta:
            return _MetaRef(
                x, _storage_id(x), x.storage_offset(), tuple(x.shape), tuple(x.stride()), x.dtype
            )
        return x


class _Recorder(TorchDispatchMode):
    def __init__(self, record: _Record) -> None:
        super().__init__()
        self.record = record
        self._pending_draw: list[Any] = []

    def philox_key_drawn_at_replay(self, generator: Any) -> None:
        """The next philox operator recorded draws its (key, offset) from `generator` at replay."""
        self._pending_draw.append(generator)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        if any(_sharding.is_dtensor(x) for x in flat):
            # See Note [Sharding inside deferred()]
            if func._schema.is_mutable or _SEEDED in func.tags:
                raise RuntimeError(
                    f"pyinit.deferred(): {func} wrote into a DTensor inside the deferred() block "
                    "(after fully_shard or distribute_tensor there); it cannot be replayed. "
                    "Initialize the model before sharding it in the block, or after materialize_."
                )
            return func(*args, **kwargs)
        meta_in = any(isinstance(x, Tensor) and x.is_meta for x in flat)
        if not meta_in and _SEEDED in func.tags and kwargs.get("device") != _META:
            raise RuntimeError(
                f"pyinit.deferred(): {func} drew random numbers into a real tensor while the "
                "model was being built deferred; it would not be replayed in order. Build that "
                "tensor on the default (meta) device, or outside the block."
            )
        refs = (tree_map(_MetaRef.of, args), tree_map(_MetaRef.of, kwargs))
        out = func(*args, **kwargs)
        if not meta_in and not any(
            isinstance(t, Tensor) and t.is_meta for t in tree_flatten(out)[0]
        ):
            return out
        entry = _Entry(func, refs[0], refs[1], tree_map(_MetaRef.of, out))
        if (
            func.namespace == "pyinit"
            and func.__name__.startswith("philox_")
            and self._pending_draw
        ):
            entry.draws_key = True
            entry.draw_from = self._pending_draw.pop()
        self.record.entries.append(entry)
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.is_meta:
                self.record.made.add(_storage_id(t))
        return out


class _DataFactories(TorchFunctionMode):
    """torch.tensor(data) and friends on the meta device keep no data, and build their meta tensor
    without a dispatched operator. Inside deferred() they build the real CPU tensor, then move it
    to meta: the recorded copy replays it (the CPU tensor is kept by the record)."""

    _FUNCS = frozenset({torch.tensor, torch.as_tensor, torch.asarray})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._FUNCS and torch.device(kwargs.get("device") or _META) == _META:
            requires_grad = kwargs.pop("requires_grad", False)
            real = func(*args, **{**kwargs, "device": "cpu"})
            return real.to(_META).requires_grad_(requires_grad)
        return func(*args, **kwargs)


_records: list[_Record] = []


@contextlib.contextmanager
def _registrations(record: _Record) -> Iterator[None]:
    """Remember, per module, the meta tensor each parameter and buffer name was registered with."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def remember(module: nn.Module, name: str, tensor: Any) -> None:
        if (
            isinstance(tensor, Tensor)
            and tensor.is_meta
            and not is_lazy(tensor)
            and not _sharding.is_dtensor(tensor)  # fully_shard in the block: the source stays
        ):
            record.sources.setdefault(module, {})[name] = _MetaRef.of(tensor)

    def parameter(self, name, param):
        register_parameter(self, name, param)
        remember(self, name, param)

    def buffer(self, name, tensor, persistent=True):
        register_buffer(self, name, tensor, persistent)
        remember(self, name, tensor)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = (
            register_parameter,
            register_buffer,
        )


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Build modules inside the block on the meta device, recording how they are initialized, for
    ``materialize_``. Nothing is allocated and no generator is consumed inside the block.

    Examples:
        >>> with pyinit.deferred():
        ...     model = nn.Transformer(d_model=64, nhead=4)
        >>> pyinit.materialize_(model, "cpu")
    """
    record = _Record()
    outer = _support._deferred.recorder
    recorder = _Recorder(record)
    with (
        torch.device(_META),
        _DataFactories(),
        _patch._Patch(everywhere=True),
        _registrations(record),
        recorder,
    ):
        _support._deferred.recorder = recorder
        try:
            yield
        finally:
            _support._deferred.recorder = outer
    _records.append(record)


def _find_record(tensors: dict[str, Tensor]) -> _Record:
    ids = {_storage_id(t) for t in tensors.values() if t.is_meta and not is_lazy(t)}
    for record in reversed(_records):
        if ids & record.made:
            return record
    raise ValueError(
        "materialize_: the module's meta tensors were not built inside pyinit.deferred()"
    )


def _tensors_of(model: nn.Module) -> dict[str, Tensor]:
    out = {}
    for prefix, m in model.named_modules(remove_duplicate=False):
        dot = f"{prefix}." if prefix else ""
        for name, t in list(m._parameters.items()) + list(m._buffers.items()):
            if t is not None:
                out[dot + name] = t
    return out


def materialize_(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Give the meta parameters and buffers of `model` (built inside ``pyinit.deferred()``) the
    values eager construction would have given them, on `device`: the record of the block is
    replayed in order there (consuming generators as construction would have), and each meta tensor
    is replaced by its real counterpart (ties kept). Modules built in the same block are replayed
    together, on the first call. Returns `model`.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    tensors = _tensors_of(model)
    lazy = [n for n, t in tensors.items() if is_lazy(t)]
    if lazy:
        raise ValueError(
            "materialize_: lazy modules cannot be built deferred (their shapes come from the "
            "first forward): " + ", ".join(lazy)
        )
    if any(_sharding.is_dtensor(t) and t.is_meta for t in tensors.values()):
        return _materialize_sharded(model, device)
    record = _find_record(tensors)
    _replay_once(record, device)
    _swap_in(model, record, device)
    return model


def _replay_once(
    record: _Record, device: torch.device, shardable: dict[int, _MetaRef] | None = None
) -> None:
    """Replays the block on its first materialize_; later calls must ask for the same device.
    The storages in `shardable` are not made: their last writes go to record.pending."""
    if record.replayed_on is None:
        _replay(record, device, shardable or {})
        record.replayed_on = device
    elif record.replayed_on != device:
        raise ValueError(
            f"materialize_: this deferred() block was replayed on {record.replayed_on}; modules "
            f"built in one block are materialized on one device (asked: {device})"
        )


def _materialize_sharded(model: nn.Module, device: torch.device) -> nn.Module:
    """A model whose parameters were sharded after deferred construction, or inside the block
    (FSDP2's fully_shard, DTensor tensor parallelism): the record is replayed on every rank,
    ``model.to_empty`` lets the sharding framework allocate its own storage, and every parameter
    and buffer gets its values in place: a DTensor exactly the elements of its shard (Note
    [DTensor shards]), a plain tensor all of them; a tied parameter once. A DTensor whose values
    come from the philox stream or a fill alone is computed on its shard only (Note [Sharded
    replay]); the others are made whole on each rank, transiently (the cost of equality with one
    device in the torch stream)."""
    modules = [m for _, m in model.named_modules()]
    record = next((r for r in reversed(_records) if any(m in r.sources for m in modules)), None)
    if record is None:
        raise ValueError("materialize_: the module was not built inside pyinit.deferred()")
    # Where each parameter's and buffer's values come from, found before anything is drawn.
    targets = []  # (module, name, qualified name, registered meta tensor, replayed local shard)
    missing = []
    for prefix, m in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        sources = record.sources.get(m, {})
        for name, t in list(m._parameters.items()) + list(m._buffers.items()):
            if t is None:
                continue
            source = sources.get(name)
            if source is None:
                missing.append(dot + name)
                continue
            local = None
            if _sharding.is_dtensor(t) and t.is_meta and tuple(t.shape) != source.shape:
                # Sharded inside the block from a tensor of another shape: only its replayed local
                # shard can tell its values (Note [Sharding inside deferred()]).
                ref = _MetaRef.of(t.to_local())
                if ref.storage not in record.made or not _written(record, ref.storage):
                    raise RuntimeError(
                        f"pyinit.materialize_: cannot tell the values of {dot + name}: it was "
                        f"registered with shape {tuple(source.shape)} and sharded inside the "
                        f"deferred() block as a DTensor of shape {tuple(t.shape)} whose local "
                        "shard no recorded operator wrote"
                    )
                local = ref
            targets.append((m, name, dot + name, source, local))
    if missing:
        raise RuntimeError(
            "pyinit.materialize_: no recorded construction for " + ", ".join(missing)
        )
    _check_ties_kept(targets)
    _replay_once(record, device, _shardable(record, targets, device))
    model.to_empty(device=device)
    written: set[int] = set()
    with torch.no_grad():
        for m, name, _, source, local in targets:
            t = _registered(m, name)
            if id(t) in written:  # a tie: one tensor under several names
                continue
            written.add(id(t))
            if local is not None:
                t.to_local().copy_(_real_view(local, record, device))
                continue
            if source.storage in record.pending and source.storage not in record.real:
                _write_blocks(t, record.pending[source.storage])
                continue
            full = _real_view(source, record, device)
            if _sharding.is_dtensor(t):
                _sharding.copy_blocks(full, _sharding.shard_blocks(t)[2])
            else:
                t.copy_(full)
    return model


# Note [Sharding inside deferred()]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# FSDP2's fully_shard and tensor parallelism's parallelize_module may run inside the deferred()
# block (both tested). The registration of a DTensor parameter does not replace the recorded meta
# tensor of that name (its source), and a DTensor of the source's shape gets the elements of its
# shard from the replayed source, as one sharded after the block does: after sharding, nothing
# can write into the source's values through the module (writes into DTensors raise, below). Its
# replayed local shard is not what to copy: FSDP2 chunks the meta parameter and copies it into
# the padded shard (recorded meta operators), but distribute_tensor (parallelize_module) gives a
# meta tensor an empty_like shard and scatters nothing into it, so that shard is uninitialized
# memory. Only a DTensor of another shape than its source is copied from its replayed local shard,
# and only when a recorded operator wrote it (else materialize_ raises). Operators with a DTensor
# argument are not recorded (DTensor runs its own operators on the local tensors): a view or
# detach just runs, a write into a DTensor raises (it would be lost), as do pyinit's initializers
# on a meta DTensor inside the block (pyinit/_sharding.py).


def _registered(m: nn.Module, name: str) -> Tensor:
    """The parameter or buffer `m` holds under `name` now."""
    return m._parameters[name] if name in m._parameters else m._buffers[name]


def _written(record: _Record, storage: int) -> bool:
    """Whether a recorded mutating operator had `storage` among its arguments."""
    return any(
        entry.func._schema.is_mutable
        and any(r.storage == storage for r in _refs((entry.args, entry.kwargs)))
        for entry in record.entries
        if hasattr(entry.func, "_schema")
    )


def _check_ties_kept(targets: list) -> None:
    """Names registered with one parameter (a tie) must still be one tensor in the sharded model:
    FSDP2 keeps a tie only when one fully_shard call manages both names."""
    current: dict[int, tuple[str, Tensor]] = {}  # id(registered tensor) -> (name, now)
    for m, name, qualified, source, _ in targets:
        t = _registered(m, name)
        first = current.setdefault(id(source.tensor), (qualified, t))
        if first[1] is not t:
            raise RuntimeError(
                f"pyinit.materialize_: {first[0]} and {qualified} are one tied tensor in the "
                "model built by deferred(), but the sharded model holds them as two tensors: "
                "FSDP2 keeps a tie only when both names are in one fully_shard group (shard a "
                "module that holds both, e.g. the root, not each owner separately). "
                "Materializing would untie them."
            )


def _real_view(t: Tensor | _MetaRef, record: _Record, device: torch.device) -> Tensor:
    """The real tensor that meta tensor `t` (or the view a _MetaRef saw) stands for."""
    ref = t if isinstance(t, _MetaRef) else _MetaRef.of(t)
    storage = record.real.get(ref.storage)
    if storage is None and ref.storage in record.pending:  # wanted whole after all
        whole, func, args, kwargs = record.pending[ref.storage]
        full = torch.empty_strided(whole.shape, whole.stride, dtype=whole.dtype, device=device)
        with torch.no_grad():
            func(full, *args[1:], **kwargs)
        storage = record.real[ref.storage] = full.untyped_storage()
    if storage is None:
        raise RuntimeError(
            f"pyinit.materialize_: a meta tensor of shape {ref.shape} was not made inside "
            "the deferred() block (it cannot be replayed)"
        )
    real = torch.empty(0, dtype=ref.dtype, device=device)
    real.set_(storage, ref.offset, ref.shape, ref.stride)
    return real


# torch's in-place initializer operators that pyinit's kernels reproduce bit for bit (same values,
# same generator state): replayed through pyinit where fallback_reason allows.
def _uniform(self, low=0.0, high=1.0, *, generator=None):
    ops.uniform_(self, float(low), float(high), generator)


def _normal(self, mean=0.0, std=1.0, *, generator=None):
    ops.normal_(self, float(mean), float(std), generator)


def _fill(self, value):
    ops.fill_(self, float(value))


def _zero(self):
    ops.fill_(self, 0.0)


_FAST = {
    torch.ops.aten.uniform_.default: ("uniform_", _uniform),
    torch.ops.aten.normal_.default: ("normal_", _normal),
    torch.ops.aten.fill_.Scalar: ("fill_", _fill),
    torch.ops.aten.zero_.default: ("fill_", _zero),
}


def _with_args(func: Any, args: tuple, kwargs: dict, values: dict) -> tuple[tuple, dict]:
    """args/kwargs of an operator call with the named arguments in `values` replaced."""
    args, kwargs = list(args), dict(kwargs)
    names = [a.name for a in func._schema.arguments]
    for name, value in values.items():
        i = names.index(name)
        if i < len(args):
            args[i] = value
        else:
            kwargs[name] = value
    return tuple(args), kwargs


def _with_key(func: Any, args: tuple, kwargs: dict, key: int, offset: int) -> tuple[tuple, dict]:
    """args/kwargs of a philox operator call with its `key` and `offset` arguments replaced."""
    return _with_args(func, args, kwargs, {"key": key, "offset": offset})


# Note [Sharded replay]
# ~~~~~~~~~~~~~~~~~~~~~
# A model sharded after deferred construction (FSDP2, tensor parallelism) is materialized by
# replaying the record; a full replay makes every parameter whole on every rank, transiently:
# world x the work and, for a model that only fits sharded, more memory than the rank has. A
# parameter whose storage the record only allocates (aten.empty), views whole (detach, alias)
# and writes whole with operators that compute each element from its global index alone (the
# philox stream's uniform_, normal_, masked_uniform_, trunc_normal_, which take the shard's global
# shape and start, and the fills) is not made at all: the replay keeps its last write (drawing the
# keys of every write in record order, so generators end as after the full replay) and each rank
# then runs that write on the blocks of its own shard (_sharding.shard_blocks): its elements
# only, the same values (the philox stream's shard contract). Anything else that touches the
# storage (a partial write, a read such as a copy from it, a view other than the whole tensor, a
# torch-stream draw on CPU, which is sequential) makes it whole as before. On CUDA the torch
# stream's uniform_, normal_ and masked_uniform_ are computed shard by shard too (Note [The torch
# stream in the sharded replay]). A pending storage that another
# materialize_ wants whole later is made whole then (_real_view).
_SHARDED_REPLAY = True  # False: every storage made whole (benchmarks/sharded.py compares both)
# The torch stream's writes computed shard by shard (Note [The torch stream in the sharded
# replay]), and the devices where they are: CUDA, where a rank computes only its own elements. On
# CPU the operators on blocks draw every word of the tensor anyway, and the replay would draw them
# twice (tests/test_sharded.py adds "cpu" to check the replay's logic with the CPU operators).
_TORCH_BLOCK_WRITES = {
    getattr(ops, single).default: getattr(ops, on_blocks).default
    for single, on_blocks in {**_BLOCK_OPS, "trunc_normal_": "trunc_normal_blocks_"}.items()
}
_TORCH_BLOCK_REPLAY_DEVICES = frozenset({"cuda"})
_SHARD_WRITES = frozenset(
    {
        ops.philox_uniform_.default,
        ops.philox_normal_.default,
        ops.philox_masked_uniform_.default,
        ops.philox_trunc_normal_.default,
        ops.fill_.default,
        torch.ops.aten.fill_.Scalar,
        torch.ops.aten.zero_.default,
    }
)
_ALLOCATIONS = frozenset({torch.ops.aten.empty.memory_format, torch.ops.aten.empty_strided.default})
_WHOLE_VIEWS = frozenset({torch.ops.aten.detach.default, torch.ops.aten.alias.default})


def _refs(x: Any) -> list[_MetaRef]:
    return [r for r in tree_flatten(x)[0] if isinstance(r, _MetaRef)]


def _same_view(a: _MetaRef, b: _MetaRef) -> bool:
    return (a.storage, a.offset, a.shape, a.stride, a.dtype) == (
        b.storage,
        b.offset,
        b.shape,
        b.stride,
        b.dtype,
    )


def _shardable_storage(entry: _Entry, shardable: dict[int, _MetaRef]) -> int | None:
    """The shardable storage `entry` touches, if any (_shardable made sure it is the only one)."""
    for r in _refs((entry.args, entry.kwargs, entry.out)):
        if r.storage in shardable:
            return r.storage
    return None


def _empty_shard_arguments(entry: _Entry) -> bool:
    """A philox operator recorded on a whole tensor (no global_shape / start given)."""
    names = [a.name for a in entry.func._schema.arguments]
    for name in ("global_shape", "start"):
        if name not in names:
            continue
        i = names.index(name)
        value = entry.args[i] if i < len(entry.args) else entry.kwargs.get(name, [])
        if list(value):
            return False
    return True


def _shardable(record: _Record, targets: list, device: torch.device) -> dict[int, _MetaRef]:
    """The storages a sharded materialize_ computes shard by shard (Note [Sharded replay]): the
    source of exactly one DTensor (under one name, or several: a tie FSDP2 kept) sharded after the
    block, whole and contiguous, that every
    entry touching it only allocates, views whole or writes whole with a _SHARD_WRITES operator,
    and that is written at least once."""
    if not _SHARDED_REPLAY:
        return {}
    shard_writes = _SHARD_WRITES
    if device.type in _TORCH_BLOCK_REPLAY_DEVICES:
        shard_writes = shard_writes | _TORCH_BLOCK_WRITES.keys()
    holders: dict[int, set[int]] = {}  # storage -> the tensors registered from it (a kept tie: one)
    for m, name, _, source, _ in targets:
        t = _registered(m, name)
        holders.setdefault(source.storage, set()).add(id(t))
    whole: dict[int, _MetaRef] = {}
    for m, name, _, source, local in targets:
        t = _registered(m, name)
        if local is not None or not (_sharding.is_dtensor(t) and t.is_meta):
            continue
        contiguous = tuple(torch.empty(source.shape, device=_META).stride())
        if (
            len(holders[source.storage]) == 1
            and source.offset == 0
            and source.shape == tuple(t.shape)
            and source.stride == contiguous
            and source.dtype == t.dtype
        ):
            whole[source.storage] = source
    written: set[int] = set()
    for entry in record.entries:
        inputs, outputs = _refs((entry.args, entry.kwargs)), _refs(entry.out)
        touched = {r.storage for r in inputs + outputs} & whole.keys()
        if not touched:
            continue
        if len(touched) == 1:  # an entry touching two of them makes both whole
            storage = next(iter(touched))
            ref, func = whole[storage], entry.func
            if func in _ALLOCATIONS and not inputs:
                continue
            # The storage's whole view in, as the only meta argument (and out, where it returns one)
            whole_view = (
                len(inputs) == 1
                and _same_view(inputs[0], ref)
                and all(_same_view(o, ref) for o in outputs)
            )
            if whole_view and func in _WHOLE_VIEWS:
                continue
            if (
                whole_view
                and func in shard_writes
                and entry.args
                and entry.args[0] is inputs[0]
                and _empty_shard_arguments(entry)
            ):
                written.add(storage)
                continue
        for s in touched:  # anything else: made whole
            whole.pop(s, None)
    return {s: ref for s, ref in whole.items() if s in written}


def _named(func: Any, args: tuple, kwargs: dict) -> dict:
    """An operator call's arguments by name (those given)."""
    return dict(zip((a.name for a in func._schema.arguments), args, strict=False)) | kwargs


def _params(func: Any, args: tuple, kwargs: dict) -> list[float]:
    """The numbers of a torch-stream write: its arguments but the tensor and the generator."""
    named = _named(func, args, kwargs)
    return [float(v) for n, v in list(named.items())[1:] if n != "generator"]


# Note [The torch stream in the sharded replay]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# A torch-stream write (pyinit's uniform_, normal_, masked_uniform_, trunc_normal_) of a storage
# the sharded replay keeps pending must still move the generator at its place in the record, or
# every later draw would shift. At that place the replay snapshots the generator (a copy with its
# state), then runs the operator on blocks with one empty block: nothing is written and the
# generator moves exactly as the full replay's call moves it (trunc_normal_blocks_ counts the
# whole call's rounds for that). The pending write keeps the snapshot as its
# generator: each rank later draws its shard's values from it (_write_blocks), the values the
# full replay's call writes there, and a storage wanted whole after all draws them whole from it.
def _torch_write_in_order(entry: _Entry, ref: _MetaRef, device: torch.device) -> tuple:
    func = entry.func
    generator = _named(func, entry.args, entry.kwargs).get("generator")
    if generator is None:
        generator = default_generator(device)
    snapshot = torch.Generator(device=generator.device)
    snapshot.set_state(generator.get_state())
    empty = torch.empty([0] * len(ref.shape), dtype=ref.dtype, device=device)
    params = _params(func, entry.args, entry.kwargs)
    _TORCH_BLOCK_WRITES[func]([empty], *params, list(ref.shape), [0] * len(ref.shape), generator)
    return _with_args(func, entry.args, entry.kwargs, {"generator": snapshot})


def _write_blocks(t: Tensor, pending: tuple) -> None:
    """A pending write (Note [Sharded replay]) on the blocks of DTensor `t`'s local shard."""
    _, func, args, kwargs = pending
    local, global_shape, blocks = _sharding.shard_blocks(t)
    if func in _TORCH_BLOCK_WRITES:  # Note [The torch stream in the sharded replay]
        targets, starts = _sharding.block_arguments(local, blocks)
        generator = _named(func, args, kwargs)["generator"]
        params = _params(func, args, kwargs)
        _TORCH_BLOCK_WRITES[func](targets, *params, list(global_shape), starts, generator)
        return
    names = [a.name for a in func._schema.arguments]
    philox = "global_shape" in names
    for block in blocks:
        call_args, call_kwargs = (block.local, *args[1:]), dict(kwargs)
        if philox:
            call_args, call_kwargs = _with_args(
                func,
                call_args,
                call_kwargs,
                {"global_shape": list(global_shape), "start": list(block.start)},
            )
        func(*call_args, **call_kwargs)


def _replay(record: _Record, device: torch.device, shardable: dict[int, _MetaRef]) -> None:
    def to_real(x: Any) -> Any:
        if isinstance(x, _MetaRef):
            return _real_view(x, record, device)
        if isinstance(x, torch.device) and x.type == "meta":
            return device
        return x

    with torch.no_grad():
        for entry in record.entries:
            storage = _shardable_storage(entry, shardable) if shardable else None
            if storage is not None:  # its allocation and views are skipped, its writes kept
                if entry.func in _SHARD_WRITES or entry.func in _TORCH_BLOCK_WRITES:
                    args, kwargs = entry.args, entry.kwargs
                    if entry.func in _TORCH_BLOCK_WRITES:
                        args, kwargs = _torch_write_in_order(entry, shardable[storage], device)
                    if entry.draws_key:  # drawn in order, as the full replay draws it
                        key, offset = draw_key(entry.draw_from)
                        args, kwargs = _with_key(
                            entry.func, args, kwargs, _signed(key), _signed(offset)
                        )
                    record.pending[storage] = (shardable[storage], entry.func, args, kwargs)
                continue
            args = tree_map(to_real, entry.args)
            kwargs = tree_map(to_real, entry.kwargs)
            if entry.draws_key:
                key, offset = draw_key(entry.draw_from)
                args, kwargs = _with_key(entry.func, args, kwargs, _signed(key), _signed(offset))
            fast = _FAST.get(entry.func)
            if (
                fast is not None
                and isinstance(args[0], Tensor)
                and fallback_reason(args[0], fast[0]) is None
                and (len(args) < 2 or isinstance(args[1], (int, float)))
            ):
                fast[1](*args, **kwargs)
                out_real = args[0]
            else:
                out_real = entry.func(*args, **kwargs)
            metas = tree_flatten(entry.out)[0]
            reals = tree_flatten(out_real)[0]
            for m, r in zip(metas, reals, strict=False):
                if isinstance(m, _MetaRef) and isinstance(r, Tensor):
                    record.real.setdefault(m.storage, r.untyped_storage())


def _swap_in(model: nn.Module, record: _Record, device: torch.device) -> None:
    swapped: dict[int, Tensor] = {}  # id(meta tensor) -> its real counterpart: ties stay ties

    def real(t: Tensor, parameter: bool) -> Tensor:
        new = swapped.get(id(t))
        if new is None:
            new = _real_view(t, record, device)
            if parameter:  # nn.Parameter or its subclass, as the module had it
                new = type(t)(new, requires_grad=t.requires_grad)
            swapped[id(t)] = new
        return new

    for _, m in model.named_modules(remove_duplicate=False):
        for table, parameter in ((m._parameters, True), (m._buffers, False)):
            for name, t in list(table.items()):
                if t is not None and t.is_meta:
                    setattr(m, name, real(t, parameter))  # setattr: nn.LSTM's flat weights follow
    # Plain attributes holding a meta tensor (transformers' rotary `original_inv_freq = inv_freq`):
    # the swapped tensor when it is one, else a real view of the same storage.
    left = []
    for prefix, m in model.named_modules(remove_duplicate=False):
        for name, value in list(vars(m).items()):
            if not isinstance(value, Tensor) or not value.is_meta or name.startswith("_"):
                continue
            if id(value) in swapped or _storage_id(value) in record.real:
                object.__setattr__(m, name, real(value, False))
            else:
                left.append(f"{prefix}.{name}" if prefix else name)
    if left:
        raise RuntimeError(
            "pyinit.materialize_: meta tensors held outside parameters and buffers: "
            + ", ".join(left)
        )
