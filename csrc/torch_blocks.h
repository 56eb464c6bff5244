#pragma once
// The torch stream's operators on blocks of a tensor (uniform_blocks_, masked_uniform_blocks_, normal_blocks_):
// the validation both devices share. See Note [The torch stream on blocks] below and docs/model_init.md, "Sharded
// models".
//
// Note [The torch stream on blocks]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// `blocks[i]` is the block of a contiguous tensor of shape `global_shape` that starts at `starts[i * dim ..]` (a
// rank's shard of a DTensor is one or a few such blocks, pyinit/_sharding.py). The call writes into every block
// the values that torch's own call on the whole tensor writes there, draws from the generator what that call
// draws, and leaves it where that call leaves it. A rank with an empty shard passes its empty local tensor: the
// generator still moves. On CUDA each block's elements are computed alone (Note [The torch stream on a block],
// csrc/cuda/torch_stream_kernels.cu). On CPU torch's generator is one sequence of words, so the whole tensor's
// words are drawn; uniform_ and masked_uniform_ compute only the blocks' elements from them, straight into the
// blocks, and normal_ (whose Box-Muller pairs elements 8 apart, and recomputes a partial last block of 16)
// computes only the blocks of 16 that the blocks touch, into a scratch buffer, and copies the blocks' parts out.

#include <ATen/ATen.h>

#include <vector>

#include "philox_host.h"
#include "validate.h"

namespace pyinit {

// The shard map of every block, validated: at least one block, one dtype and device, each block inside
// global_shape at its start. `numel` receives the whole tensor's numel (0: nothing to draw or write).
inline std::vector<ShardMap> validate_blocks(at::TensorList blocks, at::IntArrayRef global_shape,
                                             at::IntArrayRef starts, int64_t* numel) {
  TORCH_CHECK(!blocks.empty(),
              "pyinit: a call on blocks needs at least one block (a rank with an empty shard "
              "passes its empty local tensor)");
  const int64_t dim = static_cast<int64_t>(global_shape.size());
  TORCH_CHECK(static_cast<int64_t>(starts.size()) == dim * static_cast<int64_t>(blocks.size()),
              "pyinit: starts must hold one entry per dimension of the global shape (", dim, ") for each of the ",
              blocks.size(), " blocks, got ", starts.size());
  std::vector<ShardMap> maps;
  maps.reserve(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const at::Tensor& block = blocks[i];
    TORCH_CHECK(block.scalar_type() == blocks[0].scalar_type() && block.device() == blocks[0].device(),
                "pyinit: every block must have the dtype and device of the first (", blocks[0].scalar_type(), " on ",
                blocks[0].device(), "), got ", block.scalar_type(), " on ", block.device());
    TORCH_CHECK(block.dim() == dim, "pyinit: a block must have as many dimensions as the global shape (", dim,
                "), got ", block.dim());
    maps.emplace_back(block, global_shape, starts.slice(i * dim, dim));
  }
  int64_t total = 1;
  for (const int64_t size : global_shape) total *= size;
  *numel = total;
  return maps;
}

// The last step of a call's validation, after the operator's own value checks: every block must be writable,
// then each counts the write, as the single-tensor operators count theirs (has_elements_to_write).
inline void count_block_writes(at::TensorList blocks) {
  for (const at::Tensor& block : blocks) {
    if (block.numel() > 0) check_writable(block);
  }
  for (const at::Tensor& block : blocks) block.unsafeGetTensorImpl()->bump_version();
}

// uniform_blocks_ / masked_uniform_blocks_: the blocks, then low/high as uniform_ checks and clamps them, then the
// write counted.
inline std::vector<ShardMap> validate_uniform_blocks(at::TensorList blocks, double& low, double& high,
                                                     at::IntArrayRef global_shape, at::IntArrayRef starts,
                                                     int64_t* numel) {
  std::vector<ShardMap> maps = validate_blocks(blocks, global_shape, starts, numel);
  check_uniform_bounds(blocks[0], low, high);
  count_block_writes(blocks);
  return maps;
}

// normal_blocks_ / trunc_normal_blocks_: the blocks, then the dtype and std as normal_ checks them, then the write
// counted.
inline std::vector<ShardMap> validate_normal_blocks(at::TensorList blocks, double std, at::IntArrayRef global_shape,
                                                    at::IntArrayRef starts, int64_t* numel,
                                                    const char* op = "normal_") {
  std::vector<ShardMap> maps = validate_blocks(blocks, global_shape, starts, numel);
  check_floating(blocks[0], op);
  check_normal_std(std);
  count_block_writes(blocks);
  return maps;
}

}  // namespace pyinit
