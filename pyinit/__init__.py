"""pyinit: a C++/CUDA-accelerated, drop-in replacement for torch.nn.init.

    import pyinit as init          # wherever `from torch.nn import init` was used

Every name of torch.nn.init is here with the same signature, defaults, errors and warnings; in the
default `torch` stream the random initializers write exactly the values torch.nn.init writes (same
generator state in, same state out), with fused C++/CUDA kernels. Extras: `masked_uniform_` (a fused
custom initializer) and `patch_torch_init()` (make torch.nn modules construct through pyinit).
"""

from . import init, philox, timm, transformers
from ._deferred import deferred, materialize_
from ._patch import patch_torch_init, restore_torch_init
from ._selection import get_stream, set_stream, stream
from ._support import PyinitFallbackWarning, fallback_reason
from .init import *  # noqa: F403  (the torch.nn.init mirror: every name in init.__all__)
from .init import _calculate_correct_fan as _calculate_correct_fan
from .init import _calculate_fan_in_and_fan_out as _calculate_fan_in_and_fan_out
from .init import _make_deprecate as _make_deprecate
from .init import _no_grad_fill_ as _no_grad_fill_
from .init import _no_grad_normal_ as _no_grad_normal_
from .init import _no_grad_trunc_normal_ as _no_grad_trunc_normal_
from .init import _no_grad_uniform_ as _no_grad_uniform_
from .init import _no_grad_zero_ as _no_grad_zero_
from .model import InitReport, ParamInit, init_module_
from .timm import patch_timm, restore_timm
from .transformers import patch_transformers, restore_transformers

__version__ = "0.1.0"

__all__ = [
    "patch_torch_init",
    "restore_torch_init",
    # timm's own initializers (docs/timm.md)
    "timm",
    "patch_timm",
    "restore_timm",
    # transformers' copies of them (docs/timm.md)
    "transformers",
    "patch_transformers",
    "restore_transformers",
    "PyinitFallbackWarning",
    "fallback_reason",
    # random streams (docs/philox_stream.md)
    "philox",
    "set_stream",
    "get_stream",
    "stream",
    # whole models (docs/model_init.md)
    "init_module_",
    "deferred",
    "materialize_",
    "InitReport",
    "ParamInit",
]
__all__ += init.__all__
