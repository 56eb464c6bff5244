// CUDA implementations of the deterministic initializers (fill_, eye_, dirac_) and of the tail of orthogonal_:
// checks as on CPU (csrc/cpu/structured_cpu.cpp), then one kernel of structured_kernels.cu each.

#include <torch/library.h>

#include "cuda_glue.h"

namespace pyinit::cuda {
namespace {

void fill_cuda(at::Tensor self, double value) {
  check_floating(self, "fill_");
  if (self.numel() == 0) return;
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  if (!self.is_non_overlapping_and_dense() && self.dim() > kMaxDims) {
    self.fill_(value);  // same values; torch's strided kernel handles any rank
    return;
  }
  Layout layout{};
  if (self.is_non_overlapping_and_dense()) {
    // A dense tensor occupies numel consecutive elements from its first one, in some order: fill them flat.
    layout.data = self.data_ptr();
    layout.dims = 1;
    layout.numel = self.numel();
    layout.contiguous = true;
    layout.sizes[0] = self.numel();
    layout.strides[0] = 1;
  } else {
    layout = make_layout(self);
  }
  launch_fill(to_dtype(self.scalar_type()), layout, value, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void eye_cuda(at::Tensor self) {
  check_floating(self, "eye_");
  TORCH_CHECK(self.dim() == 2, "Only tensors with 2 dimensions are supported");
  if (self.numel() == 0) return;
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  launch_eye(to_dtype(self.scalar_type()), make_layout(self), c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void dirac_cuda(at::Tensor self, int64_t groups) {
  check_floating(self, "dirac_");
  const int64_t dims = self.dim();
  TORCH_CHECK(dims >= 3 && dims <= 5, "Only tensors with 3, 4, or 5 dimensions are supported");
  TORCH_CHECK(groups > 0 && self.size(0) % groups == 0, "dim 0 must be divisible by groups");
  if (self.numel() == 0) return;
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  launch_dirac(to_dtype(self.scalar_type()), make_layout(self), groups, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// See the CPU version: q *= sign(diag(r)); (q.t_() when transposed); self.copy_(q); self.mul_(gain).
void orthogonal_finish_cuda(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed) {
  check_floating(self, "orthogonal_");
  TORCH_CHECK(self.dim() == 2, "pyinit.orthogonal_finish_: expected the (rows, cols) view");
  if (self.numel() == 0) return;
  check_writable(self);
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "pyinit.orthogonal_finish_: q must be float32 or float64, got ", q.scalar_type());
  TORCH_CHECK(r.scalar_type() == q.scalar_type(), "pyinit.orthogonal_finish_: q and r must have the same dtype");
  TORCH_CHECK(q.device() == self.device() && r.device() == self.device(),
              "pyinit.orthogonal_finish_: q and r must be on ", self.device());
  TORCH_CHECK(q.dim() == 2 && r.dim() == 2, "pyinit.orthogonal_finish_: q and r must be matrices");
  const int64_t q_rows = transposed ? self.size(1) : self.size(0);
  const int64_t q_cols = transposed ? self.size(0) : self.size(1);
  TORCH_CHECK(q.size(0) == q_rows && q.size(1) == q_cols, "pyinit.orthogonal_finish_: q has shape ", q.sizes(),
              ", expected (", q_rows, ", ", q_cols, ")");
  TORCH_CHECK(std::min(r.size(0), r.size(1)) >= q_cols, "pyinit.orthogonal_finish_: r has too few diagonal entries");
  c10::cuda::CUDAGuard device_guard(self.device());
  const at::Tensor q_c = q.contiguous();
  const at::Tensor diag = r.diagonal().contiguous();
  const OrthogonalParams params{q_c.data_ptr(), diag.data_ptr(), to_dtype(q_c.scalar_type()), q_c.size(1),
                                transposed, gain};
  launch_orthogonal_finish(to_dtype(self.scalar_type()), make_layout(self), params,
                           c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CUDA, m) {
  m.impl("fill_", &fill_cuda);
  m.impl("eye_", &eye_cuda);
  m.impl("dirac_", &dirac_cuda);
  m.impl("orthogonal_finish_", &orthogonal_finish_cuda);
}

}  // namespace pyinit::cuda
