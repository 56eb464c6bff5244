#pragma once
// Note [The torch stream on CPU]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch's CPU distributions draw from one serial Mersenne Twister (at::mt19937) under the generator's mutex.
// pyinit writes exactly the same values and leaves the generator in exactly the same state, faster:
//   1. the words torch would draw are drawn in bulk (mt19937_bulk.h). Large draws on 3 or more threads, on 2 for
//      uniform_ / masked_uniform_ and the *_many_ runs (torch_stream_jump_min_words(), _min_threads() and
//      _min_threads_early(): 2^22 words, 3 and 2 threads by default; on the 2-core box the serial producer
//      measured as fast for normal_ at 2 threads, slower for uniform_) are split into one contiguous range of
//      words per thread: each thread copies the engine, jumps it to its range's first word (Note [MT19937 jump-ahead],
//      mt19937_jump.h), draws and transforms its range in 2^14-word blocks, and the last range's engine becomes
//      the generator's (torch_stream_jump.h). Smaller draws are one serial producer that other threads
//      transform behind (Note [Serial producer, parallel consumers]). uniform_ / masked_uniform_ with one word
//      per element skip the buffer: each twist's words are tempered, transformed and stored while in L1
//      (draw_uniform), by each range's thread, or by the caller where one thread draws anyway. Range starts
//      are multiples of the words per element (normal_: per 16-element block) and need few jumps (whole twists
//      with few set bits);
//   2. the words are turned into values with the same operations torch uses:
//      - uniform_: low 24 bits (float, half, bfloat16: computed in float) or 53 bits of (w0 << 32 | w1)
//        (double) scaled to [0, 1), then x * (to - from) + from, cast, and a value equal to `to` mapped to `from`;
//      - normal_ on a contiguous tensor of >= 16 elements: one uniform per element, Box-Muller on each block of
//        16 (pairs j, j + 8), and when numel % 16 != 0, 16 more words that recompute the last 16 outputs.
//        float/half/bfloat16 use float math, double uses double math;
//      - normal_ otherwise: at::normal_distribution<double> element by element (serial; it caches the second
//        Box-Muller sample in the generator, so it is called, not re-implemented). normal_fill (the >= 16 path)
//        never reads or writes that cache, so the parallel draw leaves it as torch does: untouched;
//      - trunc_normal_: each resampling round draws a whole normal_fill's words (Note [trunc_normal_ by normal
//        proposals]), so a round's main words are drawn in parallel ranges too, and only pending elements are
//        evaluated;
//   3. torch's own results depend on the CPU capability it dispatched: its AVX2/AVX512 builds contract
//      x * range + from into an FMA and run the AVX2 Box-Muller (log256_ps / sincos256_ps from the shipped
//      ATen/native/cpu/avx_mathfun.h); its DEFAULT build does neither. pyinit compiles this header twice
//      (torch_stream_kernels_default.cpp, torch_stream_kernels_avx2.cpp) and picks the variant by cpu_isa().
// Elements are visited in TensorIterator order, which for a single written tensor is the row-major order of the
// tensor with its dimensions sorted by decreasing stride ("memory order"; see csrc/memory_order.h).
// Verified against torch 2.13 (x86-64); pyinit/_support.py falls back to torch elsewhere.

#include <ATen/Parallel.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/util/MathConstants.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

#include "cpu/mt19937_bulk.h"
#include "cpu/mt19937_jump.h"
#include "cpu/torch_stream_kernels.h"
#include "pyinit/transforms.h"

#ifndef PYINIT_CPU_CAPABILITY
#error "define PYINIT_CPU_CAPABILITY before including this header (see torch_stream_kernels_default.cpp)"
#endif

