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
#include <mutex>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/torch_stream_pipeline.h"

namespace pyinit::cpu {

// The default of torch_stream_jump_min_words(): below it the serial draw is faster (docs/decisions.md, "MT19937
// jump-ahead").
constexpr int64_t kJumpMinWords = int64_t{1} << 22;

// Draws below this many words stay serial (serial_producer_pipeline). Tests lower it to reach the parallel
// path on small tensors (pyinit._C._set_torch_stream_jump).
std::atomic<int64_t>& torch_stream_jump_min_words();

// What one jump costs, counted in words drawn serially (measured on the 2-core box: docs/decisions.md,
// "MT19937 jump-ahead"). Ranges that start with a jump get this many words fewer, and a start that needs one
// more jump is worth moving by this many words.
constexpr int64_t kJumpCostWords = int64_t{1} << 20;

// The default of torch_stream_jump_min_threads(). On the shared 2-core box the parallel draw measured 10-25%
// slower than the serial producer at 2 threads (there the producer and one consumer already keep both cores
// busy, and the box was loaded: docs/decisions.md, "MT19937 jump-ahead"), so it starts at 3 threads.
constexpr int64_t kJumpMinThreads = 3;

// The fewest threads (at::get_num_threads()) for the parallel draw; PYINIT_TORCH_STREAM_JUMP_MIN_THREADS or a
// test may change it.
std::atomic<int64_t>& torch_stream_jump_min_threads();

// The default of torch_stream_jump_min_threads_early(): the fewest threads for the parallel draw of uniform_ /
// masked_uniform_ and of a run of tensors (Note [Many calls, one draw]). uniform_'s transform is light, so at 2
// threads the serial producer is the pipeline's bound and the consumer mostly waits: side by side on the 2-core
// AMD EPYC box (one process alternating the settings per call, median of 21) uniform_ took 2.1-3.0 ms parallel
// against 3.1-3.6 serial at 2^22 float32, 8.7-9.8 against 11.5-12.2 at 2^24, 13.5-14.0 against 19.3-20.2 at
// 2^25, while normal_ (a heavy transform: producer and consumer both busy) was the same either way. A run's words
// go through the pipeline's ring of slot buffers, not the output, and its serial draw measured 1.4-2x slower
// (docs/decisions.md, "Many calls, one draw").
constexpr int64_t kJumpMinThreadsEarly = 2;

// The fewest threads for those draws' parallel draw; PYINIT_TORCH_STREAM_JUMP_MIN_THREADS_EARLY may change it.
std::atomic<int64_t>& torch_stream_jump_min_threads_early();

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

// A word near `target` that is a multiple of `align` and that mt19937_advance reaches with few jumps:
// `available` words from the current array, then whole twists m (a number with few set bits: one jump per bit),
// then 1..align words into the next array. The best of candidates within share / 256 .. share / 4 of the
// target under jumps * jump cost + distance.
inline int64_t cheap_start(int64_t target, int64_t share, int64_t available, int64_t align) {
  constexpr int64_t N = at::MERSENNE_STATE_N;
  const int64_t jump_cost = torch_stream_jump_cost_words().load(std::memory_order_relaxed);
  int64_t best = -1, best_cost = 0;
  for (int64_t slack = share / 256;; slack *= 2) {
    // Twist counts m whose ranges start within `slack` of the target.
    const int64_t lo = std::max<int64_t>(0, (target - slack - available - 1) / N);
    const int64_t hi = std::max<int64_t>(lo, (target + slack - available - 1) / N);
    const uint64_t m = fewest_bits_between(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi));
    const int64_t before = available + N * static_cast<int64_t>(m);
    const int64_t start = before + (align - (before + 1) % align) % align + 1;  // 1..align words into it
    const int64_t cost = __builtin_popcountll(m) * jump_cost + std::abs(start - target);
    if (best < 0 || cost < best_cost) best = start, best_cost = cost;
    if (slack == 0 || slack > share / 4) break;
  }
  return best;
}

// The first words of `parts` ranges covering [0, count), plus `count` at the end, or an empty vector when a
// range would be empty. Range 0 needs no jump, so it is one jump's worth longer than the others: the targets
// make every range cost the same with one jump each; each start is a cheap_start() near its target.
inline std::vector<int64_t> jump_range_starts(int64_t count, int64_t parts, int64_t available, int64_t align) {
  std::vector<int64_t> starts(static_cast<size_t>(parts) + 1, 0);
  starts[parts] = count;
  const int64_t share = count / parts;
  // Words of range 0 (no jump); every other range has kJumpCostWords fewer.
  const int64_t jump_cost = torch_stream_jump_cost_words().load(std::memory_order_relaxed);
  const int64_t first_share = (count + (parts - 1) * jump_cost) / parts;
  if (first_share - jump_cost < share / 4) return {};  // the jumps would cost more than they save
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t start = cheap_start(p * first_share - (p - 1) * jump_cost, share, available, align);
    if (start <= starts[p - 1] || start >= count) return {};
    starts[p] = start;
  }
  return starts;
}

