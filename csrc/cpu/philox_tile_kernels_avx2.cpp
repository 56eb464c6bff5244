// The philox stream's tile kernels for AVX2 (float values, and raw words for philox_bits_ / sparse_): eight
// Philox blocks per vector, then the uniform / normal
// transforms of csrc/pyinit/philox_transforms.h operation for operation (no FMA, same polynomials, same order),
// so the values are bit-identical to the portable kernel and the CUDA kernels. Compiled for AVX2 with a target
// pragma; only called when philox_isa() (cpu_isa.h) selects AVX2. See docs/philox_stream.md.
#if defined(__x86_64__) || defined(_M_X64)

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/philox_tile_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2")
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>

#include "cpu/philox_simd_poly.h"

namespace pyinit::cpu {
namespace {

struct Block8 {
  __m256i x, y, z, w;
};

inline void mulhilo8(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// The round keys of a call, broadcast once.
struct RoundKeys {
  __m256i k0[10], k1[10];
  explicit RoundKeys(uint64_t key) {
    uint32_t a = static_cast<uint32_t>(key), b = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      k0[round] = _mm256_set1_epi32(static_cast<int>(a));
      k1[round] = _mm256_set1_epi32(static_cast<int>(b));
      a += kPhiloxW0;
      b += kPhiloxW1;
    }
  }
};

inline Block8 counters8(uint64_t offset, uint64_t tile, uint64_t stream) {
  const uint64_t base = offset + tile * 8;
  const __m256i stream_lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
  const __m256i stream_hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
  if (static_cast<uint32_t>(base) <= 0xFFFFFFF7u) {  // no carry into the high word within these 8 blocks
    const __m256i lo = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base))),
                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return Block8{lo, _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32))), stream_lo, stream_hi};
  }
  alignas(32) uint32_t lo[8], hi[8];
  for (int b = 0; b < 8; ++b) {
    const uint64_t c = base + static_cast<uint64_t>(b);
    lo[b] = static_cast<uint32_t>(c);
    hi[b] = static_cast<uint32_t>(c >> 32);
  }
  return Block8{_mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
                _mm256_load_si256(reinterpret_cast<const __m256i*>(hi)), stream_lo, stream_hi};
}

inline void round8(Block8& s, __m256i m0, __m256i m1, __m256i k0, __m256i k1) {
  __m256i hi0, lo0, hi1, lo1;
  mulhilo8(s.x, m0, &hi0, &lo0);
  mulhilo8(s.z, m1, &hi1, &lo1);
  s = Block8{_mm256_xor_si256(_mm256_xor_si256(hi1, s.y), k0), lo1, _mm256_xor_si256(_mm256_xor_si256(hi0, s.w), k1),
             lo0};
}

// Two tiles (16 blocks) at once: two independent dependency chains keep the multipliers busy.
inline void philox16(uint64_t offset, const RoundKeys& keys, uint64_t tile, uint64_t stream, Block8* a, Block8* b) {
  *a = counters8(offset, tile, stream);
  *b = counters8(offset, tile + 1, stream);
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  for (int round = 0; round < 10; ++round) {
    round8(*a, m0, m1, keys.k0[round], keys.k1[round]);
    round8(*b, m0, m1, keys.k0[round], keys.k1[round]);
  }
}

inline __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
inline __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
inline __m256 splat(float v) { return _mm256_set1_ps(v); }

