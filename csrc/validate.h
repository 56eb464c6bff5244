#pragma once
// The validation layer, shared by every device and both streams (as ATen's DistributionTemplates.h checks once
// for every backend). Each operator is validate, kernel, register: a validate_* function checks every argument
// with the message and exception type torch's own kernel gives (uniform_impl_, normal_impl_, nn.init), clamps
// what torch clamps, and returns false when there is nothing to write. Everything is checked before anything is
// written, so a failed call leaves the tensor untouched.

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "pyinit/dtype.h"

namespace pyinit {

inline bool is_supported_float(const at::Tensor& self) {
  const auto t = self.scalar_type();
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

inline void check_floating(const at::Tensor& self, const char* op) {
  TORCH_CHECK(is_supported_float(self), "pyinit.", op, ": expected a float16, bfloat16, float32 or float64 tensor, ",
              "got ", self.scalar_type());
}

// The kernels' dtype enum for a validated floating tensor.
inline DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kHalf: return DType::kHalf;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kFloat: return DType::kFloat;
    case at::kDouble: return DType::kDouble;
    default: TORCH_CHECK(false, "pyinit: unsupported dtype ", type);
  }
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

inline void check_normal_std(double std) { TORCH_CHECK(std >= 0.0, "normal expects std >= 0.0, but found std ", std); }

inline void check_2d(const at::Tensor& self) {
  TORCH_CHECK(self.dim() == 2, "Only tensors with 2 dimensions are supported");
}

// torch's TensorIterator refuses to write a tensor whose elements share memory (an expanded view).
inline void check_writable(const at::Tensor& self) { at::assert_no_internal_overlap(self); }

// The last step of every in-place op's validation: self must be writable; then the write is announced to
// autograd as torch's in-place ops announce theirs (ADInplaceOrView): the version counter moves by one, and an
// inference tensor outside InferenceMode raises torch's own error, here before anything is written (torch
// writes first). False (nothing to write) for an empty tensor, which torch's ops also count as a write.
inline bool has_elements_to_write(const at::Tensor& self) {
  const bool empty = self.numel() == 0;
  if (!empty) check_writable(self);
  self.unsafeGetTensorImpl()->bump_version();
  return !empty;
}

// Writes that torch's Python implementation makes in several in-place steps count as that many.
inline void count_extra_writes(const at::Tensor& self, int64_t writes) {
  for (int64_t i = 0; i < writes; ++i) self.unsafeGetTensorImpl()->bump_version();
}

// ---- the torch stream and the deterministic initializers --------------------------------------------------------

// uniform_ / masked_uniform_: low and high are clamped to self's dtype as torch clamps them.
[[nodiscard]] inline bool validate_uniform(const at::Tensor& self, double& low, double& high) {
  check_uniform_bounds(self, low, high);
  return has_elements_to_write(self);
}

// normal_ (op names the initializer in the dtype error).
[[nodiscard]] inline bool validate_normal(const at::Tensor& self, const char* op, double std) {
  check_floating(self, op);
  check_normal_std(std);
  return has_elements_to_write(self);
}

// trunc_normal_ by normal proposals: the kernels need a dense tensor (the Python wrapper falls back otherwise).
[[nodiscard]] inline bool validate_trunc_normal(const at::Tensor& self, double std) {
  if (!validate_normal(self, "trunc_normal_", std)) return false;
  TORCH_CHECK(self.is_contiguous() || self.is_non_overlapping_and_dense(),
              "pyinit.trunc_normal_: the kernel needs a dense tensor (the Python wrapper falls back otherwise)");
  return true;
}

// timm's trunc_normal_ (Note [timm's trunc_normal_], csrc/cpu/timm_cpu.cpp), before its uniform_ (which checks
// low/high itself): float/double, a dense tensor, post_scale and post_shift given together.
inline void validate_timm_trunc_normal(const at::Tensor& self, const std::optional<double>& post_scale,
                                       const std::optional<double>& post_shift) {
  const auto dtype = self.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "pyinit.timm_trunc_normal_: expected a float32 or float64 tensor, got ", dtype);
  TORCH_CHECK(post_scale.has_value() == post_shift.has_value(),
              "pyinit.timm_trunc_normal_: post_scale and post_shift go together");
  TORCH_CHECK(self.numel() == 0 || self.is_non_overlapping_and_dense(),
              "pyinit.timm_trunc_normal_: the kernel needs a dense tensor (the Python wrapper falls back otherwise)");
}

