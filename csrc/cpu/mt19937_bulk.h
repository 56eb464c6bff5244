#pragma once
// Bulk draws from torch's CPU generator (at::mt19937), word for word what calling the engine n times returns.
// The engine is copied out of the generator, advanced here with a loop the compiler vectorizes (the twist has
// a dependency distance of 227 words, the tempering none), and stored back, all under the generator's mutex.
// See Note [The torch stream on CPU].

#include <ATen/core/MT19937RNGEngine.h>

#include <cstdint>

namespace pyinit::cpu {
// Internal linkage: torch_stream_avx2.cpp compiles these for AVX2, and the linker must not hand that copy to
// translation units built for the baseline ISA.
namespace {

// Regenerates the 624-word state: the same recurrence as at::mt19937_engine::next_state, split into the
// three ranges whose reads do not depend on words written in the same range closer than 227 positions.
inline void mt19937_twist(uint32_t* state) {
  constexpr int N = at::MERSENNE_STATE_N, M = at::MERSENNE_STATE_M;
  auto twist = [](uint32_t u, uint32_t v) {
    const uint32_t mixed = (u & at::UMASK) | (v & at::LMASK);
    return (mixed >> 1) ^ ((v & 1u) ? at::MATRIX_A : 0u);
  };
  for (int j = 0; j < N - M; ++j) state[j] = state[j + M] ^ twist(state[j], state[j + 1]);
  for (int j = N - M; j < N - 1; ++j) state[j] = state[j + M - N] ^ twist(state[j], state[j + 1]);
  state[N - 1] = state[M - 1] ^ twist(state[N - 1], state[0]);
}

inline void mt19937_temper(const uint32_t* state, uint32_t* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    uint32_t y = state[i];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    out[i] = y;
  }
}

// Writes the next `count` words of `engine` to `out` and advances the engine past them.
inline void mt19937_draw(at::mt19937& engine, uint32_t* out, int64_t count) {
  at::mt19937_data_pod pod = engine.data();
  // at::mt19937 decrements left_ before each word and twists when it reaches 0, so left_ - 1 words remain
  // in the current state, starting at next_.
  int64_t available = pod.left_ - 1;
  while (count > 0) {
    if (available == 0) {
      mt19937_twist(pod.state_.data());
      pod.next_ = 0;
      pod.left_ = at::MERSENNE_STATE_N + 1;  // as if one past a fresh twist; the first word makes it 624
      available = at::MERSENNE_STATE_N;
    }
    const int64_t take = count < available ? count : available;
    mt19937_temper(pod.state_.data() + pod.next_, out, take);
    out += take;
    count -= take;
    available -= take;
    pod.next_ += static_cast<uint32_t>(take);
    pod.left_ -= static_cast<int>(take);
  }
  engine.set_data(pod);
}

}  // namespace
}  // namespace pyinit::cpu
