// CPU implementations of the torch stream's random initializers. See Note [The torch stream on CPU].

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu/parallel.h"
#include "cpu/torch_stream_cpu.h"
#include "cpu/torch_stream_jump.h"
#include "cpu/torch_stream_pipeline.h"
#include "memory_order.h"
#include "torch_blocks.h"
#include "validate.h"

namespace pyinit::cpu {

std::atomic<int64_t>& torch_stream_jump_min_words() {
  // PYINIT_TORCH_STREAM_JUMP_MIN_WORDS overrides the threshold for a whole process (the benchmarks compare the
  // serial draw with it).
  static std::atomic<int64_t> words{[] {
    const char* text = std::getenv("PYINIT_TORCH_STREAM_JUMP_MIN_WORDS");
    return text != nullptr ? std::atoll(text) : kJumpMinWords;
  }()};
  return words;
}

std::atomic<int64_t>& torch_stream_jump_min_threads() {
  static std::atomic<int64_t> threads{[] {
    const char* text = std::getenv("PYINIT_TORCH_STREAM_JUMP_MIN_THREADS");
    return text != nullptr ? std::atoll(text) : kJumpMinThreads;
  }()};
  return threads;
}

std::atomic<int64_t>& torch_stream_jump_min_threads_early() {
  static std::atomic<int64_t> threads{[] {
    const char* text = std::getenv("PYINIT_TORCH_STREAM_JUMP_MIN_THREADS_EARLY");
    return text != nullptr ? std::atoll(text) : kJumpMinThreadsEarly;
  }()};
  return threads;
}

std::atomic<int64_t>& torch_stream_jump_cost_words() {
  static std::atomic<int64_t> words{kJumpCostWords};
  return words;
}

bool mt19937_advance_matches_draw(uint64_t seed, int64_t start, int64_t count, double* advance_us, double* draw_us) {
  const auto& kernels = torch_stream_kernels();
  at::mt19937 engine(seed);
  for (int64_t i = 0; i < start; ++i) engine();
  at::mt19937 drawn = engine, jumped = engine, bulk = engine;
  for (int64_t i = 0; i < count; ++i) drawn();  // torch's engine, word by word: the reference
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  kernels.advance_words(jumped, static_cast<uint64_t>(count));
  const auto t1 = clock::now();
  std::vector<uint32_t> words(static_cast<size_t>(std::max<int64_t>(count, 1)));
  kernels.draw_words(bulk, words.data(), count);
  const auto t2 = clock::now();
  *advance_us = std::chrono::duration<double, std::micro>(t1 - t0).count();
  *draw_us = std::chrono::duration<double, std::micro>(t2 - t1).count();
  const at::mt19937_data_pod a = drawn.data(), b = jumped.data();
  return a.seed_ == b.seed_ && a.left_ == b.left_ && a.seeded_ == b.seeded_ && a.next_ == b.next_ &&
         a.state_ == b.state_;
}

namespace {

// `out` advanced by `elements` elements of `dtype`.
inline void* offset(void* out, at::ScalarType dtype, int64_t elements) {
  return static_cast<char*>(out) + elements * static_cast<int64_t>(c10::elementSize(dtype));
}

}  // namespace

void uniform_locked(at::CPUGeneratorImpl* gen, MemoryOrderOutput& out, at::ScalarType dtype, double low, double high,
                    bool mask, double threshold) {
  const auto& kernels = torch_stream_kernels();
  const int64_t n = out.numel();
  const int64_t words_per_element = torch_words_per_element(dtype);
  const int64_t min_threads = torch_stream_jump_min_threads_early().load(std::memory_order_relaxed);
  // One word per element: the words go straight from the engine into values (draw_uniform), never stored.
  if (words_per_element == 1 && draw_fused(
                                    gen, n, /*align=*/1,
                                    [&](at::mt19937& engine, int64_t first, int64_t len) {
                                      at::mt19937_data_pod pod = engine.data();
                                      kernels.draw_uniform(pod, dtype, offset(out.data(), dtype, first), len, low, high,
                                                           mask, threshold);
                                      engine.set_data(pod);
                                    },
                                    min_threads)) {
    return;
  }
  // Otherwise the serial producer pipeline: in place for float/double; half/bfloat16 output is too small, so
  // their words go through a ring.
  uint32_t* words =
      words_in_output(out.data(), n * static_cast<int64_t>(c10::elementSize(dtype)), n * words_per_element);
  draw_elements(
      gen, words, n, words_per_element, /*align=*/1,
      [&](int64_t begin, int64_t end, const uint32_t* w) {
        kernels.uniform_from_words(dtype, offset(out.data(), dtype, begin), w, 0, end - begin, low, high, mask,
                                   threshold);
      },
      min_threads);
}

namespace {

void uniform_words_impl(at::Tensor& self, double low, double high, bool mask, double threshold,
                        const std::optional<at::Generator>& generator) {
  if (!validate_uniform(self, low, high)) return;
  auto* gen = cpu_generator(generator);
  MemoryOrderOutput out(self);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    uniform_locked(gen, out, self.scalar_type(), low, high, mask, threshold);
  }
  out.commit();
}

}  // namespace

