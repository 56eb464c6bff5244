"""Which random stream pyinit's random initializers use: ``"torch"`` (the default, bit-identical to
torch.nn.init) or ``"philox"`` (counter-based; see docs/philox_stream.md).

    pyinit.set_stream("philox")        # process-wide default
    with pyinit.stream("philox"):      # for a block (restores the previous choice on exit)
        ...
    pyinit.philox.kaiming_uniform_(w)  # per call: pyinit.philox.* always use the philox stream

The process-wide choice is a module global. The block choice is a ``contextvars.ContextVar``, so a
``with`` block in one thread (or asyncio task) does not change the stream of another. torch.compile
cannot trace a ContextVar, so each block also records its stream in a thread-local mirror, which is
what a compiled function reads (and guards on: selecting another stream recompiles).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import torch

from ._streams import PhiloxStream, Stream, TorchStream

_R = TypeVar("_R")

StreamName = Literal["torch", "philox"]

TORCH = TorchStream()
PHILOX = PhiloxStream()
_BY_NAME: dict[str, Stream] = {"torch": TORCH, "philox": PHILOX}
STREAMS: tuple[str, ...] = tuple(_BY_NAME)

_default: Stream = TORCH
_selected: contextvars.ContextVar[Stream | None] = contextvars.ContextVar(
    "pyinit_stream", default=None
)


class _TracedSelection(threading.local):
    def __init__(self) -> None:
        self.stream: Stream | None = None


_traced = _TracedSelection()


def _check(name: str) -> Stream:
    if name not in STREAMS:
        raise ValueError(f"unknown pyinit stream {name!r}; expected one of {STREAMS}")
    return _BY_NAME[name]


def current_stream() -> Stream:
    """The stream object in effect here: the innermost block's, else the process default."""
    if torch.compiler.is_compiling():
        selected = _traced.stream
    else:
        selected = _selected.get()
    return _default if selected is None else selected


def set_stream(name: StreamName) -> None:
    """Set the process-wide random stream of pyinit's random initializers ("torch" or "philox")."""
    global _default
    _default = _check(name)


def get_stream() -> str:
    """The random stream in effect here: the innermost ``pyinit.stream(...)`` block, else the
    process default."""
    return current_stream().name


def call_in(chosen: Stream, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    """fn(*args, **kwargs) with the stream object `chosen` selected: `selected` without the
    context manager's cost, for the per-call wrappers of pyinit.philox. While torch.compile traces,
    only the thread-local mirror is set (what current_stream() reads then): Dynamo cannot trace a
    ContextVar."""
    token = None if torch.compiler.is_compiling() else _selected.set(chosen)
    outer, _traced.stream = _traced.stream, chosen
    try:
        return fn(*args, **kwargs)
    finally:
        _traced.stream = outer
        if token is not None:
            _selected.reset(token)


@contextlib.contextmanager
def selected(chosen: Stream) -> Iterator[None]:
    """Use the stream object `chosen` inside the block, then restore the previous choice."""
    token = _selected.set(chosen)
    outer, _traced.stream = _traced.stream, chosen
    try:
        yield
    finally:
        _traced.stream = outer
        _selected.reset(token)


@contextlib.contextmanager
def stream(name: StreamName) -> Iterator[None]:
    """Use random stream `name` inside the block, then restore the previous choice.

    Examples:
        >>> with pyinit.stream("philox"):
        ...     pyinit.kaiming_uniform_(w)
    """
    with selected(_check(name)):
        yield
