// CPU implementations of the deterministic initializers (fill_, eye_, dirac_) and the tail of orthogonal_.
// One pass each, no Python loops. sparse_ lives with the random initializers (random_cpu.cpp).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../checks.h"
#include "ops_cpu.h"

namespace pyinit::cpu {
namespace {

constexpr int64_t kGrainSize = 32768;

// Calls write(element_pointer, row_major_index) for every element of `self`, in parallel; contiguous tensors
// take a flat loop, others walk their strides.
template <typename scalar_t, typename F>
void for_each_element(const at::Tensor& self, const F& write) {
  scalar_t* base = self.data_ptr<scalar_t>();
  const int64_t n = self.numel();
  if (self.is_contiguous()) {
    at::parallel_for(0, n, kGrainSize, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) write(base + i, i);
    });
    return;
  }
  const auto sizes = self.sizes().vec();
  const auto strides = self.strides().vec();
  const int64_t dims = self.dim();
  at::parallel_for(0, n, kGrainSize, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t rest = i, offset = 0;
      for (int64_t d = dims - 1; d >= 0; --d) {
        offset += (rest % sizes[d]) * strides[d];
        rest /= sizes[d];
      }
      write(base + offset, i);
    }
  });
}

void fill_cpu(at::Tensor self, double value) {
  check_floating(self, "fill_");
  if (self.numel() == 0) return;
  check_writable(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_fill", [&] {
    const scalar_t v = static_cast<scalar_t>(value);
    for_each_element<scalar_t>(self, [v](scalar_t* p, int64_t) { *p = v; });
  });
}

void eye_cpu(at::Tensor self) {
  check_floating(self, "eye_");
  TORCH_CHECK(self.dim() == 2, "Only tensors with 2 dimensions are supported");
  if (self.numel() == 0) return;
  check_writable(self);
  const int64_t cols = self.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_eye", [&] {
    const scalar_t one = static_cast<scalar_t>(1), zero = static_cast<scalar_t>(0);
    for_each_element<scalar_t>(self, [=](scalar_t* p, int64_t i) { *p = (i / cols == i % cols) ? one : zero; });
  });
}

void dirac_cpu(at::Tensor self, int64_t groups) {
  check_floating(self, "dirac_");
  const int64_t dims = self.dim();
  TORCH_CHECK(dims >= 3 && dims <= 5, "Only tensors with 3, 4, or 5 dimensions are supported");
  TORCH_CHECK(groups > 0 && self.size(0) % groups == 0, "dim 0 must be divisible by groups");
  if (self.numel() == 0) return;
  check_writable(self);
  const int64_t out_per_group = self.size(0) / groups;
  const int64_t min_dim = std::min(out_per_group, self.size(1));
  // Row-major index of the centre tap within one (out, in) kernel slice.
  int64_t centre = 0, slice = 1;
  for (int64_t d = 2; d < dims; ++d) {
    centre = centre * self.size(d) + self.size(d) / 2;
    slice *= self.size(d);
  }
  const int64_t in_channels = self.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_dirac", [&] {
    const scalar_t one = static_cast<scalar_t>(1), zero = static_cast<scalar_t>(0);
    for_each_element<scalar_t>(self, [=](scalar_t* p, int64_t i) {
      const int64_t tap = i % slice;
      const int64_t in = (i / slice) % in_channels;
      const int64_t out = i / (slice * in_channels);
      const bool on = tap == centre && out % out_per_group == in && in < min_dim;
      *p = on ? one : zero;
    });
  });
}

// The tail of torch.nn.init.orthogonal_: q *= sign(diag(r)); (q.t_() when transposed); self.copy_(q);
// self.mul_(gain). float and double follow torch's roundings step by step; half and bfloat16 (where torch's QR
// raises) compute in float and round once.
void orthogonal_finish_cpu(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed) {
  check_floating(self, "orthogonal_");
  TORCH_CHECK(self.dim() == 2, "pyinit.orthogonal_finish_: expected the (rows, cols) view");
  if (self.numel() == 0) return;
  check_writable(self);
  const at::Tensor q_c = q.contiguous();
  const at::Tensor diag = r.diagonal().contiguous();
  const int64_t cols = self.size(1);
  const int64_t q_cols = q_c.size(1);
  AT_DISPATCH_FLOATING_TYPES(q_c.scalar_type(), "pyinit_orthogonal_q", [&] {
    using q_t = scalar_t;
    const q_t* qd = q_c.data_ptr<q_t>();
    const q_t* dd = diag.data_ptr<q_t>();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_orthogonal", [&] {
      constexpr bool kSameType = std::is_same_v<scalar_t, q_t>;
      const q_t gain_q = static_cast<q_t>(gain);
      for_each_element<scalar_t>(self, [=](scalar_t* p, int64_t i) {
        const int64_t row = i / cols, col = i % cols;
        const int64_t qi = transposed ? col : row, qj = transposed ? row : col;
        const q_t d = dd[qj];
        const q_t sign = d > 0 ? q_t(1) : (d < 0 ? q_t(-1) : q_t(0));
        const q_t v = qd[qi * q_cols + qj] * sign;
        if constexpr (kSameType) {
          *p = v * gain_q;
        } else {
          *p = static_cast<scalar_t>(v * gain_q);
        }
      });
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("fill_", &fill_cpu);
  m.impl("eye_", &eye_cpu);
  m.impl("dirac_", &dirac_cpu);
  m.impl("orthogonal_finish_", &orthogonal_finish_cpu);
}

}  // namespace pyinit::cpu