void uniform_cpu(at::Tensor self, double low, double high, std::optional<at::Generator> generator) {
  uniform_words_impl(self, low, high, /*mask=*/false, 0.0, generator);
}

void masked_uniform_cpu(at::Tensor self, double low, double high, double threshold,
                        std::optional<at::Generator> generator) {
  uniform_words_impl(self, low, high, /*mask=*/true, threshold, generator);
}

// normal_fill for contiguous tensors of >= 16 elements, the serial path otherwise, exactly as torch chooses.
void normal_locked(at::CPUGeneratorImpl* gen, const at::Tensor& self, MemoryOrderOutput& out, double mean, double std) {
  const auto& kernels = torch_stream_kernels();
  const int64_t n = out.numel();
  const auto dtype = self.scalar_type();
  if (n >= 16 && self.is_contiguous()) {
    const int64_t main_words = normal_fill_main_words(dtype, n);
    const int64_t tail_count = normal_fill_tail_words(dtype, n);
    const int64_t words_per_element = torch_words_per_element(dtype);
    // Pieces start at multiples of 16, so each holds whole Box-Muller blocks; a partial last block (its words
    // drawn for float/double, not for half/bfloat16) is left to the tail.
    uint32_t* words = words_in_output(out.data(), n * static_cast<int64_t>(self.element_size()), main_words);
    draw_elements(gen, words, main_words / words_per_element, words_per_element, /*align=*/16,
                  [&](int64_t begin, int64_t end, const uint32_t* w) {
                    kernels.normal_blocks(dtype, offset(out.data(), dtype, begin), w, 0, (end - begin) / 16, mean, std,
                                          /*zero_mask=*/nullptr);
                  });
    uint32_t tail[32];
    draw_words(gen, tail, tail_count);
    if (tail_count > 0) kernels.normal_tail(dtype, out.data(), n, tail, mean, std, /*zero_mask=*/nullptr);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_normal_serial", [&] {
    normal_serial<scalar_t>(gen, out.data_as<scalar_t>(), n, mean, std, kernels.fma);
  });
}

void normal_cpu(at::Tensor self, double mean, double std, std::optional<at::Generator> generator) {
  if (!validate_normal(self, "normal_", std)) return;
  auto* gen = cpu_generator(generator);
  MemoryOrderOutput out(self);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    normal_locked(gen, self, out, mean, std);
  }
  out.commit();
}

namespace {

// Bit j of the result: whether x[j] lies outside [low, high], for j < len <= 64. A full 64 floats or doubles take
// SSE2's float compares and movemask; otherwise the comparisons go into bytes (0 or 0xFF), which the compiler
// vectorizes, and SSE2's byte movemask packs them 16 at a time.
template <typename scalar_t, typename opmath_t>
inline uint64_t outside_bits(const scalar_t* x, int64_t len, opmath_t low, opmath_t high) {
#if defined(__SSE2__)
  // float and double: SSE2's ordered comparisons (false for NaN, as `<` and `>`), 4 or 2 lanes a compare.
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (len == 64) {
      const __m128 lo4 = _mm_set1_ps(low), hi4 = _mm_set1_ps(high);
      uint64_t bits = 0;
      for (int q = 0; q < 16; ++q) {
        const __m128 v = _mm_loadu_ps(x + 4 * q);
        const __m128 outside = _mm_or_ps(_mm_cmplt_ps(v, lo4), _mm_cmpgt_ps(v, hi4));
        bits |= static_cast<uint64_t>(_mm_movemask_ps(outside)) << (4 * q);
      }
      return bits;
    }
  } else if constexpr (std::is_same_v<scalar_t, double>) {
    if (len == 64) {
      const __m128d lo2 = _mm_set1_pd(low), hi2 = _mm_set1_pd(high);
      uint64_t bits = 0;
      for (int q = 0; q < 32; ++q) {
        const __m128d v = _mm_loadu_pd(x + 2 * q);
        const __m128d outside = _mm_or_pd(_mm_cmplt_pd(v, lo2), _mm_cmpgt_pd(v, hi2));
        bits |= static_cast<uint64_t>(_mm_movemask_pd(outside)) << (2 * q);
      }
      return bits;
    }
  }
#endif
  alignas(16) uint8_t outside[64] = {};
  for (int64_t j = 0; j < len; ++j) {
    const opmath_t v = static_cast<opmath_t>(x[j]);
    outside[j] = static_cast<uint8_t>(-(static_cast<int>(v < low) | static_cast<int>(v > high)));
  }
  uint64_t bits = 0;
#if defined(__SSE2__)
  for (int q = 0; q < 4; ++q) {
    const __m128i bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(outside + 16 * q));
    bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(bytes))) << (16 * q);
  }