namespace pyinit::cpu {
namespace PYINIT_CPU_CAPABILITY {

template <typename scalar_t>
using opmath_type = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

template <typename scalar_t>
inline opmath_type<scalar_t> unit_from_words(const uint32_t* words, int64_t i) {
  if constexpr (std::is_same_v<scalar_t, double>) {
    return torch_cpu_unit_double(words[2 * i], words[2 * i + 1]);
  } else {
    return torch_cpu_unit_float(words[i]);
  }
}

#if defined(PYINIT_CPU_AVX2)
// The float uniform_ / masked_uniform_ transform, 8 lanes at a time, with the same operations as the scalar
// loop below (so the same bits): x = (w & 0xFFFFFF) * 2^-24 (exact int -> float conversion), fma(x, range,
// from), `to` -> `from`, and for the mask a multiply by 1.0f or 0.0f, which keeps the sign of a zeroed value
// as `w *= w.abs() >= t` does. Written with intrinsics because GCC compiles the scalar mask as a branch, which
// mispredicts on about half of the elements (docs/decisions.md, "masked_uniform_").
// `words` may alias `out` (element i's word is words[i]): each vector is loaded before it is overwritten.
template <bool kMask>
struct UniformFloat8 {
  __m256i low24 = _mm256_set1_epi32(0xFFFFFF);
  __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
  __m256 vfrom, vto, vrange;
  __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 vthreshold, one = _mm256_set1_ps(1.0f);
  UniformFloat8(float from, float to, float range, float threshold)
      : vfrom(_mm256_set1_ps(from)),
        vto(_mm256_set1_ps(to)),
        vrange(_mm256_set1_ps(range)),
        vthreshold(_mm256_set1_ps(threshold)) {}
  __m256 operator()(__m256i w) const {
    const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w, low24)), scale);
    __m256 v = _mm256_fmadd_ps(x, vrange, vfrom);
    v = _mm256_blendv_ps(v, vfrom, _mm256_cmp_ps(v, vto, _CMP_EQ_OQ));
    if constexpr (kMask) {
      const __m256 keep = _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), vthreshold, _CMP_GE_OQ);
      v = _mm256_mul_ps(v, _mm256_and_ps(keep, one));
    }
    return v;
  }
};

template <bool kMask>
inline float uniform_float_scalar(uint32_t word, float from, float to, float range, float threshold) {
  float value = mul_add<true>(torch_cpu_unit_float(word), range, from);
  value = value == to ? from : value;
  if constexpr (kMask) value = mask_small<float>(value, threshold);
  return value;
}

// mt19937_temper_word on 8 lanes.
inline __m256i temper8(__m256i y) {
  y = _mm256_xor_si256(y, _mm256_srli_epi32(y, 11));
  y = _mm256_xor_si256(y, _mm256_and_si256(_mm256_slli_epi32(y, 7), _mm256_set1_epi32(static_cast<int>(0x9d2c5680u))));
  y = _mm256_xor_si256(y, _mm256_and_si256(_mm256_slli_epi32(y, 15), _mm256_set1_epi32(static_cast<int>(0xefc60000u))));
  return _mm256_xor_si256(y, _mm256_srli_epi32(y, 18));
}

// kTemper: `words` are untempered state words (mt19937_draw_untempered), tempered here on the way (one pass).
template <bool kMask, bool kTemper = false>
inline void uniform_float_avx2(float* out, const uint32_t* words, int64_t begin, int64_t end, float from, float to,
                               float range, float threshold) {
  const UniformFloat8<kMask> uniform(from, to, range, threshold);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i));
    _mm256_storeu_ps(out + i, uniform(kTemper ? temper8(w) : w));
  }
  for (; i < end; ++i) {
    out[i] =
        uniform_float_scalar<kMask>(kTemper ? mt19937_temper_word(words[i]) : words[i], from, to, range, threshold);
  }
}
#endif

#if defined(PYINIT_CPU_AVX2)
// float -> half / bfloat16, 8 lanes, rounded exactly as c10::Half(float) and c10::BFloat16(float) round (IEEE
// round-to-nearest-even; no NaN reaches these kernels). bits() gives the 16-bit patterns, widen() the rounded
// values back as floats (exact).
template <typename scalar_t>
struct Narrow8;

