#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), written once for the
// host and the device. Used by the CUDA kernels of the `torch` stream (which reproduce curand's Philox, the
// generator torch's CUDA distributions use) and by both backends of the `philox` stream.
// Checked against the Random123 known-answer vectors in tests/cpp/test_pyinit.cpp, tests/test_philox_kat.py and
// csrc/cuda/tests/host_selftest.cpp.

#include <cstdint>

#include "pyinit/macros.h"

namespace pyinit {

struct Philox4x32Counter {
  uint32_t x, y, z, w;
};

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // multiplier of lanes 0/1
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;  // multiplier of lanes 2/3
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increment (golden ratio)
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // Weyl key increment (sqrt(3) - 1)

PYINIT_INLINE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
#if defined(__CUDA_ARCH__)
  *lo = a * b;
  *hi = __umulhi(a, b);
#else
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *lo = static_cast<uint32_t>(product);
  *hi = static_cast<uint32_t>(product >> 32);
#endif
}

PYINIT_INLINE Philox4x32Counter philox_round(Philox4x32Counter c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  philox_mulhilo(kPhiloxM0, c.x, &hi0, &lo0);
  philox_mulhilo(kPhiloxM1, c.z, &hi1, &lo1);
  return Philox4x32Counter{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

// Ten rounds, the key bumped between rounds.
PYINIT_INLINE Philox4x32Counter philox4x32_10(Philox4x32Counter counter, uint32_t key0, uint32_t key1) {
#pragma unroll
  for (int round = 0; round < 9; ++round) {
    counter = philox_round(counter, key0, key1);
    key0 += kPhiloxW0;
    key1 += kPhiloxW1;
  }
  return philox_round(counter, key0, key1);
}

// Lane `lane` (0..3) of a counter block.
PYINIT_INLINE uint32_t philox_lane(const Philox4x32Counter& c, int lane) {
  return lane == 0 ? c.x : lane == 1 ? c.y : lane == 2 ? c.z : c.w;
}

}  // namespace pyinit
