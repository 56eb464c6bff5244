"""timm's own initializers, bit-identical to timm's and faster: ``pyinit.timm``.

timm initializes most of its weights with its own helpers (``timm.layers.trunc_normal_``,
``trunc_normal_tf_``, ``variance_scaling_``, ``lecun_normal_``), not with torch.nn.init, so
``pyinit.patch_torch_init()`` never sees them. This module has the same four functions, with
timm's signatures, defaults, return values, warnings and errors, writing exactly what timm's write
for the same generator state (values, generator state after the call, autograd version counter).

    from pyinit import timm as timm_init
    timm_init.trunc_normal_(w, std=0.02)       # == timm.layers.trunc_normal_(w, std=0.02)

    with pyinit.patch_torch_init(timm=True):    # or: with pyinit.patch_timm():
        model = timm.create_model("vit_base_patch16_224")   # same weights as plain timm, faster

timm does not need to be installed to use the functions; ``patch_timm()`` needs it. They run
pyinit's fused CPU operator (``pyinit::timm_trunc_normal_``: pyinit's torch-stream uniform_, then
torch's own erfinv, mul, add and clamp arithmetic in one pass; see docs/timm.md) on dense
float32/float64 CPU tensors, where exactness is verified (the CUDA kernel, never run on a GPU yet,
only with PYINIT_ALLOW_UNVERIFIED=1), and otherwise run
timm's composition of torch operators unchanged (with a ``PyinitFallbackWarning`` naming the
reason, once per reason). They always use the torch stream, whatever ``pyinit.set_stream`` says:
timm's values are torch's.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings

import torch
from torch.nn.init import _calculate_fan_in_and_fan_out

from . import _patch, _support
from ._ops import ops
from ._support import PyinitFallbackWarning, fallback_reason, is_dense

__all__ = [
    "trunc_normal_",
    "trunc_normal_tf_",
    "variance_scaling_",
    "lecun_normal_",
    "patch_timm",
    "restore_timm",
    "VERIFIED_TIMM_VERSIONS",
]

# timm versions whose weight_init helpers pyinit's functions were checked against, bit for bit
# (tests/test_timm_compat.py, whole models included). patch_timm() installs nothing for another
# version (unless PYINIT_ALLOW_UNVERIFIED=1), with a PyinitFallbackWarning.
VERIFIED_TIMM_VERSIONS = ("1.0.29",)

# torch versions on which the fused operator was checked against timm's composition (its CPU erfinv_
# being MKL's is a property of the build: checked per version). Others run the composition.
_VERIFIED_TORCH = ((2, 13), (2, 14))

_OP = "timm_trunc_normal_"
_NUMBER = (int, float)


def _fused_reason(tensor: torch.Tensor) -> str | None:
    """None when pyinit::timm_trunc_normal_ writes timm's values into `tensor`, else why not."""
    reason = fallback_reason(tensor, _OP)
    if reason is not None:
        return reason
    if tensor.dtype not in (torch.float32, torch.float64):
        return f"dtype {tensor.dtype}"
    if not is_dense(tensor):
        return "a non-dense tensor"
    if tensor.device.type == "cpu":
        if not torch.backends.mkl.is_available():
            return "torch built without MKL: its CPU erfinv_ is not MKL's"
        if _support.torch_version() not in _VERIFIED_TORCH and not _support._allow_unverified():
            return f"not verified against torch {torch.__version__}"
    if tensor.device.type == "cuda" and not _support._allow_unverified():
        return "the CUDA kernel has not been run on a GPU yet"
    return None


# The library whose helpers a function reproduces -> how its fallback warning names it.
_OWNERS = {"timm": "timm's", "transformers": "transformers'"}


def _warn_fallback(name: str, reason: str, owner: str = "timm") -> None:
    """A PyinitFallbackWarning once per (function, reason), at the first frame outside pyinit and
    torch. `owner`: the library whose copy of the helper `name` is (pyinit.<owner>.<name>)."""
    key = (owner, name, reason)
    if key in _support._warned:
        return
    _support._warned.add(key)
    level, _ = _support._caller_outside_pyinit()
    message = (
        f"pyinit.{owner}.{name}: using {_OWNERS[owner]} composition of torch operators ({reason})"
    )
    warnings.warn(message, PyinitFallbackWarning, stacklevel=level)


def _norm_cdf(x: float) -> float:
    # The standard normal CDF, computed as timm computes it.
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _trunc_normal(
    tensor, mean, std, a, b, post_std=None, post_mean=None, name="trunc_normal_", owner="timm"
):
    """timm's _trunc_normal_ (then trunc_normal_tf_'s scale and shift when post_std is given).
    `name`, `owner`: the function whose fallback warning this is (see _warn_fallback)."""
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=3,
        )
    low = 2 * _norm_cdf((a - mean) / std) - 1
    high = 2 * _norm_cdf((b - mean) / std) - 1
    scale = std * math.sqrt(2.0)
    post = post_std is not None
    numbers = (low, high, scale, mean, a, b) + ((post_std, post_mean) if post else ())
    fused = isinstance(tensor, torch.Tensor) and all(
        isinstance(x, _NUMBER) and not isinstance(x, bool) for x in numbers
    )
    if fused and not tensor.is_meta:
        reason = _fused_reason(tensor)
        if reason is None and torch.is_grad_enabled() and tensor.requires_grad:
            # Only transformers' _trunc_normal_ runs without no_grad: autograd must see (or refuse,
            # on a leaf) the in-place operators.
            reason = "autograd records the operators (grad mode, a tensor that requires grad)"
        if reason is None:
            if post:
                ops.timm_trunc_normal_(tensor, low, high, scale, mean, a, b, post_std, post_mean)
            else:
                ops.timm_trunc_normal_(tensor, low, high, scale, mean, a, b)
            return tensor
        _warn_fallback(name, reason, owner)
    # timm's own steps (also what pyinit.deferred() records on meta tensors).
    tensor.uniform_(low, high)
    tensor.erfinv_()
    tensor.mul_(scale)
    tensor.add_(mean)
    tensor.clamp_(min=a, max=b)
    if post:
        tensor.mul_(post_std).add_(post_mean)
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    r"""timm.layers.trunc_normal_: fill the tensor with values from a normal distribution
    :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to :math:`[a, b]` (the bounds apply to
    the scaled and shifted values), by timm's inverse-CDF method, with timm's exact results.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        mean, std: the mean and standard deviation of the normal distribution
        a, b: the minimum and maximum cutoff values

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.timm.trunc_normal_(w, std=0.02)
    """
    with torch.no_grad():
        return _trunc_normal(tensor, mean, std, a, b)


