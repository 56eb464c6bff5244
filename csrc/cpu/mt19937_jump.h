#pragma once
// Note [MT19937 jump-ahead]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// MT19937 is linear over GF(2). Take its state as a window of 624 consecutive words of the (untempered)
// sequence, w = (x_k, ..., x_{k+623}); one step appends x_{k+624} = x_{k+397} ^ twist(x_k, x_{k+1}) and drops
// x_k. A twist of at::mt19937's array is exactly 624 such steps (its array is the window x_{624t}..x_{624t+623}),
// and so is a twist of any window, block-aligned or not. The step is a linear map B with B phi(B) = 0, phi the
// characteristic polynomial (degree 19937): the low 31 bits of x_k are dropped unused, so B is singular, and on
// its image (every window that was itself stepped to) phi(B) = 0. Hence for a window w in the image,
// B^J w = g(B) w with g = x^J mod phi, degree < 19937.
// tools/gen_mt19937_jump.py finds phi (Berlekamp-Massey) and writes g for J = 624 * 2^k to
// mt19937_jump_table.h; a jump of 624 m words applies the entries of m's set bits one after another.
// g(B) w is evaluated by Horner in chunks of kJumpChunkBits coefficients (Haramoto et al. 2008, "Efficient Jump
// Ahead for F2-Linear Random Number Generators", the sliding-window variant): table[c] = c(B) w for every
// polynomial c of degree < kJumpChunkBits (2^kJumpChunkBits windows, built by XOR from w, B w, B^2 w, ...),
// then acc = B^kJumpChunkBits acc ^ table[chunk] from the top chunk down. acc slides along a run (a step
// appends kJumpChunkBits words to a run of the sequence, one vector, and moves the window along it), so a chunk
// costs one short vector step and one 624-word XOR.
// mt19937_advance() turns this into at::mt19937's bookkeeping: the words left in the current array, then whole
// twists by the jump table, then the position inside the final array, exactly (state_, next_, left_) torch
// reaches by drawing the words one by one.

#include <ATen/core/MT19937RNGEngine.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/mt19937_bulk.h"
#include "cpu/mt19937_jump_table.h"