struct Ops {
  using V = __m256;
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V splat(float v) { return _mm256_set1_ps(v); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
};

// philox_unit_float / philox_uniform_float
inline __m256 uniform8(__m256i w, __m256 low, __m256 span) {
  const __m256 u = mul(_mm256_cvtepi32_ps(_mm256_srli_epi32(w, 8)), splat(5.9604644775390625e-08f));
  return add(mul(u, span), low);
}

// philox_mask_float
inline __m256 mask8(__m256 v, __m256 threshold) {
  const __m256 magnitude = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
  const __m256 keep = _mm256_cmp_ps(magnitude, threshold, _CMP_GE_OQ);
  return _mm256_blendv_ps(mul(v, _mm256_setzero_ps()), v, keep);
}

// Box-Muller on N independent vectors at once, step by step, so that the long dependency chains of the
// polynomials overlap (about 1.4x faster than one vector at a time). Each lane goes through exactly the operations
// of philox_radius_float (philox_log_float, then sqrt) and philox_cossin_turn.
template <int N>
inline void radius8xN(const __m256i* w, __m256* out) {
  __m256 x[N], t[N], z[N], e[N];
  for (int i = 0; i < N; ++i) {
    const __m256i k = _mm256_add_epi32(_mm256_srli_epi32(w[i], 8), _mm256_set1_epi32(1));
    x[i] = mul(_mm256_cvtepi32_ps(k), splat(5.9604644775390625e-08f));
    const __m256i bits = _mm256_castps_si256(x[i]);
    __m256i exponent = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
    const __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
    const __m256 small = _mm256_cmp_ps(m, splat(0.707106781186547524f), _CMP_LT_OQ);
    exponent = _mm256_sub_epi32(exponent, _mm256_and_si256(_mm256_castps_si256(small), _mm256_set1_epi32(1)));
    t[i] = _mm256_blendv_ps(add(m, splat(-1.0f)), add(add(m, m), splat(-1.0f)), small);
    z[i] = mul(t[i], t[i]);
    e[i] = _mm256_cvtepi32_ps(exponent);
  }
  philox_log_sqrt<Ops, N>(t, z, e, out);
}

template <int N>
inline void cossin8xN(const __m256i* w, __m256* cos_out, __m256* sin_out) {
  __m256 g[N], g2[N], ps[N], pc[N], swap[N];
  for (int i = 0; i < N; ++i) {
    const __m256i fraction = _mm256_and_si256(_mm256_srli_epi32(w[i], 8), _mm256_set1_epi32(0x3FFFFF));
    swap[i] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(fraction, _mm256_set1_epi32(0x200000)));
    const __m256 f = mul(_mm256_cvtepi32_ps(fraction), splat(2.384185791015625e-07f));
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
    g[i] = _mm256_blendv_ps(f, add(splat(1.0f), _mm256_xor_ps(f, sign)), swap[i]);
    g2[i] = mul(g[i], g[i]);
  }
  philox_sincos_poly<Ops, N>(g2, ps, pc);
  const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
  for (int i = 0; i < N; ++i) {
    const __m256 p = mul(ps[i], g[i]);
    const __m256 s = _mm256_blendv_ps(p, pc[i], swap[i]);
    const __m256 c = _mm256_blendv_ps(pc[i], p, swap[i]);
    const __m256i quadrant = _mm256_srli_epi32(w[i], 30);
    const __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(quadrant, one), one));
    const __m256 cos_base = _mm256_blendv_ps(c, s, odd);
    const __m256 sin_base = _mm256_blendv_ps(s, c, odd);
    const __m256 cos_sign =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(quadrant, one), two), 30));
    const __m256 sin_sign = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(quadrant, two), 30));
    cos_out[i] = _mm256_xor_ps(cos_base, cos_sign);
    sin_out[i] = _mm256_xor_ps(sin_base, sin_sign);
  }
}

// The normal values of two tiles (dst_b may be null: only the first tile is stored).
inline void normal_tiles2(const PhiloxCall& call, const Block8& a, const Block8& b, float* dst_a, float* dst_b) {
  const __m256 mean = splat(call.mean_f), std = splat(call.std_f);
  const __m256i radius_words[4] = {a.x, a.z, b.x, b.z};
  const __m256i angle_words[4] = {a.y, a.w, b.y, b.w};
  __m256 r[4], c[4], s[4];
  radius8xN<4>(radius_words, r);
  cossin8xN<4>(angle_words, c, s);
  for (int i = 0; i < 4; ++i) {
    float* dst = i < 2 ? dst_a + 16 * i : dst_b + 16 * (i - 2);
    if (dst_b == nullptr && i >= 2) break;
    _mm256_storeu_ps(dst, add(mul(mul(r[i], c[i]), std), mean));
    _mm256_storeu_ps(dst + 8, add(mul(mul(r[i], s[i]), std), mean));
  }
}

// The 32 uniform / masked uniform values of one tile from its block words (see philox_float_tile_portable).
inline void uniform_tile(const PhiloxCall& call, const Block8& w, float* dst) {
  const __m256 low = splat(call.low_f), span = splat(call.span_f), threshold = splat(call.threshold_f);
  const __m256i lanes[4] = {w.x, w.y, w.z, w.w};
  for (int slot = 0; slot < 4; ++slot) {
    __m256 v = uniform8(lanes[slot], low, span);
    if (call.mask_in_tile) v = mask8(v, threshold);
    _mm256_storeu_ps(dst + 8 * slot, v);
  }
}

}  // namespace

void philox_float_tile_avx2(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst) {
  const RoundKeys keys(call.key);
  Block8 a, b;
  for (int64_t t = 0; t < count; t += 2) {
    philox16(call.offset, keys, tile + t, stream, &a, &b);
    if (call.kind == PhiloxKind::kNormal) {
      normal_tiles2(call, a, b, dst + 32 * t, t + 1 < count ? dst + 32 * (t + 1) : nullptr);
      continue;
    }
    uniform_tile(call, a, dst + 32 * t);
    if (t + 1 < count) uniform_tile(call, b, dst + 32 * (t + 1));
  }
}

