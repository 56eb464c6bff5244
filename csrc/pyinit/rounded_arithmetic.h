#pragma once
// Exactly rounded float and double arithmetic, written once for the host and the device: each function is one
// IEEE operation rounded to nearest, never contracted with its neighbours into an FMA. On the device they are
// CUDA's _rn intrinsics (which nvcc --fmad=true leaves alone); on the host the plain operators, which
// -ffp-contract=off keeps separate. fma_rn is the one fused operation, for the kernels that reproduce torch's
// FMA-contracted builds (transforms.h: mul_add). Also the exact bit copies between float/double and their
// integer patterns. No torch headers: the .cu files include this (Note [CUDA kernels without torch headers]).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pyinit/macros.h"

#if defined(__CUDA_ARCH__)
#define PYINIT_RN(device, host) device
#else
#define PYINIT_RN(device, host) host
#endif

namespace pyinit {

// The unsigned integer as wide as a 2-, 4- or 8-byte scalar: the bit pattern a fill or a zero stores.
template <int kBytes>
using unsigned_of_size_t =
    std::conditional_t<kBytes == 2, uint16_t, std::conditional_t<kBytes == 4, uint32_t, uint64_t>>;

PYINIT_INLINE float fmul_rn(float a, float b) { return PYINIT_RN(__fmul_rn(a, b), a * b); }
PYINIT_INLINE float fadd_rn(float a, float b) { return PYINIT_RN(__fadd_rn(a, b), a + b); }
PYINIT_INLINE double dmul_rn(double a, double b) { return PYINIT_RN(__dmul_rn(a, b), a * b); }
PYINIT_INLINE double dadd_rn(double a, double b) { return PYINIT_RN(__dadd_rn(a, b), a + b); }
PYINIT_INLINE double ddiv_rn(double a, double b) { return PYINIT_RN(__ddiv_rn(a, b), a / b); }
PYINIT_INLINE double dsqrt_rn(double a) { return PYINIT_RN(__dsqrt_rn(a), std::sqrt(a)); }  // IEEE sqrt: exact
PYINIT_INLINE float fma_rn(float a, float b, float c) { return PYINIT_RN(__fmaf_rn(a, b, c), __builtin_fmaf(a, b, c)); }
PYINIT_INLINE double fma_rn(double a, double b, double c) {
  return PYINIT_RN(__fma_rn(a, b, c), __builtin_fma(a, b, c));
}

// The bit pattern of a float or double and back (memcpy: no aliasing rule broken; compiles to a move).
template <typename To, typename From>
PYINIT_INLINE To bit_copy(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_copy: same size");
  To to;
  memcpy(&to, &from, sizeof(to));
  return to;
}
PYINIT_INLINE uint32_t float_bits(float f) { return bit_copy<uint32_t>(f); }
PYINIT_INLINE float bits_float(uint32_t u) { return bit_copy<float>(u); }
PYINIT_INLINE uint64_t double_bits(double d) { return bit_copy<uint64_t>(d); }
PYINIT_INLINE double bits_double(uint64_t u) { return bit_copy<double>(u); }

}  // namespace pyinit

#undef PYINIT_RN
