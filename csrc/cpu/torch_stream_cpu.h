#pragma once
// The torch stream's CPU kernels that other CPU files call (csrc/cpu/torch_stream_cpu.cpp). The registered ones are
// declared for ops.cpp there as well (PYINIT_KERNELS).

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <optional>

#include "memory_order.h"

namespace pyinit::cpu {

// The registered uniform_ kernel (validates, locks, draws, writes).
void uniform_cpu(at::Tensor self, double low, double high, std::optional<at::Generator> generator);

// uniform_ (masked_uniform_ when `mask`) into `out`, the memory-order buffer of a tensor of `dtype`, with low/high
// already validated (validate_uniform). The caller holds the generator's mutex.
void uniform_locked(at::CPUGeneratorImpl* gen, MemoryOrderOutput& out, at::ScalarType dtype, double low, double high,
                    bool mask, double threshold);

// normal_ into `out` (the memory-order buffer of `self`), std already validated. The caller holds the generator's
// mutex.
void normal_locked(at::CPUGeneratorImpl* gen, const at::Tensor& self, MemoryOrderOutput& out, double mean, double std);

}  // namespace pyinit::cpu
