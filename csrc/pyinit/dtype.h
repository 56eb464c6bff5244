#pragma once
// The floating dtypes pyinit's kernels write, as a plain enum that the CUDA kernels (compiled without torch
// headers) and the CPU kernels share. The glue maps at::ScalarType to it once (to_dtype in csrc/validate.h).

#include "pyinit/macros.h"

namespace pyinit {

enum class DType : int { kHalf = 0, kBFloat16 = 1, kFloat = 2, kDouble = 3 };

PYINIT_INLINE int dtype_size(DType dtype) { return dtype == DType::kDouble ? 8 : dtype == DType::kFloat ? 4 : 2; }

}  // namespace pyinit
