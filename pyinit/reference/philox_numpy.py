"""The philox stream in pure NumPy: the test oracle of pyinit's philox kernels.

Every function takes the call's 64-bit `key` and `offset` and an array of global row-major element
indices and returns the values the kernels write there: ``float32`` arrays for
float32/float16/bfloat16 outputs (the values already rounded to the output dtype), ``float64`` for
float64, ``uint32`` for raw words. The float32 transforms are written operation for operation as in
csrc/pyinit/philox_transforms.h (NumPy rounds each operation once and never contracts), so they
agree bit for bit. The float64 ones (and the inverse CDF of every dtype) use pyinit's own ln, exp,
sin, cos and erfc (pyinit/reference/philox_math.py, a mirror of csrc/pyinit/philox_math.h), built
from +, -, *, / and sqrt only, so they agree bit for bit too, whatever CPU features NumPy uses.
See docs/philox_stream.md for the definition.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from . import philox_math as pm

__all__ = [
    "KAT",
    "philox4x32_10",
    "check_kat",
    "tile_map",
    "block_words",
    "bits",
    "uniform",
    "masked_uniform",
    "normal",
    "trunc_normal",
    "sparse_zero_mask",
    "round_to_dtype",
    "global_indices",
]

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_F = np.float32

# Random123 tests/kat_vectors, "philox4x32 10": counter (4 words), key (2 words) -> output (4
# words).
KAT = [
    (
        (0x00000000, 0x00000000, 0x00000000, 0x00000000),
        (0x00000000, 0x00000000),
        (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
    ),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on arrays of uint32 counter words; returns the four output word arrays."""
    c = [np.asarray(x, dtype=np.uint32) for x in (c0, c1, c2, c3)]
    k0 = np.uint32(k0)
    k1 = np.uint32(k1)
    with np.errstate(over="ignore"):
        for r in range(10):
            p0 = _M0 * c[0].astype(np.uint64)
            p1 = _M1 * c[2].astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & _MASK32).astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & _MASK32).astype(np.uint32)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
            if r < 9:
                k0 = np.uint32(k0 + _W0)
                k1 = np.uint32(k1 + _W1)
    return c


def check_kat() -> bool:
    for ctr, key, expected in KAT:
        out = [int(v) for v in philox4x32_10(*ctr, *key)]
        if out != list(expected):
            return False
    return True


def name_key(seed: int, name: str) -> tuple[int, int]:
    """(key, offset) of the tensor called `name` under `seed` (docs/philox_stream.md, "Keys from
    names"): BLAKE2b-128 of the UTF-8 name, keyed by the seed's 8 little-endian bytes."""
    h = hashlib.blake2b(
        digest_size=16, key=(seed % 2**64).to_bytes(8, "little"), person=b"pyinit.philox"
    )
    h.update(name.encode("utf-8"))
    d = h.digest()
    return int.from_bytes(d[0:8], "little"), int.from_bytes(d[8:16], "little")


def global_indices(shape, start=None, local_shape=None) -> np.ndarray:
    """Global row-major indices of a block (local_shape at start) of a tensor of `shape`, in block
    row-major order; the whole tensor by default."""
    shape = tuple(int(s) for s in shape)
    if start is None:
        return np.arange(math.prod(shape), dtype=np.uint64)
    grids = np.meshgrid(
        *[np.arange(s, s + n) for s, n in zip(start, local_shape, strict=True)], indexing="ij"
    )
    return (
        np.ravel_multi_index(grids, shape).reshape(-1).astype(np.uint64)
        if shape
        else np.zeros(1, np.uint64)
    )


def tile_map(i, words_per_element: int):
    """(block, slot) of global indices i: tiles of 8 blocks; element j of a tile uses block j % 8,
    slot j // 8."""
    i = np.asarray(i, dtype=np.uint64)
    if words_per_element == 1:
        return (i >> np.uint64(5)) * np.uint64(8) + (i & np.uint64(7)), (
            (i >> np.uint64(3)) & np.uint64(3)
        )
    return (i >> np.uint64(4)) * np.uint64(8) + (i & np.uint64(7)), (
        (i >> np.uint64(3)) & np.uint64(1)
    )


def block_words(key: int, offset: int, blocks, stream: int = 0):
    """The four words of each block: counter (lo, hi of offset + block; lo, hi of stream), key (lo,
    hi)."""
    with np.errstate(over="ignore"):
        c = np.asarray(blocks, dtype=np.uint64) + np.uint64(offset % 2**64)
    s = stream % 2**64
    words = philox4x32_10(
        (c & _MASK32).astype(np.uint32),
        (c >> np.uint64(32)).astype(np.uint32),
        np.full(c.shape, s & 0xFFFFFFFF, np.uint32),
        np.full(c.shape, s >> 32, np.uint32),
        (key % 2**64) & 0xFFFFFFFF,
        (key % 2**64) >> 32,
    )
    return np.stack(words)  # (4, n)


