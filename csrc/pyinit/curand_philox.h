#pragma once
// torch's CUDA distribution kernels as a closed form: launch policy, Philox offset increment, and which
// Philox4x32-10 block feeds which element. Host+device, no CUDA or torch headers, so the numpy model in
// tests/cuda_model.py and the host self-test can check the same formulas.
//
// Note [torch CUDA element mapping]
// torch launches `blocks` blocks of 256 threads, S = 256 * blocks threads in all, with
//   blocks = min(ceil(n / 256), SMs * (maxThreadsPerSM / 256)),
// and reserves increment = 4 * ceil(n / (S * U)) Philox offsets, U = 4 values per curand call for
// float/half/bfloat16 and U = 2 for double. Thread t calls curand_init(seed, subsequence = t, offset): its
// k-th curand4 call returns the Philox block of counter (offset / 4 + k) + 2^64 * t and key seed, and the U
// values of that call go to linear elements t + S * (U * k + lane), lane = 0 .. U-1. So element li is
//   t = li % S, k = (li / S) / U, lane = (li / S) % U.
// (curand's offset is counted in 32-bit words; torch keeps it a multiple of 4, see "Note [Why enforce RNG
// offset % 4 == 0?]" in torch, so a call never straddles two blocks.) The linear index is TensorIterator's:
// memory order for a dense tensor. Kernels may use any thread layout as long as they keep this map.

#include <cstdint>

#include "pyinit/macros.h"
#include "pyinit/philox.h"

namespace pyinit {

constexpr int64_t kTorchCudaBlockSize = 256;

struct TorchCudaLaunch {
  int64_t blocks;      // torch's grid.x
  int64_t threads;     // S = 256 * blocks
  int64_t calls;       // curand calls per thread (the same for every thread)
  uint64_t increment;  // Philox offset reserved by the call: 4 * calls
};

// calc_execution_policy of torch's DistributionTemplates.h, for n >= 1 elements.
PYINIT_INLINE TorchCudaLaunch torch_cuda_launch(int64_t n, int sm_count, int max_threads_per_sm, int unroll) {
  const int64_t needed = (n + kTorchCudaBlockSize - 1) / kTorchCudaBlockSize;
  const int64_t resident = static_cast<int64_t>(sm_count) * (max_threads_per_sm / kTorchCudaBlockSize);
  const int64_t blocks = needed < resident ? needed : resident;
  const int64_t threads = blocks * kTorchCudaBlockSize;
  const int64_t calls = (n - 1) / (threads * unroll) + 1;
  return TorchCudaLaunch{blocks, threads, calls, static_cast<uint64_t>(calls) * 4};
}

// The Philox block that torch thread `thread` gets from its `call`-th curand4, for a generator at
// (seed, offset): counter (offset / 4 + call) in the low 64 bits, `thread` in the high 64 bits (with
// curand's carry from the low half into the high half).
PYINIT_INLINE Philox4x32Counter torch_cuda_philox_block(uint64_t seed, uint64_t offset, uint64_t thread,
                                                        uint64_t call) {
  const uint64_t base = offset / 4;
  const uint64_t low = base + call;
  const uint64_t high = thread + (low < base ? 1u : 0u);
  const Philox4x32Counter counter{static_cast<uint32_t>(low), static_cast<uint32_t>(low >> 32),
                                  static_cast<uint32_t>(high), static_cast<uint32_t>(high >> 32)};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Where element `li` of a launch of S threads with U values per call takes its value from.
struct TorchCudaSlot {
  int64_t thread;
  int64_t call;
  int lane;
};

PYINIT_INLINE TorchCudaSlot torch_cuda_slot(int64_t li, int64_t threads, int unroll) {
  const int64_t round = li / threads;
  return TorchCudaSlot{li % threads, round / unroll, static_cast<int>(round % unroll)};
}

}  // namespace pyinit
