#pragma once
// The philox stream's CPU tile kernels (portable, AVX2 and AVX-512) and sparse_'s row kernels. See
// docs/philox_stream.md.

#include <cstdint>
#include <cstring>

#include "cpu/cpu_isa.h"
#include "pyinit/philox_call.h"
#include "pyinit/philox_transforms.h"

namespace pyinit::cpu {

// The float values of `count` consecutive tiles starting at `tile` (tile t holds elements 32 t .. 32 t + 31, one
// word per element) of a uniform, masked uniform or normal call, at counter stream `stream`, into
// dst[0, 32 * count). Values are float results before rounding to a reduced dtype; the mask is applied only when
// call.mask_in_tile.
using PhiloxFloatTileFn = void (*)(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);

void philox_float_tile_portable(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);
#if defined(__x86_64__) || defined(_M_X64)
void philox_float_tile_avx2(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);
void philox_float_tile_avx512(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);
#endif

// The raw words of `count` consecutive tiles starting at `tile` (one word per element: dst[32 t + 8 slot + b] is
// word `slot` of block 8 (tile + t) + b) at counter stream `stream`, into dst[0, 32 * count).
using PhiloxBitsTileFn = void (*)(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                                  uint32_t* dst);

void philox_bits_tile_portable(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                               uint32_t* dst);
#if defined(__x86_64__) || defined(_M_X64)
void philox_bits_tile_avx2(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream, uint32_t* dst);
void philox_bits_tile_avx512(uint64_t key, uint64_t offset, uint64_t tile, int64_t count, uint64_t stream,
                             uint32_t* dst);
#endif

// trunc_normal_: the normal float values (philox_normal_float, before rounding to a reduced dtype) of the global
// elements index[0, count) (one word per element) at counter stream `stream`, into dst[0, count).
using PhiloxNormalPickFn = void (*)(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                                    float* dst);
// trunc_normal_: the indices j < count (count % 32 == 0) with v[j] outside [lo, hi] (or NaN), in increasing
// order, into out[0, returned count).
using PhiloxRejectScanFn = int64_t (*)(const float* v, int64_t count, float lo, float hi, int32_t* out);

void philox_normal_pick_portable(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                                 float* dst);
int64_t philox_reject_scan_portable(const float* v, int64_t count, float lo, float hi, int32_t* out);
#if defined(__x86_64__) || defined(_M_X64)
void philox_normal_pick_avx2(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream, float* dst);
int64_t philox_reject_scan_avx2(const float* v, int64_t count, float lo, float hi, int32_t* out);
void philox_normal_pick_avx512(const PhiloxCall& call, const uint64_t* index, int64_t count, uint64_t stream,
                               float* dst);
int64_t philox_reject_scan_avx512(const float* v, int64_t count, float lo, float hi, int32_t* out);
#endif

// trunc_normal_ by rejection (call.trunc.rejection) on a float, half or bfloat16 tensor: the global elements
// [g, g + n), written at local index l of the contiguous output `base` (csrc/cpu/philox_trunc_cpu.cpp), with
// the kernels philox_isa() selected when trunc_kernels() was called.
struct PhiloxTruncKernels {
  PhiloxFloatTileFn tile;
  PhiloxNormalPickFn pick;
  PhiloxRejectScanFn scan;
};
PhiloxTruncKernels trunc_kernels();
void philox_trunc_rejection_fill(const PhiloxCall& call, const PhiloxTruncKernels& kernels, char* base, int64_t l,
                                 uint64_t g, int64_t n);

// sparse_: one row of a strip of the zero-pattern scan (csrc/cpu/philox_cpu.cpp). For each j < width, the word
// words[j] is, in column j of the strip:
// * "low" (word <= low_max, only when has_low): low_counts[j] += 1, and bit j of low_bits is set (low_bits may be
//   null: the row is outside the local block);
// * else "band" (word <= high_max): band_counts[j] += 1, and (word, j) is appended to (band_words, band_cols) at
//   index m, m + 1, ... in increasing j.
// Returns the new m. The band arrays must have room for m + width + 8 entries (whole vectors are stored).
struct SparseScan {
  bool has_low = false;
  uint32_t low_max = 0;
  uint32_t high_max = 0;
};

using SparseScanRowFn = int64_t (*)(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                                    uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                                    int64_t m);
// sparse_: zeroes the elements j < width of a contiguous row of `element_size`-byte elements whose bit j is set.
using SparseZeroRowFn = void (*)(char* row, const uint8_t* bits, int64_t width, int64_t element_size);

// The element-by-element definitions of a scan row and a zero row, over [begin, end) (the portable kernels, and
// the tails of the AVX2 ones).
inline int64_t sparse_scan_range(const SparseScan& scan, const uint32_t* words, int64_t begin, int64_t end,
                                 uint32_t* low_counts, uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words,
                                 uint32_t* band_cols, int64_t m) {
  for (int64_t j = begin; j < end; ++j) {
    const uint32_t w = words[j];
    if (scan.has_low && w <= scan.low_max) {
      ++low_counts[j];
      if (low_bits != nullptr) low_bits[j / 8] |= static_cast<uint8_t>(1u << (j % 8));
    } else if (w <= scan.high_max) {
      ++band_counts[j];
      band_words[m] = w;
      band_cols[m] = static_cast<uint32_t>(j);
      ++m;
    }
  }
  return m;
}

inline void sparse_zero_range(char* row, const uint8_t* bits, int64_t begin, int64_t end, int64_t element_size) {
  for (int64_t j = begin; j < end; ++j) {
    if ((bits[j / 8] >> (j % 8)) & 1) std::memset(row + element_size * j, 0, static_cast<size_t>(element_size));
  }
}

int64_t sparse_scan_row_portable(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                                 uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                                 int64_t m);
void sparse_zero_row_portable(char* row, const uint8_t* bits, int64_t width, int64_t element_size);
#if defined(__x86_64__) || defined(_M_X64)
int64_t sparse_scan_row_avx2(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                             uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                             int64_t m);
void sparse_zero_row_avx2(char* row, const uint8_t* bits, int64_t width, int64_t element_size);
int64_t sparse_scan_row_avx512(const SparseScan& scan, const uint32_t* words, int64_t width, uint32_t* low_counts,
                               uint8_t* low_bits, uint32_t* band_counts, uint32_t* band_words, uint32_t* band_cols,
                               int64_t m);
void sparse_zero_row_avx512(char* row, const uint8_t* bits, int64_t width, int64_t element_size);
#endif

// The variant of a kernel that philox_isa() (cpu_isa.h) selects at this call.
#if defined(__x86_64__) || defined(_M_X64)
#define PYINIT_PHILOX_KERNEL(name) ::pyinit::cpu::philox_variant(&name##_portable, &name##_avx2, &name##_avx512)
#else
#define PYINIT_PHILOX_KERNEL(name) (&name##_portable)
#endif

template <typename Fn>
inline Fn philox_variant(Fn portable, Fn avx2, Fn avx512) {
  switch (philox_isa()) {
    case CpuIsa::kAvx512: return avx512;
    case CpuIsa::kAvx2: return avx2;
    default: return portable;
  }
}

}  // namespace pyinit::cpu
