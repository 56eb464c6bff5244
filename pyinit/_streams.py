"""The random streams as objects: what a random initializer asks of the stream it draws from.

init.py computes fans, gains and bounds exactly as torch.nn.init does, then hands the final numbers
to the stream in effect (pyinit/_selection.py), e.g. ``current_stream().uniform_(tensor, a, b, g)``.
A stream turns them into one call of a torch.ops.pyinit operator, or into torch's own
implementation where pyinit has no kernel for the case (visibly: PyinitFallbackWarning).

- ``TorchStream``: torch's own random stream, bit for bit (pyinit::uniform_, normal_, ...).
- ``PhiloxStream``: the counter-based stream of docs/philox_stream.md (pyinit::philox_*). Built with
  a ``Shard`` it fills only the block of the global tensor that the shard covers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.init as _torch_init
from torch import Tensor

from . import _sharding, _support
from ._ops import _C, direct_call, direct_philox_call, has_kernel, ops
from ._support import is_dense, is_plain_tensor, use_kernel, warn_fallback

# Whether the direct operator call (Note [The direct operator call], pyinit/_ops.py) may replace
# use_kernel's checks: those it does not repeat (torch version, machine) pass here once and for all.
_DIRECT = _support.cpu_kernels_verified()

# torch's own implementations, captured at import so that fallbacks never recurse into pyinit after
# pyinit.patch_torch_init() has replaced torch.nn.init's functions.
_torch_no_grad_trunc_normal_ = _torch_init._no_grad_trunc_normal_
_torch_orthogonal_ = _torch_init.orthogonal_
_torch_sparse_ = _torch_init.sparse_

_MASK64 = (1 << 64) - 1
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Stream:
    """The primitives every random initializer is built from. Each takes final numbers (bounds,
    mean/std, ...) and fills `tensor` in place under no_grad, returning it."""

    name: str

    def uniform_(self, tensor: Tensor, a: float, b: float, generator: Any = None) -> Tensor:
        raise NotImplementedError

    def normal_(self, tensor: Tensor, mean: float, std: float, generator: Any = None) -> Tensor:
        raise NotImplementedError

    def trunc_normal_(
        self, tensor: Tensor, mean: float, std: float, a: float, b: float, generator: Any = None
    ) -> Tensor:
        """Includes torch.nn.init's "mean is more than 2 std from [a, b]" warning."""
        raise NotImplementedError

    def masked_uniform_(
        self, tensor: Tensor, a: float, b: float, threshold: float, generator: Any = None
    ) -> Tensor:
        raise NotImplementedError

    def sparse_(self, tensor: Tensor, sparsity: float, std: float, generator: Any = None) -> Tensor:
        """`tensor` is 2-D (init.sparse_ checks)."""
        raise NotImplementedError

    def orthogonal_gaussian(
        self, tensor: Tensor, rows: int, cols: int, generator: Any = None
    ) -> Tensor | None:
        """The (rows, cols) Gaussian matrix that orthogonal_ factorizes, in a dtype torch.linalg.qr
        takes; None where the stream has no kernel for `tensor` (then torch's orthogonal_ runs)."""
        raise NotImplementedError

    def qr(self, matrix: Tensor) -> tuple[Tensor, Tensor]:
        """The QR factorization orthogonal_ uses (torch.linalg.qr, as torch.nn.init)."""
        return torch.linalg.qr(matrix)

    def orthogonal_finish_(
        self, target: Tensor, q: Tensor, r: Tensor, gain: float, transposed: bool
    ) -> None:
        """target = gain * (q * sign(diag(r))), transposed back when the factorized matrix was."""
        raise NotImplementedError

    def given_back_on_failure(self, generator: Any, tensor: Tensor) -> Any:
        """A context manager for an initializer made of several draws and writes (orthogonal_): in
        the philox stream, every generator the block drew from is put back if it raises; in the
        torch stream, nothing (torch.nn.init's own failed call leaves its draws)."""
        return contextlib.nullcontext()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _on_dtensor(self, primitive: str, dt: Tensor, args: tuple, kwargs: dict) -> Tensor:
        """`primitive` on a DTensor (Note [DTensor shards]): the whole tensor is drawn on every
        rank, as one device would draw it (so every generator ends where one device's would), and
        each rank keeps the elements of its shard."""
        return _sharding.fill_whole(
            dt, lambda full: getattr(self, primitive)(full, *args, **kwargs)
        )


