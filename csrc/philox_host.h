#pragma once
// Host side of the philox stream, shared by the CPU and CUDA operators: the validated shard map and the call
// descriptions (csrc/pyinit/philox_call.h). See docs/philox_stream.md.

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "pyinit/philox_call.h"
#include "validate.h"

namespace pyinit {

// Maps the local elements of `self` (row-major) to global row-major indices: self is the block of a tensor of
// shape global_shape starting at `start` (both empty: self is the whole tensor). The constructor validates.
class ShardMap {
 public:
  ShardMap(const at::Tensor& self, at::IntArrayRef global_shape, at::IntArrayRef start) {
    if (global_shape.empty() && start.empty()) return;
    const int64_t dim = self.dim();
    TORCH_CHECK(static_cast<int64_t>(global_shape.size()) == dim && static_cast<int64_t>(start.size()) == dim,
                "pyinit: global_shape and start must have one entry per dimension of the tensor (", dim, "), got ",
                global_shape.size(), " and ", start.size());
    int64_t stride = 1;
    global_stride_.assign(dim, 0);
    for (int64_t k = dim - 1; k >= 0; --k) {
      TORCH_CHECK(start[k] >= 0 && start[k] + self.size(k) <= global_shape[k], "pyinit: the block ", self.sizes(),
                  " at ", start, " does not fit in the global shape ", global_shape);
      global_stride_[k] = stride;
      stride *= global_shape[k];
    }
    local_ = self.sizes().vec();
    start_ = start.vec();
    sharded_ = dim > 0;
  }

  // Calls f(local_index, global_index, count) for maximal runs of consecutive global indices in [begin, end).
  template <typename F>
  void for_each_run(int64_t begin, int64_t end, F&& f) const {
    if (!sharded_) {
      f(begin, static_cast<uint64_t>(begin), end - begin);
      return;
    }
    const int64_t dim = static_cast<int64_t>(local_.size());
    const int64_t inner = local_[dim - 1];
    for (int64_t l = begin; l < end;) {
      int64_t row = l / inner;
      const int64_t col = l % inner;
      int64_t g = start_[dim - 1] + col;
      for (int64_t k = dim - 2; k >= 0; --k) {
        g += (start_[k] + row % local_[k]) * global_stride_[k];
        row /= local_[k];
      }
      const int64_t count = std::min(inner - col, end - l);
      f(l, static_cast<uint64_t>(g), count);
      l += count;
    }
  }

  // The same map as a kernel argument (at most kMaxShardDims dimensions).
  PhiloxShard device_shard() const {
    PhiloxShard shard;
    if (!sharded_) return shard;
    const int64_t dim = static_cast<int64_t>(local_.size());
    TORCH_CHECK(dim <= kMaxShardDims, "pyinit: shards of more than ", kMaxShardDims,
                " dimensions are not supported on CUDA");
    for (int64_t k = 0; k < dim; ++k) {
      shard.local[k] = local_[k];
      shard.start[k] = start_[k];
      shard.global_stride[k] = global_stride_[k];
    }
    shard.dim = static_cast<int>(dim);
    return shard;
  }

 private:
  bool sharded_ = false;
  std::vector<int64_t> local_, start_, global_stride_;
};

// A call of `kind` on self (any dtype: philox_bits_ and the zero pattern of philox_sparse_ ignore it).
inline PhiloxCall philox_call(const at::Tensor& self, PhiloxKind kind, int64_t key, int64_t offset) {
  PhiloxCall call;
  call.key = static_cast<uint64_t>(key);
  call.offset = static_cast<uint64_t>(offset);
  call.kind = kind;
  call.dtype = is_supported_float(self) ? to_dtype(self.scalar_type()) : DType::kDouble;
  return call;
}

// low/high as validate_uniform left them (clamped to the dtype).
inline PhiloxCall philox_uniform_call(const at::Tensor& self, double low, double high, bool mask, double threshold,
                                      int64_t key, int64_t offset) {
  PhiloxCall call = philox_call(self, mask ? PhiloxKind::kMaskedUniform : PhiloxKind::kUniform, key, offset);
  call.low = low;
  call.span = high - low;
  call.threshold = threshold;
  call.low_f = static_cast<float>(low);
  call.span_f = static_cast<float>(high - low);
  call.threshold_f = static_cast<float>(threshold);
  call.mask_in_tile = mask && call.dtype == DType::kFloat;
  return call;
}

inline PhiloxCall philox_normal_call(const at::Tensor& self, double mean, double std, int64_t key, int64_t offset) {
  PhiloxCall call = philox_call(self, PhiloxKind::kNormal, key, offset);
  call.mean = mean;
  call.std = std;
  call.mean_f = static_cast<float>(mean);
  call.std_f = static_cast<float>(std);
  return call;
}

inline PhiloxCall philox_trunc_normal_call(const at::Tensor& self, double mean, double std, double a, double b,
                                           int64_t key, int64_t offset) {
  PhiloxCall call = philox_call(self, PhiloxKind::kTruncNormal, key, offset);
  call.mean = mean;
  call.std = std;
  call.mean_f = static_cast<float>(mean);
  call.std_f = static_cast<float>(std);
  call.trunc = philox_trunc_params(mean, std, a, b);
  return call;
}

inline PhiloxCall philox_bits_call(const at::Tensor& self, int64_t key, int64_t offset, int64_t stream) {
  PhiloxCall call = philox_call(self, PhiloxKind::kBits, key, offset);
  call.stream = static_cast<uint64_t>(stream);
  return call;
}

}  // namespace pyinit
