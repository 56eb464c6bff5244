// The philox stream's tile kernels for AVX-512 (float values, raw words, sparse_'s scan and zero rows): sixteen
// Philox blocks per 512-bit vector (two tiles: lanes 0-7 are tile t, lanes 8-15 tile t + 1), then the uniform /
// normal transforms of csrc/pyinit/philox_transforms.h operation for operation (no FMA, same polynomials, same
// order, selects through k-masks), so the values are bit-identical to the portable and AVX2 kernels. Compiled
// for AVX-512 F/BW/DQ/VL with a target pragma; only called when philox_isa() (cpu_isa.h) selects AVX-512.
// See docs/philox_stream.md.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "cpu/philox_tile_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#pragma GCC optimize("fp-contract=off")
// GCC 12's AVX-512 intrinsics (their _mm512_undefined_* sources) trip -Wmaybe-uninitialized falsely.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "cpu/philox_simd_poly.h"

namespace pyinit::cpu {
namespace {

struct Block16 {
  __m512i x, y, z, w;
};

// The 32 x 32 -> 64 products of the lanes of a with m (AVX-512 has no 32-bit mulhi): even lanes with
// _mm512_mul_epu32, odd lanes after swapping the words of each 64-bit lane, and the halves put back in place with
// one masked word swap each.
inline void mulhilo16(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_CDAB), m);
  *lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CDAB);
  *hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_CDAB);
}

// The round keys of a call, broadcast once.
struct RoundKeys {
  __m512i k0[10], k1[10];
  explicit RoundKeys(uint64_t key) {
    uint32_t a = static_cast<uint32_t>(key), b = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      k0[round] = _mm512_set1_epi32(static_cast<int>(a));
      k1[round] = _mm512_set1_epi32(static_cast<int>(b));
      a += kPhiloxW0;
      b += kPhiloxW1;
    }
  }
};

// The counters of blocks 8 tile .. 8 tile + 15.
inline Block16 counters16(uint64_t offset, uint64_t tile, uint64_t stream) {
  const uint64_t base = offset + tile * 8;
  const __m512i stream_lo = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
  const __m512i stream_hi = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
  if (static_cast<uint32_t>(base) <= 0xFFFFFFEFu) {  // no carry into the high word within these 16 blocks
    const __m512i lo = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base))),
                                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    return Block16{lo, _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32))), stream_lo, stream_hi};
  }
  alignas(64) uint32_t lo[16], hi[16];
  for (int b = 0; b < 16; ++b) {
    const uint64_t c = base + static_cast<uint64_t>(b);
    lo[b] = static_cast<uint32_t>(c);
    hi[b] = static_cast<uint32_t>(c >> 32);
  }
  return Block16{_mm512_load_si512(lo), _mm512_load_si512(hi), stream_lo, stream_hi};
}

inline void round16(Block16& s, __m512i m0, __m512i m1, __m512i k0, __m512i k1) {
  __m512i hi0, lo0, hi1, lo1;
  mulhilo16(s.x, m0, &hi0, &lo0);
  mulhilo16(s.z, m1, &hi1, &lo1);
  // 0x96: a ^ b ^ c
  s = Block16{_mm512_ternarylogic_epi32(hi1, s.y, k0, 0x96), lo1, _mm512_ternarylogic_epi32(hi0, s.w, k1, 0x96), lo0};
}

// kGroup vectors (2 kGroup tiles) at once: independent dependency chains keep the multipliers busy.
constexpr int kGroup = 2;

inline void philox_group(uint64_t offset, const RoundKeys& keys, uint64_t tile, uint64_t stream, Block16* s) {
  for (int i = 0; i < kGroup; ++i) s[i] = counters16(offset, tile + 2 * static_cast<uint64_t>(i), stream);
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < kGroup; ++i) round16(s[i], m0, m1, keys.k0[round], keys.k1[round]);
  }
}

inline __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
inline __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
inline __m512 splat(float v) { return _mm512_set1_ps(v); }

