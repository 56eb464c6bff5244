"""The torch.nn.init mirror: every public name, signature, default, error and warning of
torch.nn.init, with the random initializers running pyinit's fused kernels (see docs/decisions.md
for what falls back and why, and docs/architecture.md for the layers).

Fans, gains and bounds are computed here exactly as torch.nn.init computes them; the random stream
in effect (pyinit/_streams.py, chosen in pyinit/_selection.py) receives the final numbers (See Note
[Kernels take final numbers] in csrc/ops.cpp).
"""

# No `from __future__ import annotations`: the annotations are the same objects as torch.nn.init's,
# so inspect.signature(pyinit.f) == inspect.signature(torch.nn.init.f) (tools read them).
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Literal, TypeVar

import torch
import torch.nn.init as _torch_init
from torch import Tensor
from typing_extensions import ParamSpec

from . import _sharding, _support
from ._ops import ops
from ._selection import current_stream
from ._support import use_kernel

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
    "masked_uniform_",
    # pyinit extensions: JAX's / Keras 3's variance-scaling family and orthogonal variants
    # (docs/initializers.md)
    "variance_scaling_",
    "lecun_uniform_",
    "lecun_normal_",
    "glorot_uniform_",
    "glorot_normal_",
    "he_uniform_",
    "he_normal_",
    "trunc_normal_tf_",
    "delta_orthogonal_",
    "orthogonal_columns_",
    # Deprecated aliases (for backward compatibility)
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
]

_support.PUBLIC_NAMES.update(name for name in __all__ if name.endswith("_"))

# torch.nn.init's own type variables, so that the deprecated aliases' signatures compare equal.
_R = getattr(_torch_init, "_R", None) or TypeVar("_R")
_P = getattr(_torch_init, "_P", None) or ParamSpec("_P")

_NonlinearityType = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]

_FanMode = Literal["fan_in", "fan_out"]
_VarianceScalingMode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
_VarianceScalingDistribution = Literal["truncated_normal", "untruncated_normal", "uniform"]

# torch's own implementations, captured at import so that fallbacks never recurse into pyinit after
# pyinit.patch_torch_init() has replaced torch.nn.init's functions.
_torch_orthogonal_ = _torch_init.orthogonal_
_torch_dirac_ = _torch_init.dirac_


def _no_grad_uniform_(
    tensor: Tensor, a: float, b: float, generator: torch.Generator | None = None
) -> Tensor:
    return current_stream().uniform_(tensor, a, b, generator)


