"""Many tensors in few operator calls: a stream that collects uniform_/normal_ calls and runs each
run of them as one ``pyinit::*_many_`` call (csrc/many.cpp, the fused CPU philox kernel).

``init_module_`` selects a ``BatchingStream`` while it walks a model, so that init.py's functions
(kaiming_uniform_, xavier_normal_, ...) compute their bounds as always and hand the final numbers
here. Consecutive calls of one kind on one device with one generator become one call, in order,
so the values and generator states are those of one call per tensor. Whatever is not batched (other
primitives, tensors pyinit has no kernel for) first flushes what is pending, then runs in the inner
stream. ``flush()`` must run before anything else may read the tensors or use the generators.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._ops import _C, ops
from ._streams import PhiloxStream, Stream, _signed
from ._support import fallback_reason, is_plain_tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_DEVICE_BITS = 0xFFFFFF  # the device type and index of a tensor code


class BatchingStream(Stream):
    """Wraps `inner` (the torch stream, or an unsharded PhiloxStream whose per-tensor key is set
    with ``set_key``)."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.name = inner.name
        self.philox = isinstance(inner, PhiloxStream)
        self.key: tuple[int, int] | None = None
        self._signed_key: tuple[int, int] = (0, 0)
        # The run being collected: its kind, device (code & _DEVICE_BITS for a plain tensor, else
        # the torch.device) and generator, and its entries.
        self._kind: str | None = None
        self._device: torch.device | None = None
        self._generator: Any = None
        self._tensors: list[Tensor] = []
        self._p1: list[float] = []
        self._p2: list[float] = []
        self._keys: list[int] = []
        self._offsets: list[int] = []
        self.calls = 0  # operator calls made (for tests and benchmarks)
        # kind -> {code or (type, layout, dtype, device): whether such tensors can be batched}
        self._decided: dict[str, dict[Any, bool]] = {"uniform": {}, "normal": {}}
        # The last call collected through uniform_/normal_: (kind, tensor, p1, p2, generator).
        # init_module_ reads it to replay an initializer's final numbers (Note [Replayed bounds]).
        self.seen: tuple | None = None

    def set_key(self, key: tuple[int, int]) -> None:
        self.key = key
        self._signed_key = (_signed(key[0]), _signed(key[1]))

    def _target(self) -> Stream:
        return PhiloxStream(key=self.key) if self.philox else self.inner

    def _batchable(self, tensor: Tensor, kind: str) -> bool:
        """Whether `tensor` can join a run of {kind}_ calls, asked once per code or signature."""
        device = tensor.device
        return (
            is_plain_tensor(tensor)
            and tensor.layout == torch.strided
            and tensor.dtype in _FLOAT_DTYPES
            and device.type != "meta"
            and fallback_reason(tensor, f"{kind}_") is None
        )

    def add(
        self,
        kind: str,
        tensor: Tensor,
        p1: float,
        p2: float,
        generator: Any,
        key: int = 0,
        offset: int = 0,
        code: int | None = None,
    ) -> bool:
        """Put ``{kind}_(tensor, p1, p2, generator)`` into the pending run when it can be batched
        (else leave everything as it was and return False). In the philox stream `key`, `offset`
        are the tensor's, as signed 64-bit integers. `code` is the tensor's _C.tensor_code, when
        the caller has it (Note [Tensor codes] in csrc/python/model_facts.cpp)."""
        if generator is not None and not isinstance(generator, torch.Generator):
            return False  # torch's TypeError comes from the inner stream
        if code is None:
            code = _C.tensor_code(tensor)
        decided = self._decided[kind]
        if code is not None:  # a plain tensor: its code says all the checks need
            ok = decided.get(code)
            if ok is None:
                ok = decided[code] = self._batchable(tensor, kind) and not tensor.is_inference()
            device: Any = code & _DEVICE_BITS
        else:  # a subclass (fake or functional tensors under torch.compile)
            device = tensor.device
            signature = (type(tensor), tensor.layout, tensor.dtype, device)
            ok = decided.get(signature)
            if ok is None:
                ok = decided[signature] = self._batchable(tensor, kind)
            ok = ok and not tensor.is_inference()
        if not ok:
            return False
        if (
            kind != self._kind
            or device != self._device
            or (generator is not self._generator and not self.philox)  # philox: keys, no draws
        ):
            self.flush()
            self._kind, self._device, self._generator = kind, device, generator
        self._tensors.append(tensor)
        self._p1.append(float(p1))
        self._p2.append(float(p2))
        if self.philox:
            self._keys.append(key)
            self._offsets.append(offset)
        return True

    def flush(self) -> None:
        kind = self._kind
        self._kind = self._device = None
        if not self._tensors:
            self._generator = None
            return
        tensors, p1, p2 = self._tensors, self._p1, self._p2
        keys, offsets, generator = self._keys, self._offsets, self._generator
        self._tensors, self._p1, self._p2 = [], [], []
        self._keys, self._offsets, self._generator = [], [], None
        self.calls += 1
        with torch.no_grad():
            if self.philox:
                getattr(ops, f"philox_{kind}_many_")(tensors, p1, p2, keys, offsets)
            else:
                getattr(ops, f"{kind}_many_")(tensors, p1, p2, generator)

    # ---- the primitives ------------------------------------------------------------------------

    def _collect(self, kind: str, tensor: Tensor, p1: float, p2: float, generator: Any) -> Tensor:
        """uniform_/normal_: into the pending run, else (after a flush) through the inner stream."""
        if self.add(kind, tensor, p1, p2, generator, *self._signed_key):
            self.seen = (kind, tensor, p1, p2, generator)
            return tensor
        self.flush()
        return getattr(self._target(), f"{kind}_")(tensor, p1, p2, generator)

    def uniform_(self, tensor: Tensor, a: float, b: float, generator: Any = None) -> Tensor:
        return self._collect("uniform", tensor, a, b, generator)

    def normal_(self, tensor: Tensor, mean: float, std: float, generator: Any = None) -> Tensor:
        return self._collect("normal", tensor, mean, std, generator)

    def trunc_normal_(self, tensor, mean, std, a, b, generator=None):
        self.flush()
        return self._target().trunc_normal_(tensor, mean, std, a, b, generator)

    def masked_uniform_(self, tensor, a, b, threshold, generator=None):
        self.flush()
        return self._target().masked_uniform_(tensor, a, b, threshold, generator)

    def sparse_(self, tensor, sparsity, std, generator=None):
        self.flush()
        return self._target().sparse_(tensor, sparsity, std, generator)

    def orthogonal_gaussian(self, tensor, rows, cols, generator=None):
        self.flush()
        return self._target().orthogonal_gaussian(tensor, rows, cols, generator)

    def qr(self, matrix):
        return self._target().qr(matrix)

    def orthogonal_finish_(self, target, q, r, gain, transposed):
        self.flush()
        return self._target().orthogonal_finish_(target, q, r, gain, transposed)