#else
  for (int j = 0; j < 64; ++j) bits |= static_cast<uint64_t>(outside[j] & 1) << j;
#endif
  return bits;
}

// Indices (memory order, ascending) of values outside [lo, hi] in the tensor's dtype. One parallel pass stores a
// 64-bit mask per 64 values and counts them per fixed chunk; a second one writes each chunk's indices at its
// offset, from the masks alone (about 1 value in 20 is outside, at random: a per-value loop that stores an index
// and advances by the comparison, as this was, cost about as much as the round's draw). Both loops work on copies
// local to the lambda's call: the closure's members would be reloaded after every store (the extension is built
// with -fno-strict-aliasing).
template <typename scalar_t>
std::vector<int64_t> out_of_bounds(const scalar_t* values, int64_t n, double lo_, double hi_) {
  using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(lo_));
  const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(hi_));
  constexpr int64_t kChunk = 1 << 16;  // a multiple of 64
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> offsets(static_cast<size_t>(chunks) + 1, 0);
  std::vector<uint64_t> masks(static_cast<size_t>((n + 63) / 64));
  int64_t* const counts = offsets.data();
  uint64_t* const mask_data = masks.data();
  parallel_for(0, chunks, 1, [=](int64_t begin, int64_t end) {
    const scalar_t* const x = values;
    uint64_t* const m = mask_data;
    const opmath_t low = lo, high = hi;
    for (int64_t c = begin; c < end; ++c) {
      const int64_t last = std::min(n, (c + 1) * kChunk);
      int64_t found = 0;
      for (int64_t i = c * kChunk; i < last; i += 64) {
        const uint64_t bits = outside_bits(x + i, std::min<int64_t>(64, last - i), low, high);
        m[i / 64] = bits;
        found += __builtin_popcountll(bits);
      }
      counts[c + 1] = found;
    }
  });
  for (int64_t c = 0; c < chunks; ++c) offsets[c + 1] += offsets[c];
  std::vector<int64_t> pending(static_cast<size_t>(offsets[chunks]));
  int64_t* const out = pending.data();
  const int64_t* const starts = offsets.data();
  parallel_for(0, chunks, 1, [=](int64_t begin, int64_t end) {
    const uint64_t* const m = mask_data;
    int64_t* const indices = out;
    for (int64_t c = begin; c < end; ++c) {
      int64_t at = starts[c];
      const int64_t last = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < last; i += 64) {
        for (uint64_t bits = m[i / 64]; bits != 0; bits &= bits - 1) indices[at++] = i + __builtin_ctzll(bits);
      }
    }
  });
  return pending;
}

// Appends to `found` the indices base + j of the values x[j], j < len, outside [lo_, hi_] (the bounds rounded to
// the dtype, as out_of_bounds takes them), ascending.
template <typename scalar_t>
void append_out_of_bounds(const scalar_t* x, int64_t len, double lo_, double hi_, int64_t base,
                          std::vector<int64_t>& found) {
  using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(lo_));
  const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(hi_));
  for (int64_t i = 0; i < len; i += 64) {
    for (uint64_t bits = outside_bits(x + i, std::min<int64_t>(64, len - i), lo, hi); bits != 0; bits &= bits - 1) {
      found.push_back(base + i + __builtin_ctzll(bits));
    }
  }
}

