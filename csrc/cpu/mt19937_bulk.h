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

inline uint32_t mt19937_temper_word(uint32_t y) {
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

inline void mt19937_temper(const uint32_t* state, uint32_t* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = mt19937_temper_word(state[i]);
}

// The next `count` words of the engine whose data is `pod`, handed to emit(state_words, n) in order, in pieces of
// at most 624 (one twist's state): state_words[0, n) are the pieces' words *before tempering*
// (mt19937_temper_word), so that emit can temper, transform and store them in one pass while the state is in L1.
// Advances `pod` past them.
template <typename Emit>
inline void mt19937_draw_untempered(at::mt19937_data_pod& pod, int64_t count, const Emit& emit) {
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
    emit(static_cast<const uint32_t*>(pod.state_.data() + pod.next_), take);
    count -= take;
    available -= take;
    pod.next_ += static_cast<uint32_t>(take);
    pod.left_ -= static_cast<int>(take);
  }
}

// Writes the next `count` words of the engine whose data is `pod` to `out` and advances `pod` past them.
inline void mt19937_draw_pod(at::mt19937_data_pod& pod, uint32_t* out, int64_t count) {
  mt19937_draw_untempered(pod, count, [&](const uint32_t* state, int64_t n) {
    mt19937_temper(state, out, n);
    out += n;
  });
}

// Writes the next `count` words of `engine` to `out` and advances the engine past them.
inline void mt19937_draw(at::mt19937& engine, uint32_t* out, int64_t count) {
  at::mt19937_data_pod pod = engine.data();
  mt19937_draw_pod(pod, out, count);
  engine.set_data(pod);
}

}  // namespace
}  // namespace pyinit::cpu
