// The torch stream's random kernels on CUDA: uniform_ (and masked_uniform_), normal_, trunc_normal_. Each writes
// what torch's CUDA kernel writes, element for element. See Note [torch CUDA element mapping] for the map and
// Note [curand float rounding] for the arithmetic; the transforms follow torch's uniform_kernel/normal_kernel.
//
// Note [pyinit's CUDA thread layout]
// torch's thread t writes elements t + S * (U * k + lane), one 4-byte store per lane, S apart. pyinit gives
// each of its threads V = 16 / sizeof(scalar) consecutive torch threads t0 .. t0+V-1 for one call index k: it
// computes their V Philox blocks and writes, for every lane, the V neighbouring elements with one 16-byte
// store. Same Philox work per element as torch, wider stores, and a grid sized to fill the GPU once, each
// thread walking the (k, group) items in a grid-stride loop.

#include <mutex>
#include <vector>

#include "pyinit/curand_philox.h"
#include "pyinit/curand_transforms.h"
#include "cuda/kernels.h"
#include "cuda/scalar_ops.cuh"

namespace pyinit::cuda {
namespace {

__device__ __forceinline__ void unpack_philox(const PhiloxArgs& args, uint64_t* seed, uint64_t* offset) {
  if (args.captured) {
    *seed = static_cast<uint64_t>(*args.seed_ptr);
    *offset = static_cast<uint64_t>(*args.offset_ptr + args.offset_intragraph);
  } else {
    *seed = args.seed;
    *offset = args.offset;
  }
}

// uniform_ (+ optional mask): lane l of a block. float types: word l; double: words (2l, 2l+1).
template <typename Ops>
struct UniformTransform {
  using storage_t = typename Ops::storage_t;
  using opmath_t = typename Ops::opmath_t;
  opmath_t range, from, to, threshold;
  storage_t from_value;
  bool mask;

  __device__ __forceinline__ storage_t apply(opmath_t rand) const {
    storage_t value = Ops::round(fma_rn(rand, range, from));  // torch: (scalar_t)(rand * range + from)
    if (Ops::widen(value) == to) value = from_value;          // (0, 1] -> [from, to)
    if (mask) {
      const opmath_t v = Ops::widen(value);
      const opmath_t magnitude = v < 0 ? -v : v;
      if (!(magnitude >= threshold)) value = Ops::round(v * opmath_t(0));  // `w *= w.abs() >= t`
    }
    return value;
  }
  // Lane l alone (Note [The torch stream on a block]).
  __device__ __forceinline__ storage_t lane(const Philox4x32Counter& b, int l) const {
    if constexpr (Ops::kUnroll == 4) {
      return apply(curand_uniform_float(l == 0 ? b.x : l == 1 ? b.y : l == 2 ? b.z : b.w));
    } else {
      return l == 0 ? apply(curand_uniform_double(b.x, b.y)) : apply(curand_uniform_double(b.z, b.w));
    }
  }
  __device__ __forceinline__ void operator()(const Philox4x32Counter& b, storage_t* lanes) const {
    if constexpr (Ops::kUnroll == 4) {
      lanes[0] = apply(curand_uniform_float(b.x));
      lanes[1] = apply(curand_uniform_float(b.y));
      lanes[2] = apply(curand_uniform_float(b.z));
      lanes[3] = apply(curand_uniform_float(b.w));
    } else {
      lanes[0] = apply(curand_uniform_double(b.x, b.y));
      lanes[1] = apply(curand_uniform_double(b.z, b.w));
    }
  }
};

// normal_: Box-Muller pairs. float types: pair p from words (2p, 2p+1) -> lanes 2p, 2p+1; double: one pair
// from all four words -> lanes 0, 1.
template <typename Ops>
struct NormalTransform {
  using storage_t = typename Ops::storage_t;
  using opmath_t = typename Ops::opmath_t;
  opmath_t mean, std;

