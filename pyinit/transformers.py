"""transformers' copies of timm's initializers, bit-identical to theirs and faster:
``pyinit.transformers``.

transformers' SigLIP (``transformers/models/siglip/modeling_siglip.py``) carries its own copies of
timm's helpers, and SigLIP2 and Phi-4-multimodal copy SigLIP's: ``_trunc_normal_``,
``trunc_normal_tf_``, ``variance_scaling_``, ``lecun_normal_`` and ``default_flax_embed_init``.
``SiglipPreTrainedModel._init_weights`` calls ``lecun_normal_`` on every Linear and Conv2d weight
(before the attention and MLP modules overwrite theirs with ``xavier_uniform_``: both draws are
needed for the generator state) and ``default_flax_embed_init`` on the text embeddings. They do
not go through torch.nn.init, so ``pyinit.patch_torch_init()`` alone does not reach them.

    with pyinit.patch_torch_init(transformers=True):   # or: with pyinit.patch_transformers():
        model = SiglipModel(SiglipConfig())            # same weights as plain transformers, faster

The copies are timm 1.0's algorithm, operator for operator; they differ from timm's only in what
they return (``_trunc_normal_`` and ``trunc_normal_tf_`` return None where timm's return the tensor)
and in that ``_trunc_normal_`` has no ``torch.no_grad()`` of its own. So these functions are
``pyinit.timm``'s: ``variance_scaling_`` and ``lecun_normal_`` are the very same objects,
``trunc_normal_tf_`` and ``_trunc_normal_`` run pyinit.timm's fused path and return None, and
``default_flax_embed_init`` is ``variance_scaling_(tensor, mode="fan_in", distribution="normal")``
(pyinit's torch-stream normal_). Where the fused operator does not run (see pyinit.timm) they run
the torch operators transformers runs, with a ``PyinitFallbackWarning``.

transformers does not need to be installed to use the functions; ``patch_transformers()`` needs it.
"""

from __future__ import annotations

import contextlib
import sys

import torch

from . import _patch, _support
from . import timm as _timm

__all__ = [
    "_trunc_normal_",
    "trunc_normal_tf_",
    "variance_scaling_",
    "lecun_normal_",
    "default_flax_embed_init",
    "patch_transformers",
    "restore_transformers",
    "VERIFIED_TRANSFORMERS_VERSIONS",
    "MODULES",
]

# transformers versions whose copies these functions were checked against, bit for bit
# (tests/test_transformers_compat.py, whole SigLIP models included). patch_transformers() installs
# nothing for another version (unless PYINIT_ALLOW_UNVERIFIED=1), with a PyinitFallbackWarning.
VERIFIED_TRANSFORMERS_VERSIONS = ("4.57.1",)

# The modules that define their own copies, in the verified versions (the test checks that no other
# file of the installed transformers defines one). The patch replaces the copies of those of them
# that are loaded, wherever a loaded transformers module bound them.
MODULES = (
    "transformers.models.siglip.modeling_siglip",
    "transformers.models.siglip2.modeling_siglip2",
    "transformers.models.phi4_multimodal.modeling_phi4_multimodal",
)

_NAMES = (
    "_trunc_normal_",
    "trunc_normal_tf_",
    "variance_scaling_",
    "lecun_normal_",
    "default_flax_embed_init",
)

# Identical to transformers' (and to timm's): the same signature, control flow and errors, and
# None returned.
variance_scaling_ = _timm.variance_scaling_
lecun_normal_ = _timm.lecun_normal_


def _trunc_normal_(tensor, mean, std, a, b):
    """transformers' _trunc_normal_(tensor, mean, std, a, b): timm's inverse-CDF truncated normal
    (bounds on the scaled values), without a no_grad of its own; returns None. Under autograd (grad
    mode and a tensor that requires grad) it runs the torch operators, as transformers' does (a leaf
    refuses them)."""
    _timm._trunc_normal(tensor, mean, std, a, b, name="_trunc_normal_", owner="transformers")