template <>
struct Narrow8<c10::Half> {
  // F16C: every AVX2 CPU has it, but it is a separate CPUID bit, so it is checked once.
  static bool supported() {
    static const bool f16c = __builtin_cpu_supports("f16c");
    return f16c;
  }
  static __m128i bits(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static __m256 widen(__m128i h) { return _mm256_cvtph_ps(h); }
};

template <>
struct Narrow8<c10::BFloat16> {
  static bool supported() { return true; }
  static __m128i bits(__m256 v) {
    // c10::detail::round_to_nearest_even: (u + 0x7FFF + ((u >> 16) & 1)) >> 16.
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    // Values fit in 16 bits, so the unsigned-saturating pack is exact; it packs within 128-bit lanes, and the
    // permute puts the two lanes' halves together.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0xD8);
    return _mm256_castsi256_si128(packed);
  }
  static __m256 widen(__m128i b) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16)); }
};

// The half / bfloat16 uniform_ / masked_uniform_ transform, 8 lanes at a time, with the scalar loop's operations:
// fma in float, round to the dtype, `to` -> `from` (compared in the dtype), then the mask multiply in float
// (exact: by 1 or 0) and the store of the rounded bits.
template <typename scalar_t, bool kMask>
inline void uniform_narrow_avx2(scalar_t* out, const uint32_t* words, int64_t begin, int64_t end, float from,
                                float range, float to_rounded, float from_rounded, float threshold) {
  using N = Narrow8<scalar_t>;
  const __m256i low24 = _mm256_set1_epi32(0xFFFFFF);
  const __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
  const __m256 vfrom = _mm256_set1_ps(from), vrange = _mm256_set1_ps(range);
  const __m256 vto_r = _mm256_set1_ps(to_rounded), vfrom_r = _mm256_set1_ps(from_rounded);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 vthreshold = _mm256_set1_ps(threshold), one = _mm256_set1_ps(1.0f);
  for (int64_t i = begin; i < end; i += 8) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i));
    const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w, low24)), scale);
    __m256 v = N::widen(N::bits(_mm256_fmadd_ps(x, vrange, vfrom)));
    v = _mm256_blendv_ps(v, vfrom_r, _mm256_cmp_ps(v, vto_r, _CMP_EQ_OQ));
    if constexpr (kMask) {
      const __m256 keep = _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), vthreshold, _CMP_GE_OQ);
      v = _mm256_mul_ps(v, _mm256_and_ps(keep, one));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), N::bits(v));
  }
}
#endif

