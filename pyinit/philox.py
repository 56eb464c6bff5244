"""The philox stream: counter-based random initializers that give the same values whatever the
thread count, the device or the sharding. docs/philox_stream.md defines the stream (the key and
offset each call draws with ``draw_key``, the counter map, the transforms).

Every random initializer of pyinit exists here with the same signature, generated from
pyinit/init.py: it runs that function with the philox stream selected.
``pyinit.set_stream("philox")`` / ``with pyinit.stream("philox"):`` select the philox stream for the
plain ``pyinit.*`` initializers. ``init_shard_`` fills one block of a larger (global) tensor with
exactly that block's values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor
from typing_extensions import ParamSpec

from . import init as _init
from ._selection import PHILOX, call_in, selected
from ._streams import PhiloxStream, Shard, draw_key

_R = TypeVar("_R")
_P = ParamSpec("_P")
_MASK64 = (1 << 64) - 1


def _in_philox_stream(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """`fn` (a pyinit/init.py initializer) run with the philox stream selected."""

    @functools.wraps(fn)
    def in_philox_stream(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return call_in(PHILOX, fn, *args, **kwargs)

    in_philox_stream.__module__ = __name__
    in_philox_stream.__doc__ = (
        f"``pyinit.{fn.__name__}`` in the philox stream (see docs/philox_stream.md).\n\n"
        f"    {(fn.__doc__ or '').strip()}"
    )
    return in_philox_stream


# One wrapper per random initializer of init.py (those that take a generator).
_INITIALIZERS = tuple(
    _in_philox_stream(getattr(_init, name))
    for name in _init.__all__
    if "generator" in inspect.signature(getattr(_init, name)).parameters
)
globals().update({fn.__name__: fn for fn in _INITIALIZERS})
__all__ = [fn.__name__ for fn in _INITIALIZERS] + ["init_shard_", "draw_key"]
# Initializers that are more than one primitive on the tensor itself (a QR of the whole matrix, or
# arithmetic after the draw), so a shard cannot be written alone.
_WHOLE_TENSOR_ONLY = (
    _init.orthogonal_,
    _init.orthogonal_columns_,
    _init.delta_orthogonal_,
    _init.trunc_normal_tf_,
)


def init_shard_(
    local: Tensor,
    global_shape: Sequence[int],
    start: Sequence[int],
    init: str | Callable[..., Tensor],
    *args: Any,
    generator: torch.Generator | None = None,
    key: tuple[int, int] | None = None,
    **kwargs: Any,
) -> Tensor:
    """Fill `local`, the block of a tensor of shape `global_shape` that starts at index `start`,
    with exactly the values ``init`` would write into that block of the whole tensor (philox
    stream).

    Fans, gains and bounds come from `global_shape`. The key and offset are drawn from `generator`
    as a call on the whole tensor would (so ranks seeded alike agree), or taken from `key` = (key,
    offset) (see draw_key). ``orthogonal_``, ``orthogonal_columns_``, ``delta_orthogonal_`` and
    ``trunc_normal_tf_`` cannot be sharded.

    Examples:
        >>> torch.manual_seed(0)
        >>> w = torch.empty(4, 6)
        >>> pyinit.philox.init_shard_(w, (8, 6), (4, 0), "kaiming_uniform_", a=math.sqrt(5))
    """
    global_shape = [int(s) for s in global_shape]
    start = [int(s) for s in start]
    if len(global_shape) != local.dim() or len(start) != local.dim():
        raise ValueError("global_shape and start need one entry per dimension of the local tensor")
    for s, n, g in zip(start, local.shape, global_shape, strict=True):
        if s < 0 or s + n > g:
            raise ValueError(
                f"block {tuple(local.shape)} at {tuple(start)} does not fit in "
                f"{tuple(global_shape)}"
            )
    initializer = globals().get(init) if isinstance(init, str) else init
    if initializer not in _INITIALIZERS:
        raise ValueError(f"init_shard_ takes a pyinit.philox initializer, got {init!r}")
    fn = initializer.__wrapped__  # the init.py function, run below in the shard's stream
    proxy = torch.empty(global_shape, dtype=local.dtype, device="meta")
    drawn = draw_key(generator) if key is None else (key[0] & _MASK64, key[1] & _MASK64)
    if fn in _WHOLE_TENSOR_ONLY:
        raise NotImplementedError(
            f"pyinit.philox.init_shard_: {fn.__name__} needs the whole tensor"
        )
    shard = Shard(local, tuple(global_shape), tuple(start))
    with selected(PhiloxStream(shard=shard, key=drawn)):
        fn(proxy, *args, generator=generator, **kwargs)
    return local