struct Ops {
  using V = __m512;
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V splat(float v) { return _mm512_set1_ps(v); }
  static V sqrt(V a) { return _mm512_sqrt_ps(a); }
};

// Stores slots (p, q) of both tiles of a vector pair: tile t gets [p.lo, q.lo], tile t + 1 [p.hi, q.hi].
inline void store_pair(__m512 p, __m512 q, float* tile_a, float* tile_b) {
  _mm512_storeu_ps(tile_a, _mm512_shuffle_f32x4(p, q, 0x44));
  if (tile_b != nullptr) _mm512_storeu_ps(tile_b, _mm512_shuffle_f32x4(p, q, 0xEE));
}
inline void store_pair(__m512i p, __m512i q, uint32_t* tile_a, uint32_t* tile_b) {
  _mm512_storeu_si512(tile_a, _mm512_shuffle_i32x4(p, q, 0x44));
  if (tile_b != nullptr) _mm512_storeu_si512(tile_b, _mm512_shuffle_i32x4(p, q, 0xEE));
}

// philox_unit_float / philox_uniform_float
inline __m512 uniform16(__m512i w, __m512 low, __m512 span) {
  const __m512 u = mul(_mm512_cvtepi32_ps(_mm512_srli_epi32(w, 8)), splat(5.9604644775390625e-08f));
  return add(mul(u, span), low);
}

// philox_mask_float
inline __m512 mask16(__m512 v, __m512 threshold) {
  const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_abs_ps(v), threshold, _CMP_GE_OQ);
  return _mm512_mask_blend_ps(keep, mul(v, _mm512_setzero_ps()), v);
}

// Box-Muller on N vectors at once, step by step (as in the AVX2 kernel): each lane goes through exactly the
// operations of philox_radius_float (philox_log_float, then sqrt) and philox_cossin_turn.
template <int N>
inline void radius16xN(const __m512i* w, __m512* out) {
  __m512 t[N], z[N], e[N];
  const __m512i one = _mm512_set1_epi32(1);
  for (int i = 0; i < N; ++i) {
    const __m512i k = _mm512_add_epi32(_mm512_srli_epi32(w[i], 8), one);
    const __m512 x = mul(_mm512_cvtepi32_ps(k), splat(5.9604644775390625e-08f));
    const __m512i bits = _mm512_castps_si512(x);
    __m512i exponent = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
    const __m512 m = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F000000)));
    const __mmask16 small = _mm512_cmp_ps_mask(m, splat(0.707106781186547524f), _CMP_LT_OQ);
    exponent = _mm512_mask_sub_epi32(exponent, small, exponent, one);
    t[i] = _mm512_mask_blend_ps(small, add(m, splat(-1.0f)), add(add(m, m), splat(-1.0f)));
    z[i] = mul(t[i], t[i]);
    e[i] = _mm512_cvtepi32_ps(exponent);
  }
  philox_log_sqrt<Ops, N>(t, z, e, out);
}

template <int N>
inline void cossin16xN(const __m512i* w, __m512* cos_out, __m512* sin_out) {
  __m512 g[N], g2[N], ps[N], pc[N];
  __mmask16 swap[N];
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (int i = 0; i < N; ++i) {
    const __m512i fraction = _mm512_and_si512(_mm512_srli_epi32(w[i], 8), _mm512_set1_epi32(0x3FFFFF));
    swap[i] = _mm512_cmpgt_epi32_mask(fraction, _mm512_set1_epi32(0x200000));
    const __m512 f = mul(_mm512_cvtepi32_ps(fraction), splat(2.384185791015625e-07f));
    const __m512 minus_f = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(f), sign));
    g[i] = _mm512_mask_blend_ps(swap[i], f, add(splat(1.0f), minus_f));
    g2[i] = mul(g[i], g[i]);
  }
  philox_sincos_poly<Ops, N>(g2, ps, pc);
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
  for (int i = 0; i < N; ++i) {
    const __m512 p = mul(ps[i], g[i]);
    const __m512 s = _mm512_mask_blend_ps(swap[i], p, pc[i]);
    const __m512 c = _mm512_mask_blend_ps(swap[i], pc[i], p);
    const __m512i quadrant = _mm512_srli_epi32(w[i], 30);
    const __mmask16 odd = _mm512_test_epi32_mask(quadrant, one);
    const __m512 cos_base = _mm512_mask_blend_ps(odd, c, s);
    const __m512 sin_base = _mm512_mask_blend_ps(odd, s, c);
    const __m512i cos_sign = _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(quadrant, one), two), 30);
    const __m512i sin_sign = _mm512_slli_epi32(_mm512_and_si512(quadrant, two), 30);
    cos_out[i] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cos_base), cos_sign));
    sin_out[i] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sin_base), sin_sign));
  }
}

