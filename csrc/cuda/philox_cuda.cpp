// CUDA implementations of the philox stream's operators: the shared checks and call descriptions
// (csrc/validate.h, csrc/philox_host.h), then one launch of philox_kernels.cu. See docs/philox_stream.md.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_runtime_api.h>

#include "pyinit/philox_call.h"
#include "memory_order.h"
#include "philox_host.h"
#include "validate.h"

namespace pyinit::cuda {

// Defined in philox_kernels.cu (Note [Launchers declared by their caller], csrc/cuda/kernels.h). Writes the n
// local elements of a contiguous output (int32 words for PhiloxKind::kBits); every value is a pure function of its
// global element index (docs/philox_stream.md), so the launch shape never changes a value. Returns the launch error.
cudaError_t launch_philox(void* out, int64_t n, const PhiloxCall& call, const PhiloxShard& shard, cudaStream_t stream);

namespace {

// Launches `call` over self (through a contiguous buffer when self is a non-contiguous view).
void run(at::Tensor& self, const PhiloxCall& call, at::IntArrayRef global_shape, at::IntArrayRef start) {
  const PhiloxShard shard = ShardMap(self, global_shape, start).device_shard();
  if (!has_elements_to_write(self)) return;
  c10::cuda::CUDAGuard device_guard(self.device());
  RowMajorOutput out(self);
  const cudaError_t error = launch_philox(out.data(), out.numel(), call, shard, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_CHECK(error);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.commit();
}

}  // namespace

void philox_uniform_cuda(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                         at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  run(self, philox_uniform_call(self, low, high, /*mask=*/false, 0.0, key, offset), global_shape, start);
}

void philox_masked_uniform_cuda(at::Tensor self, double low, double high, double threshold, int64_t key, int64_t offset,
                                at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  run(self, philox_uniform_call(self, low, high, /*mask=*/true, threshold, key, offset), global_shape, start);
}

void philox_normal_cuda(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start) {
  validate_philox_normal(self, std);
  run(self, philox_normal_call(self, mean, std, key, offset), global_shape, start);
}

void philox_trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b, int64_t key, int64_t offset,
                              at::IntArrayRef global_shape, at::IntArrayRef start) {
  validate_philox_trunc_normal(self, std, a, b);
  run(self, philox_trunc_normal_call(self, mean, std, a, b, key, offset), global_shape, start);
}

void philox_bits_cuda(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                      at::IntArrayRef start) {
  validate_philox_bits(self);
  run(self, philox_bits_call(self, key, offset, stream), global_shape, start);
}

}  // namespace pyinit::cuda
