// trunc_normal_ by rejection on the float dtypes in the philox stream (Note [philox trunc_normal_]): round 0
// of whole tiles through the (SIMD) normal tile kernel, then each later round only for the elements still
// rejected, through the normal pick kernel (the same values philox_trunc_normal_value computes, a vector of
// elements at a time). See docs/philox_stream.md.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/philox_tile_kernels.h"

namespace pyinit::cpu {

void philox_normal_pick_portable(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                                 float* dst) {
  for (int64_t i = 0; i < count; ++i) {
    const PhiloxTile t = philox_tile(index[i], 1);
    dst[i] = philox_normal_float(philox_block(call.key, call.offset, t.block, stream), t.slot, call.mean_f, call.std_f);
  }
}

int64_t philox_reject_scan_portable(const float* v, int64_t count, float lo, float hi, int32_t* out) {
  int64_t m = 0;
  for (int64_t j = 0; j < count; ++j) {
    if (!(v[j] >= lo && v[j] <= hi)) out[m++] = static_cast<int32_t>(j);
  }
  return m;
}

PhiloxTruncKernels trunc_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  return PhiloxTruncKernels{PYINIT_PHILOX_KERNEL(philox_float_tile), PYINIT_PHILOX_KERNEL(philox_normal_pick),
                            PYINIT_PHILOX_KERNEL(philox_reject_scan)};
#else
  return PhiloxTruncKernels{&philox_float_tile_portable, &philox_normal_pick_portable, &philox_reject_scan_portable};
#endif
}

namespace {

constexpr int64_t kChunkTiles = 32;  // round 0 of 1024 elements at a time (the buffer stays in L1)

}  // namespace

void philox_trunc_rejection_fill(const PhiloxCall& call, const PhiloxTruncKernels& kernels, char* base, int64_t l,
                                 uint64_t g, int64_t n) {
  const PhiloxTruncParams& t = call.trunc;
  const DType dtype = call.dtype;
  PhiloxCall normal = call;
  normal.kind = PhiloxKind::kNormal;
  // [lo, hi]: the floats v with a <= double(v) <= b (the definition's test), so that the test is in float.
  float lo = static_cast<float>(t.a), hi = static_cast<float>(t.b);
  if (static_cast<double>(lo) < t.a) lo = std::nextafter(lo, std::numeric_limits<float>::infinity());
  if (static_cast<double>(hi) > t.b) hi = std::nextafter(hi, -std::numeric_limits<float>::infinity());
  // The element's value by the definition (also after kTruncRounds rejections: the inverse CDF).
  auto scalar = [&](int64_t li, uint64_t gi) {
    const double v = philox_trunc_normal_value(call.key, call.offset, gi, t, dtype);
    store_float_as(base, li, static_cast<float>(v), dtype);
  };
  const bool is_float = dtype == DType::kFloat;
  alignas(64) float values[32 * kChunkTiles];
  int32_t pending[32 * kChunkTiles];  // element j of the chunk
  uint64_t pending_g[32 * kChunkTiles];
  for (; n > 0 && g % 32 != 0; ++l, ++g, --n) scalar(l, g);
  while (n >= 32) {
    const int64_t count = 32 * std::min<int64_t>(kChunkTiles, n / 32);
    // Round 0 into a buffer that stays in L1 (read back from the output, its values would wait for the
    // output's cache lines), then to the output; the rejected elements are overwritten below.
    kernels.tile(normal, g / 32, count / 32, 0, values);
    if (is_float) {
      std::memcpy(reinterpret_cast<float*>(base) + l, values, static_cast<size_t>(count) * sizeof(float));
    } else {
      for (int64_t j = 0; j < count; ++j) {
        values[j] = round_to_dtype(values[j], dtype);
        store_float_as(base, l + j, values[j], dtype);
      }
    }
    int64_t m = kernels.scan(values, count, lo, hi, pending);
    for (int64_t i = 0; i < m; ++i) pending_g[i] = g + static_cast<uint64_t>(pending[i]);
    for (int round = 1; round < kTruncRounds && m > 0; ++round) {
      kernels.pick(normal, pending_g, m, static_cast<uint64_t>(round), values);
      int64_t kept = 0;
      for (int64_t i = 0; i < m; ++i) {
        const float v = round_to_dtype(values[i], dtype);
        if (v >= lo && v <= hi) {
          store_float_as(base, l + pending[i], v, dtype);
          continue;
        }
        pending[kept] = pending[i];
        pending_g[kept] = pending_g[i];
        ++kept;
      }
      m = kept;
    }
    for (int64_t i = 0; i < m; ++i) scalar(l + pending[i], pending_g[i]);
    l += count;
    g += static_cast<uint64_t>(count);
    n -= count;
  }
  for (; n > 0; ++l, ++g, --n) scalar(l, g);
}

}  // namespace pyinit::cpu
