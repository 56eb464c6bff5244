// CUDA implementations of the philox stream's operators: checks, the shard map and the launch of
// philox_kernels.cu. See Note [The philox stream] in csrc/pyinit/philox_transforms.h.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../checks.h"
#include "philox_kernels.h"

namespace pyinit::cuda::philox {
namespace {

PhiloxDtype to_philox_dtype(at::ScalarType type) {
  switch (type) {
    case at::kHalf: return PhiloxDtype::kHalf;
    case at::kBFloat16: return PhiloxDtype::kBFloat16;
    case at::kFloat: return PhiloxDtype::kFloat;
    default: return PhiloxDtype::kDouble;
  }
}

ShardDims shard_dims(const at::Tensor& self, at::IntArrayRef global_shape, at::IntArrayRef start) {
  ShardDims shard;
  if (global_shape.empty() && start.empty()) return shard;
  const int64_t dim = self.dim();
  TORCH_CHECK(static_cast<int64_t>(global_shape.size()) == dim && static_cast<int64_t>(start.size()) == dim,
              "pyinit philox: global_shape and start must have one entry per dimension of the tensor (", dim,
              "), got ", global_shape.size(), " and ", start.size());
  TORCH_CHECK(dim <= kMaxShardDims, "pyinit philox: shards of more than ", kMaxShardDims,
              " dimensions are not supported on CUDA");
  int64_t stride = 1;
  for (int64_t k = dim - 1; k >= 0; --k) {
    TORCH_CHECK(start[k] >= 0 && start[k] + self.size(k) <= global_shape[k], "pyinit philox: the block ",
                self.sizes(), " at ", start, " does not fit in the global shape ", global_shape);
    shard.local[k] = self.size(k);
    shard.start[k] = start[k];
    shard.global_stride[k] = stride;
    stride *= global_shape[k];
  }
  shard.dim = static_cast<int>(dim);
  return shard;
}

// Launches `kind` over self (through a contiguous buffer when self is a non-contiguous view).
void run(at::Tensor& self, Kind kind, Params params, int64_t key, int64_t offset, at::IntArrayRef global_shape,
         at::IntArrayRef start) {
  const ShardDims shard = shard_dims(self, global_shape, start);
  if (self.numel() == 0) return;
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  params.key = static_cast<uint64_t>(key);
  params.offset = static_cast<uint64_t>(offset);
  at::Tensor buffer = self.is_contiguous() ? self : at::empty(self.sizes(), self.options());
  const cudaError_t error = launch_philox(kind, to_philox_dtype(self.scalar_type()), buffer.data_ptr(),
                                          buffer.numel(), params, shard, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_CHECK(error);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (!buffer.is_same(self)) self.copy_(buffer);
}

Params uniform_params(double low, double high, double threshold) {
  Params p;
  p.low = low;
  p.span = high - low;
  p.threshold = threshold;
  p.low_f = static_cast<float>(low);
  p.span_f = static_cast<float>(high - low);
  p.threshold_f = static_cast<float>(threshold);
  return p;
}

void philox_uniform_cuda(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                         at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  run(self, Kind::kUniform, uniform_params(low, high, 0.0), key, offset, global_shape, start);
}

void philox_masked_uniform_cuda(at::Tensor self, double low, double high, double threshold, int64_t key,
                                int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  run(self, Kind::kMaskedUniform, uniform_params(low, high, threshold), key, offset, global_shape, start);
}

void philox_normal_cuda(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_floating(self, "normal_");
  check_normal_std(std);
  Params p;
  p.mean = mean;
  p.std = std;
  p.mean_f = static_cast<float>(mean);
  p.std_f = static_cast<float>(std);
  run(self, Kind::kNormal, p, key, offset, global_shape, start);
}

void philox_trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b, int64_t key,
                              int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_floating(self, "trunc_normal_");
  TORCH_CHECK(std > 0.0, "pyinit philox trunc_normal_: expected std > 0, got ", std);
  TORCH_CHECK(a < b, "pyinit philox trunc_normal_: expected a < b, got a=", a, ", b=", b);
  Params p;
  p.trunc = philox_trunc_params(mean, std, a, b);
  run(self, Kind::kTruncNormal, p, key, offset, global_shape, start);
}

void philox_bits_cuda(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                      at::IntArrayRef start) {
  TORCH_CHECK(self.scalar_type() == at::kInt, "pyinit philox_bits_: expected an int32 tensor, got ",
              self.scalar_type());
  Params p;
  p.stream = static_cast<uint64_t>(stream);
  run(self, Kind::kBits, p, key, offset, global_shape, start);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CUDA, m) {
  m.impl("philox_uniform_", &philox_uniform_cuda);
  m.impl("philox_normal_", &philox_normal_cuda);
  m.impl("philox_masked_uniform_", &philox_masked_uniform_cuda);
  m.impl("philox_trunc_normal_", &philox_trunc_normal_cuda);
  m.impl("philox_bits_", &philox_bits_cuda);
}

}  // namespace pyinit::cuda::philox
