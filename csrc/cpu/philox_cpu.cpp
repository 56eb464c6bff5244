// CPU implementations of the philox stream's operators (see docs/philox_stream.md). Values are a pure function
// of the global element index, so the work is split over parallel_for (csrc/cpu/parallel.h) freely: the thread
// count never changes a value.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/philox_tile_kernels.h"
#include "memory_order.h"
#include "philox_host.h"
#include "validate.h"

namespace pyinit::cpu {
namespace {

constexpr int64_t kPhiloxGrain = 1 << 15;

PhiloxFloatTileFn float_tile_kernel() { return PYINIT_PHILOX_KERNEL(philox_float_tile); }
PhiloxBitsTileFn bits_tile_kernel() { return PYINIT_PHILOX_KERNEL(philox_bits_tile); }

// torch's thread count (at::get_num_threads, which parallel_for follows) comes from its OpenMP backend, inline in
// torch's headers: this file must be compiled with -fopenmp (setup.py and CMakeLists.txt pass it), or the count
// would read 1 and every loop below would run on one thread whatever torch.set_num_threads says.
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "pyinit: compile with -fopenmp: torch uses the OpenMP backend, so at::parallel_for would run serially"
#endif

// Runs fill(out_base, local_index, global_index, count) over `self` in parallel, through a contiguous buffer
// when self is not contiguous (so a view gets the values of its elements in a contiguous tensor).
template <typename F>
void philox_launch(at::Tensor& self, const ShardMap& map, F&& fill) {
  if (!has_elements_to_write(self)) return;
  RowMajorOutput out(self);
  char* base = static_cast<char*>(out.data());
  parallel_for(0, out.numel(), kPhiloxGrain, [&](int64_t begin, int64_t end) {
    map.for_each_run(begin, end, [&](int64_t l, uint64_t g, int64_t n) { fill(base, l, g, n); });
  });
  out.commit();
}

// A run [g, g + n) written at local index l: whole tiles through `tile(l, tile_index)`, the rest element by
// element through `element(l, g)`.
template <int kTile, typename TileF, typename ElementF>
inline void fill_run(int64_t l, uint64_t g, int64_t n, TileF&& tile, ElementF&& element) {
  while (n > 0) {
    if (g % kTile == 0 && n >= kTile) {
      tile(l, g / kTile);
      l += kTile;
      g += kTile;
      n -= kTile;
    } else {
      element(l, g);
      ++l;
      ++g;
      --n;
    }
  }
}

// One element of a uniform / masked uniform / normal call, in float (half, bfloat16, float).
inline float float_element(const PhiloxCall& c, uint64_t g) {
  const PhiloxTile t = philox_tile(g, 1);
  const Philox4x32Counter w = philox_block(c.key, c.offset, t.block, 0);
  float v = c.kind == PhiloxKind::kNormal ? philox_normal_float(w, t.slot, c.mean_f, c.std_f)
                                          : philox_uniform_float(philox_lane(w, t.slot), c.low_f, c.span_f);
  v = round_to_dtype(v, c.dtype);
  return c.kind == PhiloxKind::kMaskedUniform ? philox_mask_float(v, c.threshold_f) : v;
}

inline double double_value(const PhiloxCall& c, const Philox4x32Counter& w, int slot) {
  if (c.kind == PhiloxKind::kNormal) return dadd_rn(dmul_rn(philox_standard_normal_double(w, slot), c.std), c.mean);
  const double v = philox_uniform_double(philox_lane(w, 2 * slot), philox_lane(w, 2 * slot + 1), c.low, c.span);
  return c.kind == PhiloxKind::kMaskedUniform ? philox_mask_double(v, c.threshold) : v;
}

// The values of the global elements [g, g + n) of a uniform / masked uniform / normal call, written at local
// index l of the contiguous output `base`. tile_fn: float_tile_kernel() (unused for double).
void fill_values(const PhiloxCall& call, PhiloxFloatTileFn tile_fn, char* base, int64_t l, uint64_t g, int64_t n) {
  if (call.dtype == DType::kDouble) {
    double* out = reinterpret_cast<double*>(base);
    fill_run<16>(
        l, g, n,
        [&](int64_t li, uint64_t tile) {
          for (int b = 0; b < 8; ++b) {
            const Philox4x32Counter w = philox_block(call.key, call.offset, tile * 8 + b, 0);
            if (call.kind == PhiloxKind::kNormal) {  // the block's pair: one log, one sin/cos
              double z_cos, z_sin;
              philox_standard_normal_double_pair(w, &z_cos, &z_sin);
              out[li + b] = dadd_rn(dmul_rn(z_cos, call.std), call.mean);
              out[li + 8 + b] = dadd_rn(dmul_rn(z_sin, call.std), call.mean);
              continue;
            }
            out[li + b] = double_value(call, w, 0);
            out[li + 8 + b] = double_value(call, w, 1);
          }
        },
        [&](int64_t li, uint64_t gi) {
          const PhiloxTile t = philox_tile(gi, 2);
          out[li] = double_value(call, philox_block(call.key, call.offset, t.block, 0), t.slot);
        });
    return;
  }
  auto element = [&](int64_t li, uint64_t gi) { store_float_as(base, li, float_element(call, gi), call.dtype); };
  for (; n > 0 && g % 32 != 0; ++l, ++g, --n) element(l, g);
  const int64_t tiles = n / 32;
  if (call.dtype == DType::kFloat) {
    if (tiles > 0) tile_fn(call, g / 32, tiles, 0, reinterpret_cast<float*>(base) + l);
  } else {
    alignas(32) float scratch[32 * 8];
    for (int64_t t = 0; t < tiles; t += 8) {
      const int64_t count = std::min<int64_t>(8, tiles - t);
      tile_fn(call, g / 32 + t, count, 0, scratch);
      for (int64_t j = 0; j < 32 * count; ++j) {
        float v = round_to_dtype(scratch[j], call.dtype);
        if (call.kind == PhiloxKind::kMaskedUniform) v = philox_mask_float(v, call.threshold_f);
        store_float_as(base, l + 32 * t + j, v, call.dtype);
      }
    }
  }
  l += 32 * tiles;
  g += 32 * tiles;
  n -= 32 * tiles;
  for (; n > 0; ++l, ++g, --n) element(l, g);
}

void philox_run(at::Tensor& self, const PhiloxCall& call, const ShardMap& map) {
  const PhiloxFloatTileFn tile_fn = float_tile_kernel();
  philox_launch(self, map,
                [&](char* base, int64_t l, uint64_t g, int64_t n) { fill_values(call, tile_fn, base, l, g, n); });
}

void philox_uniform_impl(at::Tensor self, double low, double high, bool mask, double threshold, int64_t key,
                         int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  const ShardMap map(self, global_shape, start);
  philox_run(self, philox_uniform_call(self, low, high, mask, threshold, key, offset), map);
}

}  // namespace

void philox_uniform_cpu(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start) {
  philox_uniform_impl(self, low, high, false, 0.0, key, offset, global_shape, start);
}

void philox_masked_uniform_cpu(at::Tensor self, double low, double high, double threshold, int64_t key, int64_t offset,
                               at::IntArrayRef global_shape, at::IntArrayRef start) {
  philox_uniform_impl(self, low, high, true, threshold, key, offset, global_shape, start);
}

namespace {

// Fills every contiguous tensor of `calls` in one parallel region over their concatenated elements (each
// element's value depends only on its own call and index, so the split is free); the others one by one.
void philox_many_run(at::TensorList selfs, const std::vector<PhiloxCall>& calls) {
  const PhiloxFloatTileFn tile_fn = float_tile_kernel();
  std::vector<int64_t> fused, ends;
  int64_t total = 0;
  for (size_t i = 0; i < selfs.size(); ++i) {
    at::Tensor self = selfs[i];
    if (!self.is_contiguous()) {  // through a buffer, as philox_run does
      philox_launch(self, ShardMap(self, {}, {}), [&](char* base, int64_t l, uint64_t g, int64_t n) {
        fill_values(calls[i], tile_fn, base, l, g, n);
      });
      continue;
    }
    if (!has_elements_to_write(self)) continue;
    fused.push_back(static_cast<int64_t>(i));
    total += self.numel();
    ends.push_back(total);
  }
  if (fused.empty()) return;
  parallel_for(0, total, kPhiloxGrain, [&](int64_t begin, int64_t end) {
    size_t k = std::upper_bound(ends.begin(), ends.end(), begin) - ends.begin();
    while (begin < end) {
      const int64_t first = k == 0 ? 0 : ends[k - 1];
      const int64_t stop = std::min(end, ends[k]);
      const size_t i = static_cast<size_t>(fused[k]);
      char* base = static_cast<char*>(selfs[i].data_ptr());
      fill_values(calls[i], tile_fn, base, begin - first, static_cast<uint64_t>(begin - first), stop - begin);
      begin = stop;
      ++k;
    }
  });
}

}  // namespace

void philox_uniform_many_cpu(at::TensorList selfs, c10::ArrayRef<double> low, c10::ArrayRef<double> high,
                             at::IntArrayRef key, at::IntArrayRef offset) {
  check_many(selfs, {low.size(), high.size(), key.size(), offset.size()}, "philox_uniform_many_");
  const auto bounds = validate_uniform_many(selfs, low, high);
  std::vector<PhiloxCall> calls;
  calls.reserve(selfs.size());
  for (size_t i = 0; i < selfs.size(); ++i) {
    calls.push_back(philox_uniform_call(selfs[i], bounds[i].first, bounds[i].second, false, 0.0, key[i], offset[i]));
  }
  philox_many_run(selfs, calls);
}

void philox_normal_many_cpu(at::TensorList selfs, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                            at::IntArrayRef key, at::IntArrayRef offset) {
  check_many(selfs, {mean.size(), std.size(), key.size(), offset.size()}, "philox_normal_many_");
  validate_normal_many(selfs, std);
  std::vector<PhiloxCall> calls;
  calls.reserve(selfs.size());
  for (size_t i = 0; i < selfs.size(); ++i) {
    calls.push_back(philox_normal_call(selfs[i], mean[i], std[i], key[i], offset[i]));
  }
  philox_many_run(selfs, calls);
}

void philox_normal_cpu(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                       at::IntArrayRef global_shape, at::IntArrayRef start) {
  validate_philox_normal(self, std);
  const ShardMap map(self, global_shape, start);
  philox_run(self, philox_normal_call(self, mean, std, key, offset), map);
}

void philox_trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b, int64_t key, int64_t offset,
                             at::IntArrayRef global_shape, at::IntArrayRef start) {
  validate_philox_trunc_normal(self, std, a, b);
  const ShardMap map(self, global_shape, start);
  const PhiloxCall call = philox_trunc_normal_call(self, mean, std, a, b, key, offset);
  const PhiloxTruncParams& t = call.trunc;
  const DType dtype = call.dtype;
  const uint64_t k = call.key, o = call.offset;
  auto store = [&](char* base, int64_t l, double v) {
    if (dtype == DType::kDouble) {
      reinterpret_cast<double*>(base)[l] = v;
    } else {
      store_float_as(base, l, static_cast<float>(v), dtype);
    }
  };
  // Float dtypes, rejection: csrc/cpu/philox_trunc_cpu.cpp (SIMD rounds); else element by element.
  const bool tiled = t.rejection && dtype != DType::kDouble;
  const PhiloxTruncKernels kernels = trunc_kernels();
  philox_launch(self, map, [&](char* base, int64_t l, uint64_t g, int64_t n) {
    if (tiled) return philox_trunc_rejection_fill(call, kernels, base, l, g, n);
    for (; n > 0; ++l, ++g, --n) store(base, l, philox_trunc_normal_value(k, o, g, t, dtype));
  });
}

