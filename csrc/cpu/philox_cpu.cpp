// CPU implementations of the philox stream's operators. See Note [The philox stream] in
// csrc/pyinit/philox_transforms.h. Values are a pure function of the global element index, so the work is split
// over at::parallel_for freely: the thread count never changes a value.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "../checks.h"
#include "philox_cpu.h"

namespace pyinit::cpu {
namespace {

constexpr int64_t kPhiloxGrain = 1 << 15;

PhiloxDtype philox_dtype(const at::Tensor& self) {
  switch (self.scalar_type()) {
    case at::kHalf: return PhiloxDtype::kHalf;
    case at::kBFloat16: return PhiloxDtype::kBFloat16;
    case at::kFloat: return PhiloxDtype::kFloat;
    default: return PhiloxDtype::kDouble;
  }
}

// The AVX2 tile kernel when the CPU has AVX2 (and PYINIT_PHILOX_SIMD is not "0"), else the portable one. Both
// give the same bits (tests/test_philox.py runs both).
PhiloxFloatTileFn float_tile_kernel() {
  const char* env = std::getenv("PYINIT_PHILOX_SIMD");
  if (env != nullptr && env[0] == '0') return &philox_float_tile_portable;
#if defined(__x86_64__) || defined(_M_X64)
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) return &philox_float_tile_avx2;
#endif
  return &philox_float_tile_portable;
}

// Maps the local elements of `self` (row-major) to global row-major indices: self is the block of a tensor of
// shape global_shape starting at `start` (both empty: self is the whole tensor).
struct ShardMap {
  bool sharded = false;
  std::vector<int64_t> local, start, global_stride;

  ShardMap(const at::Tensor& self, at::IntArrayRef global_shape, at::IntArrayRef start_) {
    if (global_shape.empty() && start_.empty()) return;
    const int64_t dim = self.dim();
    TORCH_CHECK(static_cast<int64_t>(global_shape.size()) == dim && static_cast<int64_t>(start_.size()) == dim,
                "pyinit philox: global_shape and start must have one entry per dimension of the tensor (", dim,
                "), got ", global_shape.size(), " and ", start_.size());
    int64_t stride = 1;
    global_stride.assign(dim, 0);
    for (int64_t k = dim - 1; k >= 0; --k) {
      TORCH_CHECK(start_[k] >= 0 && start_[k] + self.size(k) <= global_shape[k], "pyinit philox: the block ",
                  self.sizes(), " at ", start_, " does not fit in the global shape ", global_shape);
      global_stride[k] = stride;
      stride *= global_shape[k];
    }
    local = self.sizes().vec();
    start = start_.vec();
    sharded = dim > 0;
  }

