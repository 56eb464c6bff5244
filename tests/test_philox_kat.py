"""Philox4x32-10 against the Random123 known-answer vectors (the one copy: ref.KAT): the NumPy
oracle, which is also the block function of tests/cuda_model.py's model of torch's CUDA stream, and
the C++ kernels on every device (through philox_bits_, whose element 8 * lane of a tile is word
`lane` of block 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import devices

import pyinit  # noqa: F401  (registers the operators)
from pyinit.reference import philox_numpy as ref

KAT_IDS = ["zeros", "ones", "pi"]


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def test_numpy_kat():
    assert ref.check_kat()
    for ctr, key, expected in ref.KAT:
        assert [int(w) for w in ref.philox4x32_10(*ctr, *key)] == list(expected)


@devices
@pytest.mark.parametrize("case", range(len(ref.KAT)), ids=KAT_IDS)
def test_kernel_kat(device, case):
    ctr, key, expected = ref.KAT[case]
    words = torch.empty(32, dtype=torch.int32, device=device)
    offset = ctr[0] | (ctr[1] << 32)
    stream = ctr[2] | (ctr[3] << 32)
    torch.ops.pyinit.philox_bits_(
        words, _signed(key[0] | (key[1] << 32)), _signed(offset), _signed(stream)
    )
    got = [int(w) & 0xFFFFFFFF for w in words.cpu()[[0, 8, 16, 24]]]
    assert got == list(expected)


@devices
def test_kernel_bits_match_oracle(device):
    key, offset = 0x0123456789ABCDEF, 0xFFFFFFFFFFFFFF00  # the counter wraps around 2^64
    n = 32 * 70 + 13
    words = torch.empty(n, dtype=torch.int32, device=device)
    torch.ops.pyinit.philox_bits_(words, _signed(key), _signed(offset), 5)
    expected = ref.bits(key, offset, np.arange(n, dtype=np.uint64), stream=5)
    assert np.array_equal(words.cpu().numpy().view(np.uint32), expected)


@pytest.mark.parametrize("simd", ["1", "0"])
def test_cpu_bits_portable_and_avx2_match_oracle(simd, monkeypatch):
    monkeypatch.setenv("PYINIT_PHILOX_SIMD", simd)
    key, offset = 0x0123456789ABCDEF, 0xFFFFFFFFFFFFFF00  # the counter wraps around 2^64
    n = 32 * 70 + 13
    words = torch.empty(n, dtype=torch.int32)
    torch.ops.pyinit.philox_bits_(words[5:], _signed(key), _signed(offset), 5)  # starts mid-tile
    expected = ref.bits(key, offset, np.arange(n - 5, dtype=np.uint64), stream=5)
    assert np.array_equal(words[5:].numpy().view(np.uint32), expected)
    sharded = torch.empty(3, 40, dtype=torch.int32)
    torch.ops.pyinit.philox_bits_(sharded, _signed(key), _signed(offset), 5, [9, 50], [2, 7])
    rows = np.arange(2, 5, dtype=np.uint64)[:, None] * np.uint64(50)
    idx = rows + np.arange(7, 47, dtype=np.uint64)[None, :]
    expected = ref.bits(key, offset, idx.ravel(), stream=5).reshape(3, 40)
    assert np.array_equal(sharded.numpy().view(np.uint32), expected)