  __device__ __forceinline__ void pair(const Philox4x32Counter& b, int p, storage_t* first, storage_t* second) const {
    opmath_t z0, z1;
    if constexpr (Ops::kUnroll == 4) {
      if (p == 0) {
        curand_box_muller(b.x, b.y, &z0, &z1);
      } else {
        curand_box_muller(b.z, b.w, &z0, &z1);
      }
    } else {
      curand_box_muller_double(b.x, b.y, b.z, b.w, &z0, &z1);
    }
    *first = Ops::round(fma_rn(z0, std, mean));  // torch: (scalar_t)(rand * std + mean)
    *second = Ops::round(fma_rn(z1, std, mean));
  }
  __device__ __forceinline__ void operator()(const Philox4x32Counter& b, storage_t* lanes) const {
#pragma unroll
    for (int p = 0; p < Ops::kUnroll / 2; ++p) pair(b, p, &lanes[2 * p], &lanes[2 * p + 1]);
  }
  // Lane l alone: one Box-Muller pair, of which it keeps its half (Note [The torch stream on a block]).
  __device__ __forceinline__ storage_t lane(const Philox4x32Counter& b, int l) const {
    storage_t first, second;
    pair(b, l / 2, &first, &second);
    return (l & 1) ? second : first;
  }
};

// Walks the (call k, group g) work items of Note [pyinit's CUDA thread layout]: body(k, t0, base) with
// base = k * S * U + t0 the element of lane 0 of torch thread t0.
template <int U, int V, typename Body>
__device__ __forceinline__ void for_each_item(int64_t numel, int64_t torch_threads, Body&& body) {
  const int64_t groups = torch_threads / V;
  const int64_t calls = (numel - 1) / (torch_threads * U) + 1;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t call = first / groups, group = first % groups;
  const int64_t call_step = stride / groups, group_step = stride % groups;
  while (call < calls) {
    const int64_t t0 = group * V;
    const int64_t base = call * torch_threads * U + t0;
    if (base < numel) body(call, t0, base);
    group += group_step;
    call += call_step;
    if (group >= groups) {
      group -= groups;
      ++call;
    }
  }
}

template <typename Ops, typename Transform, bool kAligned>
__global__ void __launch_bounds__(kBlockSize)
    distribution_kernel(typename Ops::storage_t* out, int64_t numel, int64_t torch_threads, PhiloxArgs philox,
                        Transform transform) {
  using storage_t = typename Ops::storage_t;
  constexpr int U = Ops::kUnroll;
  constexpr int V = 16 / sizeof(storage_t);
  uint64_t seed, offset;
  unpack_philox(philox, &seed, &offset);
  for_each_item<U, V>(numel, torch_threads, [&](int64_t call, int64_t t0, int64_t base) {
    storage_t values[U][V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const Philox4x32Counter block = torch_cuda_philox_block(seed, offset, t0 + v, call);
      storage_t lanes[U];
      transform(block, lanes);
#pragma unroll
      for (int l = 0; l < U; ++l) values[l][v] = lanes[l];
    }
#pragma unroll
    for (int l = 0; l < U; ++l) {
      const int64_t li = base + l * torch_threads;
      store_group<storage_t, V, kAligned>(out + li, values[l], numel - li);
    }
  });
}

// Note [trunc_normal_ in one kernel]
// torch >= 2.12 redraws a full normal_ tensor per round and keeps, per element, the first in-bounds value.
// Round r's candidate for element li is a pure function of (seed, offset + r * round_stride, li), so each
// pyinit thread loops over rounds for its own elements only, computing Box-Muller only for pairs that still
// have a pending element, and reports the largest round it needed (atomicMax). The glue then advances the
// generator by as many rounds as torch would have run. Without kStore the kernel only counts the rounds (out is
// unused): trunc_normal_blocks_ needs the whole tensor's count, then writes its blocks' elements alone.
template <typename Ops, bool kAligned, bool kStore = true>
__global__ void __launch_bounds__(kBlockSize)
    trunc_normal_kernel(typename Ops::storage_t* out, int64_t numel, int64_t torch_threads, PhiloxArgs philox,
                        NormalTransform<Ops> transform, typename Ops::opmath_t lo, typename Ops::opmath_t hi,
                        uint64_t round_stride, int32_t max_rounds, int32_t* max_round) {
  using storage_t = typename Ops::storage_t;
  constexpr int U = Ops::kUnroll;
  constexpr int V = 16 / sizeof(storage_t);
  static_assert(U * V <= 32, "pending bits fit in 32");
  uint64_t seed, offset;
  unpack_philox(philox, &seed, &offset);
  int32_t thread_max = 0;
  for_each_item<U, V>(numel, torch_threads, [&](int64_t call, int64_t t0, int64_t base) {
    storage_t values[U][V];
    uint32_t pending = 0;  // bit (l * V + v)
#pragma unroll
    for (int l = 0; l < U; ++l) {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        if (base + l * torch_threads + v < numel) pending |= 1u << (l * V + v);
      }
    }
    int32_t round = 0;
    for (; pending != 0 && round < max_rounds; ++round) {
      const uint64_t round_offset = offset + static_cast<uint64_t>(round) * round_stride;
#pragma unroll
      for (int v = 0; v < V; ++v) {
        uint32_t lanes_pending = 0;
#pragma unroll
        for (int l = 0; l < U; ++l) lanes_pending |= ((pending >> (l * V + v)) & 1u) << l;
        if (lanes_pending == 0) continue;
        const Philox4x32Counter block = torch_cuda_philox_block(seed, round_offset, t0 + v, call);
#pragma unroll
        for (int p = 0; p < U / 2; ++p) {
          if (((lanes_pending >> (2 * p)) & 3u) == 0) continue;
          storage_t candidate[2];
          transform.pair(block, p, &candidate[0], &candidate[1]);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int l = 2 * p + h;
            const uint32_t bit = 1u << (l * V + v);
            if (!(pending & bit)) continue;
            values[l][v] = candidate[h];
            const auto c = Ops::widen(candidate[h]);
            if (!(c < lo) && !(c > hi)) {  // torch: mask = (result < lo) | (result > hi)
              pending &= ~bit;
              thread_max = round > thread_max ? round : thread_max;
            }
          }
        }
      }
    }
    if (pending != 0) thread_max = max_rounds;
    if constexpr (kStore) {
#pragma unroll
      for (int l = 0; l < U; ++l) {
        const int64_t li = base + l * torch_threads;
        store_group<storage_t, V, kAligned>(out + li, values[l], numel - li);
      }
    }
  });
  if (thread_max > 0) atomicMax(max_round, thread_max);
}