namespace {

// The pick of up to 8 N elements index[0, count) (N vectors at once: independent dependency chains), lane for lane
// philox_normal_float(philox_block(key, offset, tile.block, stream), tile.slot, mean, std) with tile =
// philox_tile(index, 1), as philox_normal_pick_portable computes it.
template <int N>
inline void normal_pick8xN(const PhiloxCall& call, const RoundKeys& keys, const uint64_t* index, int64_t count,
                           uint64_t stream, float* dst) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  const __m256i stream_lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
  const __m256i stream_hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
  Block8 s[N];
  __m256i slots[N];
  int64_t live[N];
  for (int v = 0; v < N; ++v) {
    live[v] = std::max<int64_t>(0, std::min<int64_t>(8, count - 8 * v));
    // The counters (64-bit) and slots of the 8 lanes, on the scalar side: a few operations against ten rounds.
    alignas(32) uint32_t lo[8], hi[8], slot[8];
    for (int b = 0; b < 8; ++b) {
      const uint64_t g = b < live[v] ? index[8 * v + b] : 0;
      const PhiloxTile tile = philox_tile(g, 1);
      const uint64_t counter = call.offset + tile.block;
      lo[b] = static_cast<uint32_t>(counter);
      hi[b] = static_cast<uint32_t>(counter >> 32);
      slot[b] = static_cast<uint32_t>(tile.slot);
    }
    s[v] = Block8{_mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
                  _mm256_load_si256(reinterpret_cast<const __m256i*>(hi)), stream_lo, stream_hi};
    slots[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(slot));
  }
  for (int round = 0; round < 10; ++round) {
    for (int v = 0; v < N; ++v) round8(s[v], m0, m1, keys.k0[round], keys.k1[round]);
  }
  // philox_standard_normal_float: slots 0, 1 use the pair (x, y), slots 2, 3 the pair (z, w); odd slots the sine.
  const __m256i one = _mm256_set1_epi32(1);
  __m256i radius_word[N], angle_word[N];
  __m256 sine[N];
  for (int v = 0; v < N; ++v) {
    const __m256i second_pair = _mm256_cmpgt_epi32(slots[v], one);
    sine[v] = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(slots[v], one), one));
    radius_word[v] = _mm256_blendv_epi8(s[v].x, s[v].z, second_pair);
    angle_word[v] = _mm256_blendv_epi8(s[v].y, s[v].w, second_pair);
  }
  __m256 r[N], c[N], sn[N];
  radius8xN<N>(radius_word, r);
  cossin8xN<N>(angle_word, c, sn);
  const __m256 mean = splat(call.mean_f), std = splat(call.std_f);
  for (int v = 0; v < N; ++v) {
    const __m256 value = add(mul(mul(r[v], _mm256_blendv_ps(c[v], sn[v], sine[v])), std), mean);
    if (live[v] == 8) {
      _mm256_storeu_ps(dst + 8 * v, value);
    } else if (live[v] > 0) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, value);
      std::memcpy(dst + 8 * v, lanes, static_cast<size_t>(live[v]) * sizeof(float));
    }
  }
}

}  // namespace

void philox_normal_pick_avx2(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                             float* dst) {
  const RoundKeys keys(call.key);
  int64_t i = 0;
  for (; count - i > 16; i += 32) normal_pick8xN<4>(call, keys, index + i, count - i, stream, dst + i);
  for (; i < count; i += 8) normal_pick8xN<1>(call, keys, index + i, count - i, stream, dst + i);
}

namespace {

inline void store_words(const Block8& w, uint32_t* dst) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), w.x);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8), w.y);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16), w.z);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 24), w.w);
}

}  // namespace

void philox_bits_tile_avx2(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                           uint32_t* dst) {
  const RoundKeys keys(key);
  Block8 a, b;
  for (int64_t t = 0; t < count; t += 2) {
    philox16(offset, keys, tile + t, stream, &a, &b);
    store_words(a, dst + 32 * t);
    if (t + 1 < count) store_words(b, dst + 32 * (t + 1));
  }
}

namespace {

// compress[m]: the lane indices of the set bits of m, in order (then zeros), for _mm256_permutevar8x32_epi32.
struct CompressTable {
  alignas(32) int32_t lanes[256][8];
  CompressTable() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int b = 0; b < 8; ++b) {
        if (m & (1 << b)) lanes[m][n++] = b;
      }
      while (n < 8) lanes[m][n++] = 0;
    }
  }
};

const CompressTable kCompress;

}  // namespace

