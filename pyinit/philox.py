"""The philox stream: counter-based random initializers that give the same values whatever the
thread count, the device or the sharding (see docs/philox_stream.md for the exact definition).

Every random initializer of pyinit exists here with the same signature and always uses the philox
stream; ``pyinit.set_stream("philox")`` / ``with pyinit.stream("philox"):`` make the plain
``pyinit.*`` initializers route here. ``init_shard_`` fills one block of a larger (global) tensor
with exactly that block's values.

Each call on a non-meta tensor takes a 64-bit key and a 64-bit counter offset from a torch.Generator
(``draw_key``): ``generator`` if given, else ``torch.default_generator`` (the CPU one, whatever the
tensor's device, so that CPU and CUDA tensors get the same values after the same
``torch.manual_seed``).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from . import _stream
from . import init as _init
from ._ops import has_kernel, ops
from ._support import PyinitFallbackWarning, _is_plain_tensor

__all__ = [
    "uniform_",
    "normal_",
    "trunc_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
    "masked_uniform_",
    "init_shard_",
    "draw_key",
]

_MASK64 = (1 << 64) - 1
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


class _ShardState(threading.local):
    def __init__(self) -> None:
        self.proxy: Tensor | None = None
        self.local: Tensor | None = None
        self.global_shape: list[int] = []
        self.start: list[int] = []
        self.key: tuple[int, int] | None = None


_shard = _ShardState()


def draw_key(generator: torch.Generator | None = None) -> tuple[int, int]:
    """The (key, offset) of one philox call, as unsigned 64-bit integers.

    A CPU generator (``generator``, or ``torch.default_generator`` when None) gives ``w =
    torch.randint(0, 2**32, (4,), generator=g)``: key = w0 | w1 << 32, offset = w2 | w3 << 32 (it
    advances the generator like any draw). A CUDA (or other Philox-based) generator gives key =
    splitmix64(splitmix64(initial_seed) ^ generator offset), offset = 0, and advances its offset by
    4.
    """
    if _shard.key is not None:
        return _shard.key
    g = torch.default_generator if generator is None else generator
    if g.device.type == "cpu":
        w = torch.randint(0, 2**32, (4,), dtype=torch.int64, generator=g).tolist()
        return w[0] | (w[1] << 32), w[2] | (w[3] << 32)
    position = g.get_offset()
    g.set_offset(position + 4)
    return _splitmix64(_splitmix64(g.initial_seed() & _MASK64) ^ position), 0


def _target(tensor: Tensor) -> tuple[Tensor, list[int], list[int]]:
    """The tensor to write and its (global_shape, start): the local block when `tensor` is
    init_shard_'s proxy."""
    if _shard.proxy is not None and tensor is _shard.proxy:
        assert _shard.local is not None
        return _shard.local, list(_shard.global_shape), list(_shard.start)
    return tensor, [], []


def _fallback(tensor: Tensor, op: str, reason: str) -> None:
    warnings.warn(
        f"pyinit.philox.{op}: using torch's stream ({reason})", PyinitFallbackWarning, stacklevel=4
    )


def _run(
    op: str,
    tensor: Tensor,
    params: tuple,
    generator: torch.Generator | None,
    torch_fallback: Callable[[], Any],
) -> Tensor:
    """Runs pyinit::philox_<op> on `tensor` (or init_shard_'s block): the device kernel, else a CPU
    buffer copied over (same values), else torch's stream with a warning (tensor subclasses,
    non-float dtypes)."""
    target, global_shape, start = _target(tensor)
    if target.is_meta:
        return tensor
    if (
        not _is_plain_tensor(target)
        or target.layout != torch.strided
        or target.dtype not in _FLOAT_DTYPES
    ):
        _fallback(
            target,
            op,
            f"no philox kernel for {type(target).__name__} {target.dtype} {target.layout}",
        )
        torch_fallback()
        return tensor
    key, offset = draw_key(generator)
    fn = getattr(ops, f"philox_{op}")
    with torch.no_grad():
        if has_kernel(f"philox_{op}", target.device.type):
            fn(target, *params, _signed(key), _signed(offset), global_shape, start)
        else:
            buffer = torch.empty(target.shape, dtype=target.dtype)
            fn(buffer, *params, _signed(key), _signed(offset), global_shape, start)
            target.copy_(buffer)
    return tensor


# ---- the no-grad helpers the torch-stream mirror routes to (see the hooks in pyinit/init.py) -----


def _uniform(
    tensor: Tensor, a: float, b: float, generator: torch.Generator | None = None
) -> Tensor:
    return _run(
        "uniform_",
        tensor,
        (float(a), float(b)),
        generator,
        lambda: tensor.uniform_(a, b, generator=generator),
    )


def _normal(
    tensor: Tensor, mean: float, std: float, generator: torch.Generator | None = None
) -> Tensor:
    return _run(
        "normal_",
        tensor,
        (float(mean), float(std)),
        generator,
        lambda: tensor.normal_(mean, std, generator=generator),
    )


def _masked_uniform(
    tensor: Tensor, a: float, b: float, threshold: float, generator: torch.Generator | None = None
) -> Tensor:
    def composition() -> None:
        tensor.uniform_(a, b, generator=generator)
        tensor.mul_(tensor.abs() >= threshold)

    return _run(
        "masked_uniform_", tensor, (float(a), float(b), float(threshold)), generator, composition
    )