// tiles[2 i], tiles[2 i + 1]: the destinations of the two tiles of vector i (null: not stored).
inline void normal_group(const PhiloxCall& call, const Block16* s, float* const* tiles) {
  const __m512 mean = splat(call.mean_f), std = splat(call.std_f);
  constexpr int kPairs = 2 * kGroup;
  __m512i radius_words[kPairs], angle_words[kPairs];
  for (int i = 0; i < kGroup; ++i) {
    radius_words[2 * i] = s[i].x;
    angle_words[2 * i] = s[i].y;
    radius_words[2 * i + 1] = s[i].z;
    angle_words[2 * i + 1] = s[i].w;
  }
  __m512 r[kPairs], c[kPairs], sn[kPairs];
  radius16xN<kPairs>(radius_words, r);
  cossin16xN<kPairs>(angle_words, c, sn);
  for (int p = 0; p < kPairs; ++p) {
    float* a = tiles[2 * (p / 2)];
    if (a == nullptr) break;
    float* b = tiles[2 * (p / 2) + 1];
    const int slot = 16 * (p % 2);  // pair (x, y) -> slots 0, 1; pair (z, w) -> slots 2, 3
    store_pair(add(mul(mul(r[p], c[p]), std), mean), add(mul(mul(r[p], sn[p]), std), mean), a + slot,
               b == nullptr ? nullptr : b + slot);
  }
}

// The 64 uniform / masked uniform values of two tiles from their block words (see philox_float_tile_portable).
inline void uniform_tiles(const PhiloxCall& call, const Block16& w, float* a, float* b) {
  const __m512 low = splat(call.low_f), span = splat(call.span_f), threshold = splat(call.threshold_f);
  __m512 v[4] = {uniform16(w.x, low, span), uniform16(w.y, low, span), uniform16(w.z, low, span),
                 uniform16(w.w, low, span)};
  if (call.mask_in_tile) {
    for (auto& x : v) x = mask16(x, threshold);
  }
  store_pair(v[0], v[1], a, b);
  store_pair(v[2], v[3], a + 16, b == nullptr ? nullptr : b + 16);
}

// The 16 words of two halves of 8.
inline __m512i join(const __m256i* halves) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(halves[0]), halves[1], 1);
}

}  // namespace

void philox_float_tile_avx512(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst) {
  const RoundKeys keys(call.key);
  Block16 s[kGroup];
  for (int64_t t = 0; t < count; t += 2 * kGroup) {
    philox_group(call.offset, keys, tile + static_cast<uint64_t>(t), stream, s);
    float* tiles[2 * kGroup];
    for (int i = 0; i < 2 * kGroup; ++i) tiles[i] = t + i < count ? dst + 32 * (t + i) : nullptr;
    if (call.kind == PhiloxKind::kNormal) {
      normal_group(call, s, tiles);
      continue;
    }
    for (int i = 0; i < kGroup && tiles[2 * i] != nullptr; ++i)
      uniform_tiles(call, s[i], tiles[2 * i], tiles[2 * i + 1]);
  }
}

