#pragma once
// The torch stream's CPU pipeline: the generator, bulk word draws from it, the serial-draw / parallel-transform
// pipeline and the word buffers. See Note [The torch stream on CPU] (torch_stream_kernels_per_isa.h).

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <mutex>
#include <numeric>
#include <optional>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/cpu_isa.h"
#include "cpu/torch_stream_kernels.h"
#include "pyinit/transforms.h"

namespace pyinit::cpu {

// The generator torch would use: `generator` if given (checked to be a CPU generator, with torch's message),
// else the default CPU generator.
inline at::CPUGeneratorImpl* cpu_generator(const std::optional<at::Generator>& generator) {
  return at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
}

// The kernels for the capability torch itself dispatched (which decides FMA contraction and the Box-Muller
// variant). See Note [The torch stream on CPU].
inline const TorchStreamKernels& torch_stream_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_isa() == CpuIsa::kAvx2) return torch_stream_kernels_avx2();
#endif
  return torch_stream_kernels_default();
}

// Elements per pipeline block (a multiple of 16, normal_'s Box-Muller block): large enough to amortize the
// hand-off, small enough that a block's words are still in cache when another thread transforms them.
constexpr int64_t kPipelineBlock = 1 << 15;

// Draws `count` words from the generator; the caller holds generator->mutex_.
inline void draw_words(at::CPUGeneratorImpl* generator, uint32_t* out, int64_t count) {
  at::mt19937 engine = generator->engine();
  torch_stream_kernels().draw_words(engine, out, count);
  generator->set_engine(engine);
}

// Word buffers for serial_producer_pipeline's slots: `ring` fixed slots, and overflow slots (ids ring + b)
// allocated by the producer on first use. The producer calls produce_slot() and the consumers consume_slot(); the
// pipeline's release/acquire on its block counter publishes an overflow slot's pointer with the block.
class SlotWords {
 public:
  SlotWords(int64_t ring, int64_t blocks, int64_t words_per_slot)
      : ring_(ring),
        words_per_slot_(words_per_slot),
        fixed_(static_cast<size_t>(ring * words_per_slot)),
        overflow_(static_cast<size_t>(blocks)) {}
  uint32_t* produce_slot(int64_t slot) {
    if (slot < ring_) return fixed_.data() + slot * words_per_slot_;
    auto& words = overflow_[slot - ring_];
    if (!words) words.reset(new uint32_t[static_cast<size_t>(words_per_slot_)]);
    return words.get();
  }
  const uint32_t* consume_slot(int64_t slot) const {
    return slot < ring_ ? fixed_.data() + slot * words_per_slot_ : overflow_[slot - ring_].get();
  }

 private:
  int64_t ring_, words_per_slot_;
  std::vector<uint32_t> fixed_;
  std::vector<std::unique_ptr<uint32_t[]>> overflow_;
};

// Note [Serial producer, parallel consumers]
// Runs produce(b, slot) for b = 0, 1, ..., blocks - 1 in that order on one thread (the serial draw from a
// generator), and consume(b, slot) for every block on any thread once it is produced. Blocks pass through a ring
// of `ring` slots: slot b % ring is reused only after the block in it has been consumed. The producer
// never waits long for a slot: after a short spin (during which it consumes ready blocks itself) block b gets
// the overflow slot ring + b instead (SlotWords allocates it), because the consumer holding the slot may have
// been descheduled (see docs/decisions.md, "Draw and transform overlap"). All threads consume
// once production ends, so it completes on any number of threads (one included, e.g. inside another parallel
// region). Neither callback may throw.
template <typename Produce, typename Consume>
void serial_producer_pipeline(int64_t blocks, int64_t ring, const Produce& produce, const Consume& consume) {
  if (blocks <= 0) return;
  std::atomic<int64_t> produced{0};                                // blocks [0, produced) are ready
  std::atomic<int64_t> next_claim{0};                              // the next block a consumer takes
  std::vector<std::atomic<bool>> busy(static_cast<size_t>(ring));  // a produced block not yet consumed holds it
  for (int64_t s = 0; s < ring; ++s) busy[s].store(false, std::memory_order_relaxed);
  std::vector<int64_t> slot_of(static_cast<size_t>(blocks));  // the slot each block went through
  // Claims and consumes one block if one is ready; false when none was.
  auto consume_one = [&](bool wait_for_production) {
    int64_t b = next_claim.load(std::memory_order_relaxed);
    do {
      if (b >= blocks) return false;
      if (!wait_for_production && b >= produced.load(std::memory_order_acquire)) return false;
    } while (!next_claim.compare_exchange_weak(b, b + 1, std::memory_order_relaxed));
    for (int spins = 0; b >= produced.load(std::memory_order_acquire); ++spins) back_off(spins);
    const int64_t slot = slot_of[b];  // written before `produced` was released past b
    consume(b, slot);
    if (slot < ring) busy[slot].store(false, std::memory_order_release);
    return true;
  };
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t tid = begin; tid < end; ++tid) {
      if (tid == 0) {
        for (int64_t b = 0; b < blocks; ++b) {
          int64_t slot = b % ring;
          for (int spins = 0; busy[slot].load(std::memory_order_acquire); ++spins) {
            if (consume_one(/*wait_for_production=*/false)) continue;
            if (spins >= 16) {
              slot = ring + b;  // overflow: never reused, so nothing to wait for
              break;
            }
            std::this_thread::yield();
          }
          if (slot < ring) busy[slot].store(true, std::memory_order_relaxed);  // only the producer sets it
          slot_of[b] = slot;
          produce(b, slot);
          produced.store(b + 1, std::memory_order_release);
        }
      }
      while (consume_one(/*wait_for_production=*/true)) {
      }
    }
  });
}

