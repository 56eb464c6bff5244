#pragma once
// Argument checks shared by every backend, with the messages torch's own kernels give (see
// ATen/native/DistributionTemplates.h: uniform_impl_, normal_impl_). Each op validates everything before it
// writes anything, so a failed call leaves the tensor untouched.

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>

#include <algorithm>
#include <limits>

namespace pyinit {

inline bool is_supported_float(const at::Tensor& self) {
  const auto t = self.scalar_type();
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

inline void check_floating(const at::Tensor& self, const char* op) {
  TORCH_CHECK(is_supported_float(self), "pyinit.", op, ": expected a float16, bfloat16, float32 or float64 tensor, ",
              "got ", self.scalar_type());
}

template <typename scalar_t>
inline void check_uniform_bounds_typed(const at::Tensor& self, double& from, double& to) {
  const auto min = static_cast<double>(std::numeric_limits<scalar_t>::lowest());
  const auto max = static_cast<double>(std::numeric_limits<scalar_t>::max());
  const auto dtype = self.dtype();
  TORCH_CHECK(from >= min && from <= max, "from", " is out of bounds for ", dtype);
  TORCH_CHECK(to >= min && to <= max, "to", " is out of bounds for ", dtype);
  TORCH_CHECK(from <= to, "uniform_ expects to return a [from, to) range, but found from=", from, " > to=", to);
  TORCH_CHECK((to - from) <= std::numeric_limits<scalar_t>::max(), "uniform_ expects to-from <= std::numeric_limits<",
              toString(self.scalar_type()), ">::max(), but found to=", to, " and from=", from,
              " which result in to-from to exceed the limit");
  from = std::min(std::max(from, min), max);
  to = std::max(std::min(to, max), min);
}

// Validates [from, to) for self's dtype exactly as torch's uniform_ does, and clamps them as it does.
inline void check_uniform_bounds(const at::Tensor& self, double& from, double& to) {
  switch (self.scalar_type()) {
    case at::kFloat: return check_uniform_bounds_typed<float>(self, from, to);
    case at::kDouble: return check_uniform_bounds_typed<double>(self, from, to);
    case at::kHalf: return check_uniform_bounds_typed<at::Half>(self, from, to);
    case at::kBFloat16: return check_uniform_bounds_typed<at::BFloat16>(self, from, to);
    default: check_floating(self, "uniform_");
  }
}

inline void check_normal_std(double std) {
  TORCH_CHECK(std >= 0.0, "normal expects std >= 0.0, but found std ", std);
}

// torch's TensorIterator refuses to write a tensor whose elements share memory (an expanded view).
inline void check_writable(const at::Tensor& self) {
  at::assert_no_internal_overlap(self);
}

}  // namespace pyinit
