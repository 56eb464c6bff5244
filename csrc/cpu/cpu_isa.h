#pragma once
// The one CPU instruction-set dispatch of pyinit's CPU kernels. torch picks its own kernels by
// at::get_cpu_capability() (DEFAULT, AVX2 or AVX512; the ATEN_CPU_CAPABILITY environment variable lowers it),
// and the torch stream must follow that choice to write torch's bits (see Note [The torch stream on CPU]).
// pyinit has a portable and an AVX2 variant of each kernel, so torch's AVX2 and AVX512 both select AVX2.

#include <ATen/Version.h>

#include <cstdlib>

namespace pyinit::cpu {

enum class CpuIsa { kDefault, kAvx2 };

// Fixed for the life of the process (torch reads ATEN_CPU_CAPABILITY once too).
inline CpuIsa cpu_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  static const CpuIsa isa =
      at::get_cpu_capability() != "DEFAULT" && __builtin_cpu_supports("avx2") ? CpuIsa::kAvx2 : CpuIsa::kDefault;
  return isa;
#else
  return CpuIsa::kDefault;
#endif
}

// The philox stream gives the same bits with either variant; PYINIT_PHILOX_SIMD=0 (read at every call, so tests
// can compare both in one process) forces the portable kernels.
inline CpuIsa philox_isa() {
  const char* env = std::getenv("PYINIT_PHILOX_SIMD");
  if (env != nullptr && env[0] == '0') return CpuIsa::kDefault;
  return cpu_isa();
}

}  // namespace pyinit::cpu
