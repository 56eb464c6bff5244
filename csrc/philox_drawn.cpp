// The philox operators that draw their own (key, offset): philox_<op>_drawn_(self, params..., generator) draws the
// key from `generator` (None: the default CPU generator, whatever self's device) exactly as pyinit/_streams.py
// draw_key does, then runs pyinit::philox_<op>_ on the whole tensor through the dispatcher; if that raises, the
// generator is put back. Composite (any device with a philox_<op>_ kernel); the Meta kernel (csrc/meta.cpp) draws
// nothing. Tagged nondeterministic_seeded (csrc/ops.cpp): a compiled graph calls them, and the key is drawn when it
// runs, as eager draws it.

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>

#include "philox_key.h"

namespace pyinit {
namespace {

using Gen = std::optional<at::Generator>;
using at::IntArrayRef;

template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

at::Generator key_generator(const Gen& generator) {
  return generator.has_value() ? *generator : at::detail::getDefaultCPUGenerator();
}

using Uniform = void(at::Tensor, double, double, int64_t, int64_t, IntArrayRef, IntArrayRef);
using MaskedUniform = void(at::Tensor, double, double, double, int64_t, int64_t, IntArrayRef, IntArrayRef);
using TruncNormal = void(at::Tensor, double, double, double, double, int64_t, int64_t, IntArrayRef, IntArrayRef);
using Sparse = void(at::Tensor, int64_t, std::optional<double>, int64_t, int64_t, IntArrayRef, IntArrayRef);

}  // namespace

void philox_uniform_drawn(at::Tensor self, double low, double high, Gen generator) {
  static const auto uniform = op<Uniform>("pyinit::philox_uniform_");
  with_drawn_key(key_generator(generator),
                 [&](int64_t key, int64_t offset) { uniform.call(self, low, high, key, offset, {}, {}); });
}

void philox_normal_drawn(at::Tensor self, double mean, double std, Gen generator) {
  static const auto normal = op<Uniform>("pyinit::philox_normal_");
  with_drawn_key(key_generator(generator),
                 [&](int64_t key, int64_t offset) { normal.call(self, mean, std, key, offset, {}, {}); });
}

void philox_masked_uniform_drawn(at::Tensor self, double low, double high, double threshold, Gen generator) {
  static const auto masked = op<MaskedUniform>("pyinit::philox_masked_uniform_");
  with_drawn_key(key_generator(generator),
                 [&](int64_t key, int64_t offset) { masked.call(self, low, high, threshold, key, offset, {}, {}); });
}

void philox_trunc_normal_drawn(at::Tensor self, double mean, double std, double a, double b, Gen generator) {
  static const auto trunc = op<TruncNormal>("pyinit::philox_trunc_normal_");
  with_drawn_key(key_generator(generator),
                 [&](int64_t key, int64_t offset) { trunc.call(self, mean, std, a, b, key, offset, {}, {}); });
}

// CPU only, as philox_sparse_'s values: on another device the Python stream writes the values there and selects the
// zero pattern on the host (pyinit/_streams.py PhiloxStream.sparse_).
void philox_sparse_drawn(at::Tensor self, int64_t num_zeros, double std, Gen generator) {
  TORCH_CHECK(self.device().is_cpu(), "pyinit philox_sparse_drawn_: expected a CPU tensor, got ", self.device());
  static const auto sparse = op<Sparse>("pyinit::philox_sparse_");
  with_drawn_key(key_generator(generator),
                 [&](int64_t key, int64_t offset) { sparse.call(self, num_zeros, std, key, offset, {}, {}); });
}

}  // namespace pyinit
