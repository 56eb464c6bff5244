"""Timing: interleaved repeats, medians, CUDA events, and a tiny progress line on stderr.

Every group of contenders (the pyinit kernel, torch.nn.init, the fill_ ceiling, ...) writes the
same tensor and is timed in one interleaved loop (A, B, C, A, B, C, ...) so that machine noise hits
all of them equally. A contender is warmed up first, then one timed call picks how many calls a
timed batch holds so that a batch lasts at least `min_batch_s` (tiny tensors are otherwise below the
clock's resolution); the figure reported is the median over the repeats of the per-call time of a
batch. CPU work is timed with time.perf_counter, CUDA work with CUDA events after a synchronize. A
contender whose single call exceeds `slow_s` gets fewer repeats (about `slow_budget_s` worth, at
least `min_repeats`).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Contender:
    """One way of writing the tensor of a group."""

    label: str  # shown in the table: "pyinit[torch]", "torch.nn.init", "fill_", ...
    fn: Callable[[], object]
    role: str = "peer"  # "ceiling" (fill_), "baseline" (speedups are over it), "pyinit", "peer"
    stream: str | None = None
    note: str = ""


@dataclass
class Settings:
    warmup: int = 1
    repeats: int = 5
    min_batch_s: float = 0.002
    slow_s: float = 1.0  # a call slower than this gets at most `slow_budget_s` of repeats
    slow_budget_s: float = 6.0
    min_repeats: int = 1


@dataclass
class _State:
    contender: Contender
    inner: int = 1
    want: int = 0
    times: list[float] = field(default_factory=list)
    error: str = ""
    warned: list[str] = field(default_factory=list)


def _batch_seconds(fn: Callable[[], object], inner: int, device: str) -> float:
    """Seconds per call of `inner` back-to-back calls of fn."""
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / inner
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= 90 else text[:87] + "..."


def _prepare(state: _State, device: str, settings: Settings) -> None:
    """Warm up, then one timed call to size the batches and the number of repeats."""
    fn = state.contender.fn
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(max(settings.warmup, 0)):
                t0 = time.perf_counter()
                fn()
                if time.perf_counter() - t0 > settings.slow_s:
                    break  # a slow contender (or a compilation) is warm enough
            once = _batch_seconds(fn, 1, device)
        state.warned = sorted(
            {
                str(w.message).splitlines()[0]
                for w in caught
                if not issubclass(w.category, (DeprecationWarning, FutureWarning))
            }
        )
    except Exception as exc:  # a contender that fails becomes a row note, not a crash
        state.error = _short(exc)
        return
    state.inner = max(1, min(10_000, math.ceil(settings.min_batch_s / max(once, 1e-9))))
    state.want = settings.repeats
    if once > settings.slow_s:
        budget = int(settings.slow_budget_s / once)
        state.want = max(settings.min_repeats, min(settings.repeats, budget))


def measure(contenders: list[Contender], device: str, settings: Settings) -> dict[str, dict]:
    """Time the contenders interleaved: label -> {median_s, min_s, times_s, inner, error, ...}."""
    states = [_State(c) for c in contenders]
    for state in states:
        _prepare(state, device, settings)
    rounds = max((s.want for s in states), default=0)
    for r in range(rounds):
        for state in states:
            if state.error or r >= state.want:
                continue
            try:
                state.times.append(_batch_seconds(state.contender.fn, state.inner, device))
            except Exception as exc:
                state.error = _short(exc)
    out = {}
    for state in states:
        ok = bool(state.times) and not state.error
        out[state.contender.label] = {
            "median_s": statistics.median(state.times) if ok else None,
            "min_s": min(state.times) if ok else None,
            "times_s": state.times,
            "inner": state.inner,
            "error": state.error,
            "warned": state.warned,
        }
    return out


class Progress:
    """`[#####.....] 12/48 1m05s  sweep cpu float32 uniform_ ...` on stderr (lines if not a tty)."""

    def __init__(self, total: int, enabled: bool = True, width: int = 24) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()
        self._last_decile = -1

    def step(self, what: str) -> None:
        """Announce the unit of work about to start."""
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = int(time.perf_counter() - self.start)
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {elapsed // 60}m{elapsed % 60:02d}s  {what}"
        if self.tty:
            sys.stderr.write("\r" + line[:118].ljust(118))
            sys.stderr.flush()
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            print(line, file=sys.stderr, flush=True)
        self.done += 1

    def close(self) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if self.tty:
            sys.stderr.write("\r" + " " * 118 + "\r")
        print(f"benchmarks: {self.done} groups in {elapsed:.1f} s", file=sys.stderr, flush=True)
