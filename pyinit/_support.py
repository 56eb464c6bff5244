"""When an initializer runs a pyinit kernel, and when it falls back to torch (visibly).

The `torch` stream promises the values the installed torch writes. Where pyinit has not verified its
kernels against this torch version, device or platform, or has no kernel for a case (complex or
integer dtypes, sparse layouts, tensor subclasses such as DTensor), it calls torch's own
implementation instead and says so once per (initializer, reason) with a `PyinitFallbackWarning`.
`fallback_reason()` returns that reason (or None) so tests can check that a fallback is taken on
purpose.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import warnings
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch._subclasses.functional_tensor import FunctionalTensor

from ._ops import has_kernel

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# torch versions whose CPU kernels pyinit reproduces bit for bit: each joined the list only after
# the whole test suite (tests/test_bitwise.py against live torch.nn.init among it) passed on
# that version with PYINIT_ALLOW_UNVERIFIED=1 (2.14.1+cu130, 2.15.0+cu130; see docs/decisions.md).
# torch 2.11/2.12 CPU distribution templates differ; they use torch's own code.
_VERIFIED_CPU_TORCH = ((2, 13), (2, 14), (2, 15))
_X86 = platform.machine().lower() in ("x86_64", "amd64")


class PyinitFallbackWarning(UserWarning):
    """An initializer ran torch's own implementation instead of a pyinit kernel."""


def _parse_torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


_TORCH_VERSION = _parse_torch_version()


def torch_version() -> tuple[int, int]:
    return _TORCH_VERSION


def _allow_unverified() -> bool:
    return os.environ.get("PYINIT_ALLOW_UNVERIFIED", "0") == "1"


def is_plain_tensor(tensor: torch.Tensor) -> bool:
    """A torch.Tensor or Parameter, not a subclass that overrides what the kernels would do."""
    if type(tensor) in (torch.Tensor, torch.nn.Parameter):
        return True
    # Fake and functional tensors (torch.compile tracing) dispatch to the operators' fake
    # implementations.
    return isinstance(tensor, (FakeTensor, FunctionalTensor))


def is_dense(tensor: torch.Tensor) -> bool:
    """Whether the elements of `tensor` fill one block of memory without overlap, in any order."""
    dims = sorted((st, sz) for sz, st in zip(tensor.shape, tensor.stride(), strict=True) if sz != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def is_functorch_wrapped(tensor: torch.Tensor) -> bool:
    """A tensor seen inside torch.func.vmap / grad: torch's own random operators implement vmap's
    `randomness` modes; pyinit's operators have no batching rules. (Not asked while torch.compile
    traces: Dynamo cannot trace the check, and traces vmap with its own machinery.)"""
    return not torch.compiler.is_compiling() and _is_functorch_wrapped(tensor)


_is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def fallback_reason(tensor: torch.Tensor, op: str) -> str | None:
    """None when pyinit::<op> can run on `tensor`, else why not."""
    if not isinstance(tensor, torch.Tensor):
        return "not a tensor"
    if not is_plain_tensor(tensor):
        return f"tensor subclass {type(tensor).__name__}"
    if is_functorch_wrapped(tensor):
        return "inside a torch.func transform (vmap, grad)"
    if tensor.layout != torch.strided:
        return f"layout {tensor.layout}"
    if tensor.dtype not in _FLOAT_DTYPES:
        return f"dtype {tensor.dtype}"
    device = tensor.device.type
    if device == "meta":
        return None
    if not has_kernel(op, device):
        return f"no {device} kernel"
    if device == "cpu":
        # os.environ is read only when a check fails (a lookup costs as much as the other checks).
        if torch_version() not in _VERIFIED_CPU_TORCH and not _allow_unverified():
            return f"CPU kernels not verified against torch {torch.__version__}"
        if not _X86 and not _allow_unverified():
            return f"CPU kernels not verified on {platform.machine()}"
    return None


def cpu_kernels_verified() -> bool:
    """Whether fallback_reason's torch-version and machine checks pass on their own (without
    PYINIT_ALLOW_UNVERIFIED)."""
    return torch_version() in _VERIFIED_CPU_TORCH and _X86


_warned: set[tuple[str, str, str]] = set()  # (stream, initializer, reason)


# The public initializers (init.py registers its __all__): a fallback warning names the outermost
# one on the stack, so that `kaiming_uniform_` and `uniform_` falling back each say so once.
PUBLIC_NAMES: set[str] = set()
# Frames in these packages are skipped: pyinit's own, and torch's (__torch_function__ dispatch, and
# torch.nn modules' reset_parameters calling a patched initializer), so the warning lands on the
# user's line.
_SKIPPED_DIRS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(torch.__file__)) + os.sep,
)


def _caller_outside_pyinit() -> tuple[int, str | None]:
    """(stacklevel for a warnings.warn issued in the caller of this function's caller, that points
    at the first frame outside pyinit and torch; the outermost public initializer on the way)."""
    frame = sys._getframe(2)
    level, public = 2, None
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED_DIRS):
        if frame.f_code.co_name in PUBLIC_NAMES and frame.f_code.co_filename.startswith(
            _SKIPPED_DIRS[0]
        ):
            public = frame.f_code.co_name
        frame = frame.f_back
        level += 1
    return level, public


def warn_fallback(op: str, reason: str, stream: str = "torch") -> None:
    """The PyinitFallbackWarning, once per (stream, public initializer, reason), at the user's
    line (the first frame outside pyinit)."""
    level, public = _caller_outside_pyinit()
    name = public or op
    key = (stream, name, reason)
    if key not in _warned:
        _warned.add(key)
        what = (
            f"pyinit.{name}: using torch's implementation"
            if stream == "torch"
            else (f"pyinit.{stream}.{name}: using torch's stream")
        )
        warnings.warn(f"{what} ({reason})", PyinitFallbackWarning, stacklevel=level)


def use_kernel(
    tensor: torch.Tensor,
    op: str,
    reason: str | None = None,
    generator: object = None,
) -> bool:
    """True to run pyinit::<op>; else warns (warn_fallback) and returns False.

    A `generator` that is not a torch.Generator also returns False, without a warning: torch's own
    path then raises torch's TypeError (the dispatcher would raise a RuntimeError instead).
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        return False
    if reason is None:
        reason = fallback_reason(tensor, op)
    if reason is None:
        return True
    warn_fallback(op, reason)
    return False


class _Deferred(threading.local):
    """The recorder of the innermost pyinit.deferred() block in this thread (pyinit/_deferred.py),
    else None. Here, in the leaf module, so that the streams can ask without an import cycle."""

    recorder: Any = None


_deferred = _Deferred()


def recording() -> Any:
    """The active deferred() recorder, or None: a meta tensor then stands for a real one and
    initializers must call their operators on it (they are recorded) instead of returning early."""
    return _deferred.recorder