// The indices that the pieces of a parallel pass found (each piece's ascending), in ascending order: pieces add
// concurrently and in any order, and do not overlap.
class PieceIndices {
 public:
  void add(int64_t begin, std::vector<int64_t> indices) {
    if (indices.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    pieces_.emplace_back(begin, std::move(indices));
  }
  std::vector<int64_t> sorted() {
    std::sort(pieces_.begin(), pieces_.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    size_t total = 0;
    for (const auto& piece : pieces_) total += piece.second.size();
    std::vector<int64_t> all;
    all.reserve(total);
    for (auto& piece : pieces_) {
      all.insert(all.end(), piece.second.begin(), piece.second.end());
      std::vector<int64_t>().swap(piece.second);
    }
    pieces_.clear();
    return all;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<int64_t, std::vector<int64_t>>> pieces_;
};

// One resampling round of trunc_normal_ (below) when its pending elements are few: the words of their Box-Muller
// blocks alone are drawn (and evaluated) on the calling thread, and the words between them are skipped, by
// twisting without tempering for short gaps and by jump-ahead for long ones (Note [MT19937 jump-ahead]). The
// generator ends exactly where drawing all `main_words` words of the round leaves it. `p` is sorted.
void sparse_round(at::CPUGeneratorImpl* gen, at::ScalarType dtype, void* values, int64_t* p, void* const* d,
                  int64_t count, int64_t main_words, int64_t words_per_element, double mean, double std, double a,
                  double b) {
  const auto& kernels = torch_stream_kernels();
  // Twisting costs about half of drawing, so a gap pays for a jump at twice the jump's cost in drawn words.
  const int64_t jump_from = 2 * torch_stream_jump_cost_words().load(std::memory_order_relaxed);
  at::mt19937 engine = gen->engine();
  at::mt19937_data_pod pod = engine.data();
  int64_t position = 0;  // words of the round drawn or skipped so far
  auto skip_and_draw = [&](int64_t to_word, uint32_t* out, int64_t len) {
    int64_t gap = to_word - position;
    if (gap >= jump_from && gap > 0) {
      engine.set_data(pod);
      kernels.advance_words(engine, static_cast<uint64_t>(gap));
      pod = engine.data();
      gap = 0;
    }
    kernels.skip_and_draw_words(pod, gap, out, len);
    position = to_word + len;
  };
  // The blocks' words are gathered kBatch blocks at a time (block s of a batch at word s * 16 * words_per_element),
  // so that normal_resample evaluates its lanes 8 at a time (after the first round most blocks hold one pending
  // element): each entry gets its index in the batch and its destination.
  constexpr int64_t kBatch = 64;
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  std::vector<uint32_t> batch_words(kBatch * 32);
  std::vector<int64_t> batch_index(kBatch * 16), batch_entry(kBatch * 16);
  std::vector<void*> batch_destination(kBatch * 16);
  int64_t batch_blocks = 0, entries = 0;
  auto flush = [&] {
    kernels.normal_resample(dtype, nullptr, batch_words.data(), 0, batch_index.data(), entries, mean, std, a, b,
                            batch_destination.data());
    for (int64_t e = 0; e < entries; ++e) {
      if (batch_index[e] < 0) p[batch_entry[e]] = -1;
    }
    batch_blocks = entries = 0;
  };
  for (int64_t k = 0; k < count;) {
    const int64_t block = p[k] / 16 * 16;
    int64_t last = k + 1;
    while (last < count && p[last] < block + 16) ++last;
    skip_and_draw(block * words_per_element, batch_words.data() + batch_blocks * 16 * words_per_element,
                  16 * words_per_element);
    for (; k < last; ++k, ++entries) {
      batch_index[entries] = batch_blocks * 16 + (p[k] - block);
      batch_destination[entries] = d != nullptr ? d[k] : static_cast<char*>(values) + p[k] * element;
      batch_entry[entries] = k;
    }
    if (++batch_blocks == kBatch) flush();
  }
  if (entries > 0) flush();
  skip_and_draw(main_words, nullptr, 0);
  engine.set_data(pod);
  gen->set_engine(engine);
}

// The resampling rounds of trunc_normal_ (Note [trunc_normal_ by normal proposals]) on a row-major tensor of n >= 16
// elements after its first normal_: `pending` holds the sorted indices of the values outside [a, b], and is
// consumed. Each accepted proposal goes to values[i], or, with `destinations` (one per entry of `pending`, kept in
// step with it), to its destination (nowhere where that is null). The generator moves as torch's rounds move it.
void resample_rounds(at::CPUGeneratorImpl* gen, at::ScalarType dtype, void* values, int64_t n,
                     std::vector<int64_t>& pending, std::vector<void*>* destinations, double mean, double std, double a,
                     double b) {
  const auto& kernels = torch_stream_kernels();
  const int64_t main_words = normal_fill_main_words(dtype, n);
  const int64_t tail_count = normal_fill_tail_words(dtype, n);
  const int64_t words_per_element = torch_words_per_element(dtype);
  const int64_t main_elements = main_words / words_per_element;
  const int64_t blocks = (main_elements + kPipelineBlock - 1) / kPipelineBlock;
  // Indices from tail_start on take their proposal from the tail block (normal_fill recomputes [n - 16, n)).
  const int64_t tail_start = tail_count > 0 ? n - 16 : n;
  std::vector<int64_t> bounds(static_cast<size_t>(blocks) + 1);
  std::vector<int64_t> sorted;
  int64_t count = static_cast<int64_t>(pending.size());
  while (count > 0) {
    int64_t* p = pending.data();
    void** d = destinations != nullptr ? destinations->data() : nullptr;
    auto at = [d](int64_t k) -> void* const* { return d != nullptr ? d + k : nullptr; };
    const int64_t main_count = std::lower_bound(p, p + count, tail_start) - p;
    if (main_count * 16 * words_per_element * 8 < main_words) {
      sparse_round(gen, dtype, values, p, d, main_count, main_words, words_per_element, mean, std, a, b);
    } else {
      // Each pipeline block's share of the (sorted) pending indices, found before any entry is marked.
      for (int64_t blk = 0; blk <= blocks; ++blk) {
        bounds[blk] = std::lower_bound(p, p + main_count, std::min(blk * kPipelineBlock, main_elements)) - p;
      }
      bounds[blocks] = main_count;
      // The round's words are drawn block by block (no whole-tensor buffer) and evaluated as drawn: in parallel
      // ranges by jump-ahead, else through the pipeline's ring. A piece's pending indices are looked up in
      // `sorted`, a copy: normal_resample marks accepted entries of `pending` while other pieces search.
      if (jump_parallel_draw_considered(main_words)) sorted.assign(p, p + main_count);
      const bool parallel = jump_parallel_draw(
          gen, main_words, 16 * words_per_element, [&](int64_t first_word, const uint32_t* w, int64_t len) {
            const int64_t begin = first_word / words_per_element, end = begin + len / words_per_element;
            const int64_t first = std::lower_bound(sorted.begin(), sorted.end(), begin) - sorted.begin();
            const int64_t last = std::lower_bound(sorted.begin(), sorted.end(), end) - sorted.begin();
            if (last > first) {
              kernels.normal_resample(dtype, values, w, begin, p + first, last - first, mean, std, a, b, at(first));
            }
          });
      if (!parallel) {
        draw_and_transform(gen, /*words=*/nullptr, main_elements, words_per_element,
                           [&](int64_t begin, int64_t /*end*/, const uint32_t* w) {
                             const int64_t blk = begin / kPipelineBlock;
                             const int64_t first = bounds[blk], last = bounds[blk + 1];
                             if (last > first) {
                               kernels.normal_resample(dtype, values, w, begin, p + first, last - first, mean, std, a,
                                                       b, at(first));
                             }
                           });
      }
    }
    uint32_t tail[32];
    draw_words(gen, tail, tail_count);
    if (count > main_count) {
      kernels.normal_resample(dtype, values, tail, n - 16, p + main_count, count - main_count, mean, std, a, b,
                              at(main_count));
    }
    int64_t kept = 0;
    for (int64_t k = 0; k < count; ++k) {
      if (p[k] < 0) continue;
      if (d != nullptr) d[kept] = d[k];
      p[kept++] = p[k];
    }
    count = kept;
  }
}

}  // namespace

// Note [trunc_normal_ by normal proposals]
// torch >= 2.12 fills the tensor with normal_, then, while any value lies outside [lo, hi] (the bounds rounded to
// the dtype), draws a whole new normal_ tensor (empty_like: same layout) and keeps its values where the old ones
// were out of bounds. Each round therefore consumes exactly one normal_'s worth of words, whatever the number of
// pending elements. pyinit draws the same words per round but evaluates Box-Muller only for pending elements; once
// they are few (sparse_round), it draws only their blocks' words and skips the rest.
void trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b,
                      std::optional<at::Generator> generator) {
  if (!validate_trunc_normal(self, std)) return;
  auto* gen = cpu_generator(generator);
  const auto& kernels = torch_stream_kernels();
  MemoryOrderOutput out(self);
  const int64_t n = out.numel();
  const auto dtype = self.scalar_type();
  std::lock_guard<std::mutex> lock(gen->mutex_);
  normal_locked(gen, self, out, mean, std);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_trunc_normal", [&] {
    scalar_t* values = out.data_as<scalar_t>();
    std::vector<int64_t> pending = out_of_bounds(values, n, a, b);
    if (pending.empty()) return;
    count_extra_writes(self, 1);  // torch's tensor.copy_(result) after a resampling round
    if (n >= 16 && self.is_contiguous()) {
      resample_rounds(gen, dtype, values, n, pending, /*destinations=*/nullptr, mean, std, a, b);
    } else {
      // Serial path (fewer than 16 elements, or a dense non-contiguous layout): every round draws all n values
      // in memory order through the generator's cached-sample chain.
      std::vector<uint8_t> is_pending(n, 0);
      for (int64_t i : pending) is_pending[i] = 1;
      using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
      const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(a));
      const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(b));
      int64_t count = static_cast<int64_t>(pending.size());
      while (count > 0) {
        std::vector<scalar_t> candidates(n);
        normal_serial<scalar_t>(gen, candidates.data(), n, mean, std, kernels.fma);
        for (int64_t i = 0; i < n; ++i) {
          if (!is_pending[i]) continue;
          const opmath_t v = static_cast<opmath_t>(candidates[i]);
          if (!(v < lo) && !(v > hi)) {
            values[i] = candidates[i];
            is_pending[i] = 0;
            --count;
          }
        }
      }
    }
  });
  out.commit();
}

