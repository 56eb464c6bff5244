// The CPU kernels of every pyinit operator, declared and registered in one place: the only
// TORCH_LIBRARY_IMPL(pyinit, CPU, m) block. The schemas are in csrc/ops.cpp; each kernel is defined in its
// area's file. See Note [One registration per device].
//
// Note [One registration per device]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Each device has one file that declares its kernels and registers them (csrc/cpu/register_cpu.cpp,
// csrc/cuda/register_cuda.cpp), instead of a registration block at the end of every kernel file and a header
// of declarations: an operator's kernel is written in its area's file (namespace pyinit::cpu or pyinit::cuda,
// external linkage) and listed here, two lines. A declaration that does not match the definition leaves an
// undefined symbol: libpyinit_ops.so does not link (CMake passes -Wl,--no-undefined) and pyinit._C does not
// import.

#include <torch/library.h>

#include <optional>

namespace pyinit::cpu {

// torch stream (torch_stream_cpu.cpp, sparse_cpu.cpp)
void uniform_cpu(at::Tensor self, double low, double high, std::optional<at::Generator> generator);
void masked_uniform_cpu(at::Tensor self, double low, double high, double threshold,
                        std::optional<at::Generator> generator);
void normal_cpu(at::Tensor self, double mean, double std, std::optional<at::Generator> generator);
void trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b,
                      std::optional<at::Generator> generator);
void sparse_cpu(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator);
// deterministic (structured_cpu.cpp)
void fill_cpu(at::Tensor self, double value);
void eye_cpu(at::Tensor self);
void dirac_cpu(at::Tensor self, int64_t groups);
void orthogonal_finish_cpu(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed);
// philox stream (philox_cpu.cpp)
void philox_uniform_cpu(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_masked_uniform_cpu(at::Tensor self, double low, double high, double threshold, int64_t key, int64_t offset,
                               at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_normal_cpu(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                       at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b, int64_t key, int64_t offset,
                             at::IntArrayRef global_shape, at::IntArrayRef start);
void philox_bits_cpu(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                     at::IntArrayRef start);
void philox_sparse_cpu(at::Tensor self, int64_t num_zeros, std::optional<double> stddev, int64_t key, int64_t offset,
                       at::IntArrayRef global_shape, at::IntArrayRef start);

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("uniform_", &uniform_cpu);
  m.impl("masked_uniform_", &masked_uniform_cpu);
  m.impl("normal_", &normal_cpu);
  m.impl("trunc_normal_", &trunc_normal_cpu);
  m.impl("sparse_", &sparse_cpu);
  m.impl("fill_", &fill_cpu);
  m.impl("eye_", &eye_cpu);
  m.impl("dirac_", &dirac_cpu);
  m.impl("orthogonal_finish_", &orthogonal_finish_cpu);
  m.impl("philox_uniform_", &philox_uniform_cpu);
  m.impl("philox_normal_", &philox_normal_cpu);
  m.impl("philox_masked_uniform_", &philox_masked_uniform_cpu);
  m.impl("philox_trunc_normal_", &philox_trunc_normal_cpu);
  m.impl("philox_bits_", &philox_bits_cpu);
  m.impl("philox_sparse_", &philox_sparse_cpu);
}

}  // namespace pyinit::cpu
