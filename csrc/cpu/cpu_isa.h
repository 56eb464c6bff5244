#pragma once
// The one CPU instruction-set dispatch of pyinit's CPU kernels. torch picks its own kernels by
// at::get_cpu_capability() (DEFAULT, AVX2 or AVX512; the ATEN_CPU_CAPABILITY environment variable lowers it),
// and the torch stream must follow that choice to write torch's bits (see Note [The torch stream on CPU]).
// pyinit has a portable and an AVX2 variant of each torch-stream kernel, so torch's AVX2 and AVX512 both select
// AVX2 there: cpu_isa() never returns kAvx512. The philox stream (philox_isa()) has an AVX-512 variant too.

#include <ATen/Version.h>

#include <cstdlib>
#include <cstring>

namespace pyinit::cpu {

enum class CpuIsa { kDefault, kAvx2, kAvx512 };

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

// The best variant of the philox kernels: AVX-512 (F, BW, DQ, VL; libgcc's check includes the OS's support)
// where torch's capability is AVX512 too, else cpu_isa(). torch's capability is the ceiling, so that
// ATEN_CPU_CAPABILITY lowers both streams alike.
inline CpuIsa philox_best_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  static const CpuIsa isa = at::get_cpu_capability() == "AVX512" && __builtin_cpu_supports("avx512f") &&
                                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                                    __builtin_cpu_supports("avx512vl")
                                ? CpuIsa::kAvx512
                                : cpu_isa();
  return isa;
#else
  return CpuIsa::kDefault;
#endif
}

// The philox stream gives the same bits with every variant, so its choice is free: philox_best_isa().
// PYINIT_PHILOX_SIMD, read at every call so that tests compare the variants in one process, lowers it: "0"
// portable, "avx2" at most AVX2 (any other value: the best).
inline CpuIsa philox_isa() {
  const CpuIsa best = philox_best_isa();
  const char* env = std::getenv("PYINIT_PHILOX_SIMD");
  if (env == nullptr || best == CpuIsa::kDefault) return best;
  if (env[0] == '0') return CpuIsa::kDefault;
  if (std::strcmp(env, "avx2") == 0) return CpuIsa::kAvx2;
  return best;
}

}  // namespace pyinit::cpu
