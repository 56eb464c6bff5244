"""Make torch.nn modules construct through pyinit.

torch.nn layers initialize themselves by calling functions of the torch.nn.init module (for example
`init.kaiming_uniform_` in nn.Linear.reset_parameters), looked up at call time. `patch_torch_init()`
replaces those functions with pyinit's for as long as the context lasts (or until
`restore_torch_init()` when called as a plain function), so `nn.Linear(4096, 4096)` runs pyinit's
kernels and, in the torch stream, gets the same weights it would have got from torch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import torch.nn.init as _torch_init

from . import init as _pyinit

_PATCHED_NAMES = tuple(
    name for name in _pyinit.__all__ if hasattr(_torch_init, name) and name != "masked_uniform_"
) + (
    "_no_grad_uniform_",
    "_no_grad_normal_",
    "_no_grad_trunc_normal_",
    "_no_grad_fill_",
    "_no_grad_zero_",
)

_originals: dict[str, object] = {}
# Module-level names bound to torch.nn.init's functions at import time elsewhere in torch.nn
# (`from torch.nn.init import xavier_uniform_` in torch.nn.modules.activation and .transformer):
# (module, name) -> torch's function.
_bound_elsewhere: dict[tuple[object, str], object] = {}


# transformers.modeling_utils.TORCH_INIT_FUNCTIONS' entries as they were before the patch: name ->
# function (Note [transformers' TORCH_INIT_FUNCTIONS], pyinit/transformers.py; the only place that
# keeps the table, for every patch).
_table_saved: dict[str, object] = {}


def _transformers_table() -> dict | None:
    """transformers' table of torch.nn.init's functions, if transformers is loaded (never imported
    here)."""
    modeling_utils = sys.modules.get("transformers.modeling_utils")
    table = getattr(modeling_utils, "TORCH_INIT_FUNCTIONS", None)
    return table if isinstance(table, dict) else None


def _install(everywhere: bool = False) -> None:
    """Patch torch.nn.init and the bindings of its functions in the loaded torch.nn modules (with
    `everywhere`, in every loaded module: pyinit.deferred() needs third-party bindings too), and
    transformers' table of them, which every from_pretrained writes back into torch.nn.init."""
    for name in _PATCHED_NAMES:
        _originals.setdefault(name, getattr(_torch_init, name))
        setattr(_torch_init, name, getattr(_pyinit, name))
    table = _transformers_table()
    for name in list(table or ()):
        if name in _originals:
            _table_saved.setdefault(name, table[name])
            table[name] = getattr(_torch_init, name)
    replacement = {id(fn): getattr(_pyinit, name) for name, fn in _originals.items()}
    for module_name, module in list(sys.modules.items()):
        if module is None or module is _torch_init:
            continue
        if not everywhere and not module_name.startswith("torch.nn"):
            continue
        rebind(module, replacement, _bound_elsewhere)


def rebind(
    module: object,
    replacement: dict[int, object],
    saved: dict[tuple[object, str], object],
    cache: dict | None = None,
) -> None:
    """Bind `module`'s names that hold a replaced function (id in `replacement`) to its replacement,
    remembering the original in `saved` once. `cache`: the scan cache (see _scanned) of this kind of
    replacement (pyinit.timm keeps its own)."""
    for attr in _bindings_of(module, replacement, _scanned if cache is None else cache):
        value = getattr(module, attr)
        new = replacement.get(id(value))
        if new is not None:
            saved.setdefault((module, attr), value)
            setattr(module, attr, new)


# id(module) -> (the module, its number of globals when scanned, names bound to torch's
# initializers then). A module whose globals did not change in number is not scanned again: a
# full scan of every loaded module costs milliseconds (pyinit.deferred() enters one each time).
_scanned: dict[int, tuple[object, int, tuple[str, ...]]] = {}


def _bindings_of(module: object, replacement: dict[int, object], cache: dict) -> tuple[str, ...]:
    try:
        namespace = vars(module)
    except TypeError:  # an object in sys.modules without a __dict__
        return ()
    cached = cache.get(id(module))
    if cached is not None and cached[0] is module and cached[1] == len(namespace):
        return cached[2]
    # An id in `replacement` is one of torch's functions (kept alive in _originals); a name
    # already patched holds pyinit's function, whose torch original _bound_elsewhere remembers.
    patched = {id(fn) for fn in replacement.values()}
    names = tuple(
        attr
        for attr, value in list(namespace.items())
        if id(value) in replacement or id(value) in patched
    )
    cache[id(module)] = (module, len(namespace), names)
    return names


