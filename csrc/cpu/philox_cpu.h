#pragma once
// The philox stream on CPU: the parameters of one call and the tile kernels (portable and AVX2).
// See Note [The philox stream] in csrc/pyinit/philox_transforms.h.

#include <cstdint>

#include "../pyinit/philox_transforms.h"

namespace pyinit::cpu {

enum class PhiloxKind : int { kUniform = 0, kMaskedUniform = 1, kNormal = 2 };

// Final numbers of one call, in the precision the transforms use.
struct PhiloxCall {
  uint64_t key = 0;
  uint64_t offset = 0;
  PhiloxKind kind = PhiloxKind::kUniform;
  PhiloxDtype dtype = PhiloxDtype::kFloat;
  float low_f = 0, span_f = 0, threshold_f = 0, mean_f = 0, std_f = 0;
  double low = 0, span = 0, threshold = 0, mean = 0, std = 0;
  bool mask_in_tile = false;  // masked uniform on float32: the tile applies the mask itself
};

// The float values of `count` consecutive tiles starting at `tile` (tile t holds elements 32 t .. 32 t + 31, one
// word per element) of a uniform, masked uniform or normal call, at counter stream `stream`, into
// dst[0, 32 * count). Values are float results before rounding to a reduced dtype; the mask is applied only when
// call.mask_in_tile.
using PhiloxFloatTileFn = void (*)(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream,
                                   float* dst);

void philox_float_tile_portable(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);
#if defined(__x86_64__) || defined(_M_X64)
void philox_float_tile_avx2(const PhiloxCall& call, uint64_t tile, int64_t count, uint64_t stream, float* dst);
#endif

}  // namespace pyinit::cpu