// ---- calls on blocks of a tensor (Note [The torch stream on blocks], csrc/torch_blocks.h) -----------------------

namespace {

// The blocks as runs of consecutive global indices (ShardMap::for_each_run), sorted by their first index, with
// each block's row-major output (RowMajorOutput: the block itself, or a buffer for a non-contiguous one).
class BlockRuns {
 public:
  struct Run {
    int64_t global, length;
    char* out;
  };
  BlockRuns(at::TensorList blocks, const std::vector<ShardMap>& maps)
      : element_(static_cast<int64_t>(c10::elementSize(blocks[0].scalar_type()))) {
    for (size_t i = 0; i < blocks.size(); ++i) {
      outs_.emplace_back(blocks[i]);
      char* base = static_cast<char*>(outs_.back().data());
      maps[i].for_each_run(0, blocks[i].numel(), [&](int64_t l, uint64_t g, int64_t count) {
        runs_.push_back(Run{static_cast<int64_t>(g), count, base + l * element_});
      });
    }
    std::sort(runs_.begin(), runs_.end(), [](const Run& a, const Run& b) { return a.global < b.global; });
    // Runs may overlap (blocks that overlap): each is written on its own. ends_[k]: the largest run end among
    // runs_[0..k], so that the first run reaching past an index is found by binary search.
    ends_.resize(runs_.size());
    for (size_t k = 0; k < runs_.size(); ++k) {
      ends_[k] = std::max(k > 0 ? ends_[k - 1] : int64_t{0}, runs_[k].global + runs_[k].length);
    }
  }
  // Calls f(first, last, out) for the part [first, last) of every run inside global indices [begin, end), `out`
  // pointing at the run's element `first`.
  template <typename F>
  void for_each_part(int64_t begin, int64_t end, const F& f) const {
    size_t k = std::upper_bound(ends_.begin(), ends_.end(), begin) - ends_.begin();
    for (; k < runs_.size() && runs_[k].global < end; ++k) {
      const Run& run = runs_[k];
      const int64_t first = std::max(begin, run.global), last = std::min(end, run.global + run.length);
      if (first < last) f(first, last, run.out + (first - run.global) * element_);
    }
  }
  // Calls f(k, out) for every index sorted[k] (ascending) that a run holds, `out` pointing at its element, once per
  // run that holds it, runs in order of their first index.
  template <typename F>
  void for_each_index(const int64_t* sorted, int64_t count, const F& f) const {
    for (const Run& run : runs_) {
      const int64_t* first = std::lower_bound(sorted, sorted + count, run.global);
      const int64_t* last = std::lower_bound(first, sorted + count, run.global + run.length);
      for (const int64_t* q = first; q < last; ++q) f(q - sorted, run.out + (*q - run.global) * element_);
    }
  }
  void commit() {
    for (RowMajorOutput& out : outs_) out.commit();
  }