// An empty tensor counts torch's writes here (normal_, then one indexed write per column, empty ones too: 1 + cols);
// the kernels count the column writes of a non-empty one themselves.
[[nodiscard]] inline bool validate_sparse(const at::Tensor& self, double std) {
  check_floating(self, "sparse_");
  check_2d(self);
  check_normal_std(std);
  if (has_elements_to_write(self)) return true;
  count_extra_writes(self, self.size(1));
  return false;
}

// Rows zeroed per column by torch.nn.init.sparse_ (`row_indices[:num_zeros]`: a negative count slices from the end).
inline int64_t sparse_zero_count(int64_t num_zeros, int64_t rows) {
  return num_zeros >= 0 ? std::min(num_zeros, rows) : std::max<int64_t>(rows + num_zeros, 0);
}

// fill_'s value converted as torch's fill_ converts it (Scalar::to raises "value cannot be converted to type float
// without overflow"), before the write is announced: torch's fill_ raises before its version counter moves, for
// an empty tensor too.
inline void check_fill_value(const at::Tensor& self, double value) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_fill_value",
                                  [&] { (void)c10::Scalar(value).to<scalar_t>(); });
}

[[nodiscard]] inline bool validate_fill(const at::Tensor& self, double value) {
  check_floating(self, "fill_");
  check_fill_value(self, value);
  return has_elements_to_write(self);
}

[[nodiscard]] inline bool validate_eye(const at::Tensor& self) {
  check_floating(self, "eye_");
  check_2d(self);
  return has_elements_to_write(self);
}

[[nodiscard]] inline bool validate_dirac(const at::Tensor& self, int64_t groups) {
  check_floating(self, "dirac_");
  TORCH_CHECK(self.dim() >= 3 && self.dim() <= 5, "Only tensors with 3, 4, or 5 dimensions are supported");
  TORCH_CHECK(groups > 0 && self.size(0) % groups == 0, "dim 0 must be divisible by groups");
  return has_elements_to_write(self);
}

// The tail of orthogonal_: self is the (rows, cols) view, q the (rows, cols) factor, or (cols, rows) when
// `transposed`, and r the R factor whose diagonal gives the signs.
[[nodiscard]] inline bool validate_orthogonal_finish(const at::Tensor& self, const at::Tensor& q, const at::Tensor& r,
                                                     bool transposed) {
  check_floating(self, "orthogonal_");
  TORCH_CHECK(self.dim() == 2, "pyinit.orthogonal_finish_: expected the (rows, cols) view");
  if (!has_elements_to_write(self)) return false;
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "pyinit.orthogonal_finish_: q must be float32 or float64, got ", q.scalar_type());
  TORCH_CHECK(r.scalar_type() == q.scalar_type(), "pyinit.orthogonal_finish_: q and r must have the same dtype");
  TORCH_CHECK(q.device() == self.device() && r.device() == self.device(),
              "pyinit.orthogonal_finish_: q and r must be on ", self.device());
  TORCH_CHECK(q.dim() == 2 && r.dim() == 2, "pyinit.orthogonal_finish_: q and r must be matrices");
  const int64_t q_rows = transposed ? self.size(1) : self.size(0);
  const int64_t q_cols = transposed ? self.size(0) : self.size(1);
  TORCH_CHECK(q.size(0) == q_rows && q.size(1) == q_cols, "pyinit.orthogonal_finish_: q has shape ", q.sizes(),
              ", expected (", q_rows, ", ", q_cols, ")");
  TORCH_CHECK(std::min(r.size(0), r.size(1)) >= q_cols, "pyinit.orthogonal_finish_: r has too few diagonal entries");
  return true;
}

