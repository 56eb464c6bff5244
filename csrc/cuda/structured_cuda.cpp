// CUDA implementations of the deterministic initializers (fill_, eye_, dirac_) and of the tail of orthogonal_:
// the shared checks (csrc/validate.h), then one kernel of structured_kernels.cu each.

#include "cuda/cuda_glue.h"
#include "validate.h"

namespace pyinit::cuda {

// The launchers this glue calls, defined in structured_kernels.cu (Note [Launchers declared by their caller],
// csrc/cuda/kernels.h).
void launch_fill(DType dtype, const Layout& out, double value, cudaStream_t stream);
void launch_eye(DType dtype, const Layout& out, cudaStream_t stream);                    // out: 2-d
void launch_dirac(DType dtype, const Layout& out, int64_t groups, cudaStream_t stream);  // out: 3- to 5-d
void launch_orthogonal_finish(DType dtype, const Layout& out, const OrthogonalParams& params, cudaStream_t stream);

void fill_cuda(at::Tensor self, double value) {
  if (!validate_fill(self, value)) return;
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
  if (!validate_eye(self)) return;
  c10::cuda::CUDAGuard device_guard(self.device());
  launch_eye(to_dtype(self.scalar_type()), make_layout(self), c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void dirac_cuda(at::Tensor self, int64_t groups) {
  if (!validate_dirac(self, groups)) return;
  // torch: zero_(), then one indexed write per delta (see the CPU version).
  count_extra_writes(self, groups * std::min(self.size(0) / groups, self.size(1)));
  c10::cuda::CUDAGuard device_guard(self.device());
  launch_dirac(to_dtype(self.scalar_type()), make_layout(self), groups, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// See the CPU version: q *= sign(diag(r)); (q.t_() when transposed); self.copy_(q); self.mul_(gain).
void orthogonal_finish_cuda(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed) {
  if (!validate_orthogonal_finish(self, q, r, transposed)) return;
  count_extra_writes(self, 1);  // torch: copy_(q), then mul_(gain)
  c10::cuda::CUDAGuard device_guard(self.device());
  const at::Tensor q_c = q.contiguous();
  const at::Tensor diag = r.diagonal().contiguous();
  const OrthogonalParams params{q_c.data_ptr(), diag.data_ptr(), to_dtype(q_c.scalar_type()),
                                q_c.size(1),    transposed,      gain};
  launch_orthogonal_finish(to_dtype(self.scalar_type()), make_layout(self), params, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace pyinit::cuda
