#pragma once
// The philox stream's CUDA kernels: raw pointers, sizes and a cudaStream_t only (no torch headers; compiled by
// plain nvcc in CI). The glue is philox_cuda_glue.cpp. See Note [The philox stream] in
// csrc/pyinit/philox_transforms.h: every value is a pure function of its global element index, so the launch
// shape never changes a value, and the float transforms give the same bits as the CPU kernels.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../pyinit/philox_transforms.h"

namespace pyinit::cuda::philox {

enum class Kind : int { kUniform = 0, kMaskedUniform = 1, kNormal = 2, kTruncNormal = 3, kBits = 4 };

constexpr int kMaxShardDims = 8;

// Local row-major index -> global row-major index of a block (dim == 0: the tensor is the whole tensor).
struct ShardDims {
  int dim = 0;
  int64_t local[kMaxShardDims] = {};
  int64_t start[kMaxShardDims] = {};
  int64_t global_stride[kMaxShardDims] = {};
};

struct Params {
  uint64_t key = 0, offset = 0, stream = 0;  // stream: philox_bits_ only
  float low_f = 0, span_f = 0, threshold_f = 0, mean_f = 0, std_f = 0;
  double low = 0, span = 0, threshold = 0, mean = 0, std = 0;
  PhiloxTruncParams trunc{};
};

// Writes the n local elements of a contiguous output (int32 words for kBits). Returns the launch error.
cudaError_t launch_philox(Kind kind, PhiloxDtype dtype, void* out, int64_t n, const Params& params,
                          const ShardDims& shard, cudaStream_t stream);

}  // namespace pyinit::cuda::philox
