// pyinit's operator table (what native_functions.yaml is to ATen): every operator's schema, and the kernel each
// device registers for it, in one file. Kernels are defined in their area's file (namespace pyinit::cpu or
// pyinit::cuda, external linkage) and declared here; the fake (meta) implementations live in pyinit/_ops.py.
// In-place initializers mutate `Tensor(a!)` and return nothing: the Python wrappers return the tensor.
//
// Note [One operator table]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// An operator is one def line plus, per device, a declaration and an m.impl line below: the only
// TORCH_LIBRARY_IMPL(pyinit, CPU, m) and TORCH_LIBRARY_IMPL(pyinit, CUDA, m) blocks are in this file, so adding a
// kernel operator touches this file, its kernels and their glue, not a registration file per device. A
// declaration that does not match the definition leaves an undefined symbol: libpyinit_ops.so does not link
// (CMake passes -Wl,--no-undefined) and pyinit._C does not import. The CUDA block is compiled only into a CUDA
// build (setup.py defines PYINIT_WITH_CUDA); philox_sparse_, qr_serial_ and trunc_normal_uniform_ have no CUDA
// kernel by design (docs/decisions.md, .ci/check_registration.py). Every operator's Meta kernel is the one of
// csrc/meta.cpp, registered with its definition.
//
// Note [Kernels take final numbers]
// Fans, gains and bounds are computed in Python exactly as torch.nn.init computes them; an operator receives the
// final low/high, mean/std, bounds or threshold.

#include <ATen/core/stack.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <string_view>

// The philox stream's operators: counter-based, the value of the element with global row-major index i is a pure
// function of (key, offset, i, distribution, parameters, dtype) (docs/philox_stream.md). `key` and `offset` are
// unsigned 64-bit numbers passed as their int64 bit patterns. Sharding: with `global_shape` and `start` (one entry
// per dimension) `self` is the block of a tensor of shape global_shape that starts at `start`, and gets exactly
// that block's values; both empty means self is the whole tensor.
//
// The torch stream's random operators draw from a generator: they carry at::Tag::nondeterministic_seeded, so
// that torch.compile and AOTAutograd treat them as random (impure) operations. The philox operators take their
// key and offset as arguments: deterministic functions of those.
namespace pyinit {
void meta_kernel(const c10::OperatorHandle& op, torch::jit::Stack* stack);  // csrc/meta.cpp
}  // namespace pyinit

