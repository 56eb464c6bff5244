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
// torch's CPU erfinv_ is MKL's vmsErfInv / vmdErfInv (Note [torch's CPU vector math is MKL's], mkl_vml.h).
// The Python layer (pyinit/timm.py) computes low/high and the scales exactly as timm does in Python and passes
// the final numbers. Verified against torch 2.13 and 2.14 on x86-64 (tests/test_timm_compat.py).

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "cpu/mkl_vml.h"
#include "cpu/parallel.h"
#include "cpu/torch_stream_cpu.h"
#include "validate.h"

namespace pyinit::cpu {

namespace {

// torch's erfinv_ runs its parallel loop with grain 2048; MKL's results are per element, the chunk only keeps
// the affine steps in cache.
constexpr int64_t kChunk = 2048;

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
  // The loop reads copies local to the lambda's call: the closure's members would be reloaded after every store
  // into x (which may alias them: the extension is built with -fno-strict-aliasing).
  parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) {
    const mkl::OneThread one_thread;
    const scalar_t s = scale, t = shift, l = lo, h = hi, ps = post_scale, pt = post_shift;
    const bool p = post;
    for (int64_t start = begin; start < end; start += kChunk) {
      const int64_t len = std::min(kChunk, end - start);
      scalar_t* x = data + start;
      mkl::erfinv(x, x, len);
      for (int64_t i = 0; i < len; ++i) {
        scalar_t v = x[i] * s;
        v = v + t;
        v = std::min(std::max(v, l), h);
        if (p) {
          v = v * ps;
          v = v + pt;
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
  TORCH_CHECK(mkl::has_erfinv(),
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