// uniform_ / masked_uniform_ over elements [begin, end), on the calling thread (the caller parallelizes).
template <typename scalar_t, bool kFma, bool kMask>
void uniform_from_words_impl(scalar_t* out, const uint32_t* words, int64_t begin, int64_t end, double from_, double to_,
                             double threshold_) {
  using opmath_t = opmath_type<scalar_t>;
  const opmath_t from = static_cast<opmath_t>(from_);
  const opmath_t to = static_cast<opmath_t>(to_);
  const opmath_t range = to - from;
  const scalar_t from_scalar = static_cast<scalar_t>(from_);
  const scalar_t to_scalar = static_cast<scalar_t>(to_);
  // `w.abs() >= threshold` compares in the tensor's dtype.
  const opmath_t threshold = static_cast<opmath_t>(static_cast<scalar_t>(threshold_));
  constexpr int64_t kWordsPerElement = std::is_same_v<scalar_t, double> ? 2 : 1;
  constexpr int64_t kChunk = 256;
#if defined(PYINIT_CPU_AVX2)
  if constexpr (kFma && std::is_same_v<scalar_t, float>) {
    uniform_float_avx2<kMask>(out, words, begin, end, from, to, range, threshold);
    return;
  }
  if constexpr (kFma && (std::is_same_v<scalar_t, c10::Half> || std::is_same_v<scalar_t, c10::BFloat16>)) {
    if (Narrow8<scalar_t>::supported()) {
      const int64_t vector_end = begin + (end - begin) / 8 * 8;
      uniform_narrow_avx2<scalar_t, kMask>(out, words, begin, vector_end, from, range, static_cast<float>(to_scalar),
                                           static_cast<float>(from_scalar), threshold);
      begin = vector_end;  // the scalar loop below finishes the last < 8 elements
    }
  }
#endif
  // `words` may be `out` itself: each chunk is copied to locals first, which also lets the compiler
  // vectorize (no aliasing between the local arrays).
  alignas(64) uint32_t chunk_words[kChunk * kWordsPerElement];
  alignas(64) scalar_t chunk_out[kChunk];
  for (int64_t start = begin; start < end; start += kChunk) {
    const int64_t len = std::min(kChunk, end - start);
    std::memcpy(chunk_words, words + start * kWordsPerElement, sizeof(uint32_t) * len * kWordsPerElement);
    for (int64_t i = 0; i < len; ++i) {
      const opmath_t x = unit_from_words<scalar_t>(chunk_words, i);
      scalar_t value = static_cast<scalar_t>(mul_add<kFma>(x, range, from));
      value = value == to_scalar ? from_scalar : value;
      if constexpr (kMask) {
        value = static_cast<scalar_t>(mask_small<opmath_t>(static_cast<opmath_t>(value), threshold));
      }
      chunk_out[i] = value;
    }
    std::memcpy(out + start, chunk_out, sizeof(scalar_t) * len);
  }
}

// Box-Muller on one block of 16 uniforms, in place: lanes j < 8 get r*cos(t), lanes j + 8 get r*sin(t),
// r = sqrt(-2 log(1 - u[j])), t = 2 pi u[j + 8], then fma(., std, mean). The scalar form (DEFAULT capability,
// and double everywhere); the AVX2 float form is specialised below.
template <typename opmath_t>
struct BoxMuller16 {
  opmath_t mean, std;
  // Output j alone (j < 8: pair j's cosine, else pair j - 8's sine), from data[j % 8] and data[j % 8 + 8]: the
  // same operations as operator() does for it.
  opmath_t lane(const opmath_t* data, int j) const {
    const int pair = j & 7;
    const opmath_t u1 = 1 - data[pair];
    const opmath_t u2 = data[pair + 8];
    const opmath_t radius = std::sqrt(-2 * std::log(u1));
    const opmath_t theta = 2.0f * c10::pi<double> * u2;
    return mul_add<true>(radius * (j < 8 ? std::cos(theta) : std::sin(theta)), std, mean);
  }
  void operator()(opmath_t* data) const {
    for (int j = 0; j < 8; ++j) {
      const opmath_t u1 = 1 - data[j];
      const opmath_t u2 = data[j + 8];
      const opmath_t radius = std::sqrt(-2 * std::log(u1));
      const opmath_t theta = 2.0f * c10::pi<double> * u2;
      data[j] = mul_add<true>(radius * std::cos(theta), std, mean);
      data[j + 8] = mul_add<true>(radius * std::sin(theta), std, mean);
    }
  }
};