// Whether jump_parallel_draw considers a draw of `count` words (it may still decline: jump_range_starts), with at
// least `min_threads` threads (torch_stream_jump_min_threads() unless the caller says otherwise).
inline bool jump_parallel_draw_considered(int64_t count, int64_t min_threads = -1) {
  if (min_threads < 0) min_threads = torch_stream_jump_min_threads().load(std::memory_order_relaxed);
  return at::get_num_threads() > 1 && at::get_num_threads() >= min_threads && !in_parallel_work() &&
         count >= torch_stream_jump_min_words().load(std::memory_order_relaxed);
}

// The words of one range of a parallel draw not yet taken by its worker: [next, end). The worker takes blocks
// from `next`; a thief lowers `end` and works on the words after it. Under `mutex`, held only briefly.
struct JumpDrawRange {
  std::mutex mutex;
  int64_t next = 0, end = 0;
  bool started = false;  // its worker has taken a block (or another worker took the whole range over)
};

// Draws the generator's next `count` words in parallel: draw_block(engine, first, len) for consecutive pieces
// that cover [0, count), where `engine` is at word `first` of the draw and draw_block draws exactly the next
// `len` words from it (jump_parallel_draw: into a buffer, then consume(first, words, len), words[k] being word
// first + k; the fused kernels write their outputs straight from the engine), `first` a multiple of `align`,
// `len` a multiple of `align` except for the last piece. Worker w (one per thread) starts on range w of
// jump_range_starts, jumping a copy of the engine to its first word (mt19937_advance). A worker that runs out
// of words takes over the range that starts where it stopped, if that range's worker has not started (no jump),
// else takes the second half of the range with the most words left (a jump), so a worker that is descheduled,
// or never starts, holds up nobody: its words go to the others (run_chunks runs an unstarted worker's loop on
// the caller, which then finds little or nothing left). The worker that draws the last word
// leaves its engine in the generator, exactly where drawing all the words serially leaves it. Pieces run on
// any thread, in any order; draw_block must not throw. Returns false, with nothing drawn, where the serial draw
// is used instead (fewer than `min_threads` threads, inside a parallel region, few words). The caller holds the
// generator's mutex.
template <typename DrawBlock>
bool jump_parallel_draw_blocks(at::CPUGeneratorImpl* gen, int64_t count, int64_t align, const DrawBlock& draw_block,
                               int64_t min_threads = -1) {
  if (!jump_parallel_draw_considered(count, min_threads)) return false;
  const int64_t threads = at::get_num_threads();
  const at::mt19937 engine = gen->engine();
  const int64_t available = engine.data().left_ - 1;
  const std::vector<int64_t> starts = jump_range_starts(count, threads, available, align);
  if (starts.empty()) return false;
  const auto& kernels = torch_stream_kernels();
  const int64_t jump_cost = torch_stream_jump_cost_words().load(std::memory_order_relaxed);
  // At least 8 blocks per range, so that there is something to take from a slow worker.
  const int64_t block = std::max(align, std::min(kJumpDrawBlock, count / (8 * threads)) / align * align);
  const int64_t min_taken = std::max(2 * jump_cost, 2 * block);  // the least a thief takes (its jump must pay)
  std::unique_ptr<JumpDrawRange[]> ranges(new JumpDrawRange[static_cast<size_t>(threads)]);
  for (int64_t w = 0; w < threads; ++w) ranges[w].next = starts[w], ranges[w].end = starts[w + 1];
  at::mt19937 last = engine;
  // The second half of the range with the most words left, as this worker's new range; false when none has
  // min_taken words to spare. The worker's own range is empty, so no one takes from it meanwhile.
  auto take_from_others = [&](int64_t self) {
    for (;;) {
      int64_t victim = -1, most = 0;
      for (int64_t v = 0; v < threads; ++v) {
        if (v == self) continue;
        std::lock_guard<std::mutex> lock(ranges[v].mutex);
        if (ranges[v].end - ranges[v].next > most) most = ranges[v].end - ranges[v].next, victim = v;
      }
      if (victim < 0 || most < 2 * min_taken) return false;
      int64_t split = 0, end = 0;
      {
        std::lock_guard<std::mutex> lock(ranges[victim].mutex);
        const int64_t next = ranges[victim].next;
        end = ranges[victim].end;
        if (end - next < 2 * min_taken) continue;  // taken meanwhile: look again
        // The thief pays a jump: it takes a jump's worth fewer words.
        split = cheap_start(next + (end - next + jump_cost) / 2, (end - next) / 2, available, align);
        if (split < next + min_taken || split > end - min_taken) {
          split = (next + (end - next) / 2) / align * align;  // no cheap start inside: the exact middle
        }
        ranges[victim].end = split;
      }
      std::lock_guard<std::mutex> lock(ranges[self].mutex);
      ranges[self].next = split;
      ranges[self].end = end;
      return true;
    }
  };
  // Moves into this worker's (empty) range the words of a range whose worker has not started and whose next word
  // is `position`: the continuation of the words this worker just drew, no jump. False when there is none.
  auto take_over_continuation = [&](int64_t self, int64_t position) {
    for (int64_t v = 0; v < threads; ++v) {
      if (v == self) continue;
      int64_t end = 0;
      {
        std::lock_guard<std::mutex> lock(ranges[v].mutex);
        if (ranges[v].started || ranges[v].next != position || ranges[v].end <= position) continue;
        ranges[v].started = true;
        end = ranges[v].end;
        ranges[v].next = end;
      }
      std::lock_guard<std::mutex> lock(ranges[self].mutex);
      ranges[self].next = position;
      ranges[self].end = end;
      return true;
    }
    return false;
  };
  parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      at::mt19937 local = engine;
      int64_t position = 0;  // the word `local` draws next
      for (;;) {
        int64_t first = 0, len = 0;
        {  // only this worker takes blocks from its range; others only shorten it or take it over unstarted
          std::lock_guard<std::mutex> lock(ranges[w].mutex);
          ranges[w].started = true;
          first = ranges[w].next;
          len = std::min(block, ranges[w].end - first);
          if (len > 0) ranges[w].next = first + len;
        }
        if (len <= 0) {
          if (position == count) last = local;  // this worker drew the last word
          if (take_over_continuation(w, position) || take_from_others(w)) continue;
          break;
        }
        if (position != first) {  // a range that starts elsewhere: jump there
          local = engine;
          kernels.advance_words(local, static_cast<uint64_t>(first));
          position = first;
        }
        draw_block(local, first, len);
        position += len;
      }
    }
  });
  gen->set_engine(last);
  return true;
}