def trunc_normal_tf_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    r"""transformers' trunc_normal_tf_: values from :math:`\mathcal{N}(0, 1)` truncated to
    :math:`[a, b]`, then scaled by `std` and shifted by `mean` (TensorFlow / JAX convention), with
    transformers' exact results. Returns None, as transformers' does (timm's returns the tensor).

    Examples:
        >>> w = torch.empty(3, 5)
        >>> pyinit.transformers.trunc_normal_tf_(w, std=0.02)
    """
    with torch.no_grad():
        _timm._trunc_normal(
            tensor, 0, 1.0, a, b, std, mean, name="trunc_normal_tf_", owner="transformers"
        )


def default_flax_embed_init(tensor):
    """transformers' default_flax_embed_init: variance_scaling_(tensor, mode="fan_in",
    distribution="normal"), i.e. normal_(std=fan_in ** -0.5). Returns None."""
    variance_scaling_(tensor, mode="fan_in", distribution="normal")


# ---- the patch ----------------------------------------------------------------------------------


def _transformers_helpers() -> dict[int, object] | None:
    """id(transformers' copy) -> pyinit's, for the loaded modules of MODULES; None (with a
    warning) when this transformers version is not verified."""
    import transformers

    version = getattr(transformers, "__version__", "unknown")
    if version not in VERIFIED_TRANSFORMERS_VERSIONS and not _support._allow_unverified():
        _timm._warn_fallback(
            "patch_transformers",
            f"transformers {version} is not verified; transformers' helpers are kept",
            owner="transformers",
        )
        return None
    own = sys.modules[__name__]
    replacement = {}
    for module_name in MODULES:
        module = sys.modules.get(module_name)
        for name in _NAMES:
            fn = getattr(module, name, None)
            # Only the module's own definition: a name it does not define is left alone.
            if getattr(fn, "__module__", None) == module_name:
                replacement[id(fn)] = getattr(own, name)
    return replacement


# Note [transformers' TORCH_INIT_FUNCTIONS]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# transformers.modeling_utils keeps the torch.nn.init functions it found at its import
# (TORCH_INIT_FUNCTIONS), and `no_init_weights()` (entered by every from_pretrained) sets
# torch.nn.init's attributes to a no-op and then back to that table. Inside `patch_torch_init()` a
# from_pretrained would so put torch's functions back for the rest of the block (transformers
# imported before the patch), or, transformers imported inside the patch, put pyinit's back after
# every later from_pretrained, long after the patch ended. So every patch of torch.nn.init keeps
# the table in step (pyinit/_patch.py `_install` / `restore_torch_init`): pyinit's functions while
# torch.nn.init is patched, torch's after (never pyinit's, whichever the table held before).


_PATCH = _patch.LibraryPatch("transformers", _transformers_helpers)


def restore_transformers() -> None:
    """Put transformers' own helpers back everywhere patch_transformers() replaced them."""
    _PATCH.restore()


def patch_transformers() -> contextlib.AbstractContextManager:
    """Route transformers' copies of timm's helpers (``_trunc_normal_``, ``trunc_normal_tf_``,
    ``variance_scaling_``, ``lecun_normal_``, ``default_flax_embed_init`` of the modules in
    ``pyinit.transformers.MODULES``: SigLIP, SigLIP2, Phi-4-multimodal) through
    pyinit.transformers, wherever the loaded transformers modules bound them, for the installed
    transformers if it is verified (VERIFIED_TRANSFORMERS_VERSIONS). Imports transformers.

    Use as a context manager::

        from transformers import SiglipConfig, SiglipModel   # loads modeling_siglip

        with pyinit.patch_transformers():
            model = SiglipModel(SiglipConfig())

    or call it once and ``pyinit.restore_transformers()`` to undo it. Only the modules loaded at
    the call are patched: import the model class first (``from transformers import SiglipModel``
    loads its module; ``transformers.SiglipModel`` first touched inside the block does too late).
    ``pyinit.patch_torch_init(transformers=True)`` patches torch.nn.init too (SigLIP's xavier,
    normal and zeros initializers and the layers' own reset_parameters go through it).
    """
    return _PATCH.context()