#if defined(PYINIT_CPU_AVX2)
template <>
struct BoxMuller16<float> {
  float mean, std;
  // Eight outputs of any blocks at once, lane l being output j_l of its block: u1[l] = data[j_l % 8] and
  // u2[l] = data[j_l % 8 + 8] of that block, sine[l] all ones when j_l >= 8. Every lane goes through exactly the
  // operations operator() applies to that output (the functions of avx_mathfun.h work lane by lane).
  __m256 lanes(__m256 unit1, __m256 unit2, __m256 sine) const {
    const __m256 u1 = _mm256_sub_ps(_mm256_set1_ps(1.0f), unit1);
    const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log256_ps(u1)));
    const __m256 theta = _mm256_mul_ps(_mm256_set1_ps(static_cast<float>(2.0f * c10::pi<double>)), unit2);
    __m256 sin_theta, cos_theta;
    sincos256_ps(theta, &sin_theta, &cos_theta);
    const __m256 vmean = _mm256_set1_ps(mean), vstd = _mm256_set1_ps(std);
    return _mm256_fmadd_ps(_mm256_mul_ps(radius, _mm256_blendv_ps(cos_theta, sin_theta, sine)), vstd, vmean);
  }
  void operator()(float* data) const {
    const __m256 u1 = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(data));
    const __m256 u2 = _mm256_loadu_ps(data + 8);
    const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log256_ps(u1)));
    const __m256 theta = _mm256_mul_ps(_mm256_set1_ps(static_cast<float>(2.0f * c10::pi<double>)), u2);
    __m256 sin_theta, cos_theta;
    sincos256_ps(theta, &sin_theta, &cos_theta);
    const __m256 vmean = _mm256_set1_ps(mean), vstd = _mm256_set1_ps(std);
    _mm256_storeu_ps(data, _mm256_fmadd_ps(_mm256_mul_ps(radius, cos_theta), vstd, vmean));
    _mm256_storeu_ps(data + 8, _mm256_fmadd_ps(_mm256_mul_ps(radius, sin_theta), vstd, vmean));
  }
};
#endif

// Sets block[j] to +0 for every bit j of `bits` (sparse_'s zero pattern, applied while the block is in
// registers; about 1 in 10 elements is marked, at random).
template <typename opmath_t>
inline void zero_marked(opmath_t* block, uint32_t bits) {
  while (bits != 0) {
    block[__builtin_ctz(bits)] = opmath_t(0);
    bits &= bits - 1;
  }
}

#if defined(PYINIT_CPU_AVX2)
// Branch-free for float: a loop over random marks mispredicts about once per block.
template <>
inline void zero_marked<float>(float* block, uint32_t bits) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i low = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits & 0xFFu)), lane_bit);
  const __m256i high = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>((bits >> 8) & 0xFFu)), lane_bit);
  // andnot(marked lanes, value): all-ones where the lane's bit is set clears the value to +0.
  _mm256_storeu_ps(block,
                   _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(low, lane_bit)), _mm256_loadu_ps(block)));
  _mm256_storeu_ps(
      block + 8, _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(high, lane_bit)), _mm256_loadu_ps(block + 8)));
}
#endif

// Walks a ZeroMask 16 elements at a time from flat index `first`, without a division per block.
class ZeroMaskCursor {
 public:
  ZeroMaskCursor(const ZeroMask& mask, int64_t first) : mask_(mask), row_(first / mask.cols), col_(first % mask.cols) {}
  // The marks of the next 16 elements (bit j: element first + j), then advances by 16.
  uint32_t next16() {
    uint32_t bits = 0;
    if (col_ % 16 == 0 && col_ + 16 <= mask_.cols) {  // one row, one 64-bit word
      bits = static_cast<uint32_t>(word() >> (col_ % 64)) & 0xFFFFu;
      col_ += 16;
    } else {
      for (int j = 0; j < 16; ++j, ++col_) {
        if (col_ == mask_.cols) {
          col_ = 0;
          ++row_;
        }
        bits |= static_cast<uint32_t>((word() >> (col_ % 64)) & 1u) << j;
      }
    }
    if (col_ == mask_.cols) {
      col_ = 0;
      ++row_;
    }
    return bits;
  }

 private:
  uint64_t word() const { return mask_.words[(col_ / 64) * mask_.stride + row_]; }
  const ZeroMask& mask_;
  int64_t row_, col_;
};

