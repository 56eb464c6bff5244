// The torch stream's CPU kernels as torch's AVX2 and AVX512 capabilities compute them: x * y + z contracted into
// an FMA, and the AVX2 Box-Muller of ATen/native/cpu/avx_mathfun.h (torch registers no AVX512 normal kernel).
// Compiled for AVX2+FMA with a target pragma, so the rest of the extension runs on any x86-64 CPU; this code is
// only called when at::get_cpu_capability() says the CPU has AVX2. See Note [The torch stream on CPU].
#if defined(__x86_64__) || defined(_M_X64)

// Everything included before the pragma is compiled for the baseline ISA.
#include <ATen/Parallel.h>
#include <ATen/native/cpu/Intrinsics.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/util/MathConstants.h>

#include <cmath>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
// torch compiles avx_mathfun.h with GCC's default -ffp-contract=fast, which fuses its intrinsic multiplies and
// adds into FMAs; the extension is built with -ffp-contract=off, so restore torch's setting for this code.
// Nothing below relies on a * b + c staying unfused: the uniform transform here is an explicit FMA anyway.
#pragma GCC optimize("fp-contract=fast")

#ifndef CPU_CAPABILITY_AVX2
#define CPU_CAPABILITY_AVX2  // enables avx_mathfun.h's AVX2 functions in this translation unit only
#endif
#include <ATen/native/cpu/avx_mathfun.h>

#define PYINIT_CPU_CAPABILITY avx2_capability
#define PYINIT_CPU_AVX2
#include "cpu/torch_stream_kernels_per_isa.h"

namespace pyinit::cpu {

const TorchStreamKernels& torch_stream_kernels_avx2() { return avx2_capability::capability_kernels(); }

}  // namespace pyinit::cpu

#pragma GCC pop_options

#endif  // x86-64