// ---- the philox stream (the shard arguments are validated by ShardMap, csrc/philox_host.h) ----------------------

// qr_serial_: q (m, k) and r (k, n), k = min(m, n), of a's dtype (float32 or float64), for the (m, n) matrix a.
inline void validate_qr_serial(const at::Tensor& q, const at::Tensor& r, const at::Tensor& a) {
  TORCH_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble,
              "pyinit.qr_serial_: expected a float32 or float64 matrix, got ", a.scalar_type());
  TORCH_CHECK(a.dim() == 2, "pyinit.qr_serial_: expected a matrix, got ", a.dim(), " dims");
  const int64_t k = std::min(a.size(0), a.size(1));
  TORCH_CHECK(q.dim() == 2 && q.size(0) == a.size(0) && q.size(1) == k && r.dim() == 2 && r.size(0) == k &&
                  r.size(1) == a.size(1),
              "pyinit.qr_serial_: q and r must have the shapes of linalg.qr's reduced factors of a ", a.sizes());
  TORCH_CHECK(q.scalar_type() == a.scalar_type() && r.scalar_type() == a.scalar_type(),
              "pyinit.qr_serial_: q and r must have a's dtype");
}

inline void validate_philox_normal(const at::Tensor& self, double std) {
  check_floating(self, "normal_");
  check_normal_std(std);
}

inline void validate_philox_trunc_normal(const at::Tensor& self, double std, double a, double b) {
  check_floating(self, "trunc_normal_");
  TORCH_CHECK(std > 0.0, "pyinit philox trunc_normal_: expected std > 0, got ", std);
  TORCH_CHECK(a < b, "pyinit philox trunc_normal_: expected a < b, got a=", a, ", b=", b);
}

inline void validate_philox_bits(const at::Tensor& self) {
  TORCH_CHECK(self.scalar_type() == at::kInt, "pyinit philox_bits_: expected an int32 tensor, got ",
              self.scalar_type());
}

// ---- many tensors in one call (*_many_) -------------------------------------------------------------------------

// Every list has one entry per tensor.
inline void check_many(at::TensorList selfs, std::initializer_list<size_t> sizes, const char* op) {
  for (const size_t n : sizes) {
    TORCH_CHECK(n == selfs.size(), "pyinit.", op, ": expected one entry per tensor (", selfs.size(), "), got ", n);
  }
}

// What has_elements_to_write checks, without announcing the write: a *_many_ operator checks every tensor
// before its first write, then runs the single-tensor operator on each.
inline void check_writable_if_any(const at::Tensor& self) {
  if (self.numel() > 0) check_writable(self);
}

// uniform_many_ / philox_uniform_many_: every entry checked as uniform_ checks it, before any write. Returns the
// bounds clamped as uniform_ clamps them.
inline std::vector<std::pair<double, double>> validate_uniform_many(at::TensorList selfs, c10::ArrayRef<double> low,
                                                                    c10::ArrayRef<double> high) {
  std::vector<std::pair<double, double>> bounds;
  bounds.reserve(selfs.size());
  for (size_t i = 0; i < selfs.size(); ++i) {
    double lo = low[i], hi = high[i];
    check_uniform_bounds(selfs[i], lo, hi);
    check_writable_if_any(selfs[i]);
    bounds.emplace_back(lo, hi);
  }
  return bounds;
}

// normal_many_ / philox_normal_many_: every entry checked as normal_ checks it, before any write.
inline void validate_normal_many(at::TensorList selfs, c10::ArrayRef<double> std) {
  for (size_t i = 0; i < selfs.size(); ++i) {
    check_floating(selfs[i], "normal_");
    check_normal_std(std[i]);
    check_writable_if_any(selfs[i]);
  }
}

inline void validate_philox_sparse(const at::Tensor& self, int64_t num_zeros) {
  TORCH_CHECK(self.dim() == 2, "pyinit philox_sparse_: expected a 2-D tensor, got ", self.dim(), " dims");
  TORCH_CHECK(num_zeros >= 0, "pyinit philox_sparse_: expected num_zeros >= 0, got ", num_zeros);
}

}  // namespace pyinit