// Draws `words_per_element` words per element for elements [0, n) and calls transform(begin, end, block_words)
// on element ranges, each as soon as its words are drawn (block_words[k] is word k of element `begin`): other
// threads transform while the draw, the only serial step, goes on. One thread interleaves draw and transform
// block by block. The words go into `words` (element i's at words[i * words_per_element]; it may be the output
// itself) or, when `words` is null, into a small ring of per-block buffers: a half/bfloat16 output is too small
// to hold its own words, and a whole-tensor buffer would cost a page fault every 4 KiB.
// The caller holds the generator's mutex.
template <typename F>
void draw_and_transform(at::CPUGeneratorImpl* gen, uint32_t* words, int64_t n, int64_t words_per_element,
                        const F& transform) {
  const int64_t blocks = (n + kPipelineBlock - 1) / kPipelineBlock;
  const bool serial = blocks <= 1 || at::get_num_threads() <= 1 || in_parallel_work();
  const int64_t ring = serial ? 1 : std::min(blocks, 8 * static_cast<int64_t>(at::get_num_threads()) + 8);
  SlotWords slots(words == nullptr ? ring : 0, words == nullptr ? blocks : 0, kPipelineBlock * words_per_element);
  auto range = [&](int64_t b) { return std::make_pair(b * kPipelineBlock, std::min(n, (b + 1) * kPipelineBlock)); };
  auto draw = [&](int64_t b, int64_t slot) {
    const auto [begin, end] = range(b);
    uint32_t* out = words != nullptr ? words + begin * words_per_element : slots.produce_slot(slot);
    draw_words(gen, out, (end - begin) * words_per_element);
  };
  auto run = [&](int64_t b, int64_t slot) {
    const auto [begin, end] = range(b);
    transform(begin, end, words != nullptr ? words + begin * words_per_element : slots.consume_slot(slot));
  };
  if (serial) {
    for (int64_t b = 0; b < blocks; ++b) {
      draw(b, 0);
      run(b, 0);
    }
    return;
  }
  serial_producer_pipeline(blocks, words == nullptr ? ring : blocks, draw, run);
}

// The output's own memory when it can hold `count` words (float: 1 per element, double: 2), else null.
inline uint32_t* words_in_output(void* output, int64_t output_bytes, int64_t count) {
  return static_cast<int64_t>(sizeof(uint32_t)) * count <= output_bytes ? static_cast<uint32_t*>(output) : nullptr;
}

// Scratch words, placed in the output's own memory when it is large enough (words_in_output), else in a
// temporary.
class WordBuffer {
 public:
  WordBuffer(void* output, int64_t output_bytes, int64_t count) : data_(words_in_output(output, output_bytes, count)) {
    if (data_ == nullptr) {
      storage_ = at::empty({count}, at::TensorOptions().dtype(at::kInt));
      data_ = reinterpret_cast<uint32_t*>(storage_.data_ptr<int32_t>());
    }
  }
  uint32_t* data() const { return data_; }

 private:
  at::Tensor storage_;
  uint32_t* data_ = nullptr;
};

// Serial normal_: at::normal_distribution<double> element by element (it chains through the generator's cached
// sample), then the same mean/std transform torch applies (FMA-contracted in its AVX2 builds).
template <typename scalar_t>
void normal_serial(at::CPUGeneratorImpl* generator, scalar_t* out, int64_t n, double mean, double std, bool fma,
                   const uint8_t* only = nullptr) {
  at::normal_distribution<double> standard(0.0, 1.0);
  for (int64_t i = 0; i < n; ++i) {
    const double z = standard(generator);
    if (only != nullptr && !only[i]) continue;
    out[i] = static_cast<scalar_t>(fma ? mul_add<true>(z, std, mean) : mul_add<false>(z, std, mean));
  }
}

// Words torch's uniform_ and normal_fill draw per element of `dtype`: two for double (random64), else one.
inline int64_t torch_words_per_element(at::ScalarType dtype) { return dtype == at::kDouble ? 2 : 1; }

// Number of words normal_fill draws for a contiguous tensor of n >= 16 elements: one per element (two for
// double) in the main pass, except that half/bfloat16 skip the last partial block; plus one more block of 16
// elements when n % 16 != 0.
inline int64_t normal_fill_main_words(at::ScalarType dtype, int64_t n) {
  if (dtype == at::kDouble) return 2 * n;
  if (dtype == at::kFloat) return n;
  return n / 16 * 16;
}

// Number of extra words normal_fill draws after the main pass for n >= 16 elements: one more block of 16
// elements (16 words, 32 for double) when n % 16 != 0, which recomputes outputs [n - 16, n).
inline int64_t normal_fill_tail_words(at::ScalarType dtype, int64_t n) {
  return n % 16 != 0 ? (dtype == at::kDouble ? 32 : 16) : 0;
}

}  // namespace pyinit::cpu
