#pragma once
// uint32 words -> values, shared by the CPU and CUDA kernels.
// See Note [The torch stream on CPU] in csrc/cpu/torch_stream_kernels_per_isa.h for where each formula comes from.

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "pyinit/macros.h"
#include "pyinit/rounded_arithmetic.h"

namespace pyinit {

// a * b + c, either as one fused multiply-add or as two roundings. torch's own CPU kernels are FMA-contracted
// in its AVX2/AVX512 builds and not in its DEFAULT build, so the choice is a run-time argument here and every
// translation unit that uses it is compiled with -ffp-contract=off.
template <bool kFma, typename T>
PYINIT_INLINE T mul_add(T a, T b, T c) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "mul_add: float or double");
  if constexpr (kFma) {
    return fma_rn(a, b, c);
  } else {
    return a * b + c;
  }
}

// torch CPU: at::uniform_real_distribution<float> keeps the low 24 bits of one 32-bit word.
PYINIT_INLINE float torch_cpu_unit_float(uint32_t word) {
  return static_cast<float>(word & 0xFFFFFFu) * (1.0f / 16777216.0f);
}

// torch CPU: uniform_real_distribution<double> keeps the low 53 bits of random64() = (first << 32) | second.
PYINIT_INLINE double torch_cpu_unit_double(uint32_t first, uint32_t second) {
  const uint64_t bits = (static_cast<uint64_t>(first) << 32) | second;
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// Masked uniform: keep v where |v| >= threshold, else a zero of v's sign (what `w *= w.abs() >= t` writes).
template <typename opmath_t>
PYINIT_INLINE opmath_t mask_small(opmath_t v, opmath_t threshold) {
  // An unconditional multiply by 1 or 0, as torch's composition does: branch-free, so it vectorizes.
  return v * static_cast<opmath_t>(std::fabs(v) >= threshold);
}

}  // namespace pyinit
