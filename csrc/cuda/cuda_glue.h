#pragma once
// Helpers of the CUDA glue (compiled only against a CUDA build of torch): dtype mapping, the generator and its
// graph-safe Philox state, memory-order outputs and the 32-bit split, launch layouts.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <mutex>
#include <numeric>
#include <optional>
#include <vector>

#include "../checks.h"
#include "../pyinit/curand_philox.h"
#include "index_split.h"
#include "kernels.h"

namespace pyinit::cuda {

inline DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kHalf: return DType::kHalf;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kFloat: return DType::kFloat;
    case at::kDouble: return DType::kDouble;
    default: TORCH_CHECK(false, "pyinit: unsupported dtype ", type);
  }
}

// The generator torch would use: `generator`, else the default generator of the current device (callers set
// the device guard to the tensor's device first).
inline at::CUDAGeneratorImpl* cuda_generator(const std::optional<at::Generator>& generator) {
  return at::get_generator_or_default<at::CUDAGeneratorImpl>(generator, at::cuda::detail::getDefaultCUDAGenerator());
}

// See Note [Graph-safe Philox state].
inline PhiloxArgs philox_args(const at::PhiloxCudaState& state) {
  PhiloxArgs args;
  if (state.captured_) {
    args.captured = true;
    args.seed_ptr = state.seed_.ptr;
    args.offset_ptr = state.offset_.ptr;
    args.offset_intragraph = static_cast<uint64_t>(state.offset_intragraph_);
  } else {
    args.seed = state.seed_.val;
    args.offset = state.offset_.val;
    TORCH_INTERNAL_ASSERT(args.offset % 4 == 0, "pyinit: Philox offset not a multiple of 4");
  }
  return args;
}

inline DeviceLimits checked_device_limits(const at::Tensor& self) {
  const DeviceLimits limits = device_limits(self.device().index());
  TORCH_CHECK(limits.sm_count > 0 && limits.max_threads_per_sm >= 256, "pyinit: cannot query device ",
              self.device());
  return limits;
}

// `self` in TensorIterator's order for a single written tensor (dimensions by decreasing stride, size-1 ones
// left in place), written through a contiguous buffer: `self` itself when that order is its memory order
// (dense tensors), else a temporary copied back by commit(). Also emulates the 32-bit split of that iteration
// (Note [The 32-bit indexing split]); throws NotImplementedError, before anything is written or drawn, where
// the emulation does not apply.
class MemoryOrderOutput {
 public:
  explicit MemoryOrderOutput(const at::Tensor& self) {
    std::vector<int64_t> perm(self.dim());
    std::iota(perm.begin(), perm.end(), 0);
    const auto strides = self.strides();
    const auto sizes = self.sizes();
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      if (sizes[a] == 1 || sizes[b] == 1) return false;
      return strides[a] > strides[b];
    });
    view_ = self.permute(perm);
    buffer_ = view_.is_contiguous() ? view_ : at::empty(view_.sizes(), self.options());
    // TensorIterator's coalesced shape: drop size-1 dims, merge neighbours that are contiguous to each other.
    std::vector<int64_t> dim_sizes, dim_strides;  // slowest first
    for (int64_t d = 0; d < view_.dim(); ++d) {
      const int64_t size = view_.size(d), stride = view_.stride(d);
      if (size == 1) continue;
      if (!dim_sizes.empty() && dim_strides.back() == stride * size) {
        dim_sizes.back() *= size;
        dim_strides.back() = stride;
      } else {
        dim_sizes.push_back(size);
        dim_strides.push_back(stride);
      }
    }
    const int64_t element = static_cast<int64_t>(self.element_size());
    for (auto& stride : dim_strides) stride *= element;
    const int dims = static_cast<int>(dim_sizes.size());
    if (dims <= 1) {
      pieces_ = split_32bit_1d(self.numel(), dims == 0 ? element : dim_strides[0]);
    } else {
      TORCH_CHECK_NOT_IMPLEMENTED(fits_32bit_indexing(dim_sizes.data(), dim_strides.data(), dims),
                                  "pyinit: a non-dense CUDA tensor whose memory extent exceeds 2^31 bytes is "
                                  "split by torch in a way pyinit does not emulate; use torch.nn.init");
      pieces_.push_back(IndexPiece{0, self.numel()});
    }
  }
  char* data() const { return static_cast<char*>(buffer_.data_ptr()); }
  int64_t numel() const { return buffer_.numel(); }
  const std::vector<IndexPiece>& pieces() const { return pieces_; }
  void commit() {
    if (!buffer_.is_same(view_)) view_.copy_(buffer_);
  }

 private:
  at::Tensor view_;
  at::Tensor buffer_;
  std::vector<IndexPiece> pieces_;
};

// Reserves the offsets of one torch distribution call over `out`, as torch does (the whole tensor first, then
// each 32-bit piece when it splits), and returns the launches. The caller holds generator->mutex_.
inline std::vector<RandomLaunch> reserve_launches(at::CUDAGeneratorImpl* generator, const MemoryOrderOutput& out,
                                                  DType dtype, const DeviceLimits& limits,
                                                  uint64_t* increment_total = nullptr) {
  const int unroll = torch_unroll(dtype);
  const auto whole = torch_cuda_launch(out.numel(), limits.sm_count, limits.max_threads_per_sm, unroll);
  const at::PhiloxCudaState whole_state = generator->philox_cuda_state(whole.increment);
  uint64_t total = whole.increment;
  std::vector<RandomLaunch> launches;
  const auto& pieces = out.pieces();
  if (pieces.size() == 1) {
    launches.push_back(RandomLaunch{out.data(), out.numel(), whole.threads, philox_args(whole_state), limits});
  } else {
    const int64_t element = dtype_size(dtype);
    for (const IndexPiece& piece : pieces) {
      const auto plan = torch_cuda_launch(piece.numel, limits.sm_count, limits.max_threads_per_sm, unroll);
      const at::PhiloxCudaState state = generator->philox_cuda_state(plan.increment);
      total += plan.increment;
      launches.push_back(RandomLaunch{out.data() + piece.start * element, piece.numel, plan.threads,
                                      philox_args(state), limits});
    }
  }
  if (increment_total != nullptr) *increment_total = total;
  return launches;
}

// Row-major layout of `self` for the deterministic kernels; contiguous when the row-major index is the memory
// position.
inline Layout make_layout(const at::Tensor& self) {
  TORCH_CHECK(self.dim() <= kMaxDims, "pyinit: at most ", kMaxDims, " dimensions are supported on CUDA");
  Layout layout{};
  layout.data = self.data_ptr();
  layout.dims = static_cast<int>(self.dim());
  layout.numel = self.numel();
  layout.contiguous = self.is_contiguous();
  for (int d = 0; d < layout.dims; ++d) {
    layout.sizes[d] = self.size(d);
    layout.strides[d] = self.stride(d);
  }
  return layout;
}

}  // namespace pyinit::cuda
