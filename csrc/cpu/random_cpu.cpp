// CPU implementations of the torch stream's random initializers. See Note [The torch stream on CPU].

#include <torch/library.h>

#include "../checks.h"
#include "ops_cpu.h"

namespace pyinit::cpu {
namespace {

void uniform_words_impl(at::Tensor& self, double low, double high, bool mask, double threshold,
                        const std::optional<at::Generator>& generator) {
  check_uniform_bounds(self, low, high);
  if (self.numel() == 0) return;
  check_writable(self);
  auto* gen = cpu_generator(generator);
  const auto& kernels = torch_stream_kernels();
  MemoryOrderOutput out(self);
  const int64_t n = out.numel();
  const int64_t words_needed = self.scalar_type() == at::kDouble ? 2 * n : n;
  WordBuffer words(out.data(), n * static_cast<int64_t>(self.element_size()), words_needed);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    draw_words(gen, words.data(), words_needed);
  }
  kernels.uniform_from_words(self.scalar_type(), out.data(), words.data(), n, low, high, mask, threshold);
  out.commit();
}

void uniform_cpu(at::Tensor self, double low, double high, std::optional<at::Generator> generator) {
  uniform_words_impl(self, low, high, /*mask=*/false, 0.0, generator);
}

void masked_uniform_cpu(at::Tensor self, double low, double high, double threshold,
                        std::optional<at::Generator> generator) {
  uniform_words_impl(self, low, high, /*mask=*/true, threshold, generator);
}

// normal_ into `out` (the memory-order buffer of `self`): normal_fill for contiguous tensors of >= 16
// elements, the serial path otherwise, exactly as torch chooses. Caller holds the generator's mutex.
void normal_locked(at::CPUGeneratorImpl* gen, const at::Tensor& self, MemoryOrderOutput& out, double mean,
                   double std) {
  const auto& kernels = torch_stream_kernels();
  const int64_t n = out.numel();
  const auto dtype = self.scalar_type();
  if (n >= 16 && self.is_contiguous()) {
    const int64_t main_words = normal_fill_main_words(dtype, n);
    const int64_t tail_count = n % 16 != 0 ? (dtype == at::kDouble ? 32 : 16) : 0;
    WordBuffer words(out.data(), n * static_cast<int64_t>(self.element_size()), main_words);
    uint32_t tail[32];
    draw_words(gen, words.data(), main_words);
    draw_words(gen, tail, tail_count);
    kernels.normal_from_words(dtype, out.data(), n, words.data(), tail, mean, std);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_normal_serial", [&] {
    normal_serial<scalar_t>(gen, out.data_as<scalar_t>(), n, mean, std, kernels.fma);
  });
}

void normal_cpu(at::Tensor self, double mean, double std, std::optional<at::Generator> generator) {
  check_floating(self, "normal_");
  check_normal_std(std);
  if (self.numel() == 0) return;
  check_writable(self);
  auto* gen = cpu_generator(generator);
  MemoryOrderOutput out(self);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    normal_locked(gen, self, out, mean, std);
  }
  out.commit();
}

// Indices (memory order) of values outside [lo, hi] in the tensor's dtype.
template <typename scalar_t>
std::vector<int64_t> out_of_bounds(const scalar_t* values, int64_t n, double lo_, double hi_) {
  using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(lo_));
  const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(hi_));
  std::vector<int64_t> pending;
  for (int64_t i = 0; i < n; ++i) {
    const opmath_t v = static_cast<opmath_t>(values[i]);
    if (v < lo || v > hi) pending.push_back(i);
  }
  return pending;
}

// Note [trunc_normal_ by normal proposals]
// torch >= 2.12 fills the tensor with normal_, then, while any value lies outside [lo, hi] (the bounds rounded to
// the dtype), draws a whole new normal_ tensor (empty_like: same layout) and keeps its values where the old ones
// were out of bounds. Each round therefore consumes exactly one normal_'s worth of words, whatever the number of
// pending elements. pyinit draws the same words per round but evaluates Box-Muller only for pending elements.
void trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b,
                      std::optional<at::Generator> generator) {
  check_floating(self, "trunc_normal_");
  check_normal_std(std);
  if (self.numel() == 0) return;
  check_writable(self);
  TORCH_CHECK(self.is_contiguous() || self.is_non_overlapping_and_dense(),
              "pyinit.trunc_normal_: the kernel needs a dense tensor (the Python wrapper falls back otherwise)");
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
    if (n >= 16 && self.is_contiguous()) {
      const int64_t main_words = normal_fill_main_words(dtype, n);
      const int64_t tail_count = n % 16 != 0 ? (dtype == at::kDouble ? 32 : 16) : 0;
      auto storage = at::empty({main_words + 32}, at::TensorOptions().dtype(at::kInt));
      uint32_t* words = reinterpret_cast<uint32_t*>(storage.data_ptr<int32_t>());
      uint32_t* tail = words + main_words;
      int64_t count = static_cast<int64_t>(pending.size());
      while (count > 0) {
        draw_words(gen, words, main_words);
        draw_words(gen, tail, tail_count);
        count = kernels.normal_resample_pending(dtype, values, n, words, tail, mean, std, a, b, pending.data(),
                                                count);
      }
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

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("uniform_", &uniform_cpu);
  m.impl("masked_uniform_", &masked_uniform_cpu);
  m.impl("normal_", &normal_cpu);
  m.impl("trunc_normal_", &trunc_normal_cpu);
}

}  // namespace pyinit::cpu
