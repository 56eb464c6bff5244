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

from ._ops import ops
from ._streams import PhiloxStream, Stream, _signed
from ._support import fallback_reason, is_plain_tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class BatchingStream(Stream):
    """Wraps `inner` (the torch stream, or an unsharded PhiloxStream whose per-tensor key is set
    with ``set_key``)."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.name = inner.name
        self.philox = isinstance(inner, PhiloxStream)
        self.key: tuple[int, int] | None = None
        # (kind, device, generator id) of the run being collected, and its entries
        self._group: tuple | None = None
        self._tensors: list[Tensor] = []
        self._p1: list[float] = []
        self._p2: list[float] = []
        self._keys: list[int] = []
        self._offsets: list[int] = []
        self._generator: Any = None
        self.calls = 0  # operator calls made (for tests and benchmarks)
        self._kinds: dict[tuple, bool] = {}  # (type, layout, dtype, device type, op) -> batchable

    def set_key(self, key: tuple[int, int]) -> None:
        self.key = key

    def _target(self) -> Stream:
        return PhiloxStream(key=self.key) if self.philox else self.inner

    def _batchable(self, tensor: Tensor, device: torch.device, op: str, generator: Any) -> bool:
        if generator is not None and not isinstance(generator, torch.Generator):
            return False  # torch's TypeError comes from the inner stream
        kind = (type(tensor), tensor.layout, tensor.dtype, device, op)
        ok = self._kinds.get(kind)
        if ok is None:
            ok = self._kinds[kind] = (
                is_plain_tensor(tensor)
                and tensor.layout == torch.strided
                and tensor.dtype in _FLOAT_DTYPES
                and device.type != "meta"
                and fallback_reason(tensor, op) is None
            )
        return ok and not tensor.is_inference()

    def _add(
        self, kind: str, tensor: Tensor, device: torch.device, p1: float, p2: float, generator: Any
    ) -> None:
        group = (kind, device, None if self.philox else id(generator))
        if group != self._group:
            self.flush()
            self._group, self._generator = group, generator
        self._tensors.append(tensor)
        self._p1.append(float(p1))
        self._p2.append(float(p2))
        if self.philox:
            self._keys.append(_signed(self.key[0]))
            self._offsets.append(_signed(self.key[1]))

    def flush(self) -> None:
        if not self._tensors:
            self._group = None
            return
        kind = self._group[0]
        tensors, p1, p2 = self._tensors, self._p1, self._p2
        keys, offsets, generator = self._keys, self._offsets, self._generator
        self._group, self._tensors, self._p1, self._p2 = None, [], [], []
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
        device = tensor.device
        if self._batchable(tensor, device, f"{kind}_", generator):
            self._add(kind, tensor, device, p1, p2, generator)
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
