// CUDA implementations of the torch stream's random initializers: the glue between the operators and the
// kernels of torch_stream_kernels.cu. See Note [torch CUDA element mapping] and Note [Graph-safe Philox state].

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "cuda/cuda_glue.h"
#include "torch_blocks.h"
#include "torch_randperm.h"
#include "validate.h"

namespace pyinit::cuda {

// The launchers this glue calls, defined in torch_stream_kernels.cu (Note [Launchers declared by their caller],
// csrc/cuda/kernels.h).
void launch_uniform(DType dtype, const RandomLaunch& launch, const UniformParams& params, cudaStream_t stream);
void launch_normal(DType dtype, const RandomLaunch& launch, const NormalParams& params, cudaStream_t stream);
void launch_trunc_normal(DType dtype, const RandomLaunch& launch, const TruncNormalParams& params, cudaStream_t stream);
void launch_uniform_block(DType dtype, const BlockLaunch& launch, const UniformParams& params, cudaStream_t stream);
void launch_normal_block(DType dtype, const BlockLaunch& launch, const NormalParams& params, cudaStream_t stream);
// trunc_normal_ on blocks: the whole call's rounds into *params.max_round (atomicMax, nothing written), then one
// block's elements given that count.
void launch_trunc_normal_rounds(DType dtype, const RandomLaunch& launch, const TruncNormalParams& params,
                                cudaStream_t stream);
void launch_trunc_normal_block(DType dtype, const BlockLaunch& launch, const TruncNormalParams& params, int32_t rounds,
                               cudaStream_t stream);
// self[rows[c * zeros + k], c] = 0 for every column c < cols and k < zeros (structured_kernels.cu).
void launch_sparse_zero(DType dtype, void* data, int64_t row_stride, int64_t col_stride, const int64_t* rows,
                        int64_t cols, int64_t zeros, cudaStream_t stream);

namespace {

// Upper bound on trunc_normal_ rounds. torch would loop forever when no value can be accepted (the Python
// wrapper only takes this path when the mass inside [a, b] exceeds 0.3, so ~50 rounds suffice for 2^40 values).
constexpr int32_t kTruncNormalMaxRounds = 10000;

// trunc_normal_ refuses graph capture: the number of rounds depends on the data.
void check_not_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TORCH_CHECK(capture == cudaStreamCaptureStatusNone,
              "pyinit.trunc_normal_: not capturable in a CUDA graph (the number of rounds depends on the data, "
              "as in torch.nn.init.trunc_normal_)");
}

// One torch distribution call over `self` (validated, numel > 0): reserve the generator's offsets as
// torch does, then launch(dtype, launch, stream) for each piece.
template <typename Launch>
void run_distribution(at::Tensor& self, const std::optional<at::Generator>& generator, const Launch& launch) {
  c10::cuda::CUDAGuard device_guard(self.device());
  const DType dtype = to_dtype(self.scalar_type());
  const DeviceLimits limits = checked_device_limits(self);
  MemoryOrderOutput out(self);
  const std::vector<IndexPiece> pieces = split_32bit_pieces(out);
  auto* gen = cuda_generator(generator);
  std::vector<RandomLaunch> launches;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    launches = reserve_launches(gen, out, pieces, dtype, limits);
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (const RandomLaunch& piece : launches) {
    launch(dtype, piece, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  out.commit();
}

// One torch distribution call over the whole tensor of which `blocks` are written (validated; numel > 0):
// reserve the whole tensor's offsets as torch does, then launch(dtype, launch, stream) for each block and piece.
// Note [The torch stream on blocks] (csrc/torch_blocks.h), Note [The torch stream on a block] (kernels).
template <typename Launch>
void run_blocks(at::TensorList blocks, const std::vector<ShardMap>& maps, int64_t numel,
                const std::optional<at::Generator>& generator, const Launch& launch) {
  c10::cuda::CUDAGuard device_guard(blocks[0].device());
  const DType dtype = to_dtype(blocks[0].scalar_type());
  const DeviceLimits limits = checked_device_limits(blocks[0]);
  // The whole tensor is contiguous: its iteration is one dimension, split as torch splits it.
  const std::vector<IndexPiece> pieces = split_32bit_1d(numel, dtype_size(dtype));
  std::vector<PhiloxShard> shards;
  for (const ShardMap& map : maps) shards.push_back(map.device_shard());  // checks the dimension count
  auto* gen = cuda_generator(generator);
  std::vector<ReservedPiece> reserved;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    reserved = reserve_pieces(gen, numel, pieces, dtype, limits);
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const at::Tensor& block = blocks[i];
    if (block.numel() == 0) continue;
    RowMajorOutput out(block);  // the kernel writes the block row-major
    for (const ReservedPiece& r : reserved) {
      const BlockLaunch piece{out.data(), block.numel(), shards[i], r.piece.start, r.piece.start + r.piece.numel,
                              r.threads,  r.philox,      limits};
      launch(dtype, piece, stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    out.commit();
  }
}

void uniform_blocks_impl(at::TensorList blocks, double low, double high, bool mask, double threshold,
                         at::IntArrayRef global_shape, at::IntArrayRef starts,
                         const std::optional<at::Generator>& generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_uniform_blocks(blocks, low, high, global_shape, starts, &numel);
  if (numel == 0) return;
  const UniformParams params{low, high, mask, threshold};
  run_blocks(blocks, maps, numel, generator, [&](DType dtype, const BlockLaunch& piece, cudaStream_t stream) {
    launch_uniform_block(dtype, piece, params, stream);
  });
}

void uniform_impl(at::Tensor& self, double low, double high, bool mask, double threshold,
                  const std::optional<at::Generator>& generator) {
  if (!validate_uniform(self, low, high)) return;
  const UniformParams params{low, high, mask, threshold};
  run_distribution(self, generator, [&](DType dtype, const RandomLaunch& piece, cudaStream_t stream) {
    launch_uniform(dtype, piece, params, stream);
  });
}

}  // namespace

void uniform_cuda(at::Tensor self, double low, double high, std::optional<at::Generator> generator) {
  uniform_impl(self, low, high, /*mask=*/false, 0.0, generator);
}

void masked_uniform_cuda(at::Tensor self, double low, double high, double threshold,
                         std::optional<at::Generator> generator) {
  uniform_impl(self, low, high, /*mask=*/true, threshold, generator);
}

void normal_cuda(at::Tensor self, double mean, double std, std::optional<at::Generator> generator) {
  if (!validate_normal(self, "normal_", std)) return;
  const NormalParams params{mean, std};
  run_distribution(self, generator, [&](DType dtype, const RandomLaunch& piece, cudaStream_t stream) {
    launch_normal(dtype, piece, params, stream);
  });
}

void uniform_blocks_cuda(at::TensorList blocks, double low, double high, at::IntArrayRef global_shape,
                         at::IntArrayRef starts, std::optional<at::Generator> generator) {
  uniform_blocks_impl(blocks, low, high, /*mask=*/false, 0.0, global_shape, starts, generator);
}

void masked_uniform_blocks_cuda(at::TensorList blocks, double low, double high, double threshold,
                                at::IntArrayRef global_shape, at::IntArrayRef starts,
                                std::optional<at::Generator> generator) {
  uniform_blocks_impl(blocks, low, high, /*mask=*/true, threshold, global_shape, starts, generator);
}

void normal_blocks_cuda(at::TensorList blocks, double mean, double std, at::IntArrayRef global_shape,
                        at::IntArrayRef starts, std::optional<at::Generator> generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_normal_blocks(blocks, std, global_shape, starts, &numel);
  if (numel == 0) return;
  const NormalParams params{mean, std};
  run_blocks(blocks, maps, numel, generator, [&](DType dtype, const BlockLaunch& piece, cudaStream_t stream) {
    launch_normal_block(dtype, piece, params, stream);
  });
}

// See Note [trunc_normal_ by normal proposals] (CPU) and Note [trunc_normal_ in one kernel].
void trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b,
                       std::optional<at::Generator> generator) {
  if (!validate_trunc_normal(self, std)) return;
  c10::cuda::CUDAGuard device_guard(self.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  check_not_capturing(stream);
  const DType dtype = to_dtype(self.scalar_type());
  const DeviceLimits limits = checked_device_limits(self);
  MemoryOrderOutput out(self);
  const std::vector<IndexPiece> pieces = split_32bit_pieces(out);
  auto* gen = cuda_generator(generator);
  at::Tensor max_round = at::zeros({1}, self.options().dtype(at::kInt));
  // The lock is held across the rounds so that the offsets of rounds 1..R follow round 0 directly, as they do
  // in torch when nothing else draws from the generator meanwhile.
  std::lock_guard<std::mutex> lock(gen->mutex_);
  uint64_t round_stride = 0;
  const std::vector<RandomLaunch> launches = reserve_launches(gen, out, pieces, dtype, limits, &round_stride);
  for (const RandomLaunch& launch : launches) {
    const TruncNormalParams params{mean, std, a, b, round_stride, kTruncNormalMaxRounds, max_round.data_ptr<int32_t>()};
    launch_trunc_normal(dtype, launch, params, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const int32_t rounds = max_round.item<int32_t>();  // synchronizes, as torch's `mask.any()` does every round
  TORCH_CHECK(rounds < kTruncNormalMaxRounds, "pyinit.trunc_normal_: no value inside [", a, ", ", b, "] after ",
              kTruncNormalMaxRounds, " rounds of normal(", mean, ", ", std, ") proposals");
  for (int32_t round = 1; round <= rounds; ++round) reserve_launches(gen, out, pieces, dtype, limits);
  out.commit();
  if (rounds > 0) count_extra_writes(self, 1);  // torch's tensor.copy_(result) after a resampling round
}

// trunc_normal_ on blocks (Note [The torch stream on blocks]): every rank counts the whole call's rounds (each
// element's proposals, nothing stored), then computes only its blocks' elements; the generator moves by the whole
// call's rounds, as trunc_normal_cuda moves it.
void trunc_normal_blocks_cuda(at::TensorList blocks, double mean, double std, double a, double b,
                              at::IntArrayRef global_shape, at::IntArrayRef starts,
                              std::optional<at::Generator> generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_normal_blocks(blocks, std, global_shape, starts, &numel, "trunc_normal_");
  if (numel == 0) return;
  c10::cuda::CUDAGuard device_guard(blocks[0].device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  check_not_capturing(stream);
  const DType dtype = to_dtype(blocks[0].scalar_type());
  const DeviceLimits limits = checked_device_limits(blocks[0]);
  const std::vector<IndexPiece> pieces = split_32bit_1d(numel, dtype_size(dtype));
  std::vector<PhiloxShard> shards;
  for (const ShardMap& map : maps) shards.push_back(map.device_shard());
  auto* gen = cuda_generator(generator);
  at::Tensor max_round = at::zeros({1}, blocks[0].options().dtype(at::kInt));
  std::lock_guard<std::mutex> lock(gen->mutex_);  // held across the rounds, as in trunc_normal_cuda
  uint64_t round_stride = 0;
  const std::vector<ReservedPiece> reserved = reserve_pieces(gen, numel, pieces, dtype, limits, &round_stride);
  const TruncNormalParams params{mean, std, a, b, round_stride, kTruncNormalMaxRounds, max_round.data_ptr<int32_t>()};
  for (const ReservedPiece& r : reserved) {
    launch_trunc_normal_rounds(dtype, RandomLaunch{nullptr, r.piece.numel, r.threads, r.philox, limits}, params,
                               stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const int32_t rounds = max_round.item<int32_t>();
  TORCH_CHECK(rounds < kTruncNormalMaxRounds, "pyinit.trunc_normal_: no value inside [", a, ", ", b, "] after ",
              kTruncNormalMaxRounds, " rounds of normal(", mean, ", ", std, ") proposals");
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].numel() == 0) continue;
    RowMajorOutput out(blocks[i]);
    for (const ReservedPiece& r : reserved) {
      const BlockLaunch piece{out.data(), blocks[i].numel(), shards[i], r.piece.start, r.piece.start + r.piece.numel,
                              r.threads,  r.philox,          limits};
      launch_trunc_normal_block(dtype, piece, params, rounds, stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    out.commit();
  }
  for (int32_t round = 1; round <= rounds; ++round) reserve_pieces(gen, numel, pieces, dtype, limits);
}

void sparse_cuda(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator) {
  if (!validate_sparse(self, std)) return;
  c10::cuda::CUDAGuard device_guard(self.device());
  const int64_t rows = self.size(0), cols = self.size(1);
  const int64_t zeros = sparse_zero_count(num_zeros, rows);
  static auto normal_op = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("pyinit::normal_", "")
                              .typed<void(at::Tensor, double, double, std::optional<at::Generator>)>();
  normal_op.call(self, 0.0, std, generator);  // counts the normal_ write itself
  count_extra_writes(self, cols - 1);         // torch: one indexed write per column (empty ones too)
  // torch calls randperm(rows) for every column even when no row is zeroed: draw the words regardless.
  const at::Tensor rows_cpu = torch_randperm_prefixes(rows, cols, zeros);
  if (zeros == 0) return;
  const at::Tensor rows_device = rows_cpu.to(self.device());
  launch_sparse_zero(to_dtype(self.scalar_type()), self.data_ptr(), self.stride(0), self.stride(1),
                     rows_device.data_ptr<int64_t>(), cols, zeros, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace pyinit::cuda
