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
