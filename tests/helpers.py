"""Shared test axes (devices x dtypes) and comparison helpers."""

from __future__ import annotations

import pytest
import torch

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# 1 element, below/at/above the 16-element Box-Muller block, odd sizes, sizes not a multiple of 16.
SHAPES = [(1,), (7,), (15,), (16,), (17,), (1000,), (33, 65), (4, 3, 5), (1009, 3)]

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
devices = pytest.mark.parametrize("device", DEVICES)
shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype and bits (so +0.0 != -0.0 and NaN == NaN of the same payload)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    int_type = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return torch.equal(a.contiguous().view(int_type), b.contiguous().view(int_type))


def generator_state(gen: torch.Generator | None, device: str = "cpu") -> torch.Tensor:
    if gen is not None:
        return gen.get_state()
    return torch.get_rng_state() if device == "cpu" else torch.cuda.get_rng_state()
