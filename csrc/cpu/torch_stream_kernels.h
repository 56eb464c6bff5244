#pragma once
// The table of one CPU capability's torch-stream kernels. See Note [The torch stream on CPU] in
// torch_stream_kernels_per_isa.h.

#include <ATen/core/MT19937RNGEngine.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace pyinit::cpu {

// sparse_'s zero pattern, for normal_blocks: element (row, col) of a row-major tensor with `cols` columns is
// zeroed when bit col % 64 of words[(col / 64) * stride + row] is set. The layout is column-group-major so that
// replaying one column's permutation touches one compact strip of words; stride is rows plus one cache line, so
// strips are not a power of two apart (which would make them collide in the same cache sets).
struct ZeroMask {
  const uint64_t* words;
  int64_t cols;
  int64_t stride;
};

// Entry points of one capability's kernels: `out` is a contiguous buffer of `dtype` in memory order.
struct TorchStreamKernels {
  // The next `count` words of torch's Mersenne Twister (see mt19937_bulk.h), vectorized for the capability.
  void (*draw_words)(at::mt19937& engine, uint32_t* out, int64_t count);
  // Advances the engine by `count` words as drawing them would, by jump-ahead (see mt19937_jump.h).
  void (*advance_words)(at::mt19937& engine, uint64_t count);
  // The transforms below run on the calling thread over the range they are given; callers parallelize (and
  // overlap them with the draw: see Note [Serial producer, parallel consumers] in torch_stream_pipeline.h).
  // uniform_ (and masked_uniform_ when `mask`) of elements [begin, end): `words` holds 1 word per element (2 for
  // double); it may alias out.
  void (*uniform_from_words)(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t begin, int64_t end,
                             double from, double to, bool mask, double threshold);
  // uniform_from_words of `n` elements with their words drawn as draw_words would draw them from the engine whose
  // data is `pod` (advanced past them), in one pass (the words are never stored): float, half and bfloat16 only
  // (one word per element). The state is passed as data so that many short pieces do not copy it each.
  void (*draw_uniform)(at::mt19937_data_pod& pod, c10::ScalarType dtype, void* out, int64_t n, double from, double to,
                       bool mask, double threshold);
  // Skips `skip` words (the twists drawing them needs, no tempering), then draws `count` words into `out`, from
  // the engine whose data is `pod`: trunc_normal_'s late rounds, which need the words of a few blocks only.
  void (*skip_and_draw_words)(at::mt19937_data_pod& pod, int64_t skip, uint32_t* out, int64_t count);
  // normal_ on >= 16 contiguous elements, blocks [first_block, last_block) of 16 elements: `words` as laid out by
  // normal_fill_main_words() (torch_stream_pipeline.h); may alias out for float/double. When `zero_mask` is not null,
  // the elements it marks are then set to +0 (sparse_'s zeroing, fused into the same pass).
  void (*normal_blocks)(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t first_block,
                        int64_t last_block, double mean, double std, const ZeroMask* zero_mask);
  // When n % 16 != 0, after all main blocks: outputs [n - 16, n) from the 16 (32 for double) `tail_words`.
  void (*normal_tail)(c10::ScalarType dtype, void* out, int64_t n, const uint32_t* tail_words, double mean, double std,
                      const ZeroMask* zero_mask);
  // One resampling round of trunc_normal_ (normal proposal) for the sorted indices pending[0, count): each gets
  // the value normal_fill would give it from `words` (the words of the elements from `first` on, `first` a
  // Box-Muller block start); values inside [lo, hi] are written and their entries set to -1. The value of
  // pending[k] goes to out[pending[k]], or, when `destinations` is not null, to destinations[k] (dropped where that
  // is null: trunc_normal_blocks_' elements outside the blocks, whose acceptance alone matters).
  void (*normal_resample)(c10::ScalarType dtype, void* out, const uint32_t* words, int64_t first, int64_t* pending,
                          int64_t count, double mean, double std, double lo, double hi, void* const* destinations);
  bool fma;  // whether x * y + z is one fused operation in this capability
};

const TorchStreamKernels& torch_stream_kernels_default();
#if defined(__x86_64__) || defined(_M_X64)
const TorchStreamKernels& torch_stream_kernels_avx2();
#endif

}  // namespace pyinit::cpu