// Note [The torch stream on a block]
// torch's CUDA element map (Note [torch CUDA element mapping]) is a pure function of the element's index li in
// the iteration: thread li % S, call li / (S * U), lane (li / S) % U. So one block of a tensor (a rank's shard of
// a DTensor) can be given exactly the values torch's call on the whole tensor writes there without computing the
// rest: each pyinit thread takes one element of the block, finds its index in the whole tensor (contiguous,
// row-major: shard.start and shard.global_stride), and computes the Philox block and the lane of that index. This
// costs one Philox block per element, U times torch's Philox work per element (torch's thread shares its block
// among U elements S apart, which a block seldom holds together), and writes nothing outside the block. The glue
// reserves the whole tensor's offsets from the generator, as torch's call does, and launches once per 32-bit
// piece of the whole tensor (elements outside [begin, end) are left to the other pieces' launches).
// The row-major index in the whole tensor of element e (row-major) of the block `shard` describes.
__device__ __forceinline__ int64_t whole_index(const PhiloxShard& shard, int64_t e) {
  if (shard.dim == 0) return e;
  int64_t rest = e, li = 0;
  for (int k = shard.dim - 1; k >= 0; --k) {
    const int64_t size = shard.local[k];
    const int64_t index = rest % size;
    rest /= size;
    li += (shard.start[k] + index) * shard.global_stride[k];
  }
  return li;
}

// Calls body(e, thread, call, lane) for every element e (row-major) of the block `shard` describes whose index in
// the whole tensor lies in the piece [begin, end): the torch thread, call and lane that draw that index - begin.
template <int U, typename Body>
__device__ __forceinline__ void for_each_block_element(int64_t count, const PhiloxShard& shard, int64_t begin,
                                                       int64_t end, int64_t torch_threads, Body&& body) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += stride) {
    const int64_t li = whole_index(shard, e);
    if (li < begin || li >= end) continue;
    const int64_t step = (li - begin) / torch_threads;
    body(e, (li - begin) % torch_threads, step / U, static_cast<int>(step % U));
  }
}

template <typename Ops, typename Transform>
__global__ void __launch_bounds__(kBlockSize)
    block_kernel(typename Ops::storage_t* out, int64_t count, PhiloxShard shard, int64_t begin, int64_t end,
                 int64_t torch_threads, PhiloxArgs philox, Transform transform) {
  uint64_t seed, offset;
  unpack_philox(philox, &seed, &offset);
  for_each_block_element<Ops::kUnroll>(
      count, shard, begin, end, torch_threads, [&](int64_t e, int64_t thread, int64_t call, int lane) {
        out[e] = transform.lane(torch_cuda_philox_block(seed, offset, thread, call), lane);
      });
}

