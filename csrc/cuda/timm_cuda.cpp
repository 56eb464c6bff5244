// The CUDA glue of timm's trunc_normal_: pyinit's torch-stream uniform_ (torch's CUDA values and Philox offsets),
// then the elementwise kernel of timm_kernels.cu. See Note [timm's trunc_normal_] (csrc/cpu/timm_cpu.cpp).
// Compiled, never run on a GPU yet.

#include "cuda/cuda_glue.h"
#include "validate.h"

namespace pyinit::cuda {

// Defined in timm_kernels.cu (Note [Launchers declared by their caller]) and torch_stream_cuda.cpp.
void launch_timm_trunc_normal_finish(DType dtype, void* data, int64_t n, double scale, double shift, double lo,
                                     double hi, bool post, double post_scale, double post_shift, cudaStream_t stream);
void uniform_cuda(at::Tensor self, double low, double high, std::optional<at::Generator> generator);

void timm_trunc_normal_cuda(at::Tensor self, double low, double high, double scale, double shift, double a, double b,
                            std::optional<double> post_scale, std::optional<double> post_shift,
                            std::optional<at::Generator> generator) {
  validate_timm_trunc_normal(self, post_scale, post_shift);
  uniform_cuda(self, low, high, generator);  // validates low/high first; counts one write
  count_extra_writes(self, post_scale.has_value() ? 6 : 4);
  if (self.numel() == 0) return;
  c10::cuda::CUDAGuard device_guard(self.device());
  launch_timm_trunc_normal_finish(to_dtype(self.scalar_type()), self.data_ptr(), self.numel(), scale, shift, a, b,
                                  post_scale.has_value(), post_scale.value_or(1.0), post_shift.value_or(0.0),
                                  c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace pyinit::cuda
