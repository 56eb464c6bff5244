#pragma once
// The zero pattern of torch.nn.init.sparse_, for every device: torch draws one torch.randperm(rows) per column from
// the default CPU generator (Fisher-Yates: rows - 1 words, step k swaps r[k] with r[k + word % (rows - k)]) and
// zeroes the rows named by the first `zeros` entries. See Note [sparse_ without a Python loop] in
// csrc/cpu/sparse_cpu.cpp.

#include <ATen/ATen.h>

#include <cstdint>

namespace pyinit {

// Entry k of column c's permutation at [c * zeros + k] (an int64 CPU tensor of max(cols * zeros, 1) entries).
// Every column's words are drawn, also when zeros == 0, so the default CPU generator ends where torch leaves it.
// Defined in csrc/cpu/sparse_cpu.cpp.
at::Tensor torch_randperm_prefixes(int64_t rows, int64_t cols, int64_t zeros);

}  // namespace pyinit
