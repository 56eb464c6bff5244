"""What is measured: each initializer, its peers, the fill_ ceiling, pyinit in each stream."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

import torch

import pyinit

from .timing import Contender

# pyinit's in-place initializers (torch.nn.init's names, pyinit.init.__all__), split by whether
# they draw random numbers (take a generator).
_IN_PLACE = tuple(name for name in pyinit.init.__all__ if name.endswith("_"))
RANDOM = tuple(
    n for n in _IN_PLACE if "generator" in inspect.signature(getattr(pyinit, n)).parameters
)
DETERMINISTIC = tuple(n for n in _IN_PLACE if n not in RANDOM)
INITIALIZERS = RANDOM + DETERMINISTIC

# Positional arguments beyond the tensor (everything else at torch.nn.init's defaults).
ARGS: dict[str, tuple] = {"sparse_": (0.1,), "constant_": (0.5,)}

# The pyinit operator behind each initializer, for pyinit.fallback_reason.
KERNEL_OP = {
    "uniform_": "uniform_",
    "xavier_uniform_": "uniform_",
    "kaiming_uniform_": "uniform_",
    "normal_": "normal_",
    "xavier_normal_": "normal_",
    "kaiming_normal_": "normal_",
    "trunc_normal_": "trunc_normal_",
    "orthogonal_": "orthogonal_finish_",
    "sparse_": "sparse_",
    "masked_uniform_": "masked_uniform_",
    "constant_": "fill_",
    "zeros_": "fill_",
    "ones_": "fill_",
    "eye_": "eye_",
    "dirac_": "dirac_",
}

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def has_streams() -> bool:
    """Whether this pyinit selects random streams (`pyinit.stream(name)`)."""
    return hasattr(pyinit, "stream")


def available_streams() -> list[str]:
    if not has_streams():
        return ["torch"]
    module = getattr(pyinit, "_stream", None)
    names = getattr(pyinit, "STREAMS", None) or getattr(module, "STREAMS", None)
    return list(names or ("torch", "philox"))


# `--streams philox@avx2`: the philox stream with its CPU kernels limited to one variant
# (PYINIT_PHILOX_SIMD, read by the kernels at every call): the variants side by side in one run.
PHILOX_SIMD = {"portable": "0", "avx2": "avx2", "avx512": "best"}


def is_stream(name: str) -> bool:
    """A stream of this pyinit, or `philox@<variant>` (avx512: where torch's capability is AVX512,
    which the philox kernels follow)."""
    base, _, simd = name.partition("@")
    if base not in available_streams():
        return False
    if not simd:
        return True
    return (
        base == "philox"
        and simd in PHILOX_SIMD
        and (simd != "avx512" or torch.backends.cpu.get_cpu_capability() == "AVX512")
    )


def in_stream(stream: str | None, fn: Callable[[], object]) -> Callable[[], object]:
    """fn run under `with pyinit.stream(stream):` (when pyinit has streams)."""
    if stream is None or not has_streams():
        return fn
    name, _, simd = stream.partition("@")

    def run() -> object:
        if simd:
            before = os.environ.get("PYINIT_PHILOX_SIMD")
            os.environ["PYINIT_PHILOX_SIMD"] = PHILOX_SIMD[simd]
        try:
            with pyinit.stream(name):
                return fn()
        finally:
            if simd:
                if before is None:
                    del os.environ["PYINIT_PHILOX_SIMD"]
                else:
                    os.environ["PYINIT_PHILOX_SIMD"] = before

    return run


def shape_for(name: str, numel: int) -> tuple[int, ...]:
    """A weight-like shape of about `numel` elements: (rows, 1024); a conv1d kernel for dirac_."""
    if name == "dirac_":
        return (max(numel // 64, 1), 16, 4)
    cols = min(1024, numel)
    return (max(numel // cols, 1), cols)


def masked_uniform_composition(w: torch.Tensor) -> None:
    """The plain PyTorch version of the masked uniform (what pyinit.masked_uniform_ fuses)."""
    w.uniform_(-10, 10)
    w *= w.abs() >= 5


_compiled: dict[str, Callable] = {}


def compiled_composition() -> Callable:
    if "masked" not in _compiled:
        _compiled["masked"] = torch.compile(masked_uniform_composition)
    return _compiled["masked"]


def fallback_note(name: str, tensor: torch.Tensor) -> str:
    """'falls back to torch: <why>' when pyinit would not run its own kernel on this tensor."""
    op = KERNEL_OP.get(name)
    try:
        reason = pyinit.fallback_reason(tensor, op) if op else None
    except Exception:  # an older/newer pyinit without this helper: say nothing
        reason = None
    return f"falls back to torch: {reason}" if reason else ""


def pyinit_contenders(
    fn: Callable[[], object], streams: list[str], random: bool, note: str = ""
) -> list[Contender]:
    """One pyinit row per stream for a random initializer, one plain row for a deterministic one."""
    rows = []
    for stream in streams if random else [None]:
        label = f"pyinit[{stream}]" if stream else "pyinit"
        rows.append(Contender(label, in_stream(stream, fn), "pyinit", stream, note))
    return rows


def initializer_contenders(
    name: str, tensor: torch.Tensor, streams: list[str], use_compile: bool
) -> list[Contender]:
    """fill_ (ceiling), the baseline (torch.nn.init or the composition), peers, pyinit."""
    args = ARGS.get(name, ())
    rows = [Contender("fill_", lambda: tensor.fill_(0.5), "ceiling")]
    if name == "masked_uniform_":
        rows.append(
            Contender("composition", lambda: masked_uniform_composition(tensor), "baseline")
        )
        if use_compile:
            rows.append(
                Contender(
                    "torch.compile",
                    lambda: compiled_composition()(tensor),
                    "peer",
                    note="inductor RNG: other values than eager",
                )
            )
    else:
        torch_fn = getattr(torch.nn.init, name)
        rows.append(Contender("torch.nn.init", lambda: torch_fn(tensor, *args), "baseline"))
    pyinit_fn = getattr(pyinit, name)
    note = fallback_note(name, tensor)
    if name in RANDOM and has_streams():
        # As users call them: pyinit.<name> in the default (torch) stream, pyinit.philox.<name>.
        for stream in streams:
            direct = stream_function(stream, name)
            call = (
                bind(direct, tensor, args)
                if direct is not None
                else in_stream(stream, bind(pyinit_fn, tensor, args))
            )
            rows.append(Contender(f"pyinit[{stream}]", call, "pyinit", stream, note))
        return rows
    rows += pyinit_contenders(lambda: pyinit_fn(tensor, *args), streams, name in RANDOM, note)
    return rows


def stream_function(stream: str, name: str) -> Callable[..., object] | None:
    """pyinit's `name` in `stream` as users spell it (the default stream's pyinit.<name>,
    pyinit.philox.<name>), or None where there is none (a philox@<variant>: in_stream)."""
    if stream == pyinit.get_stream():
        return getattr(pyinit, name)
    return getattr(getattr(pyinit, stream, None), name, None)


def bind(fn: Callable[..., object], tensor: torch.Tensor, args: tuple) -> Callable[[], object]:
    return lambda: fn(tensor, *args)
