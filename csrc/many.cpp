// The *_many_ operators on any device: validate every entry, then call the single-tensor operator on each tensor
// in list order through the dispatcher, so the values and the generator state are those of one call per tensor.
// One operator call from Python instead of one per tensor. On CPU every one has a fused kernel instead
// (csrc/cpu/torch_stream_many_cpu.cpp, csrc/cpu/philox_cpu.cpp); the CPU torch-stream kernels call these loops
// for a list with a tensor on another device.

#include <ATen/core/dispatch/Dispatcher.h>

#include "validate.h"

namespace pyinit {
namespace {

template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using Gen = std::optional<at::Generator>;
using Doubles = c10::ArrayRef<double>;

}  // namespace

void uniform_many(at::TensorList selfs, Doubles low, Doubles high, Gen generator) {
  check_many(selfs, {low.size(), high.size()}, "uniform_many_");
  validate_uniform_many(selfs, low, high);
  static const auto uniform = op<void(at::Tensor, double, double, Gen)>("pyinit::uniform_");
  for (size_t i = 0; i < selfs.size(); ++i) uniform.call(selfs[i], low[i], high[i], generator);
}

void normal_many(at::TensorList selfs, Doubles mean, Doubles std, Gen generator) {
  check_many(selfs, {mean.size(), std.size()}, "normal_many_");
  validate_normal_many(selfs, std);
  static const auto normal = op<void(at::Tensor, double, double, Gen)>("pyinit::normal_");
  for (size_t i = 0; i < selfs.size(); ++i) normal.call(selfs[i], mean[i], std[i], generator);
}

namespace {
using PhiloxSignature = void(at::Tensor, double, double, int64_t, int64_t, at::IntArrayRef, at::IntArrayRef);
}

void philox_uniform_many(at::TensorList selfs, Doubles low, Doubles high, at::IntArrayRef key, at::IntArrayRef offset) {
  check_many(selfs, {low.size(), high.size(), key.size(), offset.size()}, "philox_uniform_many_");
  validate_uniform_many(selfs, low, high);
  static const auto uniform = op<PhiloxSignature>("pyinit::philox_uniform_");
  for (size_t i = 0; i < selfs.size(); ++i) uniform.call(selfs[i], low[i], high[i], key[i], offset[i], {}, {});
}

void philox_normal_many(at::TensorList selfs, Doubles mean, Doubles std, at::IntArrayRef key, at::IntArrayRef offset) {
  check_many(selfs, {mean.size(), std.size(), key.size(), offset.size()}, "philox_normal_many_");
  validate_normal_many(selfs, std);
  static const auto normal = op<PhiloxSignature>("pyinit::philox_normal_");
  for (size_t i = 0; i < selfs.size(); ++i) normal.call(selfs[i], mean[i], std[i], key[i], offset[i], {}, {});
}

}  // namespace pyinit