// Raw words: element i gets word slot of its block (one word per element) at counter stream `stream`.
void philox_bits_cpu(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                     at::IntArrayRef start) {
  validate_philox_bits(self);
  const ShardMap map(self, global_shape, start);
  const uint64_t k = static_cast<uint64_t>(key), o = static_cast<uint64_t>(offset);
  const uint64_t s = static_cast<uint64_t>(stream);
  const PhiloxBitsTileFn tile_fn = bits_tile_kernel();
  philox_launch(self, map, [&](char* base, int64_t l, uint64_t g, int64_t n) {
    uint32_t* out = reinterpret_cast<uint32_t*>(base);
    auto element = [&](int64_t li, uint64_t gi) {
      const PhiloxTile t = philox_tile(gi, 1);
      out[li] = philox_lane(philox_block(k, o, t.block, s), t.slot);
    };
    for (; n > 0 && g % 32 != 0; ++l, ++g, --n) element(l, g);
    const int64_t tiles = n / 32;
    if (tiles > 0) tile_fn(k, o, g / 32, tiles, s, out + l);
    l += 32 * tiles;
    g += 32 * tiles;
    n -= 32 * tiles;
    for (; n > 0; ++l, ++g, --n) element(l, g);
  });
}

namespace {

// ---- sparse_ ----------------------------------------------------------------------------------------------------
// The values are those of philox_normal_(0, std). In each column of the (rows, cols) tensor, the num_zeros rows
// with the smallest key (word << 32 | row) are zero, `word` being the element's philox_bits_ word at stream 1
// (docs/philox_stream.md). Keys are distinct, so this is a selection in each column, done without sorting. Two
// word thresholds L < H are set around the expected num_zeros-th smallest word (num_zeros -/+ (3 sqrt(num_zeros)
// + 4) expected words below them). The columns are cut into strips (up to 256 columns); for each strip:
// 1. Scan: the words are generated row by row (whole tiles, SIMD). A word below L is "low": its element is surely
//    zero (when the column has at most num_zeros low words); it is counted and marked in the strip's bitmap. A
//    word in [L, H) is a "band" candidate, appended to a list (SIMD compress). The other elements cannot be among
//    the num_zeros smallest when low + band >= num_zeros.
// 2. The band candidates are grouped by column (a counting sort), and the num_zeros - low smallest band keys of
//    each column are found with a 64-bucket histogram of their words: only the bucket that holds the last one is
//    ordered (std::nth_element on a key or two).
// 3. A column whose counts fall outside those bounds (probability below 1e-3) is redone with every row as a
//    candidate (std::nth_element), which gives the same answer.
// 4. Row by row, the values of the row's strip segment are written (philox_normal_'s fill) and the bitmap's
//    elements zeroed while the segment is in cache, so the tensor is written once.
// Any element that is not a candidate has a larger word than every candidate (or is low), so the zeros are
// exactly the definition's; the strip width and the thread count change nothing.
constexpr int64_t kTileWords = 32;
constexpr int kSparseBuckets = 64;

// Thresholds for columns of `rows` words with num_zeros zeros: low words are < *low_limit (L), band words are
// < *high_limit (H), 0 <= L < H <= 2^32. *band is the expected fraction of band words.
SparseScan sparse_scan_params(int64_t rows, int64_t num_zeros, uint64_t* low_limit, uint64_t* high_limit,
                              double* band) {
  const double k = static_cast<double>(num_zeros), n = static_cast<double>(rows);
  double slack = 3.0, extra = 4.0;
  // Testing only: slack 0 puts both thresholds at the expected value, so that many columns take the fallback.
  if (const char* env = std::getenv("PYINIT_PHILOX_SPARSE_SLACK")) {
    slack = std::atof(env);
    extra = 0.0;
  }
  const double margin = slack * std::sqrt(k) + extra;
  const double two32 = 4294967296.0;
  const double low = std::floor((k - margin) / n * two32);
  const double high = k + margin >= n ? two32 : std::min(two32, std::ceil((k + margin) / n * two32));
  *low_limit = low >= 1.0 ? static_cast<uint64_t>(low) : 0;
  *high_limit = std::max<uint64_t>(static_cast<uint64_t>(high), *low_limit + 1);
  *band = static_cast<double>(*high_limit - *low_limit) / two32;
  SparseScan p;
  p.has_low = *low_limit > 0;
  p.low_max = p.has_low ? static_cast<uint32_t>(*low_limit - 1) : 0;
  p.high_max = static_cast<uint32_t>(std::min<uint64_t>(*high_limit, uint64_t{1} << 32) - 1);
  return p;
}

}  // namespace