def trunc_normal_tf_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    r"""timm.layers.trunc_normal_tf_: like trunc_normal_, but the bounds apply to the standard
    normal (mean 0, std 1), which is then scaled by `std` and shifted by `mean` (TensorFlow / JAX
    convention), with timm's exact results. Arguments as trunc_normal_'s.

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.timm.trunc_normal_tf_(w, std=0.02)
    """
    with torch.no_grad():
        _trunc_normal(tensor, 0, 1.0, a, b, std, mean, name="trunc_normal_tf_")
    return tensor


def variance_scaling_(tensor, scale=1.0, mode="fan_in", distribution="normal"):
    """timm.layers.variance_scaling_: std = sqrt(scale / fan), with fan the tensor's fan_in,
    fan_out or their mean (`mode`), and `distribution` "truncated_normal" (trunc_normal_tf_ at 2
    std, corrected to the wanted std), "normal" or "uniform". Returns None, as timm's does."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    # The same control flow as timm's: an unknown mode fails where timm's does (denom unbound).
    if mode == "fan_in":
        denom = fan_in
    elif mode == "fan_out":
        denom = fan_out
    elif mode == "fan_avg":
        denom = (fan_in + fan_out) / 2

    variance = scale / denom  # noqa: F821  (unbound for an unknown mode, as in timm)

    if distribution == "truncated_normal":
        # constant is the stddev of the standard normal truncated to (-2, 2)
        trunc_normal_tf_(tensor, std=math.sqrt(variance) / 0.87962566103423978)
    elif distribution == "normal":
        with torch.no_grad():
            _normal(tensor, math.sqrt(variance))
    elif distribution == "uniform":
        bound = math.sqrt(3 * variance)
        with torch.no_grad():
            _uniform(tensor, -bound, bound)
    else:
        raise ValueError(f"invalid distribution {distribution}")


def lecun_normal_(tensor):
    """timm.layers.lecun_normal_: variance_scaling_(tensor, mode="fan_in",
    distribution="truncated_normal"). Returns None, as timm's does."""
    variance_scaling_(tensor, mode="fan_in", distribution="truncated_normal")


def _normal(tensor: torch.Tensor, std: float) -> None:
    """tensor.normal_(std=std), through pyinit's torch-stream normal_ where it runs."""
    if not tensor.is_meta and _support.use_kernel(tensor, "normal_"):
        ops.normal_(tensor, 0.0, std)
    else:
        tensor.normal_(std=std)


def _uniform(tensor: torch.Tensor, low: float, high: float) -> None:
    """tensor.uniform_(low, high), through pyinit's torch-stream uniform_ where it runs."""
    if not tensor.is_meta and _support.use_kernel(tensor, "uniform_"):
        ops.uniform_(tensor, low, high)
    else:
        tensor.uniform_(low, high)


# ---- the patch ----------------------------------------------------------------------------------

_NAMES = ("trunc_normal_", "trunc_normal_tf_", "variance_scaling_", "lecun_normal_")


def _timm_helpers() -> dict[int, object] | None:
    """id(timm's function) -> pyinit's, for the installed timm; None (with a warning) when this
    timm version is not verified."""
    import timm
    from timm.layers import weight_init

    version = getattr(timm, "__version__", "unknown")
    if version not in VERIFIED_TIMM_VERSIONS and not _support._allow_unverified():
        _warn_fallback("patch_timm", f"timm {version} is not verified; timm's helpers are kept")
        return None
    own = sys.modules[__name__]
    return {id(getattr(weight_init, name)): getattr(own, name) for name in _NAMES}


_PATCH = _patch.LibraryPatch("timm", _timm_helpers)


def restore_timm() -> None:
    """Put timm's own helpers back everywhere patch_timm() replaced them."""
    _PATCH.restore()


def patch_timm() -> contextlib.AbstractContextManager:
    """Route timm's trunc_normal_, trunc_normal_tf_, variance_scaling_ and lecun_normal_ through
    pyinit.timm, wherever the loaded timm modules bound them (timm.layers, timm.layers.weight_init
    and every timm.models module that imported them), for the installed timm if it is verified
    (VERIFIED_TIMM_VERSIONS). Imports timm.

    Use as a context manager::

        with pyinit.patch_timm():
            model = timm.create_model("convnext_tiny")

    or call it once and ``pyinit.restore_timm()`` to undo it. Modules imported after the call are
    not patched. ``pyinit.patch_torch_init(timm=True)`` patches torch.nn.init and timm together.
    """
    return _PATCH.context()
