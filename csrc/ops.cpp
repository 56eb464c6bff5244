// Every pyinit operator schema, once. Backends implement them in csrc/cpu and csrc/cuda; the fake (meta)
// implementations live in pyinit/_ops.py. In-place initializers mutate `Tensor(a!)` and return nothing: the
// Python wrappers return the tensor.
//
// Note [Kernels take final numbers]
// Fans, gains and bounds are computed in Python exactly as torch.nn.init computes them; an operator receives the
// final low/high, mean/std, bounds or threshold.

#include <torch/library.h>

#ifdef PYINIT_PYTHON_MODULE
#include <Python.h>
extern "C" {
// An empty module: importing pyinit._C loads this library, whose static initializers register the operators.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}
#endif

// The philox stream's operators: counter-based, the value of the element with global row-major index i is a pure
// function of (key, offset, i, distribution, parameters, dtype) (docs/philox_stream.md). `key` and `offset` are
// unsigned 64-bit numbers passed as their int64 bit patterns. Sharding: with `global_shape` and `start` (one entry
// per dimension) `self` is the block of a tensor of shape global_shape that starts at `start`, and gets exactly
// that block's values; both empty means self is the whole tensor.
//
// The torch stream's random operators draw from a generator: they carry at::Tag::nondeterministic_seeded, so
// that torch.compile and AOTAutograd treat them as random (impure) operations. The philox operators take their
// key and offset as arguments: deterministic functions of those.
TORCH_LIBRARY(pyinit, m) {
  const std::vector<at::Tag> seeded = {at::Tag::nondeterministic_seeded};
  // The torch stream: bit-identical to torch's own kernels on the same device.
  m.def("uniform_(Tensor(a!) self, float low, float high, Generator? generator=None) -> ()", seeded);
  m.def("normal_(Tensor(a!) self, float mean, float std, Generator? generator=None) -> ()", seeded);
  m.def("masked_uniform_(Tensor(a!) self, float low, float high, float threshold, Generator? generator=None) -> ()",
        seeded);
  // torch >= 2.12 rejection sampling with normal proposals (taken when the mass inside [a, b] exceeds 0.3).
  m.def("trunc_normal_(Tensor(a!) self, float mean, float std, float a, float b, Generator? generator=None) -> ()",
        seeded);
  // normal_(0, std) from `generator`, then per column the first `num_zeros` rows of a randperm drawn from the
  // default CPU generator are zeroed (torch.nn.init.sparse_ draws its permutations there).
  m.def("sparse_(Tensor(a!) self, int num_zeros, float std, Generator? generator=None) -> ()", seeded);
  // Deterministic initializers.
  m.def("fill_(Tensor(a!) self, float value) -> ()");
  m.def("eye_(Tensor(a!) self) -> ()");
  m.def("dirac_(Tensor(a!) self, int groups) -> ()");
  // The tail of orthogonal_: self (viewed as rows x cols) = gain * q * sign(diag(r)), with q of shape
  // (rows, cols), or (cols, rows) when `transposed`.
  m.def("orthogonal_finish_(Tensor(a!) self, Tensor q, Tensor r, float gain, bool transposed) -> ()");

  // The philox stream.
  m.def(
      "philox_uniform_(Tensor(a!) self, float low, float high, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  m.def(
      "philox_normal_(Tensor(a!) self, float mean, float std, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  m.def(
      "philox_masked_uniform_(Tensor(a!) self, float low, float high, float threshold, int key, int offset, "
      "int[] global_shape=[], int[] start=[]) -> ()");
  m.def(
      "philox_trunc_normal_(Tensor(a!) self, float mean, float std, float a, float b, int key, int offset, "
      "int[] global_shape=[], int[] start=[]) -> ()");
  // Raw Philox words (int32 tensor), one per element in the one-word tile map, at counter stream `stream`.
  m.def(
      "philox_bits_(Tensor(a!) self, int key, int offset, int stream, int[] global_shape=[], "
      "int[] start=[]) -> ()");
  // sparse_ on a 2-D `self` (CPU): the values of philox_normal_(0, std), then zero (all-zero bytes) in the
  // elements that are among the num_zeros smallest (philox_bits_ word at stream 1, row) of their column. With
  // std=None only the zeros are written (any dtype: a bool tensor of ones gives the pattern for other devices).
  m.def(
      "philox_sparse_(Tensor(a!) self, int num_zeros, float? std, int key, int offset, int[] global_shape=[], "
      "int[] start=[]) -> ()");
}