// out[j] = scalar_t(block[j]) for the 16 values of one Box-Muller block.
template <typename scalar_t, typename opmath_t>
inline void store_block16(scalar_t* out, const opmath_t* block) {
#if defined(PYINIT_CPU_AVX2)
  if constexpr (std::is_same_v<scalar_t, c10::Half> || std::is_same_v<scalar_t, c10::BFloat16>) {
    if (Narrow8<scalar_t>::supported()) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), Narrow8<scalar_t>::bits(_mm256_loadu_ps(block)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), Narrow8<scalar_t>::bits(_mm256_loadu_ps(block + 8)));
      return;
    }
  }
#endif
  for (int j = 0; j < 16; ++j) out[j] = static_cast<scalar_t>(block[j]);
}

// normal_fill's main blocks [first_block, last_block), on the calling thread (the caller parallelizes).
template <typename scalar_t>
void normal_blocks_impl(scalar_t* out, const uint32_t* words, int64_t first_block, int64_t last_block, double mean,
                        double std, const ZeroMask* zero_mask) {
  using opmath_t = opmath_type<scalar_t>;
  const BoxMuller16<opmath_t> box_muller{static_cast<opmath_t>(mean), static_cast<opmath_t>(std)};
  constexpr int64_t kWordsPerElement = std::is_same_v<scalar_t, double> ? 2 : 1;
  alignas(32) opmath_t block[16];
  std::optional<ZeroMaskCursor> zeros;
  if (zero_mask != nullptr) zeros.emplace(*zero_mask, first_block * 16);
  for (int64_t b = first_block; b < last_block; ++b) {
    const uint32_t* block_words = words + b * 16 * kWordsPerElement;
    for (int j = 0; j < 16; ++j) block[j] = unit_from_words<scalar_t>(block_words, j);
    box_muller(block);
    if (zeros) zero_marked(block, zeros->next16());
    store_block16(out + b * 16, block);
  }
}

// normal_fill's extra block when n % 16 != 0: recomputes outputs [n - 16, n) from 16 (32 for double) more words.
// Runs after every main block is written.
template <typename scalar_t>
void normal_tail_impl(scalar_t* out, int64_t n, const uint32_t* tail_words, double mean, double std,
                      const ZeroMask* zero_mask) {
  using opmath_t = opmath_type<scalar_t>;
  const BoxMuller16<opmath_t> box_muller{static_cast<opmath_t>(mean), static_cast<opmath_t>(std)};
  alignas(32) opmath_t block[16];
  for (int j = 0; j < 16; ++j) block[j] = unit_from_words<scalar_t>(tail_words, j);
  box_muller(block);
  if (zero_mask != nullptr) zero_marked(block, ZeroMaskCursor(*zero_mask, n - 16).next16());
  for (int j = 0; j < 16; ++j) out[n - 16 + j] = static_cast<scalar_t>(block[j]);
}

// One resampling round of trunc_normal_ for pending[0, count): element i's proposal is the value normal_fill
// would give it from `words`, which hold the words of the elements from `first` on (Box-Muller blocks start at
// first + a multiple of 16). Writes accepted values (inside [lo, hi] in the dtype) and marks them with -1.
// Serial; the caller parallelizes.
template <typename scalar_t>
void normal_resample_impl(scalar_t* out, const uint32_t* words, int64_t first, int64_t* pending, int64_t count,
                          double mean, double std, double lo_, double hi_, void* const* destinations) {
  using opmath_t = opmath_type<scalar_t>;
  const BoxMuller16<opmath_t> box_muller{static_cast<opmath_t>(mean), static_cast<opmath_t>(std)};
  constexpr int64_t kWordsPerElement = std::is_same_v<scalar_t, double> ? 2 : 1;
  const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(lo_));
  const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(hi_));
  // Keeps element i's proposal when it is inside [lo, hi].
  auto offer = [&](int64_t k, int64_t i, opmath_t proposal) {
    const scalar_t value = static_cast<scalar_t>(proposal);
    const opmath_t v = static_cast<opmath_t>(value);
    if (!(v < lo) && !(v > hi)) {
      if (destinations == nullptr) {
        out[i] = value;
      } else if (destinations[k] != nullptr) {
        *static_cast<scalar_t*>(destinations[k]) = value;
      }
      pending[k] = -1;
    }
  };
  // Only the pending outputs are computed, each from its own Box-Muller pair (after the first round few
  // elements of a block are pending, often one).
