#pragma once
// The (key, offset) of one philox call, drawn from a torch.Generator exactly as pyinit/_streams.py draw_key draws it
// (docs/philox_stream.md, "Key and offset"), and given back when the call fails. Shared by the direct call
// (csrc/python/module.cpp) and the operators that draw their own key (csrc/philox_drawn.cpp).

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <mutex>

namespace pyinit {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One key draw. A CPU generator: torch.randint(0, 2**32, (4,), dtype=torch.int64, generator=g) draws one 64-bit
// number per element (its range is 2**32, which takes random64()) and keeps its low 32 bits, the second of the two
// words; so w_j is word 2j + 1, and key = w0 | w1 << 32, offset = w2 | w3 << 32. Any other generator (CUDA's
// Philox): key = splitmix64(splitmix64(initial_seed) ^ its offset), offset = 0, and its offset moves on by 4.
class PhiloxKeyDraw {
 public:
  explicit PhiloxKeyDraw(at::Generator generator) : generator_(std::move(generator)) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    if (generator_.device().is_cpu()) {
      auto* gen = at::check_generator<at::CPUGeneratorImpl>(generator_);
      engine_ = gen->engine().data();
      uint32_t words[4];
      for (uint32_t& w : words) {
        (void)gen->random();
        w = gen->random();
      }
      key = words[0] | (static_cast<uint64_t>(words[1]) << 32);
      offset = words[2] | (static_cast<uint64_t>(words[3]) << 32);
      return;
    }
    c10::GeneratorImpl* gen = generator_.unsafeGetGeneratorImpl();
    position_ = gen->get_offset();
    gen->set_offset(position_ + 4);
    key = splitmix64(splitmix64(gen->current_seed()) ^ position_);
    offset = 0;
  }

  // Puts the generator back where it was before the draw (the failed call draws nothing).
  void give_back() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    if (generator_.device().is_cpu()) {
      at::mt19937 engine;
      engine.set_data(engine_);
      at::check_generator<at::CPUGeneratorImpl>(generator_)->set_engine(engine);
      return;
    }
    generator_.unsafeGetGeneratorImpl()->set_offset(position_);
  }

  // The operators take the unsigned numbers' int64 bit patterns.
  int64_t key_bits() const { return static_cast<int64_t>(key); }
  int64_t offset_bits() const { return static_cast<int64_t>(offset); }

  uint64_t key = 0, offset = 0;

 private:
  at::Generator generator_;
  at::mt19937_data_pod engine_{};
  uint64_t position_ = 0;
};

// run(key_bits, offset_bits) with a key drawn from `generator`; if it throws, the generator is put back.
template <typename Run>
void with_drawn_key(at::Generator generator, Run&& run) {
  PhiloxKeyDraw draw(std::move(generator));
  try {
    run(draw.key_bits(), draw.offset_bits());
  } catch (...) {
    draw.give_back();
    throw;
  }
}

}  // namespace pyinit
