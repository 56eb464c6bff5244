#pragma once
// The philox stream's CUDA kernels: raw pointers, sizes and a cudaStream_t only (no torch headers; compiled by
// plain nvcc in CI). The glue is philox_cuda.cpp. Every value is a pure function of its global element index
// (docs/philox_stream.md), so the launch shape never changes a value, and the float transforms give the same bits
// as the CPU kernels.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "pyinit/philox_call.h"

namespace pyinit::cuda {

// Writes the n local elements of a contiguous output (int32 words for PhiloxKind::kBits). Returns the launch
// error.
cudaError_t launch_philox(void* out, int64_t n, const PhiloxCall& call, const PhiloxShard& shard, cudaStream_t stream);

}  // namespace pyinit::cuda