void philox_sparse_cpu(at::Tensor self, int64_t num_zeros, std::optional<double> stddev, int64_t key, int64_t offset,
                       at::IntArrayRef global_shape, at::IntArrayRef start) {
  validate_philox_sparse(self, num_zeros);
  const ShardMap map(self, global_shape, start);  // checks that the block fits
  const bool values = stddev.has_value();
  PhiloxCall call;
  if (values) {
    check_floating(self, "sparse_");
    check_normal_std(*stddev);
    call = philox_normal_call(self, 0.0, *stddev, key, offset);
  }
  const int64_t rows = global_shape.empty() ? self.size(0) : global_shape[0];
  const int64_t cols = global_shape.empty() ? self.size(1) : global_shape[1];
  const int64_t row0 = start.empty() ? 0 : start[0], col0 = start.empty() ? 0 : start[1];
  const int64_t local_rows = self.size(0), local_cols = self.size(1);
  TORCH_CHECK(rows < (int64_t{1} << 32), "pyinit philox_sparse_: too many rows (", rows, ")");
  const int64_t k = std::min(num_zeros, rows);
  const bool any = has_elements_to_write(self);
  // torch.nn.init.sparse_ writes normal_, then one indexed write per column (empty ones too): 1 + cols. The
  // philox_run or zero_() of k == 0 or k == rows below counts one of them itself.
  const bool counts_itself = any && (k == 0 || k == rows);
  if (values) count_extra_writes(self, counts_itself ? local_cols - 1 : local_cols);
  if (!any) return;
  if (k == 0 || k == rows) {
    if (values && k == 0) philox_run(self, call, map);
    if (k == rows) self.zero_();
    return;
  }
  // The values are written strip by strip, through a contiguous buffer when self is not contiguous (the zeros
  // alone are written in place, through the strides).
  at::Tensor out = !values || self.is_contiguous() ? self : at::empty(self.sizes(), self.options());
  const uint64_t kk = static_cast<uint64_t>(key), o = static_cast<uint64_t>(offset);
  uint64_t low_limit = 0, high_limit = 0;
  double band_fraction = 0;
  const SparseScan scan = sparse_scan_params(rows, k, &low_limit, &high_limit, &band_fraction);
  // bucket(word) = ((word - L) * bucket_mul) >> 32 is monotone and < kSparseBuckets for words in [L, H).
  const uint64_t bucket_mul = (uint64_t{kSparseBuckets} << 32) / (high_limit - low_limit);
  const PhiloxBitsTileFn tile_fn = bits_tile_kernel();
  const SparseScanRowFn scan_fn = PYINIT_PHILOX_KERNEL(sparse_scan_row);
  const SparseZeroRowFn zero_fn = PYINIT_PHILOX_KERNEL(sparse_zero_row);
  const PhiloxFloatTileFn value_tile_fn = float_tile_kernel();
  // Strip width: band lists and bitmap of about 1 MiB per thread, and several strips per thread when possible.
  const double per_column = 16.0 * band_fraction * static_cast<double>(rows) + static_cast<double>(local_rows) / 8 + 1;
  int64_t strip = static_cast<int64_t>(static_cast<double>(int64_t{1} << 20) / per_column);
  const int64_t spread = (local_cols + 4 * at::get_num_threads() - 1) / (4 * at::get_num_threads());
  strip = std::max<int64_t>(8, std::min<int64_t>({strip, 256, std::max<int64_t>(spread, kTileWords)}));
  strip -= strip % 8;
  if (strip >= kTileWords) strip -= strip % kTileWords;
  const int64_t first_strip = col0 / strip, end_strip = (col0 + local_cols + strip - 1) / strip;

  char* const base = static_cast<char*>(out.data_ptr());
  const int64_t element_size = out.element_size();
  const int64_t stride0 = out.stride(0) * element_size, stride1 = out.stride(1) * element_size;
  const bool contiguous_rows = stride1 == element_size;
  const int64_t bitmap_row = (strip + 63) / 64;  // uint64 words per local row

  parallel_for(first_strip, end_strip, 1, [&](int64_t strip_begin, int64_t strip_end) {
    std::vector<uint32_t> band_counts(static_cast<size_t>(strip)), low_counts(static_cast<size_t>(strip));
    std::vector<uint32_t> band_words, band_cols;
    std::vector<int64_t> row_start(static_cast<size_t>(rows + 1)), column_start(static_cast<size_t>(strip + 1));
    std::vector<uint64_t> keys;
    // Room for the tiles of a misaligned run.
    std::vector<uint32_t> scratch(static_cast<size_t>((strip / kTileWords + 3) * kTileWords));
    // One bitmap row per local row, plus one that takes the marks of rows outside the block.
    std::vector<uint64_t> bitmap(static_cast<size_t>((local_rows + 1) * bitmap_row));
    std::vector<uint64_t> column;
    for (int64_t s = strip_begin; s < strip_end; ++s) {
      const int64_t c_begin = std::max(col0, s * strip), c_end = std::min(col0 + local_cols, (s + 1) * strip);
      const int64_t width = c_end - c_begin;
      std::fill(band_counts.begin(), band_counts.end(), 0u);
      std::fill(low_counts.begin(), low_counts.end(), 0u);
      std::fill(bitmap.begin(), bitmap.end(), uint64_t{0});
      // 1. Scan.
      int64_t m = 0;
      for (int64_t r = 0; r < rows; ++r) {
        if (static_cast<int64_t>(band_words.size()) < m + width + 8) {
          const size_t size = static_cast<size_t>(
              std::max<double>(m + width + 8, 1.25 * band_fraction * static_cast<double>(rows * width) + 64));
          band_words.resize(std::max(size, 2 * band_words.size()));
          band_cols.resize(band_words.size());
        }
        row_start[r] = m;
        const int64_t g = r * cols + c_begin;
        const int64_t tile0 = g / kTileWords;
        const int64_t tiles = (g + width - 1) / kTileWords - tile0 + 1;
        tile_fn(kk, o, static_cast<uint64_t>(tile0), tiles, 1, scratch.data());
        const int64_t local = r - row0;
        uint8_t* low_bits =
            local >= 0 && local < local_rows ? reinterpret_cast<uint8_t*>(bitmap.data() + local * bitmap_row) : nullptr;
        m = scan_fn(scan, scratch.data() + (g - tile0 * kTileWords), width, low_counts.data(), low_bits,
                    band_counts.data(), band_words.data(), band_cols.data(), m);
      }
      row_start[rows] = m;
      // 2. Band keys grouped by column.
      column_start[0] = 0;
      for (int64_t j = 0; j < width; ++j) column_start[j + 1] = column_start[j] + band_counts[j];
      keys.resize(static_cast<size_t>(m));
      {
        std::vector<int64_t> next(column_start.begin(), column_start.begin() + width);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t i = row_start[r]; i < row_start[r + 1]; ++i) {
            keys[next[band_cols[i]]++] = static_cast<uint64_t>(band_words[i]) << 32 | static_cast<uint64_t>(r);
          }
        }
      }
      auto mark_index = [&](uint64_t key_) {  // the bitmap row of a key's row (the spare row when not local)
        const uint64_t r = (key_ & 0xFFFFFFFFu) - static_cast<uint64_t>(row0);
        return static_cast<int64_t>(r < static_cast<uint64_t>(local_rows) ? r : local_rows) * bitmap_row;
      };
      for (int64_t j = 0; j < width; ++j) {
        const uint64_t bit = uint64_t{1} << (j % 64);
        const int64_t word = j / 64;
        const int64_t low = low_counts[j], n = band_counts[j];
        if (low > k || low + n < k) {  // rare: redo the column with every row
          const int64_t c = c_begin + j;
          column.resize(static_cast<size_t>(rows));
          for (int64_t r = 0; r < rows; ++r) {
            const PhiloxTile t = philox_tile(static_cast<uint64_t>(r * cols + c), 1);
            column[r] = static_cast<uint64_t>(philox_lane(philox_block(kk, o, t.block, 1), t.slot)) << 32 |
                        static_cast<uint64_t>(r);
          }
          std::nth_element(column.begin(), column.begin() + (k - 1), column.end());
          for (int64_t r = 0; r < local_rows; ++r) bitmap[r * bitmap_row + word] &= ~bit;
          for (int64_t z = 0; z < k; ++z) bitmap[mark_index(column[z]) + word] |= bit;
          continue;
        }
        const int64_t need = k - low;
        const uint64_t* band = keys.data() + column_start[j];
        if (need == 0) continue;
        if (need == n) {
          for (int64_t i = 0; i < n; ++i) bitmap[mark_index(band[i]) + word] |= bit;
          continue;
        }
        auto bucket = [&](uint64_t key_) { return static_cast<int>((((key_ >> 32) - low_limit) * bucket_mul) >> 32); };
        int64_t histogram[kSparseBuckets] = {};
        for (int64_t i = 0; i < n; ++i) ++histogram[bucket(band[i])];
        int last = 0;
        int64_t below = 0;
        while (below + histogram[last] < need) below += histogram[last++];
        const int64_t tied_count = histogram[last];
        column.resize(static_cast<size_t>(tied_count + 1));  // slot tied_count takes the other keys' writes
        int64_t tied = 0;
        for (int64_t i = 0; i < n; ++i) {
          const int b = bucket(band[i]);
          bitmap[mark_index(band[i]) + word] |= b < last ? bit : 0;
          column[tied] = band[i];
          tied += b == last;
        }
        const int64_t rest = need - below;  // 1 .. tied_count
        std::nth_element(column.begin(), column.begin() + (rest - 1), column.begin() + tied_count);
        for (int64_t i = 0; i < rest; ++i) bitmap[mark_index(column[i]) + word] |= bit;
      }
      // 3. Values (when asked) and zeros, row by row.
      for (int64_t r = 0; r < local_rows; ++r) {
        char* row_ptr = base + r * stride0 + (c_begin - col0) * stride1;
        if (values) {
          fill_values(call, value_tile_fn, base, r * local_cols + (c_begin - col0),
                      static_cast<uint64_t>((r + row0) * cols + c_begin), width);
        }
        const uint64_t* bits = bitmap.data() + r * bitmap_row;
        if (contiguous_rows) {
          zero_fn(row_ptr, reinterpret_cast<const uint8_t*>(bits), width, element_size);
          continue;
        }
        for (int64_t q = 0; q < bitmap_row; ++q) {
          for (uint64_t b = bits[q]; b != 0; b &= b - 1) {
            std::memset(row_ptr + (q * 64 + __builtin_ctzll(b)) * stride1, 0, static_cast<size_t>(element_size));
          }
        }
      }
    }
  });
  if (!out.is_same(self)) copy_into(self, out);
}

