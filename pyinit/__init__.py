"""pyinit: a C++/CUDA-accelerated, drop-in replacement for torch.nn.init.

    import pyinit as init          # wherever `from torch.nn import init` was used

Every name of torch.nn.init is here with the same signature, defaults, errors and warnings; in the
default `torch` stream the random initializers write exactly the values torch.nn.init writes (same
generator state in, same state out), with fused C++/CUDA kernels. Extras: `masked_uniform_` (a fused
custom initializer) and `patch_torch_init()` (make torch.nn modules construct through pyinit).
"""

from . import philox
from ._patch import patch_torch_init, restore_torch_init
from ._selection import get_stream, set_stream, stream
from ._support import PyinitFallbackWarning, fallback_reason
from .init import (
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
    _make_deprecate,
    _no_grad_fill_,
    _no_grad_normal_,
    _no_grad_trunc_normal_,
    _no_grad_uniform_,
    _no_grad_zero_,
    calculate_gain,
    constant,
    constant_,
    dirac,
    dirac_,
    eye,
    eye_,
    kaiming_normal,
    kaiming_normal_,
    kaiming_uniform,
    kaiming_uniform_,
    masked_uniform_,
    normal,
    normal_,
    ones_,
    orthogonal,
    orthogonal_,
    sparse,
    sparse_,
    trunc_normal_,
    uniform,
    uniform_,
    xavier_normal,
    xavier_normal_,
    xavier_uniform,
    xavier_uniform_,
    zeros_,
)

__version__ = "0.1.0"

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
    "uniform",
    "normal",
    "constant",
    "eye",
    "dirac",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "sparse",
    # pyinit extras
    "masked_uniform_",
    "patch_torch_init",
    "restore_torch_init",
    "PyinitFallbackWarning",
    "fallback_reason",
    # random streams (docs/philox_stream.md)
    "philox",
    "set_stream",
    "get_stream",
    "stream",
]

_private_helpers = (
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
    _make_deprecate,
    _no_grad_fill_,
    _no_grad_normal_,
    _no_grad_trunc_normal_,
    _no_grad_uniform_,
    _no_grad_zero_,
)
