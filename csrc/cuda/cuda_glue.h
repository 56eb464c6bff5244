#pragma once
// Helpers of the CUDA glue (compiled only against a CUDA build of torch): the generator and its graph-safe
// Philox state, the 32-bit split of a memory-order output, launch layouts.

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

#include "cuda/index_split.h"
#include "cuda/kernels.h"
#include "memory_order.h"
#include "pyinit/curand_philox.h"
#include "validate.h"

namespace pyinit::cuda {

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
  TORCH_CHECK(limits.sm_count > 0 && limits.max_threads_per_sm >= 256, "pyinit: cannot query device ", self.device());
  return limits;
}

// The launch pieces of a memory-order output: TensorIterator's 32-bit split of that iteration, emulated (Note
// [The 32-bit indexing split]). Throws NotImplementedError, before anything is written or drawn, where the
// emulation does not apply.
inline std::vector<IndexPiece> split_32bit_pieces(const MemoryOrderOutput& out) {
  const at::Tensor& view = out.view();
  std::vector<int64_t> identity(view.dim());
  std::iota(identity.begin(), identity.end(), 0);
  CoalescedLayout layout = coalesced_layout(view, identity);
  const int64_t element = static_cast<int64_t>(view.element_size());
  for (auto& stride : layout.strides) stride *= element;
  const int dims = static_cast<int>(layout.sizes.size());
  if (dims <= 1) return split_32bit_1d(view.numel(), dims == 0 ? element : layout.strides[0]);
  TORCH_CHECK_NOT_IMPLEMENTED(fits_32bit_indexing(layout.sizes.data(), layout.strides.data(), dims),
                              "pyinit: a non-dense CUDA tensor whose memory extent exceeds 2^31 bytes is "
                              "split by torch in a way pyinit does not emulate; use torch.nn.init");
  return {IndexPiece{0, view.numel()}};
}

// One launch piece of a torch distribution call: elements [piece.start, piece.start + piece.numel) of the
// iteration, drawn over `threads` threads (S) from `philox`.
struct ReservedPiece {
  IndexPiece piece;
  int64_t threads;
  PhiloxArgs philox;
};

// Reserves the offsets of one torch distribution call over `numel` elements split into `pieces`, as torch does
// (the whole iteration first, then each 32-bit piece when it splits). The caller holds generator->mutex_.
inline std::vector<ReservedPiece> reserve_pieces(at::CUDAGeneratorImpl* generator, int64_t numel,
                                                 const std::vector<IndexPiece>& pieces, DType dtype,
                                                 const DeviceLimits& limits, uint64_t* increment_total = nullptr) {
  const int unroll = torch_unroll(dtype);
  const auto whole = torch_cuda_launch(numel, limits.sm_count, limits.max_threads_per_sm, unroll);
  const at::PhiloxCudaState whole_state = generator->philox_cuda_state(whole.increment);
  uint64_t total = whole.increment;
  std::vector<ReservedPiece> reserved;
  if (pieces.size() == 1) {
    reserved.push_back(ReservedPiece{IndexPiece{0, numel}, whole.threads, philox_args(whole_state)});
  } else {
    for (const IndexPiece& piece : pieces) {
      const auto plan = torch_cuda_launch(piece.numel, limits.sm_count, limits.max_threads_per_sm, unroll);
      const at::PhiloxCudaState state = generator->philox_cuda_state(plan.increment);
      total += plan.increment;
      reserved.push_back(ReservedPiece{piece, plan.threads, philox_args(state)});
    }
  }
  if (increment_total != nullptr) *increment_total = total;
  return reserved;
}

// reserve_pieces for a call over `out`, as launches. The caller holds generator->mutex_.
inline std::vector<RandomLaunch> reserve_launches(at::CUDAGeneratorImpl* generator, const MemoryOrderOutput& out,
                                                  const std::vector<IndexPiece>& pieces, DType dtype,
                                                  const DeviceLimits& limits, uint64_t* increment_total = nullptr) {
  std::vector<RandomLaunch> launches;
  char* data = static_cast<char*>(out.data());
  const int64_t element = dtype_size(dtype);
  for (const ReservedPiece& r : reserve_pieces(generator, out.numel(), pieces, dtype, limits, increment_total)) {
    launches.push_back(RandomLaunch{data + r.piece.start * element, r.piece.numel, r.threads, r.philox, limits});
  }
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
