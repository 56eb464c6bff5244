"""Which random stream pyinit's random initializers use: ``"torch"`` (the default, bit-identical to
torch.nn.init) or ``"philox"`` (counter-based; see docs/philox_stream.md).

    pyinit.set_stream("philox")        # process-wide default
    with pyinit.stream("philox"):      # for a block (restores the previous choice on exit)
        ...
    pyinit.philox.kaiming_uniform_(w)  # per call: pyinit.philox.* always use the philox stream

The process-wide choice is a module global; the block choice is a ``contextvars.ContextVar``, so a
``with`` block in one thread (or asyncio task) does not change the stream of another.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Literal

StreamName = Literal["torch", "philox"]
STREAMS: tuple[str, ...] = ("torch", "philox")

_default: str = "torch"
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pyinit_stream", default=None
)


def _check(name: str) -> str:
    if name not in STREAMS:
        raise ValueError(f"unknown pyinit stream {name!r}; expected one of {STREAMS}")
    return name


def set_stream(name: StreamName) -> None:
    """Set the process-wide random stream of pyinit's random initializers ("torch" or "philox")."""
    global _default
    _default = _check(name)


def get_stream() -> str:
    """The random stream in effect here: the innermost ``pyinit.stream(...)`` block, else the
    process default."""
    override = _override.get()
    return _default if override is None else override


@contextlib.contextmanager
def stream(name: StreamName) -> Iterator[None]:
    """Use random stream `name` inside the block, then restore the previous choice.

    Examples:
        >>> with pyinit.stream("philox"):
        ...     pyinit.kaiming_uniform_(w)
    """
    token = _override.set(_check(name))
    try:
        yield
    finally:
        _override.reset(token)


def philox_active() -> bool:
    return get_stream() == "philox"