# Note [DTensor shards]
# ~~~~~~~~~~~~~~~~~~~~~
# A random primitive given a DTensor writes only the rank's local shard, which gets exactly the
# values the same call writes into those elements of the whole tensor on one device (fans and
# bounds come from the global shape: init.py reads tensor.shape). No collective runs.
# pyinit/_sharding.py finds which global elements the shard holds, as blocks of consecutive
# indices. The philox stream writes each block directly (its values are a function of the global
# index). The torch stream's uniform_, normal_ and masked_uniform_ run pyinit::<op>blocks_ on the
# shard's blocks (Note [The torch stream on blocks], csrc/torch_blocks.h): on CUDA each rank
# computes its own elements only (torch's CUDA element map is a function of the index); on CPU
# every rank draws the whole tensor's words, torch's CPU generator being sequential (the full
# draw's time per rank), and computes its blocks' elements (normal_: the Box-Muller blocks of 16
# they touch). Its other primitives draw the whole tensor here and keep the shard. Either way
# every rank's generator ends where one device's would.
_PRIMITIVES = ("uniform_", "normal_", "trunc_normal_", "masked_uniform_", "sparse_")
# Arguments of each primitive after the tensor, before the optional generator.
_ARITY = {"uniform_": 2, "normal_": 2, "trunc_normal_": 4, "masked_uniform_": 3, "sparse_": 2}


def _call_generator(primitive: str, args: tuple, kwargs: dict) -> Any:
    """The generator a primitive's call (its arguments after the tensor) was given, else None."""
    return kwargs.get("generator", args[-1] if len(args) > _ARITY[primitive] else None)


def default_generator(device: torch.device) -> torch.Generator:
    """The default generator torch's operators draw from on `device` (CUDA: the device's own, the
    current device when it has no index)."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return torch.cuda.default_generators[index]
    return torch.default_generator


def _dtensor_aware(cls: type) -> type:
    """Routes the class's random primitives to _on_dtensor, and orthogonal_finish_ to
    _orthogonal_finish_sharded, when handed a DTensor."""

    def wrap(name: str, method: Callable) -> Callable:
        @functools.wraps(method)
        def primitive(self, tensor, *args, **kwargs):
            if _sharding.is_dtensor(tensor):
                return self._on_dtensor(name, tensor, args, kwargs)
            return method(self, tensor, *args, **kwargs)

        return primitive

    for name in _PRIMITIVES:
        setattr(cls, name, wrap(name, cls.__dict__[name]))
    finish = cls.__dict__["orthogonal_finish_"]

    @functools.wraps(finish)
    def orthogonal_finish_(self, target, q, r, gain, transposed):
        if _sharding.is_dtensor(target):
            return _orthogonal_finish_sharded(self, target, q, r, gain, transposed)
        return finish(self, target, q, r, gain, transposed)

    cls.orthogonal_finish_ = orthogonal_finish_
    return cls


def _trunc_normal_kernel_reason(tensor: Tensor, p: float) -> str | None:
    """None when trunc_normal_'s kernel for its branch (normal proposals when p > 0.3, else uniform
    proposals) can run on `tensor`, else why not."""
    if _support.torch_version() < (2, 12):
        return f"torch {torch.__version__} uses the inverse-CDF trunc_normal_"
    if tensor.device.type != "meta" and not is_dense(tensor):
        return "non-dense view"
    reason = _support.fallback_reason(tensor, "trunc_normal_")
    if p > 0.3 or reason is not None:
        return reason
    # The narrow branch: its own operator, CPU only; its log_ is MKL's (Note [torch's CPU vector
    # math is MKL's], csrc/cpu/mkl_vml.h).
    device = tensor.device.type
    if device == "cpu" and not torch.backends.mkl.is_available():
        return "narrow bounds: torch built without MKL (its CPU log_ is not MKL's)"
    if device != "meta" and not _support.has_kernel("trunc_normal_uniform_", device):
        return f"narrow bounds (uniform-proposal branch): no {device} kernel"
    return None


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _warn_far_mean(mean: float, std: float, a: float, b: float, stacklevel: int) -> None:
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=stacklevel + 1,
        )


def _not_numbers(values: tuple) -> bool:
    """Whether a value is one torch's argument parser refuses as a float (a str, None, a complex),
    where float() or the dispatcher would take it or raise another error: torch's own call then
    raises its TypeError, before anything is drawn or written."""
    return any(v is None or isinstance(v, (str, bytes, complex)) for v in values)


def _call_op(op: str, tensor: Tensor, *args: Any) -> None:
    """pyinit::<op>(tensor, *args) under no_grad: the direct call (Note [The direct operator call],
    pyinit/_ops.py) where it takes the arguments, else torch.ops."""
    if not (_DIRECT and direct_call(op, tensor, *args)):
        with torch.no_grad():
            getattr(ops, op)(tensor, *args)


def _kernel(op: str, tensor: Tensor, *args: Any) -> bool:
    """Runs pyinit::<op>(tensor, *args) (the generator last) and returns True, or returns False
    when torch's implementation must run instead (use_kernel warned where it says so)."""
    if _DIRECT and direct_call(op, tensor, *args):
        return True
    if _not_numbers(args[:-1]) or not use_kernel(tensor, op, generator=args[-1]):
        return False
    with torch.no_grad():
        getattr(ops, op)(tensor, *args)
    return True


