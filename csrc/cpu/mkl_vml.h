#pragma once
// MKL's vector math, as torch's own CPU kernels call it. See Note [torch's CPU vector math is MKL's].
//
// Note [torch's CPU vector math is MKL's]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch's CPU erfinv_ and log_ on float and double are not ATen's own math (nor Sleef): they are
// IMPLEMENT_FLOAT_KERNEL / IMPLEMENT_COMPLEX_KERNEL ops (ATen/native/cpu/UnaryOpsKernel.cpp), i.e. at::vml::v<op>,
// which an MKL build of torch (every x86-64 wheel) specialises to MKL's vms<Op> / vmd<Op> with
// VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE (ATen/cpu/vml.h), at every CPU capability (DEFAULT, AVX2 and
// AVX512 give the same bits). half and bfloat16 go through float: the value converted to float, MKL's float
// result rounded back. libtorch_cpu exports those MKL entry points, so pyinit calls the very functions torch calls.
// They are declared weak: a torch without MKL leaves them null, the operators that need them refuse, and the
// Python layer falls back before calling them (pyinit/_support.py, has_mkl_vml). MKL's results are per element:
// how a caller chunks its calls does not change them.

#include <cstdint>

// The 64-bit-index variants of what at::vml calls, exported by libtorch_cpu in MKL builds.
extern "C" {
__attribute__((weak)) void vmsErfInv_64(int64_t n, const float* a, float* r, int64_t mode);
__attribute__((weak)) void vmdErfInv_64(int64_t n, const double* a, double* r, int64_t mode);
__attribute__((weak)) void vmsLn_64(int64_t n, const float* a, float* r, int64_t mode);
__attribute__((weak)) void vmdLn_64(int64_t n, const double* a, double* r, int64_t mode);
// mkl_set_num_threads_local is a macro for this C entry point in mkl_service.h; the lowercase symbol is the Fortran
// interface (int by pointer).
__attribute__((weak)) int MKL_Set_Num_Threads_Local(int threads);
}

namespace pyinit::cpu::mkl {

// VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE (mkl_vml_defines.h), the mode at::vml passes.
constexpr int64_t kVmlMode = 0x00000002 | 0x00140000 | 0x00000100;

inline bool has_erfinv() { return vmsErfInv_64 != nullptr && vmdErfInv_64 != nullptr; }
inline bool has_log() { return vmsLn_64 != nullptr && vmdLn_64 != nullptr; }

// In place is allowed (MKL's r may equal a).
inline void erfinv(const float* x, float* out, int64_t n) { vmsErfInv_64(n, x, out, kVmlMode); }
inline void erfinv(const double* x, double* out, int64_t n) { vmdErfInv_64(n, x, out, kVmlMode); }
inline void log(const float* x, float* out, int64_t n) { vmsLn_64(n, x, out, kVmlMode); }
inline void log(const double* x, double* out, int64_t n) { vmdLn_64(n, x, out, kVmlMode); }

// MKL runs a VM call on its own OpenMP team unless the caller is inside an OpenMP parallel region (torch's calls
// are, in at::parallel_for); pyinit's workers are not, so each would start a team: 2 workers on 2 cores ran 3x
// slower than 1. One MKL thread per worker while this guard lives.
class OneThread {
 public:
  OneThread() : previous_(MKL_Set_Num_Threads_Local != nullptr ? MKL_Set_Num_Threads_Local(1) : 0) {}
  ~OneThread() {
    if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(previous_);
  }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int previous_;
};

}  // namespace pyinit::cpu::mkl