int64_t philox_reject_scan_avx2(const float* v, int64_t count, float lo, float hi, int32_t* out) {
  const __m256 low = splat(lo), high = splat(hi);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t m = 0, j = 0;
  for (; j + 8 <= count; j += 8) {
    const __m256 x = _mm256_loadu_ps(v + j);
    // inside: lo <= x <= hi (false for NaN)
    const __m256 inside = _mm256_and_ps(_mm256_cmp_ps(x, low, _CMP_GE_OQ), _mm256_cmp_ps(x, high, _CMP_LE_OQ));
    const int rejected = ~_mm256_movemask_ps(inside) & 0xFF;
    // No branch on `rejected`: 8 lanes at m (m <= j, so inside out[0, count)), of which the first
    // popcount(rejected) are kept.
    const __m256i picked = _mm256_permutevar8x32_epi32(
        lane, _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[rejected])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + m),
                        _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(j)), picked));
    m += __builtin_popcount(static_cast<unsigned>(rejected));
  }
  for (; j < count; ++j) {
    if (!(v[j] >= lo && v[j] <= hi)) out[m++] = static_cast<int32_t>(j);
  }
  return m;
}

int64_t sparse_scan_row_avx2(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                             uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                             int64_t m) {
  const __m256i low_max = _mm256_set1_epi32(static_cast<int>(scan.low_max));
  const __m256i high_max = _mm256_set1_epi32(static_cast<int>(scan.high_max));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t j = 0;
  for (; j + 8 <= width; j += 8) {  // j % 8 == 0: bits j .. j + 7 are byte j / 8 of low_bits
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + j));
    const __m256i le_high = _mm256_cmpeq_epi32(_mm256_max_epu32(w, high_max), high_max);
    __m256i is_band = le_high;
    if (scan.has_low) {
      const __m256i is_low = _mm256_cmpeq_epi32(_mm256_max_epu32(w, low_max), low_max);
      is_band = _mm256_andnot_si256(is_low, le_high);
      __m256i* counts = reinterpret_cast<__m256i*>(low_counts + j);
      _mm256_storeu_si256(counts, _mm256_sub_epi32(_mm256_loadu_si256(counts), is_low));
      if (low_bits != nullptr) {
        low_bits[j / 8] |= static_cast<uint8_t>(_mm256_movemask_ps(_mm256_castsi256_ps(is_low)));
      }
    }
    __m256i* counts = reinterpret_cast<__m256i*>(band_counts + j);
    _mm256_storeu_si256(counts, _mm256_sub_epi32(_mm256_loadu_si256(counts), is_band));
    const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(is_band));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[mask]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(band_words + m), _mm256_permutevar8x32_epi32(w, perm));
    const __m256i cols = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(j)), lane);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(band_cols + m), _mm256_permutevar8x32_epi32(cols, perm));
    m += __builtin_popcount(static_cast<unsigned>(mask));
  }
  return sparse_scan_range(scan, words, j, width, low_counts, low_bits, band_counts, band_words, band_cols, m);
}

void sparse_zero_row_avx2(char* row, const uint8_t* bits, int64_t width, int64_t element_size) {
  int64_t j = 0;
  if (element_size == 4) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (; j + 8 <= width; j += 8) {
      const int b = bits[j / 8];
      const __m256i zero = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(b), lane_bit), lane_bit);
      __m256i* p = reinterpret_cast<__m256i*>(row + 4 * j);
      _mm256_storeu_si256(p, _mm256_andnot_si256(zero, _mm256_loadu_si256(p)));
    }
  } else if (element_size == 2) {
    const __m256i lane_bit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
                                               static_cast<int16_t>(-32768));
    for (; j + 16 <= width; j += 16) {
      const int b = bits[j / 8] | bits[j / 8 + 1] << 8;
      const __m256i zero =
          _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16(static_cast<int16_t>(b)), lane_bit), lane_bit);
      __m256i* p = reinterpret_cast<__m256i*>(row + 2 * j);
      _mm256_storeu_si256(p, _mm256_andnot_si256(zero, _mm256_loadu_si256(p)));
    }
  } else if (element_size == 8) {
    const __m256i lane_bit = _mm256_setr_epi64x(1, 2, 4, 8);
    for (; j + 4 <= width; j += 4) {
      const int b = (bits[j / 8] >> (j % 8)) & 15;
      const __m256i zero = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(b), lane_bit), lane_bit);
      __m256i* p = reinterpret_cast<__m256i*>(row + 8 * j);
      _mm256_storeu_si256(p, _mm256_andnot_si256(zero, _mm256_loadu_si256(p)));
    }
  }
  sparse_zero_range(row, bits, j, width, element_size);
}

}  // namespace pyinit::cpu

#pragma GCC pop_options

#endif  // x86-64