// trunc_normal_ on a block (Note [The torch stream on a block], Note [trunc_normal_ in one kernel]): each element
// of the block takes round r's proposal for its index until one lies in [lo, hi]. `rounds` is the whole call's
// count (found first by trunc_normal_kernel without stores), so every element is accepted by round `rounds`.
template <typename Ops>
__global__ void __launch_bounds__(kBlockSize)
    trunc_normal_block_kernel(typename Ops::storage_t* out, int64_t count, PhiloxShard shard, int64_t begin,
                              int64_t end, int64_t torch_threads, PhiloxArgs philox, NormalTransform<Ops> transform,
                              typename Ops::opmath_t lo, typename Ops::opmath_t hi, uint64_t round_stride,
                              int32_t rounds) {
  using storage_t = typename Ops::storage_t;
  uint64_t seed, offset;
  unpack_philox(philox, &seed, &offset);
  for_each_block_element<Ops::kUnroll>(
      count, shard, begin, end, torch_threads, [&](int64_t e, int64_t thread, int64_t call, int lane) {
        storage_t value{};
        for (int32_t round = 0; round <= rounds; ++round) {
          const uint64_t round_offset = offset + static_cast<uint64_t>(round) * round_stride;
          value = transform.lane(torch_cuda_philox_block(seed, round_offset, thread, call), lane);
          const auto c = Ops::widen(value);
          if (!(c < lo) && !(c > hi)) break;  // torch: mask = (result < lo) | (result > hi)
        }
        out[e] = value;
      });
}

// `needed` blocks of kBlockSize threads, capped at as many as the GPU holds at once for `kernel` (so that its
// grid-stride loop has no tail wave).
template <typename Kernel>
int64_t resident_grid(int64_t needed, const DeviceLimits& limits, Kernel kernel) {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlockSize, 0) != cudaSuccess || per_sm < 1) {
    per_sm = limits.max_threads_per_sm / kBlockSize;
  }
  int64_t resident = static_cast<int64_t>(limits.sm_count) * per_sm;
  if (resident < 1) resident = 1;
  return needed < resident ? needed : resident;
}

// Blocks for pyinit's layout: one thread per (call, group) item (resident_grid).
template <typename Kernel>
int64_t grid_for(const RandomLaunch& launch, int unroll, int group, Kernel kernel) {
  const int64_t groups = launch.torch_threads / group;
  const int64_t calls = (launch.numel - 1) / (launch.torch_threads * unroll) + 1;
  return resident_grid((groups * calls + kBlockSize - 1) / kBlockSize, launch.limits, kernel);
}

template <typename Ops, typename Transform>
void launch_block_as(const BlockLaunch& launch, const Transform& transform, cudaStream_t stream) {
  using storage_t = typename Ops::storage_t;
  auto* kernel = &block_kernel<Ops, Transform>;
  const int64_t blocks = resident_grid((launch.count + kBlockSize - 1) / kBlockSize, launch.limits, kernel);
  kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<storage_t*>(launch.out), launch.count, launch.shard,
                                            launch.begin, launch.end, launch.torch_threads, launch.philox, transform);
}

template <typename Ops, typename Transform, bool kAligned>
void launch_distribution_as(const RandomLaunch& launch, const Transform& transform, cudaStream_t stream) {
  using storage_t = typename Ops::storage_t;
  constexpr int V = 16 / sizeof(storage_t);
  auto* kernel = &distribution_kernel<Ops, Transform, kAligned>;
  const int64_t blocks = grid_for(launch, Ops::kUnroll, V, kernel);
  kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<storage_t*>(launch.out), launch.numel, launch.torch_threads,
                                            launch.philox, transform);
}

template <typename Ops, typename Transform>
void launch_distribution(const RandomLaunch& launch, const Transform& transform, cudaStream_t stream) {
  if (is_aligned16(launch.out)) {
    launch_distribution_as<Ops, Transform, true>(launch, transform, stream);
  } else {
    launch_distribution_as<Ops, Transform, false>(launch, transform, stream);
  }
}

// kStore false: the rounds counted only (out unused), for trunc_normal_blocks_.
template <typename Ops, bool kAligned, bool kStore = true>
void launch_trunc_normal_as(const RandomLaunch& launch, const NormalTransform<Ops>& transform,
                            const TruncNormalParams& params, cudaStream_t stream) {
  using storage_t = typename Ops::storage_t;
  using opmath_t = typename Ops::opmath_t;
  constexpr int V = 16 / sizeof(storage_t);
  const opmath_t lo = Ops::widen(Ops::from_double(params.a));  // torch compares in the tensor's dtype
  const opmath_t hi = Ops::widen(Ops::from_double(params.b));
  auto* kernel = &trunc_normal_kernel<Ops, kAligned, kStore>;
  const int64_t blocks = grid_for(launch, Ops::kUnroll, V, kernel);
  kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<storage_t*>(launch.out), launch.numel, launch.torch_threads,
                                            launch.philox, transform, lo, hi, params.round_stride, params.max_rounds,
                                            params.max_round);
}

