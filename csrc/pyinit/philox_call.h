#pragma once
// One philox-stream call as the kernels see it, on CPU and CUDA alike: the final numbers (see Note [Kernels take
// final numbers] in csrc/ops.cpp) and the shard map. Plain structs, no torch headers (the CUDA kernels are
// compiled by plain nvcc). The host side that validates and fills them is csrc/philox_host.h.

#include <cstdint>

#include "pyinit/dtype.h"
#include "pyinit/philox_shard.h"
#include "pyinit/philox_transforms.h"

namespace pyinit {

enum class PhiloxKind : int { kUniform = 0, kMaskedUniform = 1, kNormal = 2, kTruncNormal = 3, kBits = 4 };

struct PhiloxCall {
  uint64_t key = 0;
  uint64_t offset = 0;
  uint64_t stream = 0;  // counter stream: philox_bits_ only (the other kinds use stream 0)
  PhiloxKind kind = PhiloxKind::kUniform;
  DType dtype = DType::kFloat;
  // In the precision the transforms use: float for float32/float16/bfloat16, double for float64.
  float low_f = 0, span_f = 0, threshold_f = 0, mean_f = 0, std_f = 0;
  double low = 0, span = 0, threshold = 0, mean = 0, std = 0;
  PhiloxTruncParams trunc{};
  bool mask_in_tile = false;  // masked uniform on float32: the CPU tile kernel applies the mask itself
};

}  // namespace pyinit