def _no_grad_normal_(
    tensor: Tensor,
    mean: float,
    std: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    return current_stream().normal_(tensor, mean, std, generator)


def _no_grad_trunc_normal_(
    tensor: Tensor,
    mean: float,
    std: float,
    a: float,
    b: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    return current_stream().trunc_normal_(tensor, mean, std, a, b, generator)


def _kernel_fill_value(val: object) -> bool:
    """Whether pyinit::fill_ (which takes a double) converts `val` exactly as torch's fill_ does.

    torch converts an int straight to the tensor's dtype; passing it through a double first would
    round twice for ints that a double cannot hold exactly, so those take torch's path.
    """
    if isinstance(val, bool):
        return False
    if isinstance(val, float):
        return True
    return isinstance(val, int) and -(2**53) <= val <= 2**53


def _torch_fill_is_right(tensor: Tensor) -> bool:
    """Fills that torch's own code serves as well as a kernel could, taken without a warning: a
    plain tensor of a non-floating dtype (an int64 buffer such as BERT's token_type_ids) or with
    overlapping elements (an expanded view, which pyinit's fill kernels refuse and torch writes)."""
    if _sharding.is_dtensor(tensor):
        return True  # each rank fills its local shard (torch's DTensor fill_ is local)
    if _support.is_functorch_wrapped(tensor):
        return True  # inside vmap/grad: torch's fills have the batching rules
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.layout != torch.strided:
        return False
    if not tensor.is_floating_point():
        return True
    return not tensor.is_contiguous() and torch._debug_has_internal_overlap(tensor) != 0


def _no_grad_fill_(tensor: Tensor, val: float) -> Tensor:
    with torch.no_grad():
        if (
            _kernel_fill_value(val)
            and not _torch_fill_is_right(tensor)
            and use_kernel(tensor, "fill_")
        ):
            ops.fill_(tensor, float(val))
            return tensor
        return tensor.fill_(val)


def _refuse_inference_tensor(tensor: Tensor) -> None:
    """torch's error for an inference tensor outside InferenceMode, raised by the operators' own
    validation on an empty view (nothing is written), for initializers that draw into a temporary
    before their operator sees the tensor."""
    if (
        not torch.compiler.is_compiling()  # Dynamo cannot trace is_inference(); fake tensors aren't
        and tensor.is_inference()
        and not torch.is_inference_mode_enabled()
        and tensor.is_floating_point()
        and tensor.dim() > 0
    ):
        ops.fill_(tensor.narrow(0, 0, 0), 0.0)


def _no_grad_zero_(tensor: Tensor) -> Tensor:
    with torch.no_grad():
        if not _torch_fill_is_right(tensor) and use_kernel(tensor, "fill_"):
            ops.fill_(tensor, 0.0)
            return tensor
        return tensor.zero_()


def calculate_gain(nonlinearity: _NonlinearityType, param: int | float | None = None) -> float:
    r"""Return the recommended gain value for the given nonlinearity function.

    The values are as follows:

    ================= ====================================================
    nonlinearity      gain
    ================= ====================================================
    Linear / Identity :math:`1`
    Conv{1,2,3}D      :math:`1`
    Sigmoid           :math:`1`
    Tanh              :math:`\frac{5}{3}`
    ReLU              :math:`\sqrt{2}`
    Leaky Relu        :math:`\sqrt{\frac{2}{1 + \text{negative\_slope}^2}}`
    SELU              :math:`\frac{3}{4}`
    ================= ====================================================

    Args:
        nonlinearity: the non-linear function (`nn.functional` name)
        param: optional parameter for the non-linear function

    Examples:
        >>> gain = pyinit.calculate_gain("leaky_relu", 0.2)  # leaky_relu with negative_slope=0.2
    """
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            # True/False are instances of int, hence check above
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    elif nonlinearity == "selu":
        return 3.0 / 4  # Value found empirically (https://github.com/pytorch/pytorch/pull/50664)
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(
    tensor: Tensor,
    a: float = 0.0,
    b: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values drawn from the uniform distribution.

    :math:`\mathcal{U}(a, b)`.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        a: the lower bound of the uniform distribution
        b: the upper bound of the uniform distribution
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.uniform_(w)
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            uniform_, (tensor,), tensor=tensor, a=a, b=b, generator=generator
        )
    return _no_grad_uniform_(tensor, a, b, generator)


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values drawn from the normal distribution.

    :math:`\mathcal{N}(\text{mean}, \text{std}^2)`.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        mean: the mean of the normal distribution
        std: the standard deviation of the normal distribution
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.normal_(w)
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            normal_, (tensor,), tensor=tensor, mean=mean, std=std, generator=generator
        )
    return _no_grad_normal_(tensor, mean, std, generator)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values drawn from a truncated normal distribution.

    The values are effectively drawn from the normal distribution :math:`\mathcal{N}(\text{mean},
    \text{std}^2)` with values outside :math:`[a, b]` redrawn until they are within the bounds. The
    method used for generating the random values works best when :math:`a \leq \text{mean} \leq b`.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        mean: the mean of the normal distribution
        std: the standard deviation of the normal distribution
        a: the minimum cutoff value
        b: the maximum cutoff value
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.trunc_normal_(w)
    """
    return _no_grad_trunc_normal_(tensor, mean, std, a, b, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    r"""Fill the input Tensor with the value :math:`\text{val}`.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        val: the value to fill the tensor with

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.constant_(w, 0.3)
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(constant_, (tensor,), tensor=tensor, val=val)
    return _no_grad_fill_(tensor, val)


def ones_(tensor: Tensor) -> Tensor:
    r"""Fill the input Tensor with the scalar value `1`.

    Args:
        tensor: an n-dimensional `torch.Tensor`

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.ones_(w)
    """
    return _no_grad_fill_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    r"""Fill the input Tensor with the scalar value `0`.

    Args:
        tensor: an n-dimensional `torch.Tensor`

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.zeros_(w)
    """
    return _no_grad_zero_(tensor)


def eye_(tensor: Tensor) -> Tensor:
    r"""Fill the 2-dimensional input `Tensor` with the identity matrix.

    Preserves the identity of the inputs in `Linear` layers, where as many inputs are preserved as
    possible.

    Args:
        tensor: a 2-dimensional `torch.Tensor`

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.eye_(w)
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")

    with torch.no_grad():
        if not _torch_fill_is_right(tensor) and use_kernel(tensor, "eye_"):
            ops.eye_(tensor)
        else:
            torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return tensor


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    r"""Fill the {3, 4, 5}-dimensional input `Tensor` with the Dirac delta function.

    Preserves the identity of the inputs in `Convolutional` layers, where as many input channels are
    preserved as possible. In case of groups>1, each group of channels preserves identity

    Args:
        tensor: a {3, 4, 5}-dimensional `torch.Tensor`
        groups (int, optional): number of groups in the conv layer (default: 1)

    Examples:
        >>> w = torch.empty(3, 16, 5, 5)
        >>> pyinit.dirac_(w)
        >>> w = torch.empty(3, 24, 5, 5)
        >>> pyinit.dirac_(w, 3)
    """
    dimensions = tensor.ndimension()
    if dimensions not in [3, 4, 5]:
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")

    sizes = tensor.size()

    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")

    if tensor.is_meta and _support.recording() is None:
        return tensor

    # torch's own code is the right path (no warning) for a non-int `groups` (its TypeError, after
    # zeroing the tensor, as torch does), zero-element tensors (its IndexError when a kernel
    # dimension is empty), groups <= 0 and the cases _torch_fill_is_right names; past those,
    # use_kernel decides (with a warning when it says no).
    if (
        not isinstance(groups, int)
        or groups <= 0
        or tensor.numel() == 0
        or _torch_fill_is_right(tensor)
        or not use_kernel(tensor, "dirac_")
    ):
        return _torch_dirac_(tensor, groups)
    with torch.no_grad():
        ops.dirac_(tensor, groups)
    return tensor


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    dimensions = tensor.dim()
    if dimensions < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )

    num_input_fmaps = tensor.size(1)
    num_output_fmaps = tensor.size(0)
    receptive_field_size = 1
    if tensor.dim() > 2:
        for s in tensor.shape[2:]:
            receptive_field_size *= s
    fan_in = num_input_fmaps * receptive_field_size
    fan_out = num_output_fmaps * receptive_field_size

    return fan_in, fan_out


def xavier_uniform_(
    tensor: Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with values using a Xavier uniform distribution.

    The method is described in `Understanding the difficulty of training deep feedforward neural
    networks` - Glorot, X. & Bengio, Y. (2010). The resulting tensor will have values sampled from
    :math:`\mathcal{U}(-a, a)` where

    .. math::
        a = \text{gain} \times \sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}}

    Also known as Glorot initialization.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        gain: an optional scaling factor
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.xavier_uniform_(w, gain=pyinit.calculate_gain("relu"))
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # Calculate uniform bounds from standard deviation

    return _no_grad_uniform_(tensor, -a, a, generator)


def xavier_normal_(
    tensor: Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with values using a Xavier normal distribution.

    The method is described in `Understanding the difficulty of training deep feedforward neural
    networks` - Glorot, X. & Bengio, Y. (2010). The resulting tensor will have values sampled from
    :math:`\mathcal{N}(0, \text{std}^2)` where

    .. math::
        \text{std} = \text{gain} \times \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    Also known as Glorot initialization.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        gain: an optional scaling factor
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.xavier_normal_(w)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))

    return _no_grad_normal_(tensor, 0.0, std, generator)


def _calculate_correct_fan(tensor: Tensor, mode: _FanMode) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")

    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: _NonlinearityType = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with values using a Kaiming uniform distribution.

    The method is described in `Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification` - He, K. et al. (2015). The resulting tensor will have values sampled
    from :math:`\mathcal{U}(-\text{bound}, \text{bound})` where

    .. math::
        \text{bound} = \text{gain} \times \sqrt{\frac{3}{\text{fan\_mode}}}

    Also known as He initialization.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        a: the negative slope of the rectifier used after this layer (only used with
            ``'leaky_relu'``)
        mode: either ``'fan_in'`` (default) or ``'fan_out'``. Choosing ``'fan_in'`` preserves the
            magnitude of the variance of the weights in the forward pass. Choosing ``'fan_out'``
            preserves the magnitudes in the backwards pass.
        nonlinearity: the non-linear function (`nn.functional` name), recommended to use only with
            ``'relu'`` or ``'leaky_relu'`` (default).
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu")
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            kaiming_uniform_,
            (tensor,),
            tensor=tensor,
            a=a,
            mode=mode,
            nonlinearity=nonlinearity,
            generator=generator,
        )

    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # Calculate uniform bounds from standard deviation
    return _no_grad_uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: _NonlinearityType = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with values using a Kaiming normal distribution.

    The method is described in `Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification` - He, K. et al. (2015). The resulting tensor will have values sampled
    from :math:`\mathcal{N}(0, \text{std}^2)` where

    .. math::
        \text{std} = \frac{\text{gain}}{\sqrt{\text{fan\_mode}}}

    Also known as He initialization.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        a: the negative slope of the rectifier used after this layer (only used with
            ``'leaky_relu'``)
        mode: either ``'fan_in'`` (default) or ``'fan_out'``.
        nonlinearity: the non-linear function (`nn.functional` name), recommended to use only with
            ``'relu'`` or ``'leaky_relu'`` (default).
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return _no_grad_normal_(tensor, 0, std, generator)


def orthogonal_(
    tensor: Tensor,
    gain: float = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with a (semi) orthogonal matrix.

    Described in `Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks` - Saxe, A. et al. (2013). The input tensor must have at least 2 dimensions, and for
    tensors with more than 2 dimensions the trailing dimensions are flattened.

    pyinit draws the Gaussian matrix with its normal_ kernel and fuses the sign correction, copy and
    gain into one pass; the QR factorization is torch.linalg.qr's. Unlike torch, float16 and
    bfloat16 tensors are supported: the factorization runs in float32 and the result is rounded
    once.

    Args:
        tensor: an n-dimensional `torch.Tensor`, where :math:`n \geq 2`
        gain: optional scaling factor
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.orthogonal_(w)
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")

    if tensor.numel() == 0 or (tensor.is_meta and _support.recording() is None):
        # no-op
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    _refuse_inference_tensor(tensor)  # before the Gaussian is drawn into a temporary
    if _sharding.is_dtensor(tensor) and tensor.ndimension() > 2:
        # The (rows, cols) view of a DTensor sharded on a trailing dimension needs a
        # redistribution; every rank computes the whole tensor as one device does and keeps its
        # shard instead (Note [DTensor shards], pyinit/_streams.py).
        return _sharding.fill_whole(tensor, lambda full: orthogonal_(full, gain, generator))
    stream = current_stream()
    # A failure after the draw (torch's view() of channels_last, the write into an expanded view,
    # sign() of a complex) leaves the philox stream's generator where it was.
    with stream.given_back_on_failure(generator, tensor):
        flattened = stream.orthogonal_gaussian(tensor, rows, cols, generator)
        if flattened is None:
            return _torch_orthogonal_(tensor, gain, generator)
        if rows < cols:
            # torch's flattened.t_(), as a view (Dynamo keeps the shape it traced before a t_())
            flattened = flattened.t()

        # Compute the qr factorization
        q, r = stream.qr(flattened)
        with torch.no_grad():
            stream.orthogonal_finish_(tensor.view(rows, cols), q, r, gain, rows < cols)
    return tensor


def sparse_(
    tensor: Tensor,
    sparsity: float,
    std: float = 0.01,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the 2D input `Tensor` as a sparse matrix.

    The non-zero elements will be drawn from the normal distribution :math:`\mathcal{N}(0, 0.01)`,
    as described in `Deep learning via Hessian-free optimization` - Martens, J. (2010).

    As in torch.nn.init, the zero pattern comes from the default CPU generator (torch.randperm), not
    from `generator`.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        sparsity: The fraction of elements in each column to be set to zero
        std: the standard deviation of the normal distribution used to generate the non-zero values
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.sparse_(w, sparsity=0.1)
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return current_stream().sparse_(tensor, sparsity, std, generator)


def masked_uniform_(
    tensor: Tensor,
    a: float = -10.0,
    b: float = 10.0,
    threshold: float = 5.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor from :math:`\mathcal{U}(a, b)`, then zero every value with
    :math:`|w| < \text{threshold}`, in one pass.

    Bit-identical to ``uniform_(tensor, a, b, generator=generator)`` followed by
    ``tensor *= tensor.abs() >= threshold`` (signed zeros included), and leaves the generator in the
    same state.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        a: the lower bound of the uniform distribution
        b: the upper bound of the uniform distribution
        threshold: values with a smaller magnitude are set to zero
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.masked_uniform_(w)
    """
    return current_stream().masked_uniform_(tensor, a, b, threshold, generator)


# ---- pyinit extensions: the variance-scaling family (JAX, Keras 3) -------------------------------
# Each is a composition of the stream primitives above (uniform_, normal_, trunc_normal_) or of
# orthogonal_ and zeros_, so it runs in both streams, on every device, under deferred() and
# init_module_. Fans are torch's (_calculate_fan_in_and_fan_out: weight [out, in, *kernel]), not
# JAX's default [*kernel, in, out]. See docs/initializers.md and docs/decisions.md.

_VARIANCE_SCALING_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_VARIANCE_SCALING_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
# The standard deviation of the standard normal truncated to (-2, 2) (JAX's and Keras' constant).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _variance_scaling_denominator(
    tensor: Tensor, scale: float, mode: str, distribution: str
) -> float:
    """The `n` of scale / n, after every argument is checked (nothing is drawn before this)."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 0 < scale < math.inf:
        raise ValueError(
            f"Argument `scale` must be a positive finite float. Received: scale={scale}"
        )
    if mode not in _VARIANCE_SCALING_MODES:
        raise ValueError(
            f"invalid mode for variance scaling initializer: {mode!r}. "
            f"Please use one of {_VARIANCE_SCALING_MODES}"
        )
    if distribution not in _VARIANCE_SCALING_DISTRIBUTIONS:
        hint = (
            " ('normal' is ambiguous: JAX and timm mean 'untruncated_normal', Keras means "
            "'truncated_normal')"
            if distribution == "normal"
            else ""
        )
        raise ValueError(
            f"invalid distribution for variance scaling initializer: {distribution!r}. "
            f"Please use one of {_VARIANCE_SCALING_DISTRIBUTIONS}{hint}"
        )
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)


def variance_scaling_(
    tensor: Tensor,
    scale: float = 1.0,
    mode: _VarianceScalingMode = "fan_in",
    distribution: _VarianceScalingDistribution = "truncated_normal",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with values whose variance is :math:`\text{scale} / n`.

    JAX's ``jax.nn.initializers.variance_scaling`` and Keras 3's ``VarianceScaling``, with `n` from
    torch's layout (``weight[out, in, *kernel]``, as `xavier_*`/`kaiming_*` count it):

    * ``"fan_in"``: :math:`n = \text{in} \times \prod \text{kernel}`
    * ``"fan_out"``: :math:`n = \text{out} \times \prod \text{kernel}`
    * ``"fan_avg"``: :math:`n = (\text{fan\_in} + \text{fan\_out}) / 2`
    * ``"fan_geo_avg"``: :math:`n = \sqrt{\text{fan\_in} \times \text{fan\_out}}` (JAX only)

    and, for each `distribution`, with :math:`\sigma = \sqrt{\text{scale} / n}`:

    * ``"truncated_normal"``: :math:`\mathcal{N}(0, s^2)` truncated to :math:`[-2s, 2s]`, with
      :math:`s = \sigma / 0.87962566103423978` (the standard deviation of the standard normal
      truncated to (-2, 2)), so the standard deviation after truncation is :math:`\sigma`. One
      ``trunc_normal_(tensor, 0, s, -2s, 2s)`` call.
    * ``"untruncated_normal"``: :math:`\mathcal{N}(0, \sigma^2)` (JAX's ``"normal"``). One
      ``normal_`` call.
    * ``"uniform"``: :math:`\mathcal{U}(-l, l)` with :math:`l = \sqrt{3\,\text{scale} / n}`. One
      ``uniform_`` call.

    Note: JAX's default axes (``in_axis=-2, out_axis=-1``) read a kernel ``[*kernel, in, out]``;
    here ``tensor`` has torch's layout. ``"normal"`` is refused: JAX and timm mean
    ``"untruncated_normal"`` by it, Keras ``"truncated_normal"``.

    Args:
        tensor: an n-dimensional `torch.Tensor`, where :math:`n \geq 2`
        scale: the scaling factor (a positive float)
        mode: ``"fan_in"`` (default), ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``
        distribution: ``"truncated_normal"`` (default), ``"untruncated_normal"`` or
            ``"uniform"``
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.variance_scaling_(w, 2.0, "fan_in", "uniform")
    """
    n = _variance_scaling_denominator(tensor, scale, mode, distribution)
    if tensor.numel() == 0:  # a fan may be 0; nothing to draw
        return tensor
    variance = scale / n
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / _TRUNCATED_NORMAL_STD
        return _no_grad_trunc_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std, generator)
    if distribution == "untruncated_normal":
        return _no_grad_normal_(tensor, 0.0, math.sqrt(variance), generator)
    limit = math.sqrt(3.0 * variance)
    return _no_grad_uniform_(tensor, -limit, limit, generator)