#if defined(PYINIT_CPU_AVX2)
  if constexpr (std::is_same_v<opmath_t, float>) {
    alignas(32) float unit1[8], unit2[8], proposals[8];
    alignas(32) int32_t sine[8];
    int64_t entries[8];
    int lanes = 0;
    auto evaluate = [&] {
      for (int l = lanes; l < 8; ++l) unit1[l] = unit2[l] = 0.5f, sine[l] = 0;  // unused lanes
      _mm256_store_ps(proposals,
                      box_muller.lanes(_mm256_load_ps(unit1), _mm256_load_ps(unit2),
                                       _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sine)))));
      for (int l = 0; l < lanes; ++l) offer(entries[l], pending[entries[l]], proposals[l]);
      lanes = 0;
    };
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = pending[k];
      const int64_t j = (i - first) % 16;
      const uint32_t* pair_words = words + (i - j - first + (j & 7)) * kWordsPerElement;
      unit1[lanes] = unit_from_words<scalar_t>(pair_words, 0);
      unit2[lanes] = unit_from_words<scalar_t>(pair_words, 8);
      sine[lanes] = j >= 8 ? -1 : 0;
      entries[lanes] = k;
      if (++lanes == 8) evaluate();
    }
    if (lanes > 0) evaluate();
  } else
#endif
  {
    opmath_t block[16];
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = pending[k];
      const int64_t j = (i - first) % 16;
      const uint32_t* block_words = words + (i - j - first) * kWordsPerElement;
      block[j & 7] = unit_from_words<scalar_t>(block_words, j & 7);
      block[(j & 7) + 8] = unit_from_words<scalar_t>(block_words, (j & 7) + 8);
      offer(k, i, box_muller.lane(block, static_cast<int>(j)));
    }
  }
}

// Calls f(typed_out) with `out` cast to the C++ type of `dtype`.
template <typename F>
inline void dispatch_out(c10::ScalarType dtype, void* out, const F& f) {
  switch (dtype) {
    case c10::ScalarType::Float: return f(static_cast<float*>(out));
    case c10::ScalarType::Double: return f(static_cast<double*>(out));
    case c10::ScalarType::Half: return f(static_cast<c10::Half*>(out));
    case c10::ScalarType::BFloat16: return f(static_cast<c10::BFloat16*>(out));
    default: TORCH_INTERNAL_ASSERT(false, "pyinit: unsupported dtype ", dtype);
  }
}

template <bool kFma>
void uniform_from_words(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t begin, int64_t end,
                        double from, double to, bool mask, double threshold) {
  dispatch_out(dtype, out, [&](auto* typed_out) {
    using scalar_t = std::remove_pointer_t<decltype(typed_out)>;
    if (mask) {
      uniform_from_words_impl<scalar_t, kFma, true>(typed_out, words, begin, end, from, to, threshold);
    } else {
      uniform_from_words_impl<scalar_t, kFma, false>(typed_out, words, begin, end, from, to, threshold);
    }
  });
}

