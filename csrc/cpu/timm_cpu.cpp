// timm's truncated normal on CPU, bit-identical to timm's own composition. See Note [timm's trunc_normal_].
//
// Note [timm's trunc_normal_]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// timm.layers.trunc_normal_ (and trunc_normal_tf_, variance_scaling_, lecun_normal_ through it) fills a tensor
// with five in-place torch operators: uniform_(low, high), erfinv_(), mul_(scale), add_(shift),
// clamp_(min=a, max=b); trunc_normal_tf_ then adds mul_(std), add_(mean). pyinit writes the same bits in two
// passes instead of five (seven):
//   1. uniform_: pyinit's torch-stream uniform_ (the same words, values and generator state as torch's);
//   2. per chunk of 2048 elements (torch's own grain), while the chunk is in cache: erfinv, then each remaining
//      step in the tensor's dtype, each rounded once as torch's kernel rounds it (x * float(scale), then
//      + float(shift), then std::min(std::max(x, float(a)), float(b)), ...).
// torch's CPU erfinv_ for float and double is not ATen's calc_erfinv: erfinv is an IMPLEMENT_FLOAT_KERNEL
// (ATen/native/cpu/UnaryOpsKernel.cpp), i.e. at::vml::verfinv, which an MKL build of torch (every x86-64 wheel)
// specialises to MKL's vmsErfInv / vmdErfInv with VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE
// (ATen/cpu/vml.h). libtorch_cpu exports those MKL entry points, so pyinit calls the very function torch calls
// (declared weak: a torch without MKL leaves them null and this operator refuses; Python falls back first).
// The Python layer (pyinit/timm.py) computes low/high and the scales exactly as timm does in Python and passes
// the final numbers. Verified against torch 2.13 and 2.14 on x86-64 (tests/test_timm_compat.py).

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "cpu/parallel.h"
#include "validate.h"

// MKL's vector math entry points (the 64-bit-index variants of what torch's at::vml calls), exported by
// libtorch_cpu in MKL builds.
extern "C" {
__attribute__((weak)) void vmsErfInv_64(int64_t n, const float* a, float* r, int64_t mode);
__attribute__((weak)) void vmdErfInv_64(int64_t n, const double* a, double* r, int64_t mode);
// mkl_set_num_threads_local is a macro for this C entry point in mkl_service.h; the lowercase symbol is the Fortran
// interface (int by pointer).
__attribute__((weak)) int MKL_Set_Num_Threads_Local(int threads);
}

namespace pyinit::cpu {

void uniform_cpu(at::Tensor self, double low, double high, std::optional<at::Generator> generator);

namespace {

// VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE (mkl_vml_defines.h), the mode at::vml passes.
constexpr int64_t kVmlMode = 0x00000002 | 0x00140000 | 0x00000100;
// torch's erfinv_ runs its parallel loop with grain 2048; MKL's results are per element, the chunk only keeps
// the affine steps in cache.
constexpr int64_t kChunk = 2048;

inline void mkl_erfinv(float* x, int64_t n) { vmsErfInv_64(n, x, x, kVmlMode); }
inline void mkl_erfinv(double* x, int64_t n) { vmdErfInv_64(n, x, x, kVmlMode); }

// MKL runs a VM call on its own OpenMP team unless the caller is inside an OpenMP parallel region (torch's calls
// are, in at::parallel_for); pyinit's workers are not, so each would start a team: 2 workers on 2 cores ran 3x
// slower than 1. One MKL thread per worker while this guard lives.
class OneMklThread {
 public:
  OneMklThread() : previous_(MKL_Set_Num_Threads_Local != nullptr ? MKL_Set_Num_Threads_Local(1) : 0) {}
  ~OneMklThread() {
    if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(previous_);
  }
  OneMklThread(const OneMklThread&) = delete;
  OneMklThread& operator=(const OneMklThread&) = delete;

 private:
  int previous_;
};

template <typename scalar_t>
void erfinv_affine_clamp(scalar_t* data, int64_t n, double scale_, double shift_, double a_, double b_,
                         const std::optional<double>& post_scale_, const std::optional<double>& post_shift_) {
  // torch's mul_/add_/clamp_ with a Python number on a float/double tensor: the number cast to the dtype, one
  // rounding per operator (the extension is built with -ffp-contract=off: nothing is fused).
  const auto scale = static_cast<scalar_t>(scale_), shift = static_cast<scalar_t>(shift_);
  const auto lo = static_cast<scalar_t>(a_), hi = static_cast<scalar_t>(b_);
  const bool post = post_scale_.has_value();
  const auto post_scale = static_cast<scalar_t>(post_scale_.value_or(1.0));
  const auto post_shift = static_cast<scalar_t>(post_shift_.value_or(0.0));
  parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) {
    const OneMklThread one_thread;
    for (int64_t start = begin; start < end; start += kChunk) {
      const int64_t len = std::min(kChunk, end - start);
      scalar_t* x = data + start;
      mkl_erfinv(x, len);
      for (int64_t i = 0; i < len; ++i) {
        scalar_t v = x[i] * scale;
        v = v + shift;
        v = std::min(std::max(v, lo), hi);
        if (post) {
          v = v * post_scale;
          v = v + post_shift;
        }
        x[i] = v;
      }
    }
  });
}

}  // namespace

void timm_trunc_normal_cpu(at::Tensor self, double low, double high, double scale, double shift, double a, double b,
                           std::optional<double> post_scale, std::optional<double> post_shift,
                           std::optional<at::Generator> generator) {
  validate_timm_trunc_normal(self, post_scale, post_shift);
  TORCH_CHECK(vmsErfInv_64 != nullptr && vmdErfInv_64 != nullptr,
              "pyinit.timm_trunc_normal_: this torch has no MKL erfinv (the Python wrapper falls back otherwise)");
  // Validates low/high with uniform_'s own messages before anything is drawn or written, and counts one write.
  uniform_cpu(self, low, high, generator);
  // torch's erfinv_, mul_, add_, clamp_ (and trunc_normal_tf_'s mul_, add_) each count a write, also on an
  // empty tensor.
  count_extra_writes(self, post_scale.has_value() ? 6 : 4);
  if (self.numel() == 0) return;
  // A dense tensor's elements fill [data_ptr, data_ptr + numel) in some order; every step below is elementwise.
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "pyinit_timm_trunc_normal", [&] {
    erfinv_affine_clamp<scalar_t>(self.data_ptr<scalar_t>(), self.numel(), scale, shift, a, b, post_scale, post_shift);
  });
}

}  // namespace pyinit::cpu
