// CPU implementations of the torch stream's random initializers. See Note [The torch stream on CPU].

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>

#include "../checks.h"
#include "ops_cpu.h"

namespace pyinit::cpu {
namespace {

// Elements per pipeline block (a multiple of 16, normal_'s Box-Muller block): large enough to amortize the
// hand-off, small enough that a block's words are still in cache when another thread transforms them.
constexpr int64_t kPipelineBlock = 1 << 15;

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
  const bool serial = blocks <= 1 || at::get_num_threads() <= 1 || at::in_parallel_region();
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

// `out` advanced by `elements` elements of `dtype`.
inline void* offset(void* out, at::ScalarType dtype, int64_t elements) {
  return static_cast<char*>(out) + elements * static_cast<int64_t>(c10::elementSize(dtype));
}

void uniform_words_impl(at::Tensor& self, double low, double high, bool mask, double threshold,
                        const std::optional<at::Generator>& generator) {
  check_uniform_bounds(self, low, high);
  if (self.numel() == 0) return;
  check_writable(self);
  auto* gen = cpu_generator(generator);
  const auto& kernels = torch_stream_kernels();
  MemoryOrderOutput out(self);
  const int64_t n = out.numel();
  const auto dtype = self.scalar_type();
  const int64_t words_per_element = dtype == at::kDouble ? 2 : 1;
  // In place for float/double; half/bfloat16 output is too small, so their words go through a ring.
  uint32_t* words = words_in_output(out.data(), n * static_cast<int64_t>(self.element_size()), n * words_per_element);
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    draw_and_transform(gen, words, n, words_per_element, [&](int64_t begin, int64_t end, const uint32_t* w) {
      kernels.uniform_from_words(dtype, offset(out.data(), dtype, begin), w, 0, end - begin, low, high, mask,
                                 threshold);
    });
  }
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
    const int64_t tail_count = normal_fill_tail_words(dtype, n);
    const int64_t words_per_element = dtype == at::kDouble ? 2 : 1;
    uint32_t* words = words_in_output(out.data(), n * static_cast<int64_t>(self.element_size()), main_words);
    // Pipeline ranges start at multiples of 16, so each holds whole Box-Muller blocks; a partial last block
    // (its words drawn for float/double, not for half/bfloat16) is left to the tail.
    draw_and_transform(gen, words, main_words / words_per_element, words_per_element,
                       [&](int64_t begin, int64_t end, const uint32_t* w) {
                         kernels.normal_blocks(dtype, offset(out.data(), dtype, begin), w, 0, end / 16 - begin / 16,
                                               mean, std, /*zero_mask=*/nullptr);
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

// Indices (memory order, ascending) of values outside [lo, hi] in the tensor's dtype: counted per fixed chunk in
// parallel, then written in parallel at each chunk's offset.
template <typename scalar_t>
std::vector<int64_t> out_of_bounds(const scalar_t* values, int64_t n, double lo_, double hi_) {
  using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const opmath_t lo = static_cast<opmath_t>(static_cast<scalar_t>(lo_));
  const opmath_t hi = static_cast<opmath_t>(static_cast<scalar_t>(hi_));
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // Branch-free (`|`, not `||`): about 1 value in 20 is outside, at random.
  auto outside = [&](int64_t i) -> int64_t {
    const opmath_t v = static_cast<opmath_t>(values[i]);
    return static_cast<int64_t>(v < lo) | static_cast<int64_t>(v > hi);
  };
  std::vector<int64_t> offsets(static_cast<size_t>(chunks) + 1, 0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      int64_t found = 0;
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) found += outside(i);
      offsets[c + 1] = found;
    }
  });
  for (int64_t c = 0; c < chunks; ++c) offsets[c + 1] += offsets[c];
  // One spare entry: every index is written at `at`, which only advances past the ones kept.
  std::vector<int64_t> pending(static_cast<size_t>(offsets[chunks]) + 1);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      int64_t at = offsets[c];
      const int64_t limit = offsets[c + 1];
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
        // Writing at `at` before the chunk's last kept index is inside this chunk's range; after it, the write
        // would land in the next chunk's first entry, so it stops there.
        if (at == limit) break;
        pending[at] = i;
        at += outside(i);
      }
    }
  });
  pending.pop_back();
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
      const int64_t tail_count = normal_fill_tail_words(dtype, n);
      const int64_t words_per_element = dtype == at::kDouble ? 2 : 1;
      const int64_t main_elements = main_words / words_per_element;
      const int64_t blocks = (main_elements + kPipelineBlock - 1) / kPipelineBlock;
      // Indices from tail_start on take their proposal from the tail block (normal_fill recomputes [n - 16, n)).
      const int64_t tail_start = tail_count > 0 ? n - 16 : n;
      std::vector<int64_t> bounds(static_cast<size_t>(blocks) + 1);
      int64_t count = static_cast<int64_t>(pending.size());
      while (count > 0) {
        int64_t* p = pending.data();
        const int64_t main_count = std::lower_bound(p, p + count, tail_start) - p;
        // Each pipeline block's share of the (sorted) pending indices, found before any entry is marked.
        for (int64_t blk = 0; blk <= blocks; ++blk) {
          bounds[blk] = std::lower_bound(p, p + main_count, std::min(blk * kPipelineBlock, main_elements)) - p;
        }
        bounds[blocks] = main_count;
        // The round's words are drawn block by block (into a ring: no whole-tensor buffer) and evaluated as drawn.
        draw_and_transform(gen, /*words=*/nullptr, main_elements, words_per_element,
                           [&](int64_t begin, int64_t /*end*/, const uint32_t* w) {
                             const int64_t blk = begin / kPipelineBlock;
                             const int64_t first = bounds[blk], last = bounds[blk + 1];
                             if (last > first) {
                               kernels.normal_resample(dtype, values, w, begin, p + first, last - first, mean, std, a,
                                                       b);
                             }
                           });
        uint32_t tail[32];
        draw_words(gen, tail, tail_count);
        if (count > main_count) {
          kernels.normal_resample(dtype, values, tail, n - 16, p + main_count, count - main_count, mean, std, a, b);
        }
        int64_t kept = 0;
        for (int64_t k = 0; k < count; ++k) {
          if (p[k] >= 0) p[kept++] = p[k];
        }
        count = kept;
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

// Note [sparse_ without a Python loop]
// torch.nn.init.sparse_ draws normal_(0, std) from `generator`, then for each column calls torch.randperm(rows)
// on the default CPU generator (Fisher-Yates: rows - 1 words, step i swaps r[i] with r[i + word % (rows - i)])
// and zeroes the rows named by the first num_zeros entries (a negative count slices from the end, as Python
// does). Entry k of a Fisher-Yates permutation is final after step k, so only the first num_zeros steps of each
// column's shuffle matter, and only their words are kept. pyinit:
//   1. draws normal_'s words, then every column's rows - 1 permutation words (the generators must end where
//      torch leaves them), in blocks that stay in cache, keeping the first min(num_zeros, rows - 1) of each;
//   2. replays each column's first steps in parallel, block by block as the words are drawn: a per-thread
//      permutation table is swapped and then restored (only the entries touched), and `word % (rows - k)` is an
//      exact multiply-shift remainder with per-step constants computed once;
//   3. contiguous tensors of >= 16 elements (normal_'s vectorized path): the zeroed positions go into a bitmap
//      and Box-Muller zeroes them while each block is in cache, so the tensor is written once. Other layouts
//      run normal_ and then zero the positions in a second pass, a cache line's worth of columns at a time.

// Exact `word % divisor` for 32-bit operands as two multiplies (Lemire, Kaser, Kurz, "Faster remainder by
// direct computation", 2019): with M = floor((2^64 - 1) / d) + 1, n mod d = ((M * n mod 2^64) * d) >> 64.
struct FastMod32 {
  uint64_t magic = 0;
  uint32_t divisor = 1;
  explicit FastMod32(uint32_t d = 1) : magic(~uint64_t{0} / d + 1), divisor(d) {}
  uint32_t operator()(uint32_t word) const {
    const uint64_t low = magic * word;
    return static_cast<uint32_t>((static_cast<unsigned __int128>(low) * divisor) >> 64);
  }
};

// Draws every column's randperm words from the default generator, column block by column block (the serial
// part), and replays each block's first `zeros` Fisher-Yates steps as soon as it is drawn, on the other threads:
// zero(row, col) is called for the rows of each column's first `zeros` permutation entries. A block of columns
// is replayed by one thread; blocks of `group_cols` columns (a multiple of `group_cols` per block) let zero()
// write without atomics when groups own disjoint memory.
template <typename F>
void replay_permutations(int64_t rows, int64_t cols, int64_t zeros, int64_t group_cols, const F& zero) {
  const int64_t words_per_column = rows - 1;
  const int64_t steps = std::min(zeros, words_per_column);  // swaps replayed per column
  constexpr int64_t kBlockWords = 1 << 16;  // 256 KiB per ring slot, unless one group of columns needs more
  const int64_t fit = std::max<int64_t>(1, kBlockWords / std::max<int64_t>(words_per_column, 1));
  const int64_t block_cols = (fit + group_cols - 1) / group_cols * group_cols;
  const int64_t blocks = (cols + block_cols - 1) / block_cols;
  const int64_t ring = std::min(blocks, 2 * static_cast<int64_t>(at::get_num_threads()) + 2);
  SlotWords slots(ring, blocks, block_cols * std::max<int64_t>(words_per_column, 1));
  std::vector<FastMod32> mod(static_cast<size_t>(steps));
  for (int64_t k = 0; k < steps; ++k) mod[k] = FastMod32(static_cast<uint32_t>(rows - k));
  auto* gen = cpu_generator(std::nullopt);
  std::lock_guard<std::mutex> lock(gen->mutex_);
  serial_producer_pipeline(
      blocks, ring,
      [&](int64_t b, int64_t slot) {
        const int64_t n_cols = std::min(block_cols, cols - b * block_cols);
        draw_words(gen, slots.produce_slot(slot), n_cols * words_per_column);
      },
      [&](int64_t b, int64_t slot) {
        // perm holds the identity between columns: a column's swaps are undone after it (only the entries
        // they touched), so no column pays for rows it does not touch.
        thread_local std::vector<int32_t> perm_table;
        thread_local std::vector<int64_t> touched_table;
        if (static_cast<int64_t>(perm_table.size()) < rows) {
          perm_table.resize(rows);
          std::iota(perm_table.begin(), perm_table.end(), 0);
        }
        touched_table.resize(std::max<int64_t>(steps, 1));
        int32_t* perm = perm_table.data();  // plain pointers: no thread-local lookups in the loop
        int64_t* touched = touched_table.data();
        const int64_t c0 = b * block_cols, n_cols = std::min(block_cols, cols - c0);
        const uint32_t* block_words = slots.consume_slot(slot);
        for (int64_t c = c0; c < c0 + n_cols; ++c) {
          const uint32_t* w = block_words + (c - c0) * words_per_column;
          for (int64_t k = 0; k < steps; ++k) {
            const int64_t j = k + mod[k](w[k]);
            const int32_t row = perm[j];
            perm[j] = perm[k];
            touched[k] = j;
            zero(row, c);
          }
          if (zeros > steps) zero(perm[steps], c);  // every row zeroed: the last entry needs no swap
          for (int64_t k = 0; k < steps; ++k) {
            perm[touched[k]] = static_cast<int32_t>(touched[k]);
            perm[k] = static_cast<int32_t>(k);
          }
        }
      });
}

void sparse_cpu(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator) {
  check_floating(self, "sparse_");
  TORCH_CHECK(self.dim() == 2, "Only tensors with 2 dimensions are supported");
  check_normal_std(std);
  if (self.numel() == 0) return;
  check_writable(self);
  TORCH_CHECK(self.size(0) <= std::numeric_limits<int32_t>::max(), "pyinit.sparse_: too many rows");
  const int64_t rows = self.size(0), cols = self.size(1), n = self.numel();
  const int64_t zeros = num_zeros >= 0 ? std::min(num_zeros, rows) : std::max<int64_t>(rows + num_zeros, 0);
  const auto dtype = self.scalar_type();
  auto* gen = cpu_generator(generator);
  if (zeros > 0 && n >= 16 && self.is_contiguous()) {
    // Fused: all words first (normal_'s from `generator`, then the permutations' from the default generator,
    // which may be the same one), then one pass that writes the normals with the zeros already in place.
    const int64_t main_words = normal_fill_main_words(dtype, n);
    const int64_t tail_count = normal_fill_tail_words(dtype, n);
    WordBuffer normal_words(self.data_ptr(), n * static_cast<int64_t>(self.element_size()), main_words);
    uint32_t tail[32];
    {
      std::lock_guard<std::mutex> lock(gen->mutex_);
      draw_words(gen, normal_words.data(), main_words);
      draw_words(gen, tail, tail_count);
    }
    const int64_t stride = rows + 8;
    auto mask_storage = at::zeros({(cols + 63) / 64 * stride}, at::TensorOptions().dtype(at::kLong));
    uint64_t* mask_words = reinterpret_cast<uint64_t*>(mask_storage.data_ptr<int64_t>());
    // Groups of 64 columns own their strips of the mask: plain stores.
    replay_permutations(rows, cols, zeros, 64, [&](int64_t row, int64_t col) {
      mask_words[(col / 64) * stride + row] |= uint64_t{1} << (col % 64);
    });
    const ZeroMask mask{mask_words, cols, stride};
    const auto& kernels = torch_stream_kernels();
    at::parallel_for(0, n / 16, kPipelineBlock / 16, [&](int64_t begin, int64_t end) {
      kernels.normal_blocks(dtype, self.data_ptr(), normal_words.data(), begin, end, 0.0, std, &mask);
    });
    if (tail_count > 0) kernels.normal_tail(dtype, self.data_ptr(), n, tail, 0.0, std, &mask);
    return;
  }
  // Two passes: normal_ (through the operator, so every layout is handled in one place), then the zeros (each
  // element is written by one thread; columns sharing cache lines go to the same thread where possible).
  static auto normal_op = c10::Dispatcher::singleton().findSchemaOrThrow("pyinit::normal_", "").typed<void(
      at::Tensor, double, double, std::optional<at::Generator>)>();
  normal_op.call(self, 0.0, std, generator);
  const int64_t row_stride = self.stride(0), col_stride = self.stride(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_sparse", [&] {
    scalar_t* base = self.data_ptr<scalar_t>();
    const int64_t group = col_stride == 1 ? 64 / static_cast<int64_t>(sizeof(scalar_t)) : 1;
    // torch draws every column's permutation even when nothing is zeroed.
    replay_permutations(rows, cols, zeros, group, [&](int64_t row, int64_t col) {
      base[row * row_stride + col * col_stride] = static_cast<scalar_t>(0);
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("uniform_", &uniform_cpu);
  m.impl("masked_uniform_", &masked_uniform_cpu);
  m.impl("normal_", &normal_cpu);
  m.impl("trunc_normal_", &trunc_normal_cpu);
  m.impl("sparse_", &sparse_cpu);
}

}  // namespace pyinit::cpu
