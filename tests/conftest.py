"""Suite-wide: an unexpected fallback to torch fails the test that caused it; shared fixtures.

pyproject.toml turns PyinitFallbackWarning into an error; a test that takes a fallback on purpose
says so with pytest.warns(PyinitFallbackWarning) or a filterwarnings mark. The once-per-(op, reason)
memory is cleared before every test so that the outcome does not depend on which test ran first.
"""

from __future__ import annotations

import pytest
import torch

from pyinit import _support


@pytest.fixture(autouse=True)
def _fallback_warnings_per_test(monkeypatch):
    monkeypatch.setattr(_support, "_warned", set())


@pytest.fixture(params=[1, 2, 4], ids=lambda t: f"threads{t}")
def threads(request):
    """torch's thread count for the test (the CPU kernels split their work by it)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


@pytest.fixture(params=["pipeline", "jump"])
def draw(request):
    """The torch stream's CPU draw: the serial producer pipeline for every draw (no draw reaches the
    threshold), or the jump-ahead parallel draw for every draw (threshold 0 words, no jump cost;
    taken from 2 threads)."""
    from pyinit._ops import _C

    previous = _C._set_torch_stream_jump(*((0, 0, 2) if request.param == "jump" else (2**62, 1, 2)))
    yield request.param
    _C._set_torch_stream_jump(*previous)