  // Calls f(local_index, global_index, count) for maximal runs of consecutive global indices in [begin, end).
  template <typename F>
  void for_each_run(int64_t begin, int64_t end, F&& f) const {
    if (!sharded) {
      f(begin, static_cast<uint64_t>(begin), end - begin);
      return;
    }
    const int64_t dim = static_cast<int64_t>(local.size());
    const int64_t inner = local[dim - 1];
    for (int64_t l = begin; l < end;) {
      int64_t row = l / inner;
      const int64_t col = l % inner;
      int64_t g = start[dim - 1] + col;
      for (int64_t k = dim - 2; k >= 0; --k) {
        g += (start[k] + row % local[k]) * global_stride[k];
        row /= local[k];
      }
      const int64_t count = std::min(inner - col, end - l);
      f(l, static_cast<uint64_t>(g), count);
      l += count;
    }
  }
};

// at::parallel_for, or (when this file is compiled without OpenMP, so that torch's OpenMP parallel_for would
// run serially) an equivalent fan-out over at::get_num_threads() threads, which torch.set_num_threads sets.
template <typename F>
void philox_parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
#if defined(_OPENMP) || AT_PARALLEL_NATIVE
  at::parallel_for(begin, end, grain, f);
#else
  const int64_t n = end - begin;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), (n + grain - 1) / grain);
  if (threads <= 1 || at::in_parallel_region()) {
    if (n > 0) f(begin, end);
    return;
  }
  const int64_t chunk = (n + threads - 1) / threads;
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> workers;
  auto run = [&](int64_t t) {
    try {
      f(begin + t * chunk, std::min(end, begin + (t + 1) * chunk));
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& worker : workers) worker.join();
  for (auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
#endif
}

// Runs fill(out_base, local_index, global_index, count) over `self` in parallel, through a contiguous buffer
// when self is not contiguous (so a view gets the values of its elements in a contiguous tensor).
template <typename F>
void philox_launch(at::Tensor& self, const ShardMap& map, F&& fill) {
  if (self.numel() == 0) return;
  check_writable(self);
  at::Tensor buffer = self.is_contiguous() ? self : at::empty(self.sizes(), self.options());
  char* base = static_cast<char*>(buffer.data_ptr());
  philox_parallel_for(0, buffer.numel(), kPhiloxGrain, [&](int64_t begin, int64_t end) {
    map.for_each_run(begin, end, [&](int64_t l, uint64_t g, int64_t n) { fill(base, l, g, n); });
  });
  if (!buffer.is_same(self)) self.copy_(buffer);
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

void philox_run(at::Tensor& self, const PhiloxCall& call, const ShardMap& map) {
  if (call.dtype == PhiloxDtype::kDouble) {
    philox_launch(self, map, [&](char* base, int64_t l0, uint64_t g0, int64_t n) {
      double* out = reinterpret_cast<double*>(base);
      fill_run<16>(
          l0, g0, n,
          [&](int64_t l, uint64_t tile) {
            for (int b = 0; b < 8; ++b) {
              const Philox4x32Counter w = philox_block(call.key, call.offset, tile * 8 + b, 0);
              out[l + b] = double_value(call, w, 0);
              out[l + 8 + b] = double_value(call, w, 1);
            }
          },
          [&](int64_t l, uint64_t g) {
            const PhiloxTile t = philox_tile(g, 2);
            out[l] = double_value(call, philox_block(call.key, call.offset, t.block, 0), t.slot);
          });
    });
    return;
  }
  const PhiloxFloatTileFn tile_fn = float_tile_kernel();
  philox_launch(self, map, [&](char* base, int64_t l, uint64_t g, int64_t n) {
    auto element = [&](int64_t li, uint64_t gi) { store_float_as(base, li, float_element(call, gi), call.dtype); };
    for (; n > 0 && g % 32 != 0; ++l, ++g, --n) element(l, g);
    const int64_t tiles = n / 32;
    if (call.dtype == PhiloxDtype::kFloat) {
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
  });
}

PhiloxCall make_call(const at::Tensor& self, PhiloxKind kind, int64_t key, int64_t offset) {
  PhiloxCall c;
  c.key = static_cast<uint64_t>(key);
  c.offset = static_cast<uint64_t>(offset);
  c.kind = kind;
  c.dtype = philox_dtype(self);
  return c;
}

void philox_uniform_impl(at::Tensor self, double low, double high, bool mask, double threshold, int64_t key,
                         int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_uniform_bounds(self, low, high);
  const ShardMap map(self, global_shape, start);
  PhiloxCall c = make_call(self, mask ? PhiloxKind::kMaskedUniform : PhiloxKind::kUniform, key, offset);
  c.low = low;
  c.span = high - low;
  c.threshold = threshold;
  c.low_f = static_cast<float>(low);
  c.span_f = static_cast<float>(high - low);
  c.threshold_f = static_cast<float>(threshold);
  c.mask_in_tile = mask && c.dtype == PhiloxDtype::kFloat;
  philox_run(self, c, map);
}

void philox_uniform_cpu(at::Tensor self, double low, double high, int64_t key, int64_t offset,
                        at::IntArrayRef global_shape, at::IntArrayRef start) {
  philox_uniform_impl(self, low, high, false, 0.0, key, offset, global_shape, start);
}

void philox_masked_uniform_cpu(at::Tensor self, double low, double high, double threshold, int64_t key,
                               int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  philox_uniform_impl(self, low, high, true, threshold, key, offset, global_shape, start);
}

void philox_normal_cpu(at::Tensor self, double mean, double std, int64_t key, int64_t offset,
                       at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_floating(self, "normal_");
  check_normal_std(std);
  const ShardMap map(self, global_shape, start);
  PhiloxCall c = make_call(self, PhiloxKind::kNormal, key, offset);
  c.mean = mean;
  c.std = std;
  c.mean_f = static_cast<float>(mean);
  c.std_f = static_cast<float>(std);
  philox_run(self, c, map);
}

void philox_trunc_normal_cpu(at::Tensor self, double mean, double std, double a, double b, int64_t key,
                             int64_t offset, at::IntArrayRef global_shape, at::IntArrayRef start) {
  check_floating(self, "trunc_normal_");
  TORCH_CHECK(std > 0.0, "pyinit philox trunc_normal_: expected std > 0, got ", std);
  TORCH_CHECK(a < b, "pyinit philox trunc_normal_: expected a < b, got a=", a, ", b=", b);
  const ShardMap map(self, global_shape, start);
  const PhiloxTruncParams t = philox_trunc_params(mean, std, a, b);
  const PhiloxDtype dtype = philox_dtype(self);
  const uint64_t k = static_cast<uint64_t>(key), o = static_cast<uint64_t>(offset);
  auto store = [&](char* base, int64_t l, double v) {
    if (dtype == PhiloxDtype::kDouble) {
      reinterpret_cast<double*>(base)[l] = v;
    } else {
      store_float_as(base, l, static_cast<float>(v), dtype);
    }
  };
  // Float dtypes, rejection: round 0 of whole tiles through the (SIMD) normal tile kernel; the elements it
  // rejects (and the rest) through the scalar definition, which gives the same round-0 values.
  const bool tiled = t.rejection && dtype != PhiloxDtype::kDouble;
  PhiloxCall normal = make_call(self, PhiloxKind::kNormal, key, offset);
  normal.mean_f = static_cast<float>(mean);
  normal.std_f = static_cast<float>(std);
  const PhiloxFloatTileFn tile_fn = float_tile_kernel();
  philox_launch(self, map, [&](char* base, int64_t l, uint64_t g, int64_t n) {
    alignas(32) float scratch[32];
    while (n > 0) {
      if (tiled && g % 32 == 0 && n >= 32) {
        tile_fn(normal, g / 32, 1, 0, scratch);
        for (int j = 0; j < 32; ++j) {
          const double v = static_cast<double>(round_to_dtype(scratch[j], dtype));
          store(base, l + j, v >= t.a && v <= t.b ? v : philox_trunc_normal_value(k, o, g + j, t, dtype));
        }
        l += 32;
        g += 32;
        n -= 32;
      } else {
        store(base, l, philox_trunc_normal_value(k, o, g, t, dtype));
        ++l;
        ++g;
        --n;
      }
    }
  });
}

// Raw words: element i gets word slot of its block (one word per element) at counter stream `stream`.
void philox_bits_cpu(at::Tensor self, int64_t key, int64_t offset, int64_t stream, at::IntArrayRef global_shape,
                     at::IntArrayRef start) {
  TORCH_CHECK(self.scalar_type() == at::kInt, "pyinit philox_bits_: expected an int32 tensor, got ",
              self.scalar_type());
  const ShardMap map(self, global_shape, start);
  const uint64_t k = static_cast<uint64_t>(key), o = static_cast<uint64_t>(offset);
  const uint64_t s = static_cast<uint64_t>(stream);
  philox_launch(self, map, [&](char* base, int64_t l0, uint64_t g0, int64_t n) {
    uint32_t* out = reinterpret_cast<uint32_t*>(base);
    fill_run<32>(
        l0, g0, n,
        [&](int64_t l, uint64_t tile) {
          for (int b = 0; b < 8; ++b) {
            const Philox4x32Counter w = philox_block(k, o, tile * 8 + b, s);
            out[l + b] = w.x;
            out[l + 8 + b] = w.y;
            out[l + 16 + b] = w.z;
            out[l + 24 + b] = w.w;
          }
        },
        [&](int64_t l, uint64_t g) {
          const PhiloxTile t = philox_tile(g, 1);
          out[l] = philox_lane(philox_block(k, o, t.block, s), t.slot);
        });
  });
}

}  // namespace

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

TORCH_LIBRARY_IMPL(pyinit, CPU, m) {
  m.impl("philox_uniform_", &philox_uniform_cpu);
  m.impl("philox_normal_", &philox_normal_cpu);
  m.impl("philox_masked_uniform_", &philox_masked_uniform_cpu);
  m.impl("philox_trunc_normal_", &philox_trunc_normal_cpu);
  m.impl("philox_bits_", &philox_bits_cpu);
}

}  // namespace pyinit::cpu
