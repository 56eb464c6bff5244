#pragma once
// The philox stream: element -> counter map and word -> value transforms, written once for the host and the
// device. The CPU kernels (csrc/cpu/philox_*), the CUDA kernels (csrc/cuda/philox_kernels.cu) and the NumPy
// oracle (pyinit/reference/philox_numpy.py) compute exactly these operations.
//
// Note [The philox stream]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// A call has a 64-bit key and a 64-bit counter offset (drawn from a torch.Generator, see docs/philox_stream.md).
// Element i (the global row-major index) reads Philox4x32-10 block
//     words = philox4x32_10(counter = (lo(offset + b), hi(offset + b), lo(stream), hi(stream)),
//                           key = (lo(key), hi(key)))
// where (b, slot) come from the tile map (philox_tile): 8 consecutive blocks form a tile of 32 elements
// (one word per element) or 16 elements (two words per element), element j of a tile using block j % 8 and
// slot j / 8. This lets a SIMD or GPU lane that owns one block store 8-element runs. `stream` is 0 except for
// trunc_normal_ (the rejection round) and philox_bits_ (a caller-chosen tag).
// Every float operation below is one IEEE operation rounded to nearest (no contraction: the CPU build uses
// -ffp-contract=off, the CUDA code uses __fmul_rn/__fadd_rn/__dmul_rn/...), so every transform gives the same
// bits on every device and in NumPy. The double-precision transcendental functions (float64 normal_, the
// inverse-CDF trunc_normal_ of every dtype) are pyinit's own, built from those operations: see
// Note [philox double math] in philox_math.h.

#include <cmath>
#include <cstdint>

#include "pyinit/dtype.h"
#include "pyinit/macros.h"
#include "pyinit/philox.h"
#include "pyinit/philox_math.h"
#include "pyinit/rounded_arithmetic.h"