void philox_bits_tile_avx512(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                             uint32_t* dst) {
  const RoundKeys keys(key);
  Block16 s[kGroup];
  for (int64_t t = 0; t < count; t += 2 * kGroup) {
    philox_group(offset, keys, tile + static_cast<uint64_t>(t), stream, s);
    for (int i = 0; i < kGroup && t + 2 * i < count; ++i) {
      uint32_t* a = dst + 32 * (t + 2 * i);
      uint32_t* b = t + 2 * i + 1 < count ? a + 32 : nullptr;
      store_pair(s[i].x, s[i].y, a, b);
      store_pair(s[i].z, s[i].w, a + 16, b == nullptr ? nullptr : b + 16);
    }
  }
}

namespace {

// The pick of up to 16 N elements index[0, count) (N vectors at once: independent dependency chains).
template <int N>
inline void normal_pick16xN(const PhiloxCall& call, const RoundKeys& keys, const uint64_t* index, int64_t count,
                            uint64_t stream, float* dst) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
  const __m512i offset = _mm512_set1_epi64(static_cast<long long>(call.offset));
  const __m512i seven = _mm512_set1_epi64(7), three = _mm512_set1_epi64(3);
  Block16 s[N];
  __m512i slots[N];
  __mmask16 live[N];
  for (int v = 0; v < N; ++v) {
    const int64_t left = count - 16 * v;
    live[v] = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>(left > 0 ? (1u << left) - 1 : 0u);
    // philox_tile(index, 1): block = (index >> 5) * 8 + index % 8, slot = (index >> 3) % 4; counter = offset + block.
    __m256i lo[2], hi[2], slot[2];
    for (int h = 0; h < 2; ++h) {
      const __m512i g = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(live[v] >> (8 * h)), index + 16 * v + 8 * h);
      const __m512i block = _mm512_or_si512(_mm512_slli_epi64(_mm512_srli_epi64(g, 5), 3), _mm512_and_si512(g, seven));
      const __m512i counter = _mm512_add_epi64(offset, block);
      lo[h] = _mm512_cvtepi64_epi32(counter);
      hi[h] = _mm512_cvtepi64_epi32(_mm512_srli_epi64(counter, 32));
      slot[h] = _mm512_cvtepi64_epi32(_mm512_and_si512(_mm512_srli_epi64(g, 3), three));
    }
    s[v] = Block16{join(lo), join(hi), _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream))),
                   _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)))};
    slots[v] = join(slot);
  }
  for (int round = 0; round < 10; ++round) {
    for (int v = 0; v < N; ++v) round16(s[v], m0, m1, keys.k0[round], keys.k1[round]);
  }
  // philox_standard_normal_float: slots 0, 1 use the pair (x, y), slots 2, 3 the pair (z, w); odd slots the sine.
  __m512i radius_word[N], angle_word[N];
  __mmask16 sine[N];
  for (int v = 0; v < N; ++v) {
    const __mmask16 second_pair = _mm512_cmpge_epu32_mask(slots[v], _mm512_set1_epi32(2));
    sine[v] = _mm512_test_epi32_mask(slots[v], _mm512_set1_epi32(1));
    radius_word[v] = _mm512_mask_blend_epi32(second_pair, s[v].x, s[v].z);
    angle_word[v] = _mm512_mask_blend_epi32(second_pair, s[v].y, s[v].w);
  }
  __m512 r[N], c[N], sn[N];
  radius16xN<N>(radius_word, r);
  cossin16xN<N>(angle_word, c, sn);
  const __m512 mean = splat(call.mean_f), std = splat(call.std_f);
  for (int v = 0; v < N; ++v) {
    const __m512 z = mul(r[v], _mm512_mask_blend_ps(sine[v], c[v], sn[v]));
    _mm512_mask_storeu_ps(dst + 16 * v, live[v], add(mul(z, std), mean));
  }
}

}  // namespace

void philox_normal_pick_avx512(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                               float* dst) {
  const RoundKeys keys(call.key);
  int64_t i = 0;
  for (; count - i > 32; i += 64) normal_pick16xN<4>(call, keys, index + i, count - i, stream, dst + i);
  for (; i < count; i += 16) normal_pick16xN<1>(call, keys, index + i, count - i, stream, dst + i);
}