// jump_parallel_draw_blocks with each block's words drawn into a buffer, then consume(first, words, len).
template <typename Consume>
bool jump_parallel_draw(at::CPUGeneratorImpl* gen, int64_t count, int64_t align, const Consume& consume,
                        int64_t min_threads = -1) {
  const auto& kernels = torch_stream_kernels();
  return jump_parallel_draw_blocks(
      gen, count, align,
      [&](at::mt19937& local, int64_t first, int64_t len) {
        thread_local std::vector<uint32_t> words;  // one buffer per worker thread, kept between calls
        if (static_cast<int64_t>(words.size()) < len) words.resize(static_cast<size_t>(len));
        kernels.draw_words(local, words.data(), len);
        consume(first, static_cast<const uint32_t*>(words.data()), len);
      },
      min_threads);
}

// For kernels that write their outputs straight from the engine (draw_uniform): draws the generator's next `count`
// words as draw_block(engine, first, len) pieces that cover [0, count), in parallel ranges where
// jump_parallel_draw_blocks takes the draw, else in one piece on the calling thread where one thread would
// draw them all anyway (one block of the pipeline, one thread, inside a parallel region). Returns false, with
// nothing drawn, where the serial producer pipeline should run instead. The caller holds the generator's mutex.
template <typename DrawBlock>
bool draw_fused(at::CPUGeneratorImpl* gen, int64_t count, int64_t align, const DrawBlock& draw_block,
                int64_t min_threads) {
  if (jump_parallel_draw_blocks(gen, count, align, draw_block, min_threads)) return true;
  if (count > kPipelineBlock && at::get_num_threads() > 1 && !in_parallel_work()) return false;
  at::mt19937 engine = gen->engine();
  draw_block(engine, 0, count);
  gen->set_engine(engine);
  return true;
}

// Draws `words_per_element` words for each of elements [0, n) and calls transform(begin, end, words) for pieces
// that cover them (words[k]: word k of element `begin`), on any thread, in any order, each `begin` a multiple of
// `align`: in parallel ranges by jump-ahead where jump_parallel_draw takes the draw (from `min_threads` threads,
// torch_stream_jump_min_threads() when -1), else through the serial producer pipeline (draw_and_transform: into
// `words` when it is not null, e.g. the output itself, else a ring of block buffers). Every torch-stream draw of
// whole tensors goes through here except trunc_normal_'s rounds, whose two paths look up their pending elements
// differently. The caller holds the generator's mutex; transform must not throw.
template <typename Transform>
void draw_elements(at::CPUGeneratorImpl* gen, uint32_t* words, int64_t n, int64_t words_per_element, int64_t align,
                   const Transform& transform, int64_t min_threads = -1) {
  const bool parallel = jump_parallel_draw(
      gen, n * words_per_element, align * words_per_element,
      [&](int64_t first, const uint32_t* w, int64_t len) {
        const int64_t begin = first / words_per_element;
        transform(begin, begin + len / words_per_element, w);
      },
      min_threads);
  if (!parallel) draw_and_transform(gen, words, n, words_per_element, transform);
}

}  // namespace pyinit::cpu
