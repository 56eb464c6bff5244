#pragma once
// Per-dtype storage and rounding for the CUDA kernels, without c10 types: half and bfloat16 are kept as their
// 16-bit patterns, float and double as themselves. Conversions round to nearest even, as c10::Half(float) and
// c10::BFloat16(float) do; a double argument is first rounded to float, as c10's Half/BFloat16 constructors
// (which take a float) do with a double.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kernels.h"
#include "pyinit/rounded_arithmetic.h"  // fma_rn

namespace pyinit::cuda {

constexpr int kBlockSize = 256;

template <DType D>
struct ScalarOps;

template <>
struct ScalarOps<DType::kHalf> {
  using storage_t = uint16_t;
  using opmath_t = float;
  static constexpr int kUnroll = 4;
  __host__ __device__ static storage_t round(float x) { return static_cast<__half_raw>(__float2half_rn(x)).x; }
  __host__ __device__ static float widen(storage_t s) {
    __half_raw raw;
    raw.x = s;
    return __half2float(__half(raw));
  }
  __host__ __device__ static storage_t from_double(double x) { return round(static_cast<float>(x)); }
};

template <>
struct ScalarOps<DType::kBFloat16> {
  using storage_t = uint16_t;
  using opmath_t = float;
  static constexpr int kUnroll = 4;
  __host__ __device__ static storage_t round(float x) {
    return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(x)).x;
  }
  __host__ __device__ static float widen(storage_t s) {
    __nv_bfloat16_raw raw;
    raw.x = s;
    return __bfloat162float(__nv_bfloat16(raw));
  }
  __host__ __device__ static storage_t from_double(double x) { return round(static_cast<float>(x)); }
};

template <>
struct ScalarOps<DType::kFloat> {
  using storage_t = float;
  using opmath_t = float;
  static constexpr int kUnroll = 4;
  __host__ __device__ static storage_t round(float x) { return x; }
  __host__ __device__ static float widen(storage_t s) { return s; }
  __host__ __device__ static storage_t from_double(double x) { return static_cast<float>(x); }
};

template <>
struct ScalarOps<DType::kDouble> {
  using storage_t = double;
  using opmath_t = double;
  static constexpr int kUnroll = 2;
  __host__ __device__ static storage_t round(double x) { return x; }
  __host__ __device__ static double widen(storage_t s) { return s; }
  __host__ __device__ static storage_t from_double(double x) { return x; }
};

// Stores `count` (<= V) values at p: one 16-byte store when all V are there and p is 16-byte aligned.
template <typename storage_t, int V, bool kAligned>
__device__ __forceinline__ void store_group(storage_t* p, const storage_t (&values)[V], int64_t count) {
  static_assert(V * sizeof(storage_t) == 16, "a group is 16 bytes");
  if (kAligned && count >= V) {
    union {
      uint4 vector;
      storage_t lanes[V];
    } packed;
#pragma unroll
    for (int v = 0; v < V; ++v) packed.lanes[v] = values[v];
    *reinterpret_cast<uint4*>(p) = packed.vector;
    return;
  }
#pragma unroll
  for (int v = 0; v < V; ++v) {
    if (v < count) p[v] = values[v];
  }
}

// Calls dispatch(std::integral_constant-like tag) for the runtime dtype.
template <typename F>
void dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kHalf: f(ScalarOps<DType::kHalf>{}); break;
    case DType::kBFloat16: f(ScalarOps<DType::kBFloat16>{}); break;
    case DType::kFloat: f(ScalarOps<DType::kFloat>{}); break;
    case DType::kDouble: f(ScalarOps<DType::kDouble>{}); break;
  }
}

inline bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace pyinit::cuda
