#pragma once
// The types pyinit's CUDA kernels (*.cu, compiled by plain nvcc: CUDA toolkit + csrc/pyinit only) share with the
// torch glue (*_cuda.cpp: tensors, generators, streams; checks in csrc/validate.h; registration in csrc/ops.cpp).
//
// Note [Launchers declared by their caller]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Each launch function is defined in a .cu file and declared in the one glue file that calls it, as the kernels
// are declared beside their registration (Note [One operator table], csrc/ops.cpp): a new kernel operator whose
// launch takes scalars adds no header. A declaration that differs from the definition is an undefined symbol and
// pyinit._C does not import (the CUDA build leg of CI imports it). This header holds only what several files
// share: the Philox state, launch shapes, layouts and parameter structs.
//
// Note [CUDA kernels without torch headers]
// The .cu files see raw pointers, sizes, a cudaStream_t and the Philox state as plain integers, so that
// .ci/nvcc_check.sh can compile them on a machine whose torch has no CUDA. Everything that needs a CUDA
// build of torch lives in the glue, which setup.py compiles only when torch has CUDA.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "pyinit/dtype.h"
#include "pyinit/philox_shard.h"

namespace pyinit::cuda {

// torch's curand values per call: 4 (float4) for float/half/bfloat16, 2 (double2) for double.
inline int torch_unroll(DType dtype) { return dtype == DType::kDouble ? 2 : 4; }

// Note [Graph-safe Philox state]
// The fields of torch's PhiloxCudaState, copied by the glue. Outside graph capture seed/offset hold the
// values. During capture torch hands out device pointers to the seed and to the graph's base offset, which
// each replay updates, plus this launch's offset inside the graph; the kernel reads them at run time (the
// same thing at::cuda::philox::unpack does), so a replay draws fresh numbers.
struct PhiloxArgs {
  uint64_t seed = 0;
  uint64_t offset = 0;
  const int64_t* seed_ptr = nullptr;
  const int64_t* offset_ptr = nullptr;
  uint64_t offset_intragraph = 0;
  bool captured = false;
};

struct DeviceLimits {
  int sm_count;
  int max_threads_per_sm;
};

// SM count and max resident threads per SM of `device` (cached; cudaDeviceGetAttribute).
DeviceLimits device_limits(int device);

// One torch distribution launch: `numel` elements of `out` (storage positions 0 .. numel-1 in the linear
// order of Note [torch CUDA element mapping]) drawn from `philox`, as a torch launch over `torch_threads`
// threads (S) would draw them.
struct RandomLaunch {
  void* out;
  int64_t numel;
  int64_t torch_threads;
  PhiloxArgs philox;
  DeviceLimits limits;  // bounds pyinit's own grid (resident blocks)
};

// One torch distribution call over a tensor of which only one block is written (Note [The torch stream on a
// block], torch_stream_kernels.cu): the `count` elements of `out` are the block's, row-major, and `shard` maps
// each to its row-major index in the whole (contiguous) tensor. Only those whose index lies in the piece [begin,
// end) of the whole tensor's 32-bit split are written, drawn as that piece's launch over `torch_threads` threads
// draws index - begin.
struct BlockLaunch {
  void* out;
  int64_t count;
  PhiloxShard shard;
  int64_t begin;
  int64_t end;
  int64_t torch_threads;
  PhiloxArgs philox;
  DeviceLimits limits;
};

// uniform_(low, high), then optionally zero |v| < threshold (masked_uniform_). low/high as the user gave
// them (already clamped to the dtype by the checks).
struct UniformParams {
  double low;
  double high;
  bool mask;
  double threshold;
};

struct NormalParams {
  double mean;
  double std;
};

// Rejection sampling with normal proposals (torch >= 2.12 trunc_normal_): round r draws the normal_ that
// torch's r-th full-tensor normal_ would draw, at offset (launch offset + r * round_stride); each element
// keeps the first candidate inside [a, b] (bounds rounded to the dtype). `max_round` (device int32, zeroed by
// the caller) receives the largest accepted round, or max_rounds if some element was never accepted.
struct TruncNormalParams {
  double mean;
  double std;
  double a;
  double b;
  uint64_t round_stride;
  int32_t max_rounds;
  int32_t* max_round;
};

// Row-major layout of a tensor (element strides). Deterministic kernels address elements through it.
constexpr int kMaxDims = 8;
struct Layout {
  void* data;
  int dims;
  int64_t numel;
  bool contiguous;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims];
};

// out (rows x cols) = q' * sign(diag') * gain, q' = q (rows x q_cols, contiguous) or its transpose; diag has
// one entry per column of q. q and diag are float or double (q_dtype); the product rounds to out's dtype.
struct OrthogonalParams {
  const void* q;
  const void* diag;
  DType q_dtype;
  int64_t q_cols;
  bool transposed;
  double gain;
};

}  // namespace pyinit::cuda
