"""Loads pyinit._C, which registers the torch.ops.pyinit operators with their Meta kernels.

The operators mutate their first argument and return nothing. On meta and fake tensors they write
nothing and draw nothing, but check what torch's meta in-place ops check and move the version
counter as they do, so initializers work on `meta` tensors and under torch.compile.
"""

from __future__ import annotations

import torch

from . import _C  # noqa: F401  (loading the library registers the operators)

ops = torch.ops.pyinit


def _schema_op_names() -> tuple[str, ...]:
    """The operators csrc/ops.cpp defines (its one TORCH_LIBRARY block), by name.

    Every one mutates its first argument and returns nothing (`Tensor(a!) self, ... -> ()`), so one
    Meta kernel serves them all (csrc/meta.cpp) and a new operator needs no entry here.
    """
    names = sorted(
        name.removeprefix("pyinit::")
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("pyinit::")
    )
    for name in names:
        schema = getattr(ops, name).default._schema
        if schema.returns or not schema.arguments[0].alias_info.is_write:
            raise RuntimeError(f"pyinit::{name} is not an in-place operator returning (): {schema}")
        if not torch._C._dispatch_has_kernel_for_dispatch_key(f"pyinit::{name}", "Meta"):
            raise RuntimeError(
                f"pyinit::{name} has no Meta kernel: define it with def(...) in csrc/ops.cpp"
            )
    return tuple(names)


_MUTATING_OPS = _schema_op_names()


# No Python fake implementations: every operator has a C++ Meta kernel (csrc/meta.cpp, Note [Meta
# kernels do what torch's meta in-place ops do]), which meta tensors, fake tensors (torch.compile)
# and opcheck run.


_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def _ask_dispatcher(op: str, device_type: str) -> bool:
    key = _DISPATCH_KEYS.get(device_type)
    if key is None:
        return False
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    # A CompositeExplicitAutograd kernel (csrc/many.cpp) serves every device.
    return has(f"pyinit::{op}", key) or has(f"pyinit::{op}", "CompositeExplicitAutograd")


# The registrations are fixed once _C is loaded: asked once here, so that the lookup is cheap and
# torch.compile traces it as a constant.
_KERNELS = frozenset(
    (op, device) for op in _MUTATING_OPS for device in _DISPATCH_KEYS if _ask_dispatcher(op, device)
)


def has_kernel(op: str, device_type: str) -> bool:
    """Whether pyinit::<op> has a kernel for the dispatch key of `device_type` ('cpu', 'cuda')."""
    if op in _MUTATING_OPS:
        return (op, device_type) in _KERNELS
    return _ask_dispatcher(op, device_type)


# Note [The direct operator call] (csrc/python/module.cpp): _C.call runs a pyinit operator from
# C++ with grad mode off, through the same dispatcher as torch.ops, for plain arguments; it returns
# False without running anything otherwise, and the caller then takes the torch.ops path.
_C.set_parameter_type(torch.nn.Parameter)
_HANDLES = {name: _C.operator(f"pyinit::{name}") for name in _MUTATING_OPS}
_call = _C.call
_philox_call = _C.philox_call
_is_compiling = torch.compiler.is_compiling
_torch_function_mode_enabled = torch._C._is_torch_function_mode_enabled


def direct_ok() -> bool:
    """False while torch.compile traces (Dynamo cannot trace _C) or a TorchFunctionMode is active
    (it must see the torch.ops call)."""
    return not (_is_compiling() or _torch_function_mode_enabled())


def direct_call(name: str, *args: object) -> bool:
    """Runs pyinit::<name>(*args) under no_grad and returns True, or returns False having done
    nothing (direct_ok() is False, or _C.call leaves the arguments to torch.ops)."""
    return direct_ok() and _call(_HANDLES[name], *args)


def direct_philox_call(name: str, generator: object, *args: object) -> bool:
    """direct_call for pyinit::<name>, a philox operator, with its (key, offset) drawn from
    `generator` by _C.philox_call once every check has passed (given back if it raises)."""
    return direct_ok() and _philox_call(_HANDLES[name], generator, *args)