TORCH_LIBRARY(pyinit, m) {
  const std::vector<at::Tag> seeded = {at::Tag::nondeterministic_seeded};
  // Each operator is defined with the one Meta kernel (Note [Meta kernels do what torch's meta in-place ops do],
  // csrc/meta.cpp), so none can lack it.
  const auto def = [&m](const char* schema, const std::vector<at::Tag>& tags = {}) {
    m.def(schema, tags);
    const std::string name(schema, std::string_view(schema).find('('));
    m.impl(name.c_str(),
           torch::dispatch(c10::DispatchKey::Meta, torch::CppFunction::makeFromBoxedFunction<&pyinit::meta_kernel>()));
  };
  // The torch stream: bit-identical to torch's own kernels on the same device.
  def("uniform_(Tensor(a!) self, float low, float high, Generator? generator=None) -> ()", seeded);
  def("normal_(Tensor(a!) self, float mean, float std, Generator? generator=None) -> ()", seeded);
  def("masked_uniform_(Tensor(a!) self, float low, float high, float threshold, Generator? generator=None) -> ()",
      seeded);
  // torch >= 2.12 rejection sampling with normal proposals (taken when the mass inside [a, b] exceeds 0.3).
  def("trunc_normal_(Tensor(a!) self, float mean, float std, float a, float b, Generator? generator=None) -> ()",
      seeded);
  // torch >= 2.12's rejection sampling with uniform proposals (mass inside [a, b] at most 0.3), log_peak computed
  // in Python as torch computes it (Note [trunc_normal_ by uniform proposals]). CPU only.
  def("trunc_normal_uniform_(Tensor(a!) self, float mean, float std, float a, float b, float log_peak, "
      "Generator? generator=None) -> ()",
      seeded);
  // timm.layers.trunc_normal_'s composition (uniform_(low, high), erfinv_, mul_(scale), add_(shift),
  // clamp_(a, b), then, with post_scale/post_shift, trunc_normal_tf_'s mul_(post_scale), add_(post_shift)) in
  // two passes, bit-identical. float/double (Note [timm's trunc_normal_], csrc/cpu/timm_cpu.cpp).
  def("timm_trunc_normal_(Tensor(a!) self, float low, float high, float scale, float shift, float a, float b, "
      "float? post_scale=None, float? post_shift=None, Generator? generator=None) -> ()",
      seeded);
  // normal_(0, std) from `generator`, then per column the first `num_zeros` rows of a randperm drawn from the
  // default CPU generator are zeroed (torch.nn.init.sparse_ draws its permutations there).
  def("sparse_(Tensor(a!) self, int num_zeros, float std, Generator? generator=None) -> ()", seeded);
  // Deterministic initializers.
  def("fill_(Tensor(a!) self, float value) -> ()");
  def("eye_(Tensor(a!) self) -> ()");
  def("dirac_(Tensor(a!) self, int groups) -> ()");
  // The tail of orthogonal_: self (viewed as rows x cols) = gain * q * sign(diag(r)), with q of shape
  // (rows, cols), or (cols, rows) when `transposed`.
  def("orthogonal_finish_(Tensor(a!) self, Tensor q, Tensor r, float gain, bool transposed) -> ()");
  // The philox stream's QR: q, r = torch.linalg.qr(a) (reduced) computed with one thread (CPU).
  def("qr_serial_(Tensor(a!) q, Tensor(b!) r, Tensor a) -> ()");

  // The same calls on blocks of a tensor (a rank's shard of a DTensor): blocks[i] is the block of a contiguous tensor
  // of shape global_shape starting at starts[i * dim ..], and gets what the call on that whole tensor writes there;
  // the generator moves as that call moves it (Note [The torch stream on blocks], csrc/torch_blocks.h).
  def("uniform_blocks_(Tensor(a!)[] blocks, float low, float high, int[] global_shape, int[] starts, "
      "Generator? generator=None) -> ()",
      seeded);
  def("masked_uniform_blocks_(Tensor(a!)[] blocks, float low, float high, float threshold, int[] global_shape, "
      "int[] starts, Generator? generator=None) -> ()",
      seeded);
  def("normal_blocks_(Tensor(a!)[] blocks, float mean, float std, int[] global_shape, int[] starts, "
      "Generator? generator=None) -> ()",
      seeded);
  def("trunc_normal_blocks_(Tensor(a!)[] blocks, float mean, float std, float a, float b, int[] global_shape, "
      "int[] starts, Generator? generator=None) -> ()",
      seeded);
  // sparse_(tensor, sparsity, std) on blocks: num_zeros = ceil(sparsity * rows) as the single-tensor operator takes
  // it; the zero pattern comes from the default CPU generator, as there.
  def("sparse_blocks_(Tensor(a!)[] blocks, int num_zeros, float std, int[] global_shape, int[] starts, "
      "Generator? generator=None) -> ()",
      seeded);

  // Many tensors in one call: entry i of every list goes with selfs[i]. The same values and generator state as
  // the single-tensor operator called on each tensor in list order; every entry is validated before the first
  // write. Composite (csrc/many.cpp), with CPU kernels: the torch stream's draw a run of tensors as one draw
  // (Note [Many calls, one draw]), the philox ones fill every tensor in one parallel region.
  def("uniform_many_(Tensor(a!)[] selfs, float[] low, float[] high, Generator? generator=None) -> ()", seeded);
  def("normal_many_(Tensor(a!)[] selfs, float[] mean, float[] std, Generator? generator=None) -> ()", seeded);
  def("philox_uniform_many_(Tensor(a!)[] selfs, float[] low, float[] high, int[] key, int[] offset) -> ()");
  def("philox_normal_many_(Tensor(a!)[] selfs, float[] mean, float[] std, int[] key, int[] offset) -> ()");

  // The philox stream.
  def("philox_uniform_(Tensor(a!) self, float low, float high, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  def("philox_normal_(Tensor(a!) self, float mean, float std, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  def("philox_masked_uniform_(Tensor(a!) self, float low, float high, float threshold, int key, int offset, "
      "int[] global_shape=[], int[] start=[]) -> ()");
  def("philox_trunc_normal_(Tensor(a!) self, float mean, float std, float a, float b, int key, int offset, "
      "int[] global_shape=[], int[] start=[]) -> ()");
  // Raw Philox words (int32 tensor), one per element in the one-word tile map, at counter stream `stream`.
  def("philox_bits_(Tensor(a!) self, int key, int offset, int stream, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  // sparse_ on a 2-D `self` (CPU): the values of philox_normal_(0, std), then zero (all-zero bytes) in the
  // elements that are among the num_zeros smallest (philox_bits_ word at stream 1, row) of their column. With
  // std=None only the zeros are written (any dtype: a bool tensor of ones gives the pattern for other devices).
  def("philox_sparse_(Tensor(a!) self, int num_zeros, float? std, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");

  // The philox operators with their (key, offset) drawn from `generator` (None: the default CPU generator) as
  // pyinit/_streams.py draw_key draws it, given back if the operator raises (csrc/philox_drawn.cpp). What a
  // compiled function calls: the key is drawn when the graph runs, as eager draws it (Note [The philox stream
  // under torch.compile], pyinit/_streams.py). Random (seeded) as the torch stream's operators.
  def("philox_uniform_drawn_(Tensor(a!) self, float low, float high, Generator? generator=None) -> ()", seeded);
  def("philox_normal_drawn_(Tensor(a!) self, float mean, float std, Generator? generator=None) -> ()", seeded);
  def("philox_masked_uniform_drawn_(Tensor(a!) self, float low, float high, float threshold, "
      "Generator? generator=None) -> ()",
      seeded);
  def("philox_trunc_normal_drawn_(Tensor(a!) self, float mean, float std, float a, float b, "
      "Generator? generator=None) -> ()",
      seeded);
  def("philox_sparse_drawn_(Tensor(a!) self, int num_zeros, float std, Generator? generator=None) -> ()", seeded);
}

namespace pyinit {

// Each kernel's C++ signature, once for both devices: PYINIT_KERNELS(op, args) declares pyinit::cpu::op_cpu and
// pyinit::cuda::op_cuda (a declaration nothing registers, such as philox_sparse_cuda, is never referenced).
#define PYINIT_KERNELS(op, ...) \
  namespace cpu {               \
  void op##_cpu(__VA_ARGS__);   \
  }                             \
  namespace cuda {              \
  void op##_cuda(__VA_ARGS__);  \
  }

using Gen = std::optional<at::Generator>;
using at::IntArrayRef;
using at::Tensor;
// The torch stream (csrc/{cpu,cuda}/torch_stream_*.cpp, csrc/cpu/sparse_cpu.cpp).
PYINIT_KERNELS(uniform, Tensor self, double low, double high, Gen generator)
PYINIT_KERNELS(masked_uniform, Tensor self, double low, double high, double threshold, Gen generator)
PYINIT_KERNELS(normal, Tensor self, double mean, double std, Gen generator)
PYINIT_KERNELS(trunc_normal, Tensor self, double mean, double std, double a, double b, Gen generator)
PYINIT_KERNELS(trunc_normal_uniform, Tensor self, double mean, double std, double a, double b, double log_peak,
               Gen generator)
PYINIT_KERNELS(sparse, Tensor self, int64_t num_zeros, double std, Gen generator)
PYINIT_KERNELS(uniform_blocks, at::TensorList blocks, double low, double high, IntArrayRef global_shape,
               IntArrayRef starts, Gen generator)
PYINIT_KERNELS(masked_uniform_blocks, at::TensorList blocks, double low, double high, double threshold,
               IntArrayRef global_shape, IntArrayRef starts, Gen generator)
PYINIT_KERNELS(normal_blocks, at::TensorList blocks, double mean, double std, IntArrayRef global_shape,
               IntArrayRef starts, Gen generator)
PYINIT_KERNELS(trunc_normal_blocks, at::TensorList blocks, double mean, double std, double a, double b,
               IntArrayRef global_shape, IntArrayRef starts, Gen generator)
// sparse_ on blocks, one kernel for every device (csrc/cpu/sparse_cpu.cpp): normal_blocks_, then the zeros.
void sparse_blocks(at::TensorList blocks, int64_t num_zeros, double std, IntArrayRef global_shape, IntArrayRef starts,
                   Gen generator);
// timm's truncated normal (csrc/cpu/timm_cpu.cpp, csrc/cuda/timm_cuda.cpp).
PYINIT_KERNELS(timm_trunc_normal, Tensor self, double low, double high, double scale, double shift, double a, double b,
               std::optional<double> post_scale, std::optional<double> post_shift, Gen generator)
// Deterministic (csrc/{cpu,cuda}/structured_*.cpp).
PYINIT_KERNELS(fill, Tensor self, double value)
PYINIT_KERNELS(eye, Tensor self)
PYINIT_KERNELS(dirac, Tensor self, int64_t groups)
PYINIT_KERNELS(orthogonal_finish, Tensor self, Tensor q, Tensor r, double gain, bool transposed)
PYINIT_KERNELS(qr_serial, Tensor q, Tensor r, Tensor a)
// The philox stream (csrc/{cpu,cuda}/philox_*.cpp). `global_shape` and `start` describe the shard.
PYINIT_KERNELS(philox_uniform, Tensor self, double low, double high, int64_t key, int64_t offset,
               IntArrayRef global_shape, IntArrayRef start)
PYINIT_KERNELS(philox_masked_uniform, Tensor self, double low, double high, double threshold, int64_t key,
               int64_t offset, IntArrayRef global_shape, IntArrayRef start)
PYINIT_KERNELS(philox_normal, Tensor self, double mean, double std, int64_t key, int64_t offset,
               IntArrayRef global_shape, IntArrayRef start)
PYINIT_KERNELS(philox_trunc_normal, Tensor self, double mean, double std, double a, double b, int64_t key,
               int64_t offset, IntArrayRef global_shape, IntArrayRef start)
PYINIT_KERNELS(philox_bits, Tensor self, int64_t key, int64_t offset, int64_t stream, IntArrayRef global_shape,
               IntArrayRef start)
PYINIT_KERNELS(philox_sparse, Tensor self, int64_t num_zeros, std::optional<double> stddev, int64_t key, int64_t offset,
               IntArrayRef global_shape, IntArrayRef start)
// Many tensors (csrc/many.cpp: composite, any device; csrc/cpu/torch_stream_many_cpu.cpp and
// csrc/cpu/philox_cpu.cpp: the CPU fusions).
using Doubles = c10::ArrayRef<double>;
void uniform_many(at::TensorList selfs, Doubles low, Doubles high, Gen generator);
void normal_many(at::TensorList selfs, Doubles mean, Doubles std, Gen generator);
void philox_uniform_many(at::TensorList selfs, Doubles low, Doubles high, IntArrayRef key, IntArrayRef offset);
void philox_normal_many(at::TensorList selfs, Doubles mean, Doubles std, IntArrayRef key, IntArrayRef offset);
PYINIT_KERNELS(uniform_many, at::TensorList selfs, Doubles low, Doubles high, Gen generator)
PYINIT_KERNELS(normal_many, at::TensorList selfs, Doubles mean, Doubles std, Gen generator)
PYINIT_KERNELS(philox_uniform_many, at::TensorList selfs, Doubles low, Doubles high, IntArrayRef key,
               IntArrayRef offset)
PYINIT_KERNELS(philox_normal_many, at::TensorList selfs, Doubles mean, Doubles std, IntArrayRef key, IntArrayRef offset)
#undef PYINIT_KERNELS
// The philox operators that draw their key (csrc/philox_drawn.cpp: composite, any device).
void philox_uniform_drawn(Tensor self, double low, double high, Gen generator);
void philox_normal_drawn(Tensor self, double mean, double std, Gen generator);
void philox_masked_uniform_drawn(Tensor self, double low, double high, double threshold, Gen generator);
void philox_trunc_normal_drawn(Tensor self, double mean, double std, double a, double b, Gen generator);
void philox_sparse_drawn(Tensor self, int64_t num_zeros, double std, Gen generator);

TORCH_LIBRARY_IMPL(pyinit, CompositeExplicitAutograd, m) {
  m.impl("uniform_many_", &uniform_many);
  m.impl("normal_many_", &normal_many);
  m.impl("philox_uniform_many_", &philox_uniform_many);
  m.impl("philox_normal_many_", &philox_normal_many);
  m.impl("philox_uniform_drawn_", &philox_uniform_drawn);
  m.impl("philox_normal_drawn_", &philox_normal_drawn);
  m.impl("philox_masked_uniform_drawn_", &philox_masked_uniform_drawn);
  m.impl("philox_trunc_normal_drawn_", &philox_trunc_normal_drawn);
  m.impl("philox_sparse_drawn_", &philox_sparse_drawn);
}

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("uniform_", &cpu::uniform_cpu);
  m.impl("masked_uniform_", &cpu::masked_uniform_cpu);
  m.impl("normal_", &cpu::normal_cpu);
  m.impl("trunc_normal_", &cpu::trunc_normal_cpu);
  m.impl("trunc_normal_uniform_", &cpu::trunc_normal_uniform_cpu);
  m.impl("sparse_", &cpu::sparse_cpu);
  m.impl("uniform_blocks_", &cpu::uniform_blocks_cpu);
  m.impl("masked_uniform_blocks_", &cpu::masked_uniform_blocks_cpu);
  m.impl("normal_blocks_", &cpu::normal_blocks_cpu);
  m.impl("trunc_normal_blocks_", &cpu::trunc_normal_blocks_cpu);
  m.impl("sparse_blocks_", &sparse_blocks);
  m.impl("timm_trunc_normal_", &cpu::timm_trunc_normal_cpu);
  m.impl("fill_", &cpu::fill_cpu);
  m.impl("eye_", &cpu::eye_cpu);
  m.impl("dirac_", &cpu::dirac_cpu);
  m.impl("orthogonal_finish_", &cpu::orthogonal_finish_cpu);
  m.impl("qr_serial_", &cpu::qr_serial_cpu);
  m.impl("philox_uniform_", &cpu::philox_uniform_cpu);
  m.impl("philox_normal_", &cpu::philox_normal_cpu);
  m.impl("philox_masked_uniform_", &cpu::philox_masked_uniform_cpu);
  m.impl("philox_trunc_normal_", &cpu::philox_trunc_normal_cpu);
  m.impl("philox_bits_", &cpu::philox_bits_cpu);
  m.impl("philox_sparse_", &cpu::philox_sparse_cpu);
  m.impl("uniform_many_", &cpu::uniform_many_cpu);
  m.impl("normal_many_", &cpu::normal_many_cpu);
  m.impl("philox_uniform_many_", &cpu::philox_uniform_many_cpu);
  m.impl("philox_normal_many_", &cpu::philox_normal_many_cpu);
}

#ifdef PYINIT_WITH_CUDA
TORCH_LIBRARY_IMPL(pyinit, CUDA, m) {
  m.impl("uniform_", &cuda::uniform_cuda);
  m.impl("masked_uniform_", &cuda::masked_uniform_cuda);
  m.impl("normal_", &cuda::normal_cuda);
  m.impl("trunc_normal_", &cuda::trunc_normal_cuda);
  m.impl("sparse_", &cuda::sparse_cuda);
  m.impl("uniform_blocks_", &cuda::uniform_blocks_cuda);
  m.impl("masked_uniform_blocks_", &cuda::masked_uniform_blocks_cuda);
  m.impl("normal_blocks_", &cuda::normal_blocks_cuda);
  m.impl("trunc_normal_blocks_", &cuda::trunc_normal_blocks_cuda);
  m.impl("sparse_blocks_", &sparse_blocks);
  m.impl("timm_trunc_normal_", &cuda::timm_trunc_normal_cuda);
  m.impl("fill_", &cuda::fill_cuda);
  m.impl("eye_", &cuda::eye_cuda);
  m.impl("dirac_", &cuda::dirac_cuda);
  m.impl("orthogonal_finish_", &cuda::orthogonal_finish_cuda);
  m.impl("philox_uniform_", &cuda::philox_uniform_cuda);
  m.impl("philox_normal_", &cuda::philox_normal_cuda);
  m.impl("philox_masked_uniform_", &cuda::philox_masked_uniform_cuda);
  m.impl("philox_trunc_normal_", &cuda::philox_trunc_normal_cuda);
  m.impl("philox_bits_", &cuda::philox_bits_cuda);
}
#endif  // PYINIT_WITH_CUDA

}  // namespace pyinit