def _block_call(primitive: str, args: tuple, kwargs: dict) -> tuple[list[float], Any] | None:
    """(the parameters as floats, the generator) of a primitive's call (its arguments after the
    tensor) that the operators on blocks take as it is: every parameter given by position and a
    number, nothing but the generator by keyword, a torch.Generator or None; else None (the call
    then runs on the whole tensor, with torch's own errors)."""
    params = args[: _ARITY[primitive]]
    generator = _call_generator(primitive, args, kwargs)
    if (
        len(params) != _ARITY[primitive]
        or not set(kwargs) <= {"generator"}
        or _not_numbers(params)
        or not (generator is None or isinstance(generator, torch.Generator))
    ):
        return None
    return [float(v) for v in params], generator


# The torch stream's operators on blocks of a tensor (Note [The torch stream on blocks],
# csrc/torch_blocks.h), by primitive.
_BLOCK_OPS = {
    "uniform_": "uniform_blocks_",
    "normal_": "normal_blocks_",
    "masked_uniform_": "masked_uniform_blocks_",
}


@_dtensor_aware
class TorchStream(Stream):
    """torch's own random stream: the values torch.nn.init writes, and the generator state it
    leaves, from pyinit's kernels (torch's implementation where there is none)."""

    name = "torch"

    def _on_dtensor(self, primitive: str, dt: Tensor, args: tuple, kwargs: dict) -> Tensor:
        """uniform_, normal_ and masked_uniform_ run pyinit::<primitive>blocks_ on the blocks of
        the rank's shard: on CUDA each rank computes only its own elements; on CPU the operator
        draws every word of the tensor (the generator is one sequence) and computes the blocks'
        elements (Note [The torch stream on blocks], csrc/torch_blocks.h). The other
        primitives, and what that operator cannot take (a dtype, an argument torch refuses, a
        fallback), draw the whole tensor here (Note [DTensor shards])."""
        op = _BLOCK_OPS.get(primitive)
        if op is not None:
            local, global_shape, blocks = _sharding.shard_blocks(dt)
            call = _block_call(primitive, args, kwargs)
            if call is not None and _support.fallback_reason(local, op) is None:
                params, generator = call
                targets, starts = _sharding.block_arguments(local, blocks)
                with torch.no_grad():
                    getattr(ops, op)(targets, *params, list(global_shape), starts, generator)
                torch.autograd.graph.increment_version(dt)
                return dt
        if primitive == "trunc_normal_" and self._trunc_normal_on_blocks(dt, args, kwargs):
            return dt
        if primitive == "sparse_" and self._sparse_on_blocks(dt, args, kwargs):
            return dt
        return super()._on_dtensor(primitive, dt, args, kwargs)

    def _sparse_on_blocks(self, dt: Tensor, args: tuple, kwargs: dict) -> bool:
        """sparse_ on the blocks of the rank's shard with pyinit::sparse_blocks_ where sparse_
        would run its kernel on the whole tensor, and True; else False (then the whole tensor is
        drawn, with torch's errors and warnings: Note [DTensor shards])."""
        call = _block_call("sparse_", args, kwargs)
        if call is None or dt.dim() != 2:
            return False
        (sparsity, std), generator = call
        rows = dt.shape[0]
        local = dt.to_local()
        if rows > 3_000_000 or _support.fallback_reason(local, "sparse_blocks_") is not None:
            return False
        num_zeros = math.ceil(sparsity * rows)
        _, global_shape, blocks = _sharding.shard_blocks(dt)
        targets, starts = _sharding.block_arguments(local, blocks)
        with torch.no_grad():
            ops.sparse_blocks_(targets, num_zeros, std, list(global_shape), starts, generator)
        torch.autograd.graph.increment_version(dt)
        return True

    def _trunc_normal_on_blocks(self, dt: Tensor, args: tuple, kwargs: dict) -> bool:
        """trunc_normal_ by normal proposals (p > 0.3) on the blocks of the rank's shard with
        pyinit::trunc_normal_blocks_, where trunc_normal_ would run that kernel on the whole
        tensor, and True; else False (torch's arithmetic, the narrow branch, std == 0, a
        fallback): then the whole tensor is drawn (Note [DTensor shards])."""
        call = _block_call("trunc_normal_", args, kwargs)
        if call is None:
            return False
        (mean, std, a, b), generator = call
        if std == 0:
            return False
        local = dt.to_local()
        p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
        if (
            p <= 0.3
            or _trunc_normal_kernel_reason(local, p) is not None
            or _support.fallback_reason(local, "trunc_normal_blocks_") is not None
        ):
            return False
        # No far-mean warning here: a mean more than 2 std outside [a, b] leaves p < 0.023.
        _, global_shape, blocks = _sharding.shard_blocks(dt)
        targets, starts = _sharding.block_arguments(local, blocks)
        with torch.no_grad():
            ops.trunc_normal_blocks_(
                targets, mean, std, a, b, list(global_shape), starts, generator
            )
        torch.autograd.graph.increment_version(dt)
        return True

    def uniform_(self, tensor: Tensor, a: float, b: float, generator: Any = None) -> Tensor:
        if not _kernel("uniform_", tensor, a, b, generator):
            with torch.no_grad():
                tensor.uniform_(a, b, generator=generator)
        return tensor

    def normal_(self, tensor: Tensor, mean: float, std: float, generator: Any = None) -> Tensor:
        if not _kernel("normal_", tensor, mean, std, generator):
            with torch.no_grad():
                tensor.normal_(mean, std, generator=generator)
        return tensor

    def trunc_normal_(
        self, tensor: Tensor, mean: float, std: float, a: float, b: float, generator: Any = None
    ) -> Tensor:
        # Meta tensors have no storage, so sampling is a no-op (unless deferred() records it).
        if tensor.is_meta and _support.recording() is None:
            return tensor
        if std == 0:  # torch warns, then raises ZeroDivisionError computing p
            return _torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator)
        p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
        reason = _trunc_normal_kernel_reason(tensor, p)
        if not use_kernel(tensor, "trunc_normal_", reason, generator):
            return _torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator)
        _warn_far_mean(mean, std, a, b, stacklevel=3)
        if p > 0.3:
            _call_op("trunc_normal_", tensor, mean, std, a, b, generator)
        else:
            # torch's own Python arithmetic (and its OverflowError for a huge mean), before any
            # draw.
            mode = max(a, min(mean, b))
            log_peak = -0.5 * ((mode - mean) / std) ** 2
            _call_op("trunc_normal_uniform_", tensor, mean, std, a, b, log_peak, generator)
        return tensor

    def masked_uniform_(
        self, tensor: Tensor, a: float, b: float, threshold: float, generator: Any = None
    ) -> Tensor:
        if not _kernel("masked_uniform_", tensor, a, b, threshold, generator):
            with torch.no_grad():
                tensor.uniform_(a, b, generator=generator)
                tensor *= tensor.abs() >= threshold
        return tensor

    def sparse_(self, tensor: Tensor, sparsity: float, std: float, generator: Any = None) -> Tensor:
        if tensor.is_meta and _support.recording() is None:
            return tensor
        rows = tensor.shape[0]
        num_zeros = math.ceil(sparsity * rows)
        # torch.randperm's Fisher-Yates draws one 32-bit word per step (verified up to 3e6 rows).
        reason = "more than 3e6 rows" if rows > 3_000_000 else None
        if not use_kernel(tensor, "sparse_", reason, generator):
            return _torch_sparse_(tensor, sparsity, std, generator)
        with torch.no_grad():
            ops.sparse_(tensor, num_zeros, std, generator)
        return tensor

    def orthogonal_gaussian(
        self, tensor: Tensor, rows: int, cols: int, generator: Any = None
    ) -> Tensor | None:
        if _sharding.is_dtensor(tensor):  # the whole matrix, on every rank (Note [DTensor shards])
            tensor = tensor.to_local()
        if not use_kernel(tensor, "orthogonal_finish_"):
            return None
        flattened = tensor.new_empty((rows, cols))
        self.normal_(flattened, 0, 1, generator)
        if flattened.dtype in (torch.float16, torch.bfloat16):
            flattened = flattened.float()
        return flattened

    def orthogonal_finish_(
        self, target: Tensor, q: Tensor, r: Tensor, gain: float, transposed: bool
    ) -> None:
        ops.orthogonal_finish_(target, q, r, gain, transposed)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def draw_key(generator: torch.Generator | None = None) -> tuple[int, int]:
    """The (key, offset) of one philox call, as unsigned 64-bit integers.

    A CPU generator (``generator``, or ``torch.default_generator`` when None) gives ``w =
    torch.randint(0, 2**32, (4,), generator=g)``: key = w0 | w1 << 32, offset = w2 | w3 << 32 (it
    advances the generator like any draw). A CUDA (or other Philox-based) generator gives key =
    splitmix64(splitmix64(initial_seed) ^ generator offset), offset = 0, and advances its offset by
    4.
    """
    g = torch.default_generator if generator is None else generator
    if g.device.type == "cpu":
        return _C.philox_key(g)  # those words, drawn in C++ (csrc/python/module.cpp)
    position = g.get_offset()
    g.set_offset(position + 4)
    return _splitmix64(_splitmix64(g.initial_seed() & _MASK64) ^ position), 0


