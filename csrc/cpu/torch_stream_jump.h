#pragma once
// The torch stream's parallel draw: each thread jumps the generator's Mersenne Twister to the first word of its
// own range (Note [MT19937 jump-ahead]) and draws and transforms its words itself. See Note [The torch stream on
// CPU] (torch_stream_kernels_per_isa.h).

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/torch_stream_pipeline.h"

namespace pyinit::cpu {

// The default of torch_stream_jump_min_words(): below it the serial draw is faster (docs/decisions.md, "MT19937
// jump-ahead").
constexpr int64_t kJumpMinWords = int64_t{1} << 21;

// Draws below this many words stay serial (serial_producer_pipeline). Tests lower it to reach the parallel
// path on small tensors (pyinit._C._set_torch_stream_jump).
std::atomic<int64_t>& torch_stream_jump_min_words();

// What one jump costs, counted in words drawn serially (measured on the 2-core box: docs/decisions.md,
// "MT19937 jump-ahead"). Ranges that start with a jump get this many words fewer, and a start that needs one
// more jump is worth moving by this many words.
constexpr int64_t kJumpCostWords = int64_t{1} << 19;

// The cost jump_range_starts assumes, kJumpCostWords unless a test set it (to reach every split on small tensors).
std::atomic<int64_t>& torch_stream_jump_cost_words();

// Words per block a thread draws into its buffer and transforms (64 KiB: in L2 while it is transformed).
constexpr int64_t kJumpDrawBlock = int64_t{1} << 14;

// The integer in [lo, hi] with the fewest set bits (0 <= lo <= hi): all share the bits above the highest bit
// where lo and hi differ; below it, lo itself if it is zero there, else that bit alone.
inline uint64_t fewest_bits_between(uint64_t lo, uint64_t hi) {
  if (lo == hi) return lo;
  const int top = 63 - __builtin_clzll(lo ^ hi);
  const uint64_t below = (uint64_t{2} << top) - 1;
  if ((lo & below) == 0) return lo;
  return (hi & ~below) | (uint64_t{1} << top);
}

// The first words of `parts` ranges covering [0, count), plus `count` at the end, or an empty vector when a
// range would be empty. Range 0 needs no jump, so it is one jump's worth longer than the others: the targets
// make every range cost the same with one jump each. Range p > 0 starts near its target at a word that is a
// multiple of `align` and that mt19937_advance reaches with few jumps: `available` words from the current
// array, then whole twists m (a number with few set bits: one jump per bit), then 1..align words into the next
// array. Each start is the best of a few candidates under jumps * kJumpCostWords + distance from the target.
inline std::vector<int64_t> jump_range_starts(int64_t count, int64_t parts, int64_t available, int64_t align) {
  constexpr int64_t N = at::MERSENNE_STATE_N;
  std::vector<int64_t> starts(static_cast<size_t>(parts) + 1, 0);
  starts[parts] = count;
  const int64_t share = count / parts;
  // Words of range 0 (no jump); every other range has kJumpCostWords fewer.
  const int64_t jump_cost = torch_stream_jump_cost_words().load(std::memory_order_relaxed);
  const int64_t first_share = (count + (parts - 1) * jump_cost) / parts;
  if (first_share - jump_cost < share / 4) return {};  // the jumps would cost more than they save
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t target = p * first_share - (p - 1) * jump_cost;
    int64_t best = -1, best_cost = 0;
    for (int64_t slack = share / 256; slack <= share / 4; slack *= 2) {
      // Twist counts m whose ranges start within `slack` of the target.
      const int64_t lo = std::max<int64_t>(0, (target - slack - available - 1) / N);
      const int64_t hi = std::max<int64_t>(lo, (target + slack - available - 1) / N);
      const uint64_t m = fewest_bits_between(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi));
      const int64_t before = available + N * static_cast<int64_t>(m);
      const int64_t start = before + (align - (before + 1) % align) % align + 1;  // 1..align words into it
      const int64_t cost = __builtin_popcountll(m) * jump_cost + std::abs(start - target);
      if (best < 0 || cost < best_cost) best = start, best_cost = cost;
      if (slack == 0) break;
    }
    if (best <= starts[p - 1] || best >= count) return {};
    starts[p] = best;
  }
  return starts;
}

// Whether jump_parallel_draw considers a draw of `count` words (it may still decline: jump_range_starts).
inline bool jump_parallel_draw_considered(int64_t count) {
  return at::get_num_threads() > 1 && !in_parallel_work() &&
         count >= torch_stream_jump_min_words().load(std::memory_order_relaxed);
}

// Draws the generator's next `count` words in parallel and calls consume(first, words, len) for consecutive
// pieces that cover [0, count): words[k] is word first + k of the draw, `first` a multiple of `align`, and
// `len` a multiple of `align` except for the last piece. Each thread advances a copy of the engine to its range
// (mt19937_advance), and the last range's engine becomes the generator's, exactly where drawing all the words
// serially leaves it. Pieces run on any thread, in any order; consume must not throw. Returns false, with
// nothing drawn, where the serial draw is used instead (one thread, inside a parallel region, few words).
// The caller holds the generator's mutex.
template <typename Consume>
bool jump_parallel_draw(at::CPUGeneratorImpl* gen, int64_t count, int64_t align, const Consume& consume) {
  if (!jump_parallel_draw_considered(count)) return false;
  const int64_t threads = at::get_num_threads();
  const at::mt19937 engine = gen->engine();
  const std::vector<int64_t> starts = jump_range_starts(count, threads, engine.data().left_ - 1, align);
  if (starts.empty()) return false;
  const auto& kernels = torch_stream_kernels();
  at::mt19937 last = engine;
  parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    const int64_t block = std::min(kJumpDrawBlock, count);
    std::unique_ptr<uint32_t[]> words(new uint32_t[static_cast<size_t>(block)]);
    for (int64_t p = begin; p < end; ++p) {
      at::mt19937 local = engine;
      if (starts[p] > 0) kernels.advance_words(local, static_cast<uint64_t>(starts[p]));
      for (int64_t first = starts[p]; first < starts[p + 1]; first += block) {
        const int64_t len = std::min(block, starts[p + 1] - first);
        kernels.draw_words(local, words.get(), len);
        consume(first, static_cast<const uint32_t*>(words.get()), len);
      }
      if (p + 1 == threads) last = local;
    }
  });
  gen->set_engine(last);
  return true;
}

}  // namespace pyinit::cpu
