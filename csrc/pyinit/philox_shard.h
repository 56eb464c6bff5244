#pragma once
// The shard map of a block as a kernel argument: plain struct, no torch headers (csrc/cuda/*.cu, plain nvcc). The
// philox stream's kernels (csrc/pyinit/philox_call.h) and the torch stream's block kernels
// (csrc/cuda/torch_stream_kernels.cu) take it.

#include <cstdint>

namespace pyinit {

// Local row-major index -> global row-major index of a block of a larger tensor (dim == 0: the whole tensor),
// as passed to a CUDA kernel. Built by ShardMap::device_shard().
constexpr int kMaxShardDims = 8;
struct PhiloxShard {
  int dim = 0;
  int64_t local[kMaxShardDims] = {};
  int64_t start[kMaxShardDims] = {};
  int64_t global_stride[kMaxShardDims] = {};
};

}  // namespace pyinit