 private:
  int64_t element_;
  std::vector<RowMajorOutput> outs_;
  std::vector<Run> runs_;
  std::vector<int64_t> ends_;
};

// Each block gets its part of `whole` (a tensor of the global shape): the calls on fewer than 16 elements, which
// draw the whole as torch's serial path does.
void copy_blocks_out(at::TensorList blocks, const at::Tensor& whole, at::IntArrayRef starts) {
  const int64_t dim = whole.dim();
  for (size_t i = 0; i < blocks.size(); ++i) {
    at::Tensor view = whole;
    for (int64_t d = 0; d < dim; ++d) view = view.narrow(d, starts[i * dim + d], blocks[i].size(d));
    copy_into(blocks[i], view);
  }
}

// uniform_ on blocks: the whole tensor's words are drawn (parallel ranges or the pipeline, as uniform_ draws them),
// and only the blocks' elements are computed, straight into the blocks: no temporary of the whole tensor. Each
// piece of the draw writes the parts of the blocks' runs it covers.
void uniform_blocks_impl(at::TensorList blocks, double low, double high, bool mask, double threshold,
                         at::IntArrayRef global_shape, at::IntArrayRef starts,
                         const std::optional<at::Generator>& generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_uniform_blocks(blocks, low, high, global_shape, starts, &numel);
  if (numel == 0) return;
  const auto dtype = blocks[0].scalar_type();
  BlockRuns runs(blocks, maps);
  const auto& kernels = torch_stream_kernels();
  const int64_t words_per_element = torch_words_per_element(dtype);
  auto* gen = cpu_generator(generator);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    draw_elements(
        gen, /*words=*/nullptr, numel, words_per_element, /*align=*/1,
        [&](int64_t begin, int64_t end, const uint32_t* w) {
          runs.for_each_part(begin, end, [&](int64_t first, int64_t last, char* out) {
            kernels.uniform_from_words(dtype, out, w + (first - begin) * words_per_element, 0, last - first, low, high,
                                       mask, threshold);
          });
        },
        torch_stream_jump_min_threads_early().load(std::memory_order_relaxed));
  }
  runs.commit();
}

}  // namespace

