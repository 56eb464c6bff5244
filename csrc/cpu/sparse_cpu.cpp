// torch.nn.init.sparse_ on CPU, and the replay of torch.randperm that gives its zero pattern on every device.
// See Note [The torch stream on CPU] (torch_stream_kernels_per_isa.h).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <limits>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/torch_stream_pipeline.h"
#include "torch_randperm.h"
#include "validate.h"

namespace pyinit::cpu {
namespace {

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
// zero(row, col, k) is called for entry k (the row `row`) of each column's first `zeros` permutation entries, in
// order of k. A block of columns
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
            zero(row, c, k);
          }
          if (zeros > steps) zero(perm[steps], c, steps);  // every row zeroed: the last entry needs no swap
          for (int64_t k = 0; k < steps; ++k) {
            perm[touched[k]] = static_cast<int32_t>(touched[k]);
            perm[k] = static_cast<int32_t>(k);
          }
        }
      });
}

}  // namespace

void sparse_cpu(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator) {
  if (!validate_sparse(self, std)) return;
  TORCH_CHECK(self.size(0) <= std::numeric_limits<int32_t>::max(), "pyinit.sparse_: too many rows");
  const int64_t rows = self.size(0), cols = self.size(1), n = self.numel();
  const int64_t zeros = sparse_zero_count(num_zeros, rows);
  const auto dtype = self.scalar_type();
  auto* gen = cpu_generator(generator);
  if (zeros > 0 && n >= 16 && self.is_contiguous()) {
    count_extra_writes(self, cols);  // torch: normal_(), then one indexed write per column (empty ones too)
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
    replay_permutations(rows, cols, zeros, 64, [&](int64_t row, int64_t col, int64_t /*k*/) {
      mask_words[(col / 64) * stride + row] |= uint64_t{1} << (col % 64);
    });
    const ZeroMask mask{mask_words, cols, stride};
    const auto& kernels = torch_stream_kernels();
    parallel_for(0, n / 16, kPipelineBlock / 16, [&](int64_t begin, int64_t end) {
      kernels.normal_blocks(dtype, self.data_ptr(), normal_words.data(), begin, end, 0.0, std, &mask);
    });
    if (tail_count > 0) kernels.normal_tail(dtype, self.data_ptr(), n, tail, 0.0, std, &mask);
    return;
  }
  // Two passes: normal_ (through the operator, so every layout is handled in one place), then the zeros (each
  // element is written by one thread; columns sharing cache lines go to the same thread where possible).
  static auto normal_op = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("pyinit::normal_", "")
                              .typed<void(at::Tensor, double, double, std::optional<at::Generator>)>();
  normal_op.call(self, 0.0, std, generator);  // counts the normal_ write itself
  count_extra_writes(self, cols - 1);         // torch: one indexed write per column (empty ones too)
  const int64_t row_stride = self.stride(0), col_stride = self.stride(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_sparse", [&] {
    scalar_t* base = self.data_ptr<scalar_t>();
    const int64_t group = col_stride == 1 ? 64 / static_cast<int64_t>(sizeof(scalar_t)) : 1;
    // torch draws every column's permutation even when nothing is zeroed.
    replay_permutations(rows, cols, zeros, group, [&](int64_t row, int64_t col, int64_t /*k*/) {
      base[row * row_stride + col * col_stride] = static_cast<scalar_t>(0);
    });
  });
}

}  // namespace pyinit::cpu

namespace pyinit {

// sparse_ on blocks of a (rows, cols) tensor (Note [The torch stream on blocks], csrc/torch_blocks.h), for every
// device: normal_blocks_ from `generator`, then every column's randperm words from the default CPU generator
// (torch_randperm_prefixes: the order torch's sparse_ draws them), and each block's elements in its columns'
// zeroed rows set to +0 (one indexed write per block). Beyond the blocks it holds the zero pattern, cols * zeros
// int64 entries (8 * sparsity bytes per element of the whole), never a tensor of the whole's size.
void sparse_blocks(at::TensorList blocks, int64_t num_zeros, double std, at::IntArrayRef global_shape,
                   at::IntArrayRef starts, std::optional<at::Generator> generator) {
  TORCH_CHECK(global_shape.size() == 2, "Only tensors with 2 dimensions are supported");
  TORCH_CHECK(global_shape[0] <= std::numeric_limits<int32_t>::max(), "pyinit.sparse_: too many rows");
  static auto normal_blocks_op = c10::Dispatcher::singleton()
                                     .findSchemaOrThrow("pyinit::normal_blocks_", "")
                                     .typed<void(at::TensorList, double, double, at::IntArrayRef, at::IntArrayRef,
                                                 std::optional<at::Generator>)>();
  normal_blocks_op.call(blocks, 0.0, std, global_shape, starts, generator);  // validates, then draws and writes
  const int64_t rows = global_shape[0], cols = global_shape[1];
  const int64_t zeros = sparse_zero_count(num_zeros, rows);
  const at::Tensor prefixes = torch_randperm_prefixes(rows, cols, zeros);  // drawn also when nothing is zeroed
  if (zeros == 0) return;
  const int64_t* zeroed = prefixes.data_ptr<int64_t>();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const at::Tensor& block = blocks[i];
    if (block.numel() == 0) continue;
    const int64_t r0 = starts[2 * i], c0 = starts[2 * i + 1], block_rows = block.size(0);
    std::vector<int64_t> local_rows, local_cols;
    for (int64_t c = c0; c < c0 + block.size(1); ++c) {
      for (int64_t k = 0; k < zeros; ++k) {
        const int64_t row = zeroed[c * zeros + k];
        if (row >= r0 && row < r0 + block_rows) {
          local_rows.push_back(row - r0);
          local_cols.push_back(c - c0);
        }
      }
    }
    if (local_rows.empty()) continue;
    const auto index = at::TensorOptions().dtype(at::kLong);
    at::Tensor row_index = at::tensor(local_rows, index).to(block.device());
    at::Tensor col_index = at::tensor(local_cols, index).to(block.device());
    at::Tensor target = block;  // index_put_ on the block (a view of the shard) writes the shard
    target.index_put_({row_index, col_index}, at::zeros({}, block.options()));
  }
}

at::Tensor torch_randperm_prefixes(int64_t rows, int64_t cols, int64_t zeros) {
  auto prefixes = at::empty({std::max<int64_t>(cols * zeros, 1)}, at::TensorOptions().dtype(at::kLong));
  int64_t* out = prefixes.data_ptr<int64_t>();
  cpu::replay_permutations(rows, cols, zeros, 1,
                           [&](int64_t row, int64_t col, int64_t k) { out[col * zeros + k] = row; });
  return prefixes;
}

}  // namespace pyinit
