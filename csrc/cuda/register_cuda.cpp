// The CUDA kernels of every pyinit operator, declared and registered in one place: the only
// TORCH_LIBRARY_IMPL(pyinit, CUDA, m) block. See Note [One registration per device] (csrc/cpu/register_cpu.cpp).
// philox_sparse_ has no CUDA kernel by design (docs/decisions.md, .ci/check_registration.py).

#include <torch/library.h>

#include <optional>

namespace pyinit::cuda {

// torch stream (torch_stream_cuda.cpp)
void uniform_cuda(at::Tensor self, double low, double high, std::optional<at::Generator> generator);
void masked_uniform_cuda(at::Tensor self, double low, double high, double threshold,
                         std::optional<at::Generator> generator);
void normal_cuda(at::Tensor self, double mean, double std, std::optional<at::Generator> generator);
void trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b,
                       std::optional<at::Generator> generator);
void sparse_cuda(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator);
// deterministic (structured_cuda.cpp)
void fill_cuda(at::Tensor self, double value);
void eye_cuda(at::Tensor self);
void dirac_cuda(at::Tensor self, int64_t groups);
void orthogonal_finish_cuda(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed);
// philox stream (philox_cuda.cpp)
void philox_uniform_cuda(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                         at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_masked_uniform_cuda(at::Tensor self, double low, double high, double threshold, int64_t key, int64_t offset,
                                at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_normal_cuda(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b, int64_t key, int64_t offset,
                              at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_bits_cuda(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                      at::IntArrayRef start);

TORCH_LIBRARY_IMPL(pyinit, CUDA, m) {
  m.impl("uniform_", &uniform_cuda);
  m.impl("masked_uniform_", &masked_uniform_cuda);
  m.impl("normal_", &normal_cuda);
  m.impl("trunc_normal_", &trunc_normal_cuda);
  m.impl("sparse_", &sparse_cuda);
  m.impl("fill_", &fill_cuda);
  m.impl("eye_", &eye_cuda);
  m.impl("dirac_", &dirac_cuda);
  m.impl("orthogonal_finish_", &orthogonal_finish_cuda);
  m.impl("philox_uniform_", &philox_uniform_cuda);
  m.impl("philox_normal_", &philox_normal_cuda);
  m.impl("philox_masked_uniform_", &philox_masked_uniform_cuda);
  m.impl("philox_trunc_normal_", &philox_trunc_normal_cuda);
  m.impl("philox_bits_", &philox_bits_cuda);
}

}  // namespace pyinit::cuda
