"""Suite-wide: an unexpected fallback to torch fails the test that caused it.

pyproject.toml turns PyinitFallbackWarning into an error; a test that takes a fallback on purpose
says so with pytest.warns(PyinitFallbackWarning) or a filterwarnings mark. The once-per-(op, reason)
memory is cleared before every test so that the outcome does not depend on which test ran first.
"""

from __future__ import annotations

import pytest

from pyinit import _support


@pytest.fixture(autouse=True)
def _fallback_warnings_per_test(monkeypatch):
    monkeypatch.setattr(_support, "_warned", set())