namespace pyinit::cpu {
// Internal linkage, as mt19937_bulk.h: compiled once per CPU capability.
namespace {

constexpr int kJumpChunkBits = 8;
constexpr int kJumpTableEntries = 1 << kJumpChunkBits;
// Jumps of 2^k twists for k below this are twists: 16 of them cost less than one polynomial's table.
constexpr int kTwistInsteadBelow = 4;
constexpr int kJumpPolynomialBits = kMt19937JumpWords * 64;
// Scratch words mt19937_apply_polynomial needs: the table, and the run of the sequence acc slides along.
constexpr int64_t kJumpScratchWords =
    int64_t{kJumpTableEntries} * at::MERSENNE_STATE_N + at::MERSENNE_STATE_N + kJumpPolynomialBits + 8;

// run[k + 624] = x_{k+624} of the sequence whose window k is run[k, k + 624), for k in [begin, begin + kJumpChunkBits):
// independent words (the recurrence reaches back 227 words at the nearest), one vector for 8 of them.
inline void mt19937_extend(uint32_t* run, int64_t begin) {
  constexpr int N = at::MERSENNE_STATE_N, M = at::MERSENNE_STATE_M;
  for (int j = 0; j < kJumpChunkBits; ++j) {
    const uint32_t* w = run + begin + j;
    const uint32_t mixed = (w[0] & at::UMASK) | (w[1] & at::LMASK);
    run[begin + j + N] = w[M] ^ (mixed >> 1) ^ ((0u - (w[1] & 1u)) & at::MATRIX_A);  // branch-free: random bit
  }
}

// window <- g(B) window, g given by its coefficients (kMt19937JumpWords words, bit i = coefficient of x^i).
// `window` must be in B's image (see the Note); `scratch` holds kJumpScratchWords words.
// acc is not circular: it is the window [k, k + 624) of a run that B^q extends by q words at its end (one vector
// of new words, mt19937_extend), so every 624-word XOR is one unsplit loop.
inline void mt19937_apply_polynomial(uint32_t* window, const uint64_t* g, uint32_t* scratch) {
  constexpr int N = at::MERSENNE_STATE_N;
  uint32_t* table = scratch;  // table[c] = c(B) window
  uint32_t* run = scratch + int64_t{kJumpTableEntries} * N;
  // B^j window for j < kJumpChunkBits: the windows starting at run + j.
  std::memcpy(run, window, sizeof(uint32_t) * N);
  mt19937_extend(run, 0);
  std::memset(table, 0, sizeof(uint32_t) * N);
  for (int c = 1; c < kJumpTableEntries; ++c) {
    const int top = 31 - __builtin_clz(static_cast<unsigned>(c));
    const uint32_t* rest = table + (c & ~(1 << top)) * N;
    const uint32_t* power = run + top;
    uint32_t* out = table + c * N;
    for (int j = 0; j < N; ++j) out[j] = rest[j] ^ power[j];
  }
  auto chunk = [&](int h) {  // coefficients [h * kJumpChunkBits, (h + 1) * kJumpChunkBits) of g
    const int bit = h * kJumpChunkBits;
    const int word = bit / 64, shift = bit % 64;
    uint64_t bits = g[word] >> shift;
    if (shift + kJumpChunkBits > 64 && word + 1 < kMt19937JumpWords) bits |= g[word + 1] << (64 - shift);
    return static_cast<int>(bits & (kJumpTableEntries - 1));
  };
  constexpr int kChunks = (kJumpPolynomialBits + kJumpChunkBits - 1) / kJumpChunkBits;
  int h = kChunks - 1;
  while (h >= 0 && chunk(h) == 0) --h;  // B^q 0 = 0: skip the leading zero chunks
  if (h < 0) {
    std::memset(window, 0, sizeof(uint32_t) * N);
    return;
  }
  // acc = run[k, k + 624): starts as table[top chunk].
  int64_t k = 0;
  std::memcpy(run, table + chunk(h) * N, sizeof(uint32_t) * N);
  for (--h; h >= 0; --h) {
    mt19937_extend(run, k);
    k += kJumpChunkBits;
    const uint32_t* add = table + chunk(h) * N;
    uint32_t* acc = run + k;
    for (int j = 0; j < N; ++j) acc[j] ^= add[j];  // table[0] is zero: no branch on the random chunk
  }
  std::memcpy(window, run + k, sizeof(uint32_t) * N);
}

// Advances `engine` by `count` words, leaving it exactly as drawing them one by one would (state_, next_,
// left_; seed_ and seeded_ untouched).
inline void mt19937_advance(at::mt19937& engine, uint64_t count) {
  constexpr int N = at::MERSENNE_STATE_N;
  at::mt19937_data_pod pod = engine.data();
  const uint64_t available = static_cast<uint64_t>(pod.left_ - 1);  // words left in the array (mt19937_draw)
  if (count <= available) {
    pod.next_ += static_cast<uint32_t>(count);
    pod.left_ -= static_cast<int>(count);
    engine.set_data(pod);
    return;
  }
  // The words after the array's last come from the next array (a twist), whatever next_ says (a fresh seed has
  // next_ = 0, left_ = 1). The last word drawn is word r - 1 of array m after that one, 1 <= r <= 624.
  const uint64_t beyond = count - available;
  const uint64_t blocks = (beyond - 1) / N;
  const uint32_t r = static_cast<uint32_t>(beyond - blocks * N);
  uint32_t* window = pod.state_.data();
  mt19937_twist(window);
  if (blocks != 0) {
    // Kept per thread (720 KiB): a fresh allocation each time would cost a page fault per 4 KiB.
    thread_local std::vector<uint32_t> scratch(static_cast<size_t>(kJumpScratchWords));
    constexpr int kLast = kMt19937JumpTableSize - 1;
    for (int k = 0; k < kLast; ++k) {
      if (((blocks >> k) & 1u) == 0) continue;
      if (k < kTwistInsteadBelow) {
        for (int t = 0; t < (1 << k); ++t) mt19937_twist(window);  // cheaper than building the table
      } else {
        mt19937_apply_polynomial(window, kMt19937JumpTable[k], scratch.data());
      }
    }
    for (uint64_t b = 0; b < blocks >> kLast; ++b) {  // 624 * 2^22 words per jump from the top entry on
      mt19937_apply_polynomial(window, kMt19937JumpTable[kLast], scratch.data());
    }
  }
  pod.next_ = r;
  pod.left_ = N + 1 - static_cast<int>(r);
  engine.set_data(pod);
}

}  // namespace
}  // namespace pyinit::cpu