void uniform_blocks_cpu(at::TensorList blocks, double low, double high, at::IntArrayRef global_shape,
                        at::IntArrayRef starts, std::optional<at::Generator> generator) {
  uniform_blocks_impl(blocks, low, high, /*mask=*/false, 0.0, global_shape, starts, generator);
}

void masked_uniform_blocks_cpu(at::TensorList blocks, double low, double high, double threshold,
                               at::IntArrayRef global_shape, at::IntArrayRef starts,
                               std::optional<at::Generator> generator) {
  uniform_blocks_impl(blocks, low, high, /*mask=*/true, threshold, global_shape, starts, generator);
}

void normal_blocks_cpu(at::TensorList blocks, double mean, double std, at::IntArrayRef global_shape,
                       at::IntArrayRef starts, std::optional<at::Generator> generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_normal_blocks(blocks, std, global_shape, starts, &numel);
  if (numel == 0) return;
  auto* gen = cpu_generator(generator);
  const auto dtype = blocks[0].scalar_type();
  if (numel < 16) {
    // torch's serial path (its cached Box-Muller sample): the whole (< 16 elements), then the blocks copied out.
    const at::Tensor whole = at::empty(global_shape, blocks[0].options().memory_format(at::MemoryFormat::Contiguous));
    {
      MemoryOrderOutput out(whole);
      std::lock_guard<std::mutex> lock(gen->mutex_);
      normal_locked(gen, whole, out, mean, std);
    }
    copy_blocks_out(blocks, whole, starts);
    return;
  }
  // normal_fill's words for the whole tensor, as normal_locked draws them; each piece computes the Box-Muller
  // blocks of 16 that the blocks' runs touch into a scratch buffer and copies the runs' parts out. The tail
  // block (numel % 16 != 0) recomputes [numel - 16, numel) last, as torch does.
  BlockRuns runs(blocks, maps);
  const auto& kernels = torch_stream_kernels();
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t main_words = normal_fill_main_words(dtype, numel);
  const int64_t tail_count = normal_fill_tail_words(dtype, numel);
  const int64_t words_per_element = torch_words_per_element(dtype);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    draw_elements(gen, /*words=*/nullptr, main_words / words_per_element, words_per_element, /*align=*/16,
                  [&](int64_t begin, int64_t end, const uint32_t* w) {
                    const int64_t whole_blocks = (end - begin) / 16;  // a partial last block is the tail's
                    thread_local std::vector<char> scratch;
                    runs.for_each_part(begin, begin + whole_blocks * 16, [&](int64_t first, int64_t last, char* out) {
                      const int64_t b0 = (first - begin) / 16, b1 = (last - begin + 15) / 16;
                      const size_t bytes = static_cast<size_t>((b1 - b0) * 16 * element);
                      if (scratch.size() < bytes) scratch.resize(bytes);
                      kernels.normal_blocks(dtype, scratch.data(), w + b0 * 16 * words_per_element, 0, b1 - b0, mean,
                                            std, /*zero_mask=*/nullptr);
                      std::memcpy(out, scratch.data() + (first - begin - b0 * 16) * element,
                                  static_cast<size_t>((last - first) * element));
                    });
                  });
    uint32_t tail[32];
    draw_words(gen, tail, tail_count);
    if (tail_count > 0) {
      alignas(16) char values[16 * sizeof(double)];
      kernels.normal_tail(dtype, values, 16, tail, mean, std, /*zero_mask=*/nullptr);
      runs.for_each_part(numel - 16, numel, [&](int64_t first, int64_t last, char* out) {
        std::memcpy(out, values + (first - (numel - 16)) * element, static_cast<size_t>((last - first) * element));
      });
    }
  }
  runs.commit();
}