template <typename Ops>
void launch_trunc_normal_block_as(const BlockLaunch& launch, const NormalTransform<Ops>& transform,
                                  const TruncNormalParams& params, int32_t rounds, cudaStream_t stream) {
  using storage_t = typename Ops::storage_t;
  const auto lo = Ops::widen(Ops::from_double(params.a));
  const auto hi = Ops::widen(Ops::from_double(params.b));
  auto* kernel = &trunc_normal_block_kernel<Ops>;
  const int64_t blocks = resident_grid((launch.count + kBlockSize - 1) / kBlockSize, launch.limits, kernel);
  kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<storage_t*>(launch.out), launch.count, launch.shard,
                                            launch.begin, launch.end, launch.torch_threads, launch.philox, transform,
                                            lo, hi, params.round_stride, rounds);
}

}  // namespace

DeviceLimits device_limits(int device) {
  static std::mutex mutex;
  static std::vector<DeviceLimits> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (device < 0) return DeviceLimits{0, 0};
  if (static_cast<size_t>(device) >= cache.size()) cache.resize(device + 1, DeviceLimits{0, 0});
  DeviceLimits& limits = cache[device];
  if (limits.sm_count == 0) {
    int sm_count = 0, max_threads = 0;
    if (cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&max_threads, cudaDevAttrMaxThreadsPerMultiProcessor, device) != cudaSuccess) {
      return DeviceLimits{0, 0};
    }
    limits = DeviceLimits{sm_count, max_threads};
  }
  return limits;
}

namespace {

template <typename Ops>
UniformTransform<Ops> uniform_transform(const UniformParams& params) {
  // torch: from/to in scalar_t, range = (opmath)(to - from) with the subtraction in scalar_t.
  const auto from_value = Ops::from_double(params.low);
  const auto to_value = Ops::from_double(params.high);
  UniformTransform<Ops> transform;
  transform.from = Ops::widen(from_value);
  transform.to = Ops::widen(to_value);
  transform.range = Ops::widen(Ops::round(transform.to - transform.from));
  transform.from_value = from_value;
  transform.mask = params.mask;
  // `w.abs() >= t` compares in the tensor's dtype: the threshold rounds to it.
  transform.threshold = Ops::widen(Ops::from_double(params.threshold));
  return transform;
}

template <typename Ops>
NormalTransform<Ops> normal_transform(const NormalParams& params) {
  using opmath_t = typename Ops::opmath_t;
  // torch: mean and std cast straight to the accumulate type (float for 16-bit types).
  return NormalTransform<Ops>{static_cast<opmath_t>(params.mean), static_cast<opmath_t>(params.std)};
}

}  // namespace

void launch_uniform(DType dtype, const RandomLaunch& launch, const UniformParams& params, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_distribution<Ops>(launch, uniform_transform<Ops>(params), stream);
  });
}

void launch_normal(DType dtype, const RandomLaunch& launch, const NormalParams& params, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_distribution<Ops>(launch, normal_transform<Ops>(params), stream);
  });
}

void launch_uniform_block(DType dtype, const BlockLaunch& launch, const UniformParams& params, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_block_as<Ops>(launch, uniform_transform<Ops>(params), stream);
  });
}

void launch_normal_block(DType dtype, const BlockLaunch& launch, const NormalParams& params, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_block_as<Ops>(launch, normal_transform<Ops>(params), stream);
  });
}

void launch_trunc_normal_rounds(DType dtype, const RandomLaunch& launch, const TruncNormalParams& params,
                                cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_trunc_normal_as<Ops, /*kAligned=*/true, /*kStore=*/false>(
        launch, normal_transform<Ops>(NormalParams{params.mean, params.std}), params, stream);
  });
}

void launch_trunc_normal_block(DType dtype, const BlockLaunch& launch, const TruncNormalParams& params, int32_t rounds,
                               cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_trunc_normal_block_as<Ops>(launch, normal_transform<Ops>(NormalParams{params.mean, params.std}), params,
                                      rounds, stream);
  });
}

void launch_trunc_normal(DType dtype, const RandomLaunch& launch, const TruncNormalParams& params,
                         cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    const NormalTransform<Ops> transform = normal_transform<Ops>(NormalParams{params.mean, params.std});
    if (is_aligned16(launch.out)) {
      launch_trunc_normal_as<Ops, true>(launch, transform, params, stream);
    } else {
      launch_trunc_normal_as<Ops, false>(launch, transform, params, stream);
    }
  });
}

}  // namespace pyinit::cuda
