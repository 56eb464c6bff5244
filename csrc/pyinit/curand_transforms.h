#pragma once
// curand's uint32 -> float conversions and Box-Muller, as torch's CUDA uniform_/normal_ use them through
// curand_uniform4 / curand_uniform2_double / curand_normal4 / curand_normal2_double on a Philox4x32-10 state.
// Written from the documented behaviour of curand (see shared research torch_rng.md 2.5); the constants are
// curand's own literals so that the float roundings are the same.
//
// Note [curand float rounding]
// The device functions here must compile to the same instructions as curand's under torch's nvcc flags
// (--fmad=true, no --use_fast_math): the 2*pi scaling of Box-Muller is a contracted multiply-add, written
// here as an explicit fma so that it does not depend on the flags of the translation unit; logf/sqrtf/log/sqrt
// are the IEEE libdevice functions and the angle goes through the hardware __sincosf (float) or sincospi
// (double). The host versions exist for compilation and for tests of the uniform conversions only: host
// sinf/cosf are not __sincosf, so host Box-Muller results are not bit-exact.

#include <cmath>
#include <cstdint>

#include "pyinit/macros.h"

namespace pyinit {

constexpr float kCurandTwoPow32Inv = 2.3283064e-10f;                  // 2^-32 exactly
constexpr float kCurandTwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f;  // rounded to float, as curand's macro
constexpr double kCurandTwoPow53InvDouble = 1.1102230246251565e-16;   // 2^-53 exactly

// curand_uniform4 lane: x * 2^-32 + 2^-33 in float; (0, 1]. The product is exact, so fma or not is the same.
PYINIT_INLINE float curand_uniform_float(uint32_t x) {
  return static_cast<float>(x) * kCurandTwoPow32Inv + (kCurandTwoPow32Inv / 2.0f);
}

// curand_uniform2_double lane (the "hq" form): 53 bits from two words; (0, 1].
PYINIT_INLINE double curand_uniform_double(uint32_t x, uint32_t y) {
  const uint64_t z = static_cast<uint64_t>(x) ^ (static_cast<uint64_t>(y) << (53 - 32));
  return static_cast<double>(z) * kCurandTwoPow53InvDouble + (kCurandTwoPow53InvDouble / 2.0);
}

// One Box-Muller pair from two words (curand's _curand_box_muller): first = sin * s, second = cos * s.
PYINIT_INLINE void curand_box_muller(uint32_t x, uint32_t y, float* first, float* second) {
  const float u = static_cast<float>(x) * kCurandTwoPow32Inv + (kCurandTwoPow32Inv / 2.0f);
#if defined(__CUDA_ARCH__)
  const float v = __fmaf_rn(static_cast<float>(y), kCurandTwoPow32Inv2Pi, kCurandTwoPow32Inv2Pi / 2.0f);
  const float s = sqrtf(-2.0f * logf(u));
  float sin_v, cos_v;
  __sincosf(v, &sin_v, &cos_v);
#else
  const float v = std::fma(static_cast<float>(y), kCurandTwoPow32Inv2Pi, kCurandTwoPow32Inv2Pi / 2.0f);
  const float s = std::sqrt(-2.0f * std::log(u));
  const float sin_v = std::sin(v), cos_v = std::cos(v);  // not __sincosf: host values are approximate
#endif
  *first = sin_v * s;
  *second = cos_v * s;
}

// The double Box-Muller of curand_normal2_double (all four words of one Philox block).
PYINIT_INLINE void curand_box_muller_double(uint32_t x0, uint32_t x1, uint32_t y0, uint32_t y1, double* first,
                                            double* second) {
  const uint64_t zx = static_cast<uint64_t>(x0) ^ (static_cast<uint64_t>(x1) << (53 - 32));
  const double u = static_cast<double>(zx) * kCurandTwoPow53InvDouble + (kCurandTwoPow53InvDouble / 2.0);
  const uint64_t zy = static_cast<uint64_t>(y0) ^ (static_cast<uint64_t>(y1) << (53 - 32));
  const double v = static_cast<double>(zy) * (kCurandTwoPow53InvDouble * 2.0) + kCurandTwoPow53InvDouble;
#if defined(__CUDA_ARCH__)
  const double s = sqrt(-2.0 * log(u));
  double sin_v, cos_v;
  sincospi(v, &sin_v, &cos_v);
#else
  const double s = std::sqrt(-2.0 * std::log(u));
  const double pi = 3.1415926535897932;
  const double sin_v = std::sin(v * pi), cos_v = std::cos(v * pi);  // host values are approximate
#endif
  *first = sin_v * s;
  *second = cos_v * s;
}

}  // namespace pyinit