// uniform_ / masked_uniform_ of elements [0, n) of a float, half or bfloat16 output (one word per element), drawn
// straight from the engine whose data is `pod`: the values and final state of draw_words(engine, words, n) then
// uniform_from_words(dtype, out, words, 0, n, ...), in one pass. Each twist's words are tempered, transformed
// and stored while they are in L1 (the AVX2 float kernel in registers, the others through a 624-word buffer),
// so the output is written while the next words are computed, with no block of words stored and read back.
template <bool kFma>
void draw_uniform(at::mt19937_data_pod& pod, c10::ScalarType dtype, void* out, int64_t n, double from, double to,
                  bool mask, double threshold) {
  TORCH_INTERNAL_ASSERT(dtype != c10::ScalarType::Double, "pyinit: draw_uniform takes one word per element");
  dispatch_out(dtype, out, [&](auto* typed_out) {
    using scalar_t = std::remove_pointer_t<decltype(typed_out)>;
    int64_t done = 0;
#if defined(PYINIT_CPU_AVX2)
    if constexpr (kFma && std::is_same_v<scalar_t, float>) {
      const float f = static_cast<float>(from), t = static_cast<float>(to), range = t - f;
      const float th = static_cast<float>(threshold);
      mt19937_draw_untempered(pod, n, [&](const uint32_t* state, int64_t len) {
        if (mask) {
          uniform_float_avx2<true, /*kTemper=*/true>(typed_out + done, state, 0, len, f, t, range, th);
        } else {
          uniform_float_avx2<false, /*kTemper=*/true>(typed_out + done, state, 0, len, f, t, range, th);
        }
        done += len;
      });
      return;
    }
#endif
    alignas(64) uint32_t words[at::MERSENNE_STATE_N];
    mt19937_draw_untempered(pod, n, [&](const uint32_t* state, int64_t len) {
      mt19937_temper(state, words, len);
      if (mask) {
        uniform_from_words_impl<scalar_t, kFma, true>(typed_out + done, words, 0, len, from, to, threshold);
      } else {
        uniform_from_words_impl<scalar_t, kFma, false>(typed_out + done, words, 0, len, from, to, threshold);
      }
      done += len;
    });
  });
}

// Skips `skip` words of the engine whose data is `pod` (twisting as drawing them would, without tempering them),
// then draws the next `count` into `out`.
inline void skip_and_draw_words(at::mt19937_data_pod& pod, int64_t skip, uint32_t* out, int64_t count) {
  mt19937_draw_untempered(pod, skip, [](const uint32_t*, int64_t) {});
  mt19937_draw_pod(pod, out, count);
}

inline void normal_blocks(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t first_block,
                          int64_t last_block, double mean, double std, const ZeroMask* zero_mask) {
  dispatch_out(dtype, out, [&](auto* typed_out) {
    normal_blocks_impl(typed_out, words, first_block, last_block, mean, std, zero_mask);
  });
}

inline void normal_tail(c10::ScalarType dtype, void* out, int64_t n, const uint32_t* tail_words, double mean,
                        double std, const ZeroMask* zero_mask) {
  dispatch_out(dtype, out, [&](auto* typed_out) { normal_tail_impl(typed_out, n, tail_words, mean, std, zero_mask); });
}

inline void normal_resample(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t first, int64_t* pending,
                            int64_t count, double mean, double std, double lo, double hi, void* const* destinations) {
  dispatch_out(dtype, out, [&](auto* typed_out) {
    normal_resample_impl(typed_out, words, first, pending, count, mean, std, lo, hi, destinations);
  });
}

// This capability's kernel table: FMA contraction and the AVX2 transforms exactly where torch's AVX2/AVX512
// builds use them.
#if defined(PYINIT_CPU_AVX2)
constexpr bool kCapabilityFma = true;
#else
constexpr bool kCapabilityFma = false;
#endif

inline const TorchStreamKernels& capability_kernels() {
  static const TorchStreamKernels kernels{
      &mt19937_draw,
      &mt19937_advance,
      &uniform_from_words<kCapabilityFma>,
      &draw_uniform<kCapabilityFma>,
      &skip_and_draw_words,
      &normal_blocks,
      &normal_tail,
      &normal_resample,
      /*fma=*/kCapabilityFma,
  };
  return kernels;
}

}  // namespace PYINIT_CPU_CAPABILITY
}  // namespace pyinit::cpu