def name_key(seed: int, name: str) -> tuple[int, int]:
    """The (key, offset) of the tensor called `name` (a qualified parameter name) under `seed`.

    BLAKE2b with a 16-byte digest of the UTF-8 name, keyed by the seed's 8 little-endian bytes
    (``seed mod 2**64``) and personalized ``b"pyinit.philox"``: key = the digest's first 8 bytes,
    offset = the last 8, both little-endian (docs/philox_stream.md, "Keys from names").
    """
    digest = hashlib.blake2b(
        name.encode("utf-8"),
        digest_size=16,
        key=(int(seed) & _MASK64).to_bytes(8, "little"),
        person=b"pyinit.philox",
    ).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


class NameKeys:
    """name_key(seed, ·) for many names: the keyed BLAKE2b state is set up once and copied per
    name (the same digest as hashing each name from scratch, in about half the time). The
    batched form is ``_C.name_keys(NameKeys(seed).seed, names)`` (csrc/python/model_facts.cpp)."""

    __slots__ = ("_keyed", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = int(seed) & _MASK64
        self._keyed = hashlib.blake2b(
            digest_size=16, key=self.seed.to_bytes(8, "little"), person=b"pyinit.philox"
        )

    def __call__(self, name: str) -> tuple[int, int]:
        """(key, offset) as unsigned 64-bit integers."""
        h = self._keyed.copy()
        h.update(name.encode("utf-8"))
        return _UNSIGNED_PAIR(h.digest())


# The two little-endian 64-bit words of a 16-byte digest.
_UNSIGNED_PAIR = struct.Struct("<QQ").unpack


def _generator_restorer(g: torch.Generator) -> Callable[[], None]:
    """A function that puts `g` back where it is now."""
    if g.device.type == "cpu":
        state = g.get_state()
        return lambda: g.set_state(state)
    position = g.get_offset()
    return lambda: g.set_offset(position)


class _GivenBack:
    """Puts back, if the block raises, every generator a philox call may draw from: the one draw_key
    uses (`generator`, else the default CPU generator) and, for torch's own operators on a tensor
    of another device (a fallback), that device's default generator."""

    def __init__(self, generator: Any, tensor: Tensor | None = None) -> None:
        self.generator, self.tensor = generator, tensor

    def __enter__(self) -> None:
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            self.restores = []  # torch's TypeError comes before any draw
            return
        g = torch.default_generator if self.generator is None else self.generator
        self.restores = [_generator_restorer(g)]
        device = None if self.tensor is None else self.tensor.device
        if self.generator is None and device is not None and device.type == "cuda":
            self.restores.append(_generator_restorer(default_generator(device)))

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:
            for restore in self.restores:
                restore()


@dataclass(frozen=True)
class Shard:
    """The block of a global tensor that one rank holds: `local` is the block of a tensor of shape
    `global_shape` that starts at index `start`."""

    local: Tensor
    global_shape: tuple[int, ...]
    start: tuple[int, ...]


# Note [The philox stream under torch.compile]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# Eager draws the key in Python or C++ (draw_key, _C.philox_call) and passes it to the operator as
# two ints. Neither traces: Dynamo cannot call _C, and torch.randint in a graph is Inductor's own
# random stream (other values, another generator state), whose ints would be data besides. So while
# Dynamo traces, a whole-tensor call runs pyinit::philox_<op>_drawn_(tensor, params..., generator)
# instead: it draws the key from the generator when the graph runs, with draw_key's words, then
# runs philox_<op>_ (csrc/philox_drawn.cpp), and gives the key back if that raises. The compiled
# call therefore writes what eager writes and leaves the generator where eager leaves it (tests/
# test_compile.py, every public initializer). Its Meta kernel checks std as torch's meta normal_
# does, so such errors come while tracing. Shards, explicit keys and devices without a philox
# kernel keep the eager path (which does not trace). philox orthogonal_'s QR is an operator too
# (pyinit::qr_serial_): a thread count cannot be set inside a graph.
#
# Note [Degenerate trunc_normal_ arguments in the philox stream]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# torch's trunc_normal_ computes p (the mass in [a, b]) and, where p <= 0.3, the log of its
# proposal's peak before it draws: a mean far outside [a, b] (mean=1e300) overflows there
# (OverflowError), so the philox stream computes the same two numbers first and raises the same
# error, having drawn nothing. std=NaN makes p NaN, so torch takes its uniform-proposal branch,
# whose acceptance test compares with NaN and accepts every first proposal: the tensor gets
# U(a, b). The philox stream writes its own U(a, b) then (philox uniform_), rather than refuse.

# The philox operators of each primitive _run serves: with the key as arguments, and drawing it
# (philox_uniform_, philox_uniform_drawn_), looked up once.
_PHILOX_OPS = {
    op: (getattr(ops, f"philox_{op}"), getattr(ops, f"philox_{op}drawn_"))
    for op in ("uniform_", "normal_", "masked_uniform_", "trunc_normal_")
}


def _philox_fallback_reason(tensor: Tensor) -> str | None:
    if _support.is_functorch_wrapped(tensor):
        return "inside a torch.func transform (vmap, grad)"
    if is_plain_tensor(tensor) and tensor.layout == torch.strided and tensor.dtype in _FLOAT_DTYPES:
        return None
    return f"no philox kernel for {type(tensor).__name__} {tensor.dtype} {tensor.layout}"


@_dtensor_aware
class PhiloxStream(Stream):
    """The counter-based stream (docs/philox_stream.md): each call draws one (key, offset) with
    draw_key, and element i of the (global) tensor gets a pure function of (key, offset, i).

    With a `shard`, every tensor handed to the stream stands for the global tensor (a meta tensor of
    shape ``shard.global_shape``, so that fans and bounds come from it) and the values go to
    ``shard.local``. With a `key` = (key, offset), calls use it instead of drawing one.
    """

    name = "philox"

    def __init__(self, shard: Shard | None = None, key: tuple[int, int] | None = None) -> None:
        self.shard = shard
        self.key = key
        # The direct call draws the key itself (Note [The direct operator call]): whole tensors
        # only.
        self._direct = _DIRECT and shard is None and key is None

    def __repr__(self) -> str:
        return f"PhiloxStream(shard={self.shard!r}, key={self.key!r})"

    @contextlib.contextmanager
    def _call_key(
        self, generator: Any, key: tuple[int, int] | None = None, target: Tensor | None = None
    ) -> Iterator[tuple[int, int]]:
        """The (key, offset) of one call: `key`, else the stream's own, else drawn from the
        generator. When the call raises (its operator validates before writing), a drawn key is
        given back: the generator is left where it was, as torch's initializers leave it. Inside
        deferred(), a call on a meta tensor draws nothing: its key is drawn when it is replayed."""
        if key is not None or self.key is not None:
            yield key if key is not None else self.key
            return
        recorder = _support.recording()
        if recorder is not None and target is not None and target.is_meta:
            recorder.philox_key_drawn_at_replay(generator)
            yield 0, 0
            return
        with _GivenBack(generator):
            yield draw_key(generator)

    def given_back_on_failure(self, generator: Any, tensor: Tensor) -> Any:
        if torch.compiler.is_compiling():  # nothing to give back: a failure raises while tracing
            return contextlib.nullcontext()
        return _GivenBack(generator, tensor)

    def _on_dtensor(self, primitive: str, dt: Tensor, args: tuple, kwargs: dict) -> Tensor:
        """Each block of the rank's shard written directly with one key for the whole call, drawn
        as a call on the whole tensor draws it (Note [DTensor shards])."""
        if self.shard is not None:
            raise ValueError("pyinit: a DTensor inside init_shard_ (the shard is given twice)")
        local, global_shape, blocks = _sharding.shard_blocks(dt)
        generator = _call_generator(primitive, args, kwargs)
        with self._call_key(generator) as key:
            proxy = torch.empty(global_shape, dtype=local.dtype, device="meta")
            for block in blocks:
                stream = PhiloxStream(shard=Shard(block.local, global_shape, block.start), key=key)
                getattr(stream, primitive)(proxy, *args, **kwargs)
        torch.autograd.graph.increment_version(dt)
        return dt

    def _target(self, tensor: Tensor) -> tuple[Tensor, list[int], list[int]]:
        """The tensor to write and its (global_shape, start): the shard's block when sharded."""
        if self.shard is None:
            return tensor, [], []
        assert tuple(tensor.shape) == self.shard.global_shape
        return self.shard.local, list(self.shard.global_shape), list(self.shard.start)

    def _run(
        self,
        op: str,
        tensor: Tensor,
        params: tuple,
        generator: Any,
        torch_fallback: Callable[[], Any],
        key: tuple[int, int] | None = None,
    ) -> Tensor:
        """Runs pyinit::philox_<op>: the device kernel, else a CPU buffer copied over (same values),
        else torch's stream with a warning (tensor subclasses, non-float dtypes)."""
        target, global_shape, start = self._target(tensor)
        # Before the meta early return: torch's ops check the dtype and generator on meta too.
        # Under no_grad, as the torch stream runs them (a leaf that requires grad is allowed).
        reason = _philox_fallback_reason(target)
        if reason is not None:
            warn_fallback(op, reason, stream="philox")
            # torch's stream draws, and may raise after (complex trunc_normal_): put it back then.
            with self.given_back_on_failure(generator, target), torch.no_grad():
                torch_fallback()
            return tensor
        if (generator is not None and not isinstance(generator, torch.Generator)) or _not_numbers(
            params
        ):
            with torch.no_grad():
                torch_fallback()  # torch's own TypeError, before anything is drawn or written
            return tensor
        params = tuple(float(p) for p in params)
        fn, drawn = _PHILOX_OPS[op]
        if target.is_meta and _support.recording() is None:
            # Nothing drawn or written; the Meta kernel checks and counts the write as torch's meta
            # in-place ops do (csrc/meta.cpp).
            with torch.no_grad():
                fn(target, *params, 0, 0, global_shape, start)
            return tensor
        if (
            torch.compiler.is_compiling()
            and key is None
            and self.key is None
            and self.shard is None
            and has_kernel("philox_" + op, target.device.type)
        ):
            # Note [The philox stream under torch.compile]
            with torch.no_grad():
                drawn(target, *params, generator)
            return tensor
        with self._call_key(generator, key, target) as (key, offset), torch.no_grad():
            if target.is_meta or has_kernel(f"philox_{op}", target.device.type):
                fn(target, *params, _signed(key), _signed(offset), global_shape, start)
            else:
                buffer = torch.empty(target.shape, dtype=target.dtype)
                fn(buffer, *params, _signed(key), _signed(offset), global_shape, start)
                target.copy_(buffer)
        return tensor

    # Each primitive tries the direct call (Note [The direct operator call]) before building _run's
    # arguments: the float conversions and the fallback closure cost as much as the call itself.
    def uniform_(self, tensor: Tensor, a: float, b: float, generator: Any = None) -> Tensor:
        if self._direct and direct_philox_call("philox_uniform_", generator, tensor, a, b):
            return tensor
        return self._run(
            "uniform_",
            tensor,
            (a, b),
            generator,
            lambda: tensor.uniform_(a, b, generator=generator),
        )

    def normal_(self, tensor: Tensor, mean: float, std: float, generator: Any = None) -> Tensor:
        if self._direct and direct_philox_call("philox_normal_", generator, tensor, mean, std):
            return tensor
        return self._run(
            "normal_",
            tensor,
            (mean, std),
            generator,
            lambda: tensor.normal_(mean, std, generator=generator),
        )

    def masked_uniform_(
        self, tensor: Tensor, a: float, b: float, threshold: float, generator: Any = None
    ) -> Tensor:
        def composition() -> None:
            tensor.uniform_(a, b, generator=generator)
            tensor.mul_(tensor.abs() >= threshold)

        if self._direct and direct_philox_call(
            "philox_masked_uniform_", generator, tensor, a, b, threshold
        ):
            return tensor
        return self._run("masked_uniform_", tensor, (a, b, threshold), generator, composition)

    def trunc_normal_(
        self, tensor: Tensor, mean: float, std: float, a: float, b: float, generator: Any = None
    ) -> Tensor:
        # As torch's: nothing happens on a meta tensor, not even its warning (unless deferred()
        # records).
        if tensor.is_meta and _support.recording() is None and self.shard is None:
            return tensor
        if std <= 0 or not a < b:
            return _torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator)
        _warn_far_mean(mean, std, a, b, stacklevel=4)
        # torch's arithmetic before its draw, so that it raises where torch's raises (Note
        # [Degenerate trunc_normal_ arguments in the philox stream]).
        p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
        if not p > 0.3:
            mode = max(a, min(mean, b))
            _ = -0.5 * ((mode - mean) / std) ** 2  # OverflowError for a mean far outside [a, b]
        if math.isnan(std):  # torch's uniform-proposal branch then accepts its first proposal
            return self.uniform_(tensor, a, b, generator)
        if self._direct and direct_philox_call(
            "philox_trunc_normal_", generator, tensor, mean, std, a, b
        ):
            return tensor
        return self._run(
            "trunc_normal_",
            tensor,
            (mean, std, a, b),
            generator,
            lambda: _torch_no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator),
        )

    def sparse_(self, tensor: Tensor, sparsity: float, std: float, generator: Any = None) -> Tensor:
        """Values and zero pattern from one (key, offset), so `generator` governs the pattern too
        (docs/philox_stream.md)."""
        target, global_shape, start = self._target(tensor)
        rows = global_shape[0] if global_shape else tensor.shape[0]
        if target.is_meta and _support.recording() is None:
            return tensor
        # torch zeroes row_indices[:num_zeros] of a permutation per column: a negative count slices
        # from the end, as here.
        num_zeros = len(range(rows)[: math.ceil(sparsity * rows)])
        if generator is not None and not isinstance(generator, torch.Generator):
            return tensor.normal_(0.0, std, generator=generator)  # torch's TypeError
        fused = _philox_fallback_reason(target) is None and (
            target.is_meta or has_kernel("philox_sparse_", target.device.type)
        )
        if fused and torch.compiler.is_compiling() and self.shard is None and self.key is None:
            with torch.no_grad():  # Note [The philox stream under torch.compile]
                ops.philox_sparse_drawn_(target, num_zeros, float(std), generator)
            return tensor
        with self._call_key(generator, target=target) as (key, offset), torch.no_grad():
            if fused:
                # Values and zero pattern in one pass (csrc/cpu/philox_cpu.cpp).
                key_bits, offset_bits = _signed(key), _signed(offset)
                ops.philox_sparse_(
                    target, num_zeros, float(std), key_bits, offset_bits, global_shape, start
                )
                return tensor
            self._run(
                "normal_",
                tensor,
                (0.0, float(std)),
                generator,
                lambda: tensor.normal_(0.0, std, generator=generator),
                key=(key, offset),
            )
            writes = 1  # normal_'s
            if num_zeros > 0:
                keep = torch.ones(tuple(target.shape), dtype=torch.bool)
                ops.philox_sparse_(
                    keep, num_zeros, None, _signed(key), _signed(offset), global_shape, start
                )
                target.masked_fill_(torch.logical_not(keep).to(target.device), 0.0)
                writes += 1
            # torch.nn.init.sparse_ counts 1 + cols writes (normal_, then one per column).
            for _ in range(writes, 1 + target.shape[1]):
                torch.autograd.graph.increment_version(target)
        return tensor

    def qr(self, matrix: Tensor) -> tuple[Tensor, Tensor]:
        """On CPU, with one thread (pyinit::qr_serial_, csrc/cpu/structured_cpu.cpp): LAPACK's
        blocked QR splits its work by the thread count, and so do its roundings; the stream promises
        the same values for any thread count. An operator, so that a compiled function runs it
        too."""
        if matrix.device.type != "cpu" or matrix.dtype not in (torch.float32, torch.float64):
            return torch.linalg.qr(matrix)  # (a complex matrix: torch's own error follows)
        rows, cols = matrix.shape
        k = min(rows, cols)
        q, r = matrix.new_empty((rows, k)), matrix.new_empty((k, cols))
        ops.qr_serial_(q, r, matrix)
        return q, r

    def orthogonal_gaussian(
        self, tensor: Tensor, rows: int, cols: int, generator: Any = None
    ) -> Tensor:
        """float32 for half and bfloat16 tensors."""
        dtype = torch.float32 if tensor.dtype in (torch.float16, torch.bfloat16) else tensor.dtype
        flattened = torch.empty((rows, cols), dtype=dtype, device=tensor.device)
        self.normal_(flattened, 0.0, 1.0, generator)
        return flattened

    def orthogonal_finish_(
        self, target: Tensor, q: Tensor, r: Tensor, gain: float, transposed: bool
    ) -> None:
        q *= torch.sign(torch.diag(r, 0))
        if transposed:
            q.t_()
        target.copy_(q)
        target.mul_(gain)


def _orthogonal_finish_sharded(
    stream: Stream, target: Tensor, q: Tensor, r: Tensor, gain: float, transposed: bool
) -> None:
    """orthogonal_ on a DTensor: every rank factorized the whole Gaussian (no gather: each draws
    it), finishes the whole matrix, and keeps its shard (Note [DTensor shards])."""
    _sharding.fill_whole(
        target, lambda full: stream.orthogonal_finish_(full, q, r, gain, transposed)
    )