def _pick(words, slot):
    return words[slot.astype(np.intp), np.arange(words.shape[1])]


def bits(key: int, offset: int, i, stream: int = 0) -> np.ndarray:
    block, slot = tile_map(i, 1)
    return _pick(block_words(key, offset, block, stream), slot)


# ---- rounding ------------------------------------------------------------------------------------


def round_to_dtype(v: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values rounded (to nearest even) to 'float16' / 'bfloat16' / 'float32', as
    float32."""
    v = np.asarray(v, dtype=np.float32)
    if dtype == "float16":
        return v.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        x = v.view(np.uint32).astype(np.uint64)
        r = (
            (x + np.uint64(0x7FFF) + ((x >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
        ) << np.uint64(16)
        return r.astype(np.uint32).view(np.float32)
    return v


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


# ---- uniform -------------------------------------------------------------------------------------


def _unit_float(w):
    return (w >> np.uint32(8)).astype(np.float32) * _F(2.0**-24)


def _unit_double(a, b):
    k = ((a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)) >> np.uint64(11)
    return k.astype(np.float64) * 2.0**-53


def _mask(v, threshold):
    return np.where(np.abs(v) >= threshold, v, v * v.dtype.type(0))


def uniform(key, offset, i, low, high, dtype="float32", threshold=None):
    dtype = _dtype_name(dtype)
    if dtype == "float64":
        block, slot = tile_map(i, 2)
        w = block_words(key, offset, block)
        a, b = _pick(w, 2 * slot), _pick(w, 2 * slot + 1)
        v = _unit_double(a, b) * float(high - low) + float(low)
        return v if threshold is None else _mask(v, float(threshold))
    block, slot = tile_map(i, 1)
    w = _pick(block_words(key, offset, block), slot)
    v = round_to_dtype(_unit_float(w) * _F(high - low) + _F(low), dtype)
    return v if threshold is None else _mask(v, _F(threshold))


def masked_uniform(key, offset, i, low, high, threshold, dtype="float32"):
    return uniform(key, offset, i, low, high, dtype, threshold)


# ---- normal --------------------------------------------------------------------------------------

_LOG_COEFFS = [
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
]
_SIN_COEFFS = [
    1.57079632679489662,
    -0.645964097506246254,
    7.96926262461670451e-2,
    -4.68175413531868811e-3,
    1.60441184787359821e-4,
]
_COS_COEFFS = [
    1.0,
    -1.23370055013616983,
    0.253669507901048014,
    -2.08634807633529609e-2,
    9.19260274839426442e-4,
    -2.52020423730606054e-5,
]


def log_float(x: np.ndarray) -> np.ndarray:
    """philox_log_float: Cephes logf for normal floats in (0, 1], float32 operations."""
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32)
    e = (b >> np.uint32(23)).astype(np.int32) - 126
    m = ((b & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    small = m < _F(0.707106781186547524)
    e = e - small.astype(np.int32)
    t = np.where(small, (m + m) + _F(-1.0), m + _F(-1.0))
    z = t * t
    y = np.full_like(t, _F(_LOG_COEFFS[0]))
    for c in _LOG_COEFFS[1:]:
        y = y * t + _F(c)
    y = (y * t) * z
    ef = e.astype(np.float32)
    y = y + _F(-2.12194440e-4) * ef
    y = y + _F(-0.5) * z
    r = t + y
    return r + _F(0.693359375) * ef


def cossin_turn(w: np.ndarray):
    """philox_cossin_turn: (cos, sin) of 2 pi (24 high bits of w) / 2^24, float32 operations."""
    w = np.asarray(w, dtype=np.uint32)
    quadrant = w >> np.uint32(30)
    fraction = (w >> np.uint32(8)) & np.uint32(0x3FFFFF)
    swap = fraction > np.uint32(0x200000)
    f = fraction.astype(np.float32) * _F(2.0**-22)
    g = np.where(swap, _F(1.0) + (-f), f)
    g2 = g * g
    ps = np.full_like(g, _F(_SIN_COEFFS[-1]))
    for c in _SIN_COEFFS[-2::-1]:
        ps = ps * g2 + _F(c)
    pc = np.full_like(g, _F(_COS_COEFFS[-1]))
    for c in _COS_COEFFS[-2::-1]:
        pc = pc * g2 + _F(c)
    ps = ps * g
    s, c = np.where(swap, pc, ps), np.where(swap, ps, pc)
    cos_t = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    sin_t = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    return cos_t, sin_t


def _standard_normal_float(words, slot):
    pair = slot >> np.uint64(1)
    w_radius = _pick(words, 2 * pair)
    w_angle = _pick(words, 2 * pair + 1)
    u1 = ((w_radius >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * _F(2.0**-24)
    radius = np.sqrt(_F(-2.0) * log_float(u1))
    c, s = cossin_turn(w_angle)
    return radius * np.where((slot & np.uint64(1)) == 1, s, c)


def _standard_normal_double(words, slot):
    k1 = ((words[0].astype(np.uint64) << np.uint64(32)) | words[1]) >> np.uint64(11)
    u1 = (k1 + np.uint64(1)).astype(np.float64) * 2.0**-53
    radius = np.sqrt(-2.0 * pm.log(u1))
    k2 = ((words[2].astype(np.uint64) << np.uint64(32)) | words[3]) >> np.uint64(11)
    quadrant = k2 >> np.uint64(51)
    fraction = k2 & np.uint64((1 << 51) - 1)
    swap = fraction > np.uint64(1 << 50)
    f = fraction.astype(np.float64) * 2.0**-51
    g = np.where(swap, 1.0 - f, f)
    angle = g * 1.5707963267948966
    s0, c0 = pm.sin_reduced(angle), pm.cos_reduced(angle)
    s, c = np.where(swap, c0, s0), np.where(swap, s0, c0)
    cos_t = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    sin_t = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    return radius * np.where(slot == 1, sin_t, cos_t)


def normal(key, offset, i, mean, std, dtype="float32", stream=0):
    dtype = _dtype_name(dtype)
    if dtype == "float64":
        block, slot = tile_map(i, 2)
        return _standard_normal_double(block_words(key, offset, block, stream), slot) * float(
            std
        ) + float(mean)
    block, slot = tile_map(i, 1)
    z = _standard_normal_float(block_words(key, offset, block, stream), slot)
    return round_to_dtype(z * _F(std) + _F(mean), dtype)


# ---- truncated normal ----------------------------------------------------------------------------

TRUNC_ROUNDS = 64
_cdf = pm.normal_cdf
ndtri = pm.ndtri


class TruncParams:
    def __init__(self, mean, std, a, b):
        self.mean, self.std, self.a, self.b = float(mean), float(std), float(a), float(b)
        alpha, beta = (self.a - self.mean) / self.std, (self.b - self.mean) / self.std
        p = float(_cdf(beta)) - float(_cdf(alpha))
        self.rejection = p > 0.3
        self.mirrored = alpha > 0
        if self.mirrored:
            alpha, beta = -beta, -alpha
        self.alpha, self.beta = alpha, beta
        self.p_alpha = float(_cdf(alpha))
        self.p_span = float(_cdf(beta)) - self.p_alpha

    def icdf(self, u):
        z = np.clip(ndtri(self.p_alpha + u * self.p_span), self.alpha, self.beta)
        if self.mirrored:
            z = -z
        return np.clip(self.mean + self.std * z, self.a, self.b)


def trunc_normal(key, offset, i, mean, std, a, b, dtype="float32"):
    dtype = _dtype_name(dtype)
    t = TruncParams(mean, std, a, b)
    i = np.asarray(i, dtype=np.uint64)
    is_double = dtype == "float64"

    def finish(v):
        return v if is_double else round_to_dtype(v.astype(np.float32), dtype)

    if not t.rejection:
        block, slot = tile_map(i, 2)
        w = block_words(key, offset, block)
        k = (
            (_pick(w, 2 * slot).astype(np.uint64) << np.uint64(32)) | _pick(w, 2 * slot + 1)
        ) >> np.uint64(11)
        return finish(t.icdf((k.astype(np.float64) + 0.5) * 2.0**-53))
    out = np.zeros(i.shape, np.float64 if is_double else np.float32)
    pending = np.ones(i.shape, bool)
    for r in range(TRUNC_ROUNDS):
        idx = np.nonzero(pending)[0]
        if idx.size == 0:
            return out
        v = normal(key, offset, i[idx], mean, std, dtype, stream=r)
        ok = (v.astype(np.float64) >= t.a) & (v.astype(np.float64) <= t.b)
        out[idx[ok]] = v[ok]
        pending[idx[ok]] = False
    idx = np.nonzero(pending)[0]
    if idx.size:
        block, slot = tile_map(i[idx], 2 if is_double else 1)
        w = block_words(key, offset, block, TRUNC_ROUNDS)
        word = _pick(w, 2 * slot if is_double else slot)
        out[idx] = finish(t.icdf((word.astype(np.float64) + 0.5) * 2.0**-32))
    return out


# ---- sparse --------------------------------------------------------------------------------------


def sparse_zero_mask(key, offset, rows, cols, num_zeros):
    """(rows, cols) bool: per column, the num_zeros rows with the smallest (word, row) are zero,
    the words being philox_bits at stream 1 of the (rows, cols) tensor."""
    w = bits(key, offset, np.arange(rows * cols, dtype=np.uint64), stream=1).reshape(rows, cols)
    order = np.argsort(w, axis=0, kind="stable")
    mask = np.zeros((rows, cols), bool)
    np.put_along_axis(mask, order[:num_zeros], True, axis=0)
    return mask
