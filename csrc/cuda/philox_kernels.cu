// The philox stream's CUDA kernels (glue: philox_cuda.cpp). See docs/philox_stream.md.
//   - whole tensors, one word per element or double (not trunc_normal_): one thread per Philox block, which
//     writes its 4 (or 2) elements of the tile (8-element runs across neighbouring threads: coalesced);
//   - shards and trunc_normal_: one thread per element (global index from the shard map, then the element's
//     block), the same scalar transforms as the CPU.

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "pyinit/philox_call.h"

namespace pyinit::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint64_t global_index(int64_t l, const PhiloxShard& shard) {
  if (shard.dim == 0) return static_cast<uint64_t>(l);
  uint64_t g = 0;
  for (int k = shard.dim - 1; k >= 0; --k) {
    const int64_t size = shard.local[k];
    g += static_cast<uint64_t>((shard.start[k] + l % size) * shard.global_stride[k]);
    l /= size;
  }
  return g;
}

__device__ __forceinline__ float float_value(PhiloxKind kind, const Philox4x32Counter& w, int slot, const PhiloxCall& p,
                                             DType dtype) {
  float v = kind == PhiloxKind::kNormal ? philox_normal_float(w, slot, p.mean_f, p.std_f)
                                        : philox_uniform_float(philox_lane(w, slot), p.low_f, p.span_f);
  v = round_to_dtype(v, dtype);
  return kind == PhiloxKind::kMaskedUniform ? philox_mask_float(v, p.threshold_f) : v;
}

__device__ __forceinline__ double double_value(PhiloxKind kind, const Philox4x32Counter& w, int slot,
                                               const PhiloxCall& p) {
  if (kind == PhiloxKind::kNormal) return dadd_rn(dmul_rn(philox_standard_normal_double(w, slot), p.std), p.mean);
  const double v = philox_uniform_double(philox_lane(w, 2 * slot), philox_lane(w, 2 * slot + 1), p.low, p.span);
  return kind == PhiloxKind::kMaskedUniform ? philox_mask_double(v, p.threshold) : v;
}

// One element: local index l, global index g.
__device__ __forceinline__ void write_element(PhiloxKind kind, DType dtype, void* out, int64_t l, uint64_t g,
                                              const PhiloxCall& p) {
  if (kind == PhiloxKind::kBits) {
    const PhiloxTile t = philox_tile(g, 1);
    static_cast<uint32_t*>(out)[l] = philox_lane(philox_block(p.key, p.offset, t.block, p.stream), t.slot);
  } else if (kind == PhiloxKind::kTruncNormal) {
    const double v = philox_trunc_normal_value(p.key, p.offset, g, p.trunc, dtype);
    if (dtype == DType::kDouble) {
      static_cast<double*>(out)[l] = v;
    } else {
      store_float_as(out, l, static_cast<float>(v), dtype);
    }
  } else if (dtype == DType::kDouble) {
    const PhiloxTile t = philox_tile(g, 2);
    static_cast<double*>(out)[l] = double_value(kind, philox_block(p.key, p.offset, t.block, 0), t.slot, p);
  } else {
    const PhiloxTile t = philox_tile(g, 1);
    store_float_as(out, l, float_value(kind, philox_block(p.key, p.offset, t.block, 0), t.slot, p, dtype), dtype);
  }
}

__global__ void philox_element_kernel(PhiloxKind kind, DType dtype, void* out, int64_t n, PhiloxCall p,
                                      PhiloxShard shard) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < n; l += stride) {
    write_element(kind, dtype, out, l, global_index(l, shard), p);
  }
}

// Whole tensor: thread = Philox block b of tile b / 8; it owns elements tile * T + slot * 8 + b % 8.
__global__ void philox_block_kernel(PhiloxKind kind, DType dtype, void* out, int64_t n, PhiloxCall p) {
  const bool is_double = dtype == DType::kDouble && kind != PhiloxKind::kBits;
  const int64_t tile_size = is_double ? 16 : 32;
  const int slots = is_double ? 2 : 4;
  const int64_t blocks = (n + tile_size - 1) / tile_size * 8;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    const Philox4x32Counter w = philox_block(p.key, p.offset, static_cast<uint64_t>(b), p.stream);
    const int64_t first = (b / 8) * tile_size + (b % 8);
    for (int slot = 0; slot < slots; ++slot) {
      const int64_t e = first + 8 * slot;
      if (e >= n) break;
      if (kind == PhiloxKind::kBits) {
        static_cast<uint32_t*>(out)[e] = philox_lane(w, slot);
      } else if (is_double) {
        static_cast<double*>(out)[e] = double_value(kind, w, slot, p);
      } else {
        store_float_as(out, e, float_value(kind, w, slot, p, dtype), dtype);
      }
    }
  }
}

int grid_for(int64_t work) {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t wanted = (work + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, static_cast<int64_t>(sms) * 32)));
}

}  // namespace

cudaError_t launch_philox(void* out, int64_t n, const PhiloxCall& call, const PhiloxShard& shard, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const PhiloxKind kind = call.kind;
  const DType dtype = call.dtype;
  if (shard.dim == 0 && kind != PhiloxKind::kTruncNormal) {
    const bool is_double = dtype == DType::kDouble && kind != PhiloxKind::kBits;
    const int64_t tile_size = is_double ? 16 : 32;
    const int64_t blocks = (n + tile_size - 1) / tile_size * 8;
    philox_block_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(kind, dtype, out, n, call);
  } else {
    philox_element_kernel<<<grid_for(n), kThreads, 0, stream>>>(kind, dtype, out, n, call, shard);
  }
  return cudaGetLastError();
}

}  // namespace pyinit::cuda