int64_t philox_reject_scan_avx512(const float* v, int64_t count, float lo, float hi, int32_t* out) {
  const __m512 low = splat(lo), high = splat(hi);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t m = 0;
  for (int64_t j = 0; j < count; j += 16) {
    const __m512 x = _mm512_loadu_ps(v + j);
    // inside: lo <= x <= hi (false for NaN)
    const __mmask16 inside = _mm512_cmp_ps_mask(x, low, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, high, _CMP_LE_OQ);
    const __mmask16 rejected = static_cast<__mmask16>(~inside);
    // No branch on `rejected`: about half of the vectors hold a rejected element, at random.
    const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(j)), lane);
    _mm512_storeu_si512(out + m, _mm512_maskz_compress_epi32(rejected, index));
    m += __builtin_popcount(static_cast<unsigned>(rejected));
  }
  return m;
}

int64_t sparse_scan_row_avx512(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                               uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                               int64_t m) {
  const __m512i low_max = _mm512_set1_epi32(static_cast<int>(scan.low_max));
  const __m512i high_max = _mm512_set1_epi32(static_cast<int>(scan.high_max));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i one = _mm512_set1_epi32(1);
  int64_t j = 0;
  for (; j + 16 <= width; j += 16) {  // j % 16 == 0: bits j .. j + 15 are bytes j / 8, j / 8 + 1 of low_bits
    const __m512i w = _mm512_loadu_si512(words + j);
    __mmask16 is_band = _mm512_cmple_epu32_mask(w, high_max);
    if (scan.has_low) {
      const __mmask16 is_low = _mm512_cmple_epu32_mask(w, low_max);
      is_band = static_cast<__mmask16>(is_band & ~is_low);
      const __m512i counts = _mm512_loadu_si512(low_counts + j);
      _mm512_storeu_si512(low_counts + j, _mm512_mask_add_epi32(counts, is_low, counts, one));
      if (low_bits != nullptr) {
        low_bits[j / 8] |= static_cast<uint8_t>(is_low);
        low_bits[j / 8 + 1] |= static_cast<uint8_t>(is_low >> 8);
      }
    }
    const __m512i counts = _mm512_loadu_si512(band_counts + j);
    _mm512_storeu_si512(band_counts + j, _mm512_mask_add_epi32(counts, is_band, counts, one));
    // Compress in a register, then a plain store (a compress straight to memory is slow on Zen 4).
    _mm512_storeu_si512(band_words + m, _mm512_maskz_compress_epi32(is_band, w));
    const __m512i cols = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(j)), lane);
    _mm512_storeu_si512(band_cols + m, _mm512_maskz_compress_epi32(is_band, cols));
    m += __builtin_popcount(static_cast<unsigned>(is_band));
  }
  return sparse_scan_range(scan, words, j, width, low_counts, low_bits, band_counts, band_words, band_cols, m);
}

void sparse_zero_row_avx512(char* row, const uint8_t* bits, int64_t width, int64_t element_size) {
  const __m512i zero = _mm512_setzero_si512();
  const int64_t lanes = 64 / element_size;  // a whole number of bytes of `bits` per vector (element_size <= 8)
  int64_t j = 0;
  if (element_size == 1 || element_size == 2 || element_size == 4 || element_size == 8) {
    for (; j + lanes <= width; j += lanes) {
      uint64_t mask = 0;
      std::memcpy(&mask, bits + j / 8, static_cast<size_t>(lanes / 8));
      char* p = row + element_size * j;
      switch (element_size) {
        case 1: _mm512_mask_storeu_epi8(p, mask, zero); break;
        case 2: _mm512_mask_storeu_epi16(p, static_cast<__mmask32>(mask), zero); break;
        case 4: _mm512_mask_storeu_epi32(p, static_cast<__mmask16>(mask), zero); break;
        default: _mm512_mask_storeu_epi64(p, static_cast<__mmask8>(mask), zero); break;
      }
    }
  }
  sparse_zero_range(row, bits, j, width, element_size);
}

}  // namespace pyinit::cpu

#pragma GCC diagnostic pop
#pragma GCC pop_options

#endif  // x86-64