def _trunc_normal(
    tensor: Tensor,
    mean: float,
    std: float,
    a: float,
    b: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    if std <= 0 or not a < b:
        return _init._torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator)
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=4,
        )
    return _run(
        "trunc_normal_",
        tensor,
        (float(mean), float(std), float(a), float(b)),
        generator,
        lambda: _init._torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator),
    )


def _sparse(
    tensor: Tensor, sparsity: float, std: float, generator: torch.Generator | None = None
) -> Tensor:
    """normal_(0, std) values; per column, the ceil(sparsity * rows) rows with the smallest
    philox_bits words (stream 1, ties by row) are zero. Both from one (key, offset), so `generator`
    governs the pattern too."""
    target, global_shape, start = _target(tensor)
    rows = global_shape[0] if global_shape else tensor.shape[0]
    if target.is_meta:
        return tensor
    num_zeros = int(math.ceil(sparsity * rows))
    key, offset = draw_key(generator)
    with torch.no_grad():
        if (
            _is_plain_tensor(target)
            and target.layout == torch.strided
            and target.dtype in _FLOAT_DTYPES
            and has_kernel("philox_sparse_", target.device.type)
        ):
            # Values and zero pattern in one pass (csrc/cpu/philox_cpu.cpp).
            ops.philox_sparse_(
                target, num_zeros, float(std), _signed(key), _signed(offset), global_shape, start
            )
            return tensor
        _shard.key, saved = (key, offset), _shard.key
        try:
            _normal(tensor, 0.0, std, generator)
        finally:
            _shard.key = saved
        if num_zeros > 0:
            keep = torch.ones(tuple(target.shape), dtype=torch.bool)
            ops.philox_sparse_(
                keep, num_zeros, None, _signed(key), _signed(offset), global_shape, start
            )
            target.masked_fill_(torch.logical_not(keep).to(target.device), 0.0)
    return tensor


def _orthogonal(tensor: Tensor, gain: float, generator: torch.Generator | None = None) -> Tensor:
    """The Gaussian matrix from the philox stream (float32 for half/bfloat16), then
    torch.linalg.qr."""
    if _shard.proxy is not None and tensor is _shard.proxy:
        raise NotImplementedError("pyinit.philox.init_shard_: orthogonal_ needs the whole matrix")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    dtype = torch.float32 if tensor.dtype in (torch.float16, torch.bfloat16) else tensor.dtype
    flattened = torch.empty((rows, cols), dtype=dtype, device=tensor.device)
    _normal(flattened, 0.0, 1.0, generator)
    if rows < cols:
        flattened.t_()
    q, r = torch.linalg.qr(flattened)
    with torch.no_grad():
        q *= torch.sign(torch.diag(r, 0))
        if rows < cols:
            q.t_()
        tensor.view(rows, cols).copy_(q)
        tensor.mul_(gain)
    return tensor


# ---- the public mirror ---------------------------------------------------------------------------


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""``pyinit.uniform_`` in the philox stream: values from :math:`\mathcal{U}(a, b)`."""
    with _stream.stream("philox"):
        return _init.uniform_(tensor, a, b, generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""``pyinit.normal_`` in the philox stream: :math:`\mathcal{N}(\text{mean}, \text{std}^2)`."""
    with _stream.stream("philox"):
        return _init.normal_(tensor, mean, std, generator)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``pyinit.trunc_normal_`` in the philox stream (one pass, no host synchronization)."""
    with _stream.stream("philox"):
        return _init.trunc_normal_(tensor, mean, std, a, b, generator)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """``pyinit.xavier_uniform_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.xavier_uniform_(tensor, gain, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """``pyinit.xavier_normal_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.xavier_normal_(tensor, gain, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``pyinit.kaiming_uniform_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.kaiming_uniform_(tensor, a, mode, nonlinearity, generator)  # type: ignore[arg-type]


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``pyinit.kaiming_normal_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.kaiming_normal_(tensor, a, mode, nonlinearity, generator)  # type: ignore[arg-type]


def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None
) -> Tensor:
    """``pyinit.orthogonal_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.orthogonal_(tensor, gain, generator)


def sparse_(
    tensor: Tensor, sparsity: float, std: float = 0.01, generator: torch.Generator | None = None
) -> Tensor:
    """``pyinit.sparse_`` in the philox stream (the zero pattern comes from the stream too)."""
    with _stream.stream("philox"):
        return _init.sparse_(tensor, sparsity, std, generator)


def masked_uniform_(
    tensor: Tensor,
    a: float = -10.0,
    b: float = 10.0,
    threshold: float = 5.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``pyinit.masked_uniform_`` in the philox stream."""
    with _stream.stream("philox"):
        return _init.masked_uniform_(tensor, a, b, threshold, generator=generator)


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
    offset) (see draw_key). ``orthogonal_`` cannot be sharded.

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
    fn = globals()[init] if isinstance(init, str) else init
    if getattr(fn, "__module__", None) != __name__:
        raise ValueError(f"init_shard_ takes a pyinit.philox initializer, got {init!r}")
    proxy = torch.empty(global_shape, dtype=local.dtype, device="meta")
    saved = (_shard.proxy, _shard.local, _shard.global_shape, _shard.start, _shard.key)
    _shard.proxy, _shard.local, _shard.global_shape, _shard.start = (
        proxy,
        local,
        global_shape,
        start,
    )
    _shard.key = draw_key(generator) if key is None else (key[0] & _MASK64, key[1] & _MASK64)
    try:
        fn(proxy, *args, generator=generator, **kwargs)
    finally:
        _shard.proxy, _shard.local, _shard.global_shape, _shard.start, _shard.key = saved
    return local