def _variance_scaling_alias(
    name: str, scale: float, mode: str, distribution: str, what: str
) -> Callable[..., Tensor]:
    """One of JAX's named variance-scaling initializers: `variance_scaling_` with JAX's choices."""

    def alias(tensor: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return variance_scaling_(tensor, scale, mode, distribution, generator)

    jax_name = name[:-1]
    keras_name = "".join(part.capitalize() for part in jax_name.split("_"))
    alias.__name__ = alias.__qualname__ = name
    # Named in its code too, so that a fallback warning names the alias (_support.PUBLIC_NAMES).
    alias.__code__ = alias.__code__.replace(co_name=name, co_qualname=name)
    alias.__doc__ = (
        f"``variance_scaling_(tensor, {scale}, {mode!r}, {distribution!r})``: {what} (JAX's "
        f"``{jax_name}``, Keras' ``{keras_name}``).\n\n"
        "    Args:\n"
        "        tensor: an n-dimensional `torch.Tensor`, where :math:`n \\geq 2`\n"
        "        generator: the torch Generator to sample from (default: None)\n"
    )
    return alias


_TRUNCATED_AT_2 = (
    "a normal truncated at 2 of its standard deviations, with standard deviation after truncation"
)
lecun_uniform_ = _variance_scaling_alias(
    "lecun_uniform_", 1.0, "fan_in", "uniform", "U(-l, l) with l = sqrt(3 / fan_in)"
)
lecun_normal_ = _variance_scaling_alias(
    "lecun_normal_", 1.0, "fan_in", "truncated_normal", f"{_TRUNCATED_AT_2} sqrt(1 / fan_in)"
)
glorot_uniform_ = _variance_scaling_alias(
    "glorot_uniform_",
    1.0,
    "fan_avg",
    "uniform",
    "U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); the distribution of xavier_uniform_ (the "
    "same uniform_ draw; the bound, computed as JAX computes it, may differ in its last bit)",
)
glorot_normal_ = _variance_scaling_alias(
    "glorot_normal_",
    1.0,
    "fan_avg",
    "truncated_normal",
    f"{_TRUNCATED_AT_2} sqrt(2 / (fan_in + fan_out)) (torch's xavier_normal_ is untruncated)",
)
he_uniform_ = _variance_scaling_alias(
    "he_uniform_",
    2.0,
    "fan_in",
    "uniform",
    "U(-l, l) with l = sqrt(6 / fan_in); the distribution of kaiming_uniform_(nonlinearity='relu')",
)
he_normal_ = _variance_scaling_alias(
    "he_normal_",
    2.0,
    "fan_in",
    "truncated_normal",
    f"{_TRUNCATED_AT_2} sqrt(2 / fan_in) (torch's kaiming_normal_ is untruncated)",
)


def trunc_normal_tf_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor from a truncated normal with the bounds in standard-deviation units
    (TensorFlow's and JAX's convention, timm's ``trunc_normal_tf_``): the standard normal truncated
    to :math:`[a, b]`, then scaled by `std` and shifted by `mean`, so the values lie in
    :math:`[\text{mean} + a \cdot \text{std}, \text{mean} + b \cdot \text{std}]`.

    Exactly ``trunc_normal_(tensor, 0, 1, a, b, generator)`` then ``tensor.mul_(std).add_(mean)``
    in pyinit's random stream in effect; not timm's own uniform/erfinv algorithm, so the values
    are not timm's for the same generator state.

    Args:
        tensor: an n-dimensional `torch.Tensor`
        mean: the mean of the normal distribution
        std: the standard deviation of the normal distribution
        a: the minimum cutoff value, in standard deviations
        b: the maximum cutoff value, in standard deviations
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.trunc_normal_tf_(w, std=0.02)
    """
    with torch.no_grad():
        _no_grad_trunc_normal_(tensor, 0.0, 1.0, a, b, generator)
        tensor.mul_(std).add_(mean)
    return tensor


def delta_orthogonal_(
    tensor: Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the {3, 4, 5}-dimensional convolution weight ``[out, in, *kernel]`` with a delta
    orthogonal kernel: a (semi) orthogonal ``[out, in]`` matrix at the kernel's spatial centre,
    zeros elsewhere (JAX's ``delta_orthogonal``; Xiao et al. 2018, arXiv:1806.05393).

    The centre is index :math:`(k - 1) // 2` of each kernel dimension, as in JAX (torch's
    ``dirac_`` uses :math:`k // 2`; they differ for even sizes). The matrix is
    ``orthogonal_(torch.empty(out, in), gain, generator)``, so its columns are orthonormal
    times `gain`: :math:`W_c^T W_c = \text{gain}^2 I`. JAX requires in <= out, and so does this.

    Args:
        tensor: a {3, 4, 5}-dimensional `torch.Tensor` with ``size(1) <= size(0)``
        gain: optional scaling factor
        generator: the torch Generator to sample from (default: None)

    Raises:
        ValueError: for another number of dimensions, or when ``size(1) > size(0)``.

    Examples:
        >>> w = torch.empty(16, 8, 3, 3)
        >>> pyinit.delta_orthogonal_(w)
    """
    dimensions = tensor.ndimension()
    if dimensions not in (3, 4, 5):
        raise ValueError(
            "delta_orthogonal_: only tensors with 3, 4, or 5 dimensions are supported "
            f"(a convolution weight [out, in, *kernel]), got {dimensions}"
        )
    out_channels, in_channels = tensor.shape[:2]
    if in_channels > out_channels:
        raise ValueError(
            f"delta_orthogonal_: in_channels (dim 1, {in_channels}) must be less than or equal "
            f"to out_channels (dim 0, {out_channels})"
        )
    if tensor.numel() == 0 or (tensor.is_meta and _support.recording() is None):
        return tensor
    if _sharding.is_dtensor(tensor):
        return _sharding.fill_whole(tensor, lambda full: delta_orthogonal_(full, gain, generator))
    _refuse_inference_tensor(tensor)  # before the matrix is drawn
    centre = tuple((k - 1) // 2 for k in tensor.shape[2:])
    with torch.no_grad(), current_stream().given_back_on_failure(generator, tensor):
        matrix = orthogonal_(tensor.new_empty((out_channels, in_channels)), gain, generator)
        _no_grad_zero_(tensor)
        tensor[(slice(None), slice(None), *centre)].copy_(matrix)
    return tensor


def orthogonal_columns_(
    tensor: Tensor,
    gain: float = 1,
    column_axis: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input `Tensor` with a (semi) orthogonal matrix whose columns run along
    `column_axis` (JAX's ``orthogonal(scale, column_axis)``).

    The matrix :math:`M` has one column per index of `column_axis` and one row per index of the
    other dimensions (flattened in order). :math:`M^T M = \text{gain}^2 I` when it has at least as
    many rows as columns, else :math:`M M^T = \text{gain}^2 I`. ``column_axis=0`` is torch's
    ``orthogonal_`` (the same values, bit for bit); another axis draws
    ``orthogonal_(torch.empty(columns, rows), gain, generator)`` and writes its transpose. JAX's
    default ``-1`` is the output axis in JAX's layout ``[..., in, out]``; in torch's layout
    ``[out, in, *kernel]`` the output axis is 0.

    ``torch.nn.init.orthogonal_``'s signature is kept as torch's (see docs/decisions.md), so the
    axis is this separate name.

    Args:
        tensor: an n-dimensional `torch.Tensor`, where :math:`n \geq 2`
        gain: optional scaling factor
        column_axis: the dimension whose entries are the matrix's columns (default: -1)
        generator: the torch Generator to sample from (default: None)

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.orthogonal_columns_(w)  # orthonormal rows: w @ w.T == I
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    moved = tensor.movedim(column_axis, -1)  # torch's IndexError for an axis out of range
    if column_axis % tensor.ndimension() == 0:
        return orthogonal_(tensor, gain, generator)
    if tensor.numel() == 0 or (tensor.is_meta and _support.recording() is None):
        return tensor
    if _sharding.is_dtensor(tensor):
        return _sharding.fill_whole(
            tensor, lambda full: orthogonal_columns_(full, gain, column_axis, generator)
        )
    columns = tensor.size(column_axis)
    _refuse_inference_tensor(tensor)  # before the matrix is drawn
    with torch.no_grad(), current_stream().given_back_on_failure(generator, tensor):
        drawn = orthogonal_(tensor.new_empty((columns, tensor.numel() // columns)), gain, generator)
        moved.copy_(drawn.t().reshape(moved.shape))
    return tensor


# for backward compatibility
def _make_deprecate(meth: Callable[_P, _R]) -> Callable[_P, _R]:
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
            FutureWarning,
            stacklevel=2,
        )
        return meth(*args, **kwargs)

    deprecated_init.__doc__ = rf"""
    {old_name}(...)

    .. warning::
        This method is now deprecated in favor of :func:`torch.nn.init.{new_name}`.

    See :func:`~torch.nn.init.{new_name}` for details."""
    deprecated_init.__name__ = old_name
    return deprecated_init


uniform = _make_deprecate(uniform_)
normal = _make_deprecate(normal_)
constant = _make_deprecate(constant_)
eye = _make_deprecate(eye_)
dirac = _make_deprecate(dirac_)
xavier_uniform = _make_deprecate(xavier_uniform_)
xavier_normal = _make_deprecate(xavier_normal_)
kaiming_uniform = _make_deprecate(kaiming_uniform_)
kaiming_normal = _make_deprecate(kaiming_normal_)
orthogonal = _make_deprecate(orthogonal_)
sparse = _make_deprecate(sparse_)