def restore_torch_init() -> None:
    """Put torch.nn.init's own functions back (and every torch.nn module's binding of them, and
    transformers' table of them: torch's functions where it held pyinit's, also when transformers
    was imported while the patch was on)."""
    table = _transformers_table()
    for name in list(table or ()):
        if name in _originals:
            before = _table_saved.get(name, table[name])
            table[name] = _originals[name] if before is getattr(_pyinit, name, None) else before
    _table_saved.clear()
    for name, fn in _originals.items():
        setattr(_torch_init, name, fn)
    for (module, attr), fn in _bound_elsewhere.items():
        setattr(module, attr, fn)
    _originals.clear()
    _bound_elsewhere.clear()


class LibraryPatch:
    """The replacement of a library's own initializers (pyinit.timm, pyinit.transformers) in its
    loaded modules: every name bound to one of them, found by identity in every loaded module of
    `package` (the package and its submodules), is rebound to pyinit's function, and the original
    is remembered once and put back by restore(). `helpers()` gives id(library's function) ->
    pyinit's for what is loaded now, or None to install nothing (it warns why)."""

    def __init__(self, package: str, helpers: Callable[[], dict[int, object] | None]) -> None:
        self.package = package
        self.helpers = helpers
        # (module, attribute) -> the library's function it held before install() replaced it.
        self.replaced: dict[tuple[object, str], object] = {}
        # The scan cache of these replacements (see _scanned).
        self.scanned: dict[int, tuple[object, int, tuple[str, ...]]] = {}

    def install(self) -> None:
        replacement = self.helpers()
        if replacement is None:
            return
        prefix = self.package + "."
        for module_name, module in list(sys.modules.items()):
            if module is None or not (module_name + ".").startswith(prefix):
                continue
            rebind(module, replacement, self.replaced, self.scanned)

    def restore(self) -> None:
        for (module, attr), fn in self.replaced.items():
            setattr(module, attr, fn)
        self.replaced.clear()

    def active(self) -> bool:
        """Whether install() changed something that restore() has not put back yet."""
        return bool(self.replaced)

    def context(self) -> _LibraryContext:
        return _LibraryContext(self)


class _LibraryContext(contextlib.AbstractContextManager):
    # Nested patches restore only at the outermost exit, as patch_torch_init's do.
    def __init__(self, patch: LibraryPatch) -> None:
        self._patch = patch
        self._was_patched = patch.active()
        patch.install()

    def __exit__(self, *exc) -> None:
        if not self._was_patched:
            self._patch.restore()


class _Patch(contextlib.AbstractContextManager):
    def __init__(self, everywhere: bool = False, timm: bool = False, transformers: bool = False):
        self._was_patched = bool(_originals)
        _install(everywhere)
        self._libraries = []
        if timm:
            from .timm import patch_timm

            self._libraries.append(patch_timm())
        if transformers:
            from .transformers import patch_transformers

            self._libraries.append(patch_transformers())

    def __exit__(self, *exc) -> None:
        for library in reversed(self._libraries):
            library.__exit__(*exc)
        if not self._was_patched:
            restore_torch_init()


def patch_torch_init(*, timm: bool = False, transformers: bool = False) -> _Patch:
    """Route torch.nn.init (and so every torch.nn module's reset_parameters) through pyinit.

    Use as a context manager::

        with pyinit.patch_torch_init():
            model = MyModel()          # layers initialized by pyinit's kernels

    or call it once (``pyinit.patch_torch_init()``) to patch for the rest of the program, and
    ``pyinit.restore_torch_init()`` to undo it.

    With ``timm=True``, timm's own initializers (timm.layers.trunc_normal_ and its kin, which do
    not go through torch.nn.init) are routed through ``pyinit.timm`` too, as by
    ``pyinit.patch_timm()`` (undone on exit, or by ``pyinit.restore_timm()``). With
    ``transformers=True``, transformers' copies of them (SigLIP's lecun_normal_ and its kin) are
    routed through ``pyinit.transformers``, as by ``pyinit.patch_transformers()``.
    """
    return _Patch(timm=timm, transformers=transformers)


@contextlib.contextmanager
def _unpatched() -> Iterator[None]:
    saved = dict(_originals)
    restore_torch_init()
    try:
        yield
    finally:
        if saved:
            _install()