// The portable tile: eight blocks, one at a time, with the shared scalar transforms.
void philox_float_tile_portable(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream,
                                float* tiles_dst) {
  for (int64_t i = 0; i < 8 * count; ++i) {
    const int b = static_cast<int>(i % 8);
    float* dst = tiles_dst + 32 * (i / 8);
    const Philox4x32Counter w = philox_block(call.key, call.offset, tile * 8 + static_cast<uint64_t>(i), stream);
    for (int slot = 0; slot < 4; ++slot) {
      float v;
      if (call.kind == PhiloxKind::kNormal) {
        v = philox_normal_float(w, slot, call.mean_f, call.std_f);
      } else {
        v = philox_uniform_float(philox_lane(w, slot), call.low_f, call.span_f);
        if (call.mask_in_tile) v = philox_mask_float(v, call.threshold_f);
      }
      dst[slot * 8 + b] = v;
    }
  }
}

void philox_bits_tile_portable(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                               uint32_t* dst) {
  for (int64_t i = 0; i < 8 * count; ++i) {
    const Philox4x32Counter w = philox_block(key, offset, tile * 8 + static_cast<uint64_t>(i), stream);
    uint32_t* d = dst + 32 * (i / 8) + i % 8;
    d[0] = w.x;
    d[8] = w.y;
    d[16] = w.z;
    d[24] = w.w;
  }
}

int64_t sparse_scan_row_portable(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                                 uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                                 int64_t m) {
  return sparse_scan_range(scan, words, 0, width, low_counts, low_bits, band_counts, band_words, band_cols, m);
}

void sparse_zero_row_portable(char* row, const uint8_t* bits, int64_t width, int64_t element_size) {
  sparse_zero_range(row, bits, 0, width, element_size);
}

}  // namespace pyinit::cpu