namespace pyinit {

using PhiloxDtype = DType;  // the one dtype enum (csrc/pyinit/dtype.h), under the name these transforms use

// ---- the counter map -----------------------------------------------------------------------------------------

struct PhiloxTile {
  uint64_t block;  // block index (added to the offset)
  int slot;        // 0..3 (one word per element) or 0..1 (two words per element)
};

// words_per_element: 1 (float/half/bfloat16 uniform, normal, masked uniform, bits) or 2 (double, inverse CDF).
PYINIT_INLINE PhiloxTile philox_tile(uint64_t i, int words_per_element) {
  if (words_per_element == 1) return PhiloxTile{(i >> 5) * 8 + (i & 7), static_cast<int>((i >> 3) & 3)};
  return PhiloxTile{(i >> 4) * 8 + (i & 7), static_cast<int>((i >> 3) & 1)};
}

PYINIT_INLINE Philox4x32Counter philox_block(uint64_t key, uint64_t offset, uint64_t block, uint64_t stream) {
  const uint64_t c = offset + block;
  return philox4x32_10(Philox4x32Counter{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32),
                                         static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                       static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
}

// Exactly rounded arithmetic (fmul_rn, fadd_rn, ...) and bit copies: pyinit/rounded_arithmetic.h.

// ---- rounding to the reduced types (round to nearest even) ---------------------------------------------------

PYINIT_INLINE uint16_t float_to_half_bits(float f) {
  uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) return static_cast<uint16_t>(sign | (x > 0x7F800000u ? 0x7E00u : 0x7C00u));
  if (x >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to infinity
  if (x < 0x38800000u) {  // below 2^-14: a half subnormal; adding 0.5f rounds to a multiple of 2^-24
    const float t = fadd_rn(bits_float(x), 0.5f);
    return static_cast<uint16_t>(sign | (float_bits(t) - 0x3F000000u));
  }
  x += 0xC8000FFFu + ((x >> 13) & 1u);  // rebias the exponent (127 -> 15) and round the mantissa to even
  return static_cast<uint16_t>(sign | (x >> 13));
}

PYINIT_INLINE float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = fmul_rn(static_cast<float>(mantissa), 5.9604644775390625e-08f);
    return bits_float(sign | float_bits(magnitude));
  }
  if (exponent == 31) return bits_float(sign | 0x7F800000u | (mantissa << 13));
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

PYINIT_INLINE uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

PYINIT_INLINE float bfloat16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// The float value a float rounds to in `dtype` (half, bfloat16 or float).
PYINIT_INLINE float round_to_dtype(float v, PhiloxDtype dtype) {
  if (dtype == PhiloxDtype::kHalf) return half_bits_to_float(float_to_half_bits(v));
  if (dtype == PhiloxDtype::kBFloat16) return bfloat16_bits_to_float(float_to_bfloat16_bits(v));
  return v;
}

// Stores a float (already rounded to dtype, or a float for kFloat) at out[index].
PYINIT_INLINE void store_float_as(void* out, int64_t index, float v, PhiloxDtype dtype) {
  if (dtype == PhiloxDtype::kFloat) {
    static_cast<float*>(out)[index] = v;
  } else if (dtype == PhiloxDtype::kHalf) {
    static_cast<uint16_t*>(out)[index] = float_to_half_bits(v);
  } else {
    static_cast<uint16_t*>(out)[index] = float_to_bfloat16_bits(v);
  }
}

// ---- uniform -------------------------------------------------------------------------------------------------

// 24 high bits of a word: k * 2^-24 in [0, 1).
PYINIT_INLINE float philox_unit_float(uint32_t w) {
  return fmul_rn(static_cast<float>(w >> 8), 5.9604644775390625e-08f);
}

// 53 high bits of (a << 32 | b): k * 2^-53 in [0, 1).
PYINIT_INLINE double philox_unit_double(uint32_t a, uint32_t b) {
  const uint64_t bits = ((static_cast<uint64_t>(a) << 32) | b) >> 11;
  return dmul_rn(static_cast<double>(bits), 1.1102230246251565e-16);
}

// low + u * span, two roundings (span = float(high - low) computed in double on the host).
PYINIT_INLINE float philox_uniform_float(uint32_t w, float low, float span) {
  return fadd_rn(fmul_rn(philox_unit_float(w), span), low);
}
PYINIT_INLINE double philox_uniform_double(uint32_t a, uint32_t b, double low, double span) {
  return dadd_rn(dmul_rn(philox_unit_double(a, b), span), low);
}

// Masked uniform: a zero of v's sign where |v| < threshold (v already rounded to the output dtype).
PYINIT_INLINE float philox_mask_float(float v, float threshold) {
  const float magnitude = bits_float(float_bits(v) & 0x7FFFFFFFu);
  return magnitude >= threshold ? v : fmul_rn(v, 0.0f);
}
PYINIT_INLINE double philox_mask_double(double v, double threshold) {
  return std::fabs(v) >= threshold ? v : dmul_rn(v, 0.0);
}

// ---- normal (Box-Muller, float32 polynomials) ----------------------------------------------------------------

// ln(x) for a normal float x in (0, 1]: Cephes logf (range reduction to [sqrt(1/2), sqrt(2)), degree-9
// polynomial), every operation rounded once.
PYINIT_INLINE float philox_log_float(float x) {
  const uint32_t bits = float_bits(x);
  int exponent = static_cast<int>(bits >> 23) - 126;
  const float m = bits_float((bits & 0x007FFFFFu) | 0x3F000000u);  // x = m * 2^exponent, m in [0.5, 1)
  float t;
  if (m < 0.707106781186547524f) {
    exponent -= 1;
    t = fadd_rn(fadd_rn(m, m), -1.0f);
  } else {
    t = fadd_rn(m, -1.0f);
  }
  const float z = fmul_rn(t, t);
  float y = 7.0376836292e-2f;
  y = fadd_rn(fmul_rn(y, t), -1.1514610310e-1f);
  y = fadd_rn(fmul_rn(y, t), 1.1676998740e-1f);
  y = fadd_rn(fmul_rn(y, t), -1.2420140846e-1f);
  y = fadd_rn(fmul_rn(y, t), 1.4249322787e-1f);
  y = fadd_rn(fmul_rn(y, t), -1.6668057665e-1f);
  y = fadd_rn(fmul_rn(y, t), 2.0000714765e-1f);
  y = fadd_rn(fmul_rn(y, t), -2.4999993993e-1f);
  y = fadd_rn(fmul_rn(y, t), 3.3333331174e-1f);
  y = fmul_rn(fmul_rn(y, t), z);
  const float e = static_cast<float>(exponent);
  y = fadd_rn(y, fmul_rn(-2.12194440e-4f, e));
  y = fadd_rn(y, fmul_rn(-0.5f, z));
  float r = fadd_rn(t, y);
  r = fadd_rn(r, fmul_rn(0.693359375f, e));
  return r;
}

// Taylor coefficients of sin(pi/2 g) / g and cos(pi/2 g) in g^2 (g in [0, 1/2]), rounded to float.
// The first omitted terms are below 2e-9 on [0, 1/2].
#define PYINIT_PHILOX_SIN_COEFFS                                                                   \
  1.57079632679489662f, -0.645964097506246254f, 7.96926262461670451e-2f, -4.68175413531868811e-3f, \
      1.60441184787359821e-4f
#define PYINIT_PHILOX_COS_COEFFS                                                                         \
  1.0f, -1.23370055013616983f, 0.253669507901048014f, -2.08634807633529609e-2f, 9.19260274839426442e-4f, \
      -2.52020423730606054e-5f

// sin and cos of pi/2 * g for g in [0, 1/2] (g exact).
PYINIT_INLINE void philox_sincos_quarter(float g, float* s, float* c) {
  const float sc[5] = {PYINIT_PHILOX_SIN_COEFFS};
  const float cc[6] = {PYINIT_PHILOX_COS_COEFFS};
  const float g2 = fmul_rn(g, g);
  float ps = sc[4];
  for (int k = 3; k >= 0; --k) ps = fadd_rn(fmul_rn(ps, g2), sc[k]);
  float pc = cc[5];
  for (int k = 4; k >= 0; --k) pc = fadd_rn(fmul_rn(pc, g2), cc[k]);
  *s = fmul_rn(ps, g);
  *c = pc;
}

// cos and sin of 2 pi u2, u2 = the 24 high bits of w: 2 bits of quadrant, 22 bits of fraction f; the
// polynomial runs on g = f or 1 - f (both exact), whichever is <= 1/2.
PYINIT_INLINE void philox_cossin_turn(uint32_t w, float* cos_out, float* sin_out) {
  const uint32_t quadrant = w >> 30;
  const uint32_t fraction = (w >> 8) & 0x3FFFFFu;
  const bool swap = fraction > 0x200000u;
  const float f = fmul_rn(static_cast<float>(fraction), 2.384185791015625e-07f);  // * 2^-22
  const float g = swap ? fadd_rn(1.0f, -f) : f;
  float s, c;
  philox_sincos_quarter(g, &s, &c);
  if (swap) {
    const float t = s;
    s = c;
    c = t;
  }
  // (cos, sin) of pi/2 (quadrant + f)
  switch (quadrant) {
    case 0:
      *cos_out = c;
      *sin_out = s;
      break;
    case 1:
      *cos_out = -s;
      *sin_out = c;
      break;
    case 2:
      *cos_out = -c;
      *sin_out = -s;
      break;
    default:
      *cos_out = s;
      *sin_out = -c;
      break;
  }
}

// sqrt(-2 ln u1), u1 = (k + 1) * 2^-24 in (0, 1] from the 24 high bits k of w.
PYINIT_INLINE float philox_radius_float(uint32_t w) {
  const float u1 = fmul_rn(static_cast<float>((w >> 8) + 1u), 5.9604644775390625e-08f);
  return sqrtf(fmul_rn(-2.0f, philox_log_float(u1)));
}

// Standard normal for slot `slot` of a block (one word per element): slots (0, 1) are (cos, sin) of the pair
// (x, y), slots (2, 3) of the pair (z, w).
PYINIT_INLINE float philox_standard_normal_float(const Philox4x32Counter& words, int slot) {
  const uint32_t w_radius = slot < 2 ? words.x : words.z;
  const uint32_t w_angle = slot < 2 ? words.y : words.w;
  float c, s;
  philox_cossin_turn(w_angle, &c, &s);
  return fmul_rn(philox_radius_float(w_radius), (slot & 1) ? s : c);
}

PYINIT_INLINE float philox_normal_float(const Philox4x32Counter& words, int slot, float mean, float std) {
  return fadd_rn(fmul_rn(philox_standard_normal_float(words, slot), std), mean);
}

// ---- normal (double) -----------------------------------------------------------------------------------------

// Double: one pair per block, u1 from (x, y), u2 from (z, w) (53 bits each); slot 0 = cos, slot 1 = sin.
PYINIT_INLINE void philox_standard_normal_double_pair(const Philox4x32Counter& words, double* z_cos, double* z_sin) {
  const uint64_t k1 = ((static_cast<uint64_t>(words.x) << 32) | words.y) >> 11;
  const double u1 = dmul_rn(static_cast<double>(k1 + 1), 1.1102230246251565e-16);  // (0, 1]
  const double radius = dsqrt_rn(dmul_rn(-2.0, philox_log(u1)));
  const uint64_t k2 = ((static_cast<uint64_t>(words.z) << 32) | words.w) >> 11;  // 53 bits
  const uint64_t quadrant = k2 >> 51;
  const uint64_t fraction = k2 & ((uint64_t{1} << 51) - 1);
  const bool swap = fraction > (uint64_t{1} << 50);
  const double f = dmul_rn(static_cast<double>(fraction), 4.4408920985006262e-16);  // * 2^-51
  const double g = swap ? dadd_rn(1.0, -f) : f;
  const double angle = dmul_rn(g, 1.5707963267948966);
  double s = philox_sin_reduced(angle), c = philox_cos_reduced(angle);  // angle in [0, pi/4]
  if (swap) {
    const double t = s;
    s = c;
    c = t;
  }
  double cos_t, sin_t;
  switch (quadrant) {
    case 0:
      cos_t = c;
      sin_t = s;
      break;
    case 1:
      cos_t = -s;
      sin_t = c;
      break;
    case 2:
      cos_t = -c;
      sin_t = -s;
      break;
    default:
      cos_t = s;
      sin_t = -c;
      break;
  }
  *z_cos = dmul_rn(radius, cos_t);
  *z_sin = dmul_rn(radius, sin_t);
}

// One value of the pair (the same bits as philox_standard_normal_double_pair): only the sine or the cosine
// that the slot, the quadrant and the swap select is evaluated.
PYINIT_INLINE double philox_standard_normal_double(const Philox4x32Counter& words, int slot) {
  const uint64_t k1 = ((static_cast<uint64_t>(words.x) << 32) | words.y) >> 11;
  const double u1 = dmul_rn(static_cast<double>(k1 + 1), 1.1102230246251565e-16);  // (0, 1]
  const double radius = dsqrt_rn(dmul_rn(-2.0, philox_log(u1)));
  const uint64_t k2 = ((static_cast<uint64_t>(words.z) << 32) | words.w) >> 11;
  const int quadrant = static_cast<int>(k2 >> 51);
  const uint64_t fraction = k2 & ((uint64_t{1} << 51) - 1);
  const bool swap = fraction > (uint64_t{1} << 50);
  const double f = dmul_rn(static_cast<double>(fraction), 4.4408920985006262e-16);  // * 2^-51
  const double angle = dmul_rn(swap ? dadd_rn(1.0, -f) : f, 1.5707963267948966);
  // cos_t is (c, -s, -c, s)[quadrant], sin_t is (s, c, -s, -c)[quadrant], with (s, c) swapped when `swap`
  const bool use_c = ((slot ^ quadrant) & 1) == 0;
  const double v = use_c == swap ? philox_sin_reduced(angle) : philox_cos_reduced(angle);
  const bool negative = slot ? quadrant >= 2 : (quadrant == 1 || quadrant == 2);
  return dmul_rn(radius, negative ? -v : v);
}

// ---- truncated normal ----------------------------------------------------------------------------------------

// Note [philox trunc_normal_]
// With p = Phi(beta) - Phi(alpha) > 0.3 (alpha, beta the standardized bounds): rejection. Round r (stream r)
// gives the element the normal_ value it would get from a call with stream r (float math for float, half and
// bfloat16; double math for double), rounded to the dtype; the first value inside [a, b] is kept. After
// kTruncRounds rounds (probability < 0.7^64 ~ 1e-10 per element) the inverse CDF (below) is used with
// u = (w + 1/2) 2^-32, w the element's word at stream kTruncRounds (slot * 2 for double).
// Otherwise: inverse CDF in double for every element, two words per element (stream 0), u = (k + 1/2) 2^-53.
// Inverse CDF: the interval is mirrored so that alpha <= 0 (lower tail kept accurate), p = Phi(alpha) +
// u (Phi(beta) - Phi(alpha)), z = ndtri(p) clamped to [alpha, beta], value mean + std z clamped to [a, b],
// rounded once to the dtype.
constexpr int kTruncRounds = 64;

struct PhiloxTruncParams {
  double mean, std, a, b;
  double alpha, beta;  // standardized, mirrored so that alpha <= 0
  double p_alpha, p_span;
  bool mirrored;
  bool rejection;
};

// Phi(x) = erfc(-x / sqrt(2)) / 2.
PYINIT_INLINE double philox_normal_cdf(double x) {
  return dmul_rn(0.5, philox_erfc(dmul_rn(-x, 0.70710678118654752440)));
}

// Inverse of the standard normal CDF: Acklam's rational approximation refined by one Halley step; -inf for
// p <= 0, inf for p >= 1 (a window beyond Phi's range, |x| > 38.5, is clamped to its bound by the caller). The
// step's e^(x^2/2) is taken as e^(x^2/4) squared, so that it stays finite down to p ~ 1e-320.
PYINIT_INLINE double philox_ndtri(double p) {
  const double plow = 0.02425, phigh = dadd_rn(1.0, -plow);
  if (!(p > 0.0 && p < 1.0)) return p >= 1.0 ? kPhiloxInf : -kPhiloxInf;
  double x;
  if (p < plow || p > phigh) {
    const double tn[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                         -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    const double td[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00,
                         1.0};
    const double q = dsqrt_rn(dmul_rn(-2.0, philox_log(p < plow ? p : dadd_rn(1.0, -p))));
    double num = tn[0], den = td[0];
    for (int i = 1; i < 6; ++i) num = dadd_rn(dmul_rn(num, q), tn[i]);
    for (int i = 1; i < 5; ++i) den = dadd_rn(dmul_rn(den, q), td[i]);
    x = ddiv_rn(num, den);
    if (p > phigh) x = -x;
  } else {
    const double cn[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                         1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    const double cd[] = {-5.447609879822406e+01, 1.615858368580409e+02,  -1.556989798598866e+02,
                         6.680131188771972e+01,  -1.328068155288572e+01, 1.0};
    const double q = dadd_rn(p, -0.5);
    const double r = dmul_rn(q, q);
    double num = cn[0], den = cd[0];
    for (int i = 1; i < 6; ++i) num = dadd_rn(dmul_rn(num, r), cn[i]);
    for (int i = 1; i < 6; ++i) den = dadd_rn(dmul_rn(den, r), cd[i]);
    x = ddiv_rn(dmul_rn(num, q), den);
  }
  const double e = dadd_rn(philox_normal_cdf(x), -p);
  const double h = philox_exp(dmul_rn(dmul_rn(x, x), 0.25));
  const double u = dmul_rn(dmul_rn(dmul_rn(e, kPhiloxSqrt2Pi), h), h);
  return dadd_rn(x, -ddiv_rn(u, dadd_rn(1.0, dmul_rn(dmul_rn(x, u), 0.5))));
}

PYINIT_INLINE double philox_trunc_icdf(double u, const PhiloxTruncParams& t) {
  double z = philox_ndtri(dadd_rn(t.p_alpha, dmul_rn(u, t.p_span)));
  z = z < t.alpha ? t.alpha : (z > t.beta ? t.beta : z);
  if (t.mirrored) z = -z;
  const double v = dadd_rn(t.mean, dmul_rn(t.std, z));
  return v < t.a ? t.a : (v > t.b ? t.b : v);
}

// Host side: the parameters of a call (also decides the method).
inline PhiloxTruncParams philox_trunc_params(double mean, double std, double a, double b) {
  PhiloxTruncParams t;
  t.mean = mean;
  t.std = std;
  t.a = a;
  t.b = b;
  double alpha = ddiv_rn(dadd_rn(a, -mean), std), beta = ddiv_rn(dadd_rn(b, -mean), std);
  const double p = dadd_rn(philox_normal_cdf(beta), -philox_normal_cdf(alpha));
  t.rejection = p > 0.3;
  t.mirrored = alpha > 0;
  if (t.mirrored) {
    const double tmp = alpha;
    alpha = -beta;
    beta = -tmp;
  }
  t.alpha = alpha;
  t.beta = beta;
  t.p_alpha = philox_normal_cdf(alpha);
  t.p_span = dadd_rn(philox_normal_cdf(beta), -t.p_alpha);
  return t;
}

// trunc_normal_ value of global element i, as a double (the float value for reduced dtypes, already rounded).
PYINIT_INLINE double philox_trunc_normal_value(uint64_t key, uint64_t offset, uint64_t i, const PhiloxTruncParams& t,
                                               PhiloxDtype dtype) {
  const bool is_double = dtype == PhiloxDtype::kDouble;
  if (!t.rejection) {
    const PhiloxTile tile = philox_tile(i, 2);
    const Philox4x32Counter w = philox_block(key, offset, tile.block, 0);
    const uint32_t hi = tile.slot ? w.z : w.x, lo = tile.slot ? w.w : w.y;
    const uint64_t k = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
    const double u = dmul_rn(dadd_rn(static_cast<double>(k), 0.5), 1.1102230246251565e-16);
    const double v = philox_trunc_icdf(u, t);
    return is_double ? v : static_cast<double>(round_to_dtype(static_cast<float>(v), dtype));
  }
  const PhiloxTile tile = philox_tile(i, is_double ? 2 : 1);
  const float mean_f = static_cast<float>(t.mean), std_f = static_cast<float>(t.std);
  for (int r = 0; r < kTruncRounds; ++r) {
    const Philox4x32Counter w = philox_block(key, offset, tile.block, static_cast<uint64_t>(r));
    double v;
    if (is_double) {
      v = dadd_rn(dmul_rn(philox_standard_normal_double(w, tile.slot), t.std), t.mean);
    } else {
      v = static_cast<double>(round_to_dtype(philox_normal_float(w, tile.slot, mean_f, std_f), dtype));
    }
    if (v >= t.a && v <= t.b) return v;
  }
  const Philox4x32Counter w = philox_block(key, offset, tile.block, kTruncRounds);
  const uint32_t word = philox_lane(w, is_double ? 2 * tile.slot : tile.slot);
  const double v = philox_trunc_icdf(dmul_rn(dadd_rn(static_cast<double>(word), 0.5), 2.3283064365386963e-10), t);
  return is_double ? v : static_cast<double>(round_to_dtype(static_cast<float>(v), dtype));
}

}  // namespace pyinit