// trunc_normal_ on blocks (Note [trunc_normal_ by normal proposals]): the first normal_ as normal_blocks_ draws
// it, each piece computing all of its Box-Muller blocks into a scratch buffer (every value decides whether the call
// resamples), copying the blocks' parts out and noting the indices outside [a, b]; then the rounds over those
// indices, which write accepted proposals into the blocks straight and drop the others'. The memory beyond the
// blocks is the pending indices (about 1 in 22 elements at [-2, 2] std) and a pointer each: no tensor of the
// whole's size.
void trunc_normal_blocks_cpu(at::TensorList blocks, double mean, double std, double a, double b,
                             at::IntArrayRef global_shape, at::IntArrayRef starts,
                             std::optional<at::Generator> generator) {
  int64_t numel = 0;
  const std::vector<ShardMap> maps = validate_normal_blocks(blocks, std, global_shape, starts, &numel, "trunc_normal_");
  if (numel == 0) return;
  const auto dtype = blocks[0].scalar_type();
  if (numel < 16) {
    // torch's serial rounds on the whole (< 16 elements), then the blocks copied out.
    at::Tensor whole = at::empty(global_shape, blocks[0].options().memory_format(at::MemoryFormat::Contiguous));
    trunc_normal_cpu(whole, mean, std, a, b, generator);
    copy_blocks_out(blocks, whole, starts);
    return;
  }
  auto* gen = cpu_generator(generator);
  BlockRuns runs(blocks, maps);
  const auto& kernels = torch_stream_kernels();
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t main_words = normal_fill_main_words(dtype, numel);
  const int64_t tail_count = normal_fill_tail_words(dtype, numel);
  const int64_t words_per_element = torch_words_per_element(dtype);
  const int64_t tail_start = tail_count > 0 ? numel - 16 : numel;  // the tail block recomputes [numel - 16, numel)
  std::lock_guard<std::mutex> lock(gen->mutex_);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_trunc_normal_blocks", [&] {
    PieceIndices found;  // each piece's indices outside [a, b]
    draw_elements(gen, /*words=*/nullptr, main_words / words_per_element, words_per_element, /*align=*/16,
                  [&](int64_t begin, int64_t end, const uint32_t* w) {
                    const int64_t whole_blocks = (end - begin) / 16;  // a partial last block is the tail's
                    if (whole_blocks == 0) return;
                    thread_local std::vector<scalar_t> scratch;
                    if (scratch.size() < static_cast<size_t>(whole_blocks * 16)) scratch.resize(whole_blocks * 16);
                    kernels.normal_blocks(dtype, scratch.data(), w, 0, whole_blocks, mean, std, /*zero_mask=*/nullptr);
                    runs.for_each_part(begin, begin + whole_blocks * 16, [&](int64_t first, int64_t last, char* out) {
                      std::memcpy(out, scratch.data() + (first - begin), static_cast<size_t>((last - first) * element));
                    });
                    std::vector<int64_t> outside;
                    append_out_of_bounds(scratch.data(), std::min(begin + whole_blocks * 16, tail_start) - begin, a, b,
                                         begin, outside);
                    found.add(begin, std::move(outside));
                  });
    std::vector<int64_t> pending = found.sorted();
    uint32_t tail[32];
    draw_words(gen, tail, tail_count);
    if (tail_count > 0) {
      scalar_t values[16];
      kernels.normal_tail(dtype, values, 16, tail, mean, std, /*zero_mask=*/nullptr);
      runs.for_each_part(numel - 16, numel, [&](int64_t first, int64_t last, char* out) {
        std::memcpy(out, values + (first - (numel - 16)), static_cast<size_t>((last - first) * element));
      });
      append_out_of_bounds(values, 16, a, b, numel - 16, pending);
    }
    if (pending.empty()) return;
    // Each pending element's place in the first block run that holds it (none: outside the blocks); where
    // overlapping blocks hold it twice, the other places get a copy after the rounds.
    std::vector<void*> destinations(pending.size(), nullptr);
    std::vector<std::pair<char*, const char*>> copies;
    runs.for_each_index(pending.data(), static_cast<int64_t>(pending.size()), [&](int64_t k, char* out) {
      if (destinations[k] == nullptr) {
        destinations[k] = out;
      } else {
        copies.emplace_back(out, static_cast<const char*>(destinations[k]));
      }
    });
    resample_rounds(gen, dtype, /*values=*/nullptr, numel, pending, &destinations, mean, std, a, b);
    for (const auto& [to, from] : copies) std::memcpy(to, from, static_cast<size_t>(element));
  });
  runs.commit();
}

}  // namespace pyinit::cpu
