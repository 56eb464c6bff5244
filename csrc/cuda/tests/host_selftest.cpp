// Host self-test of the formulas shared with the CUDA kernels (no GPU, no torch): Philox4x32-10 against the
// Random123 known answers, torch's CUDA launch policy and counter layout, curand's uniform conversions, and the
// 32-bit split. Built and run by .ci/nvcc_check.sh. (Not under csrc/cuda/*.cpp: setup.py must not link it.)

#include <cstdio>
#include <cstdlib>

#include "cuda/index_split.h"
#include "pyinit/curand_philox.h"
#include "pyinit/curand_transforms.h"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++failures;
  }
}

bool same(const pyinit::Philox4x32Counter& a, const pyinit::Philox4x32Counter& b) {
  return a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w;
}

}  // namespace

int main() {
  using pyinit::Philox4x32Counter;
  // Random123 kat_vectors, "philox4x32 10".
  expect(same(pyinit::philox4x32_10({0, 0, 0, 0}, 0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}), "KAT zero");
  expect(same(pyinit::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff),
              {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}),
         "KAT ones");
  expect(same(pyinit::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0),
              {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}),
         "KAT pi");
  // curand_init(seed, subsequence = thread, offset): counter = (offset / 4 + call) + 2^64 * thread.
  const uint64_t seed = 0x0123456789abcdefULL;
  expect(same(pyinit::torch_cuda_philox_block(seed, 4000, 7, 3),
              pyinit::philox4x32_10({1003, 0, 7, 0}, 0x89abcdefu, 0x01234567u)),
         "counter layout");
  expect(same(pyinit::torch_cuda_philox_block(seed, ~uint64_t{3}, 5, (uint64_t{3} << 62) + 1),
              pyinit::philox4x32_10({0, 0, 6, 0}, 0x89abcdefu, 0x01234567u)),
         "counter carry into the subsequence");
  // torch's launch policy on an H100 SXM (132 SMs, 2048 threads/SM), increments as measured with torch 2.11.
  expect(pyinit::torch_cuda_launch(1, 132, 2048, 4).increment == 4, "n=1");
  expect(pyinit::torch_cuda_launch(270336, 132, 2048, 4).blocks == 1056, "grid cap");
  expect(pyinit::torch_cuda_launch(270337, 132, 2048, 4).blocks == 1056, "grid capped");
  expect(pyinit::torch_cuda_launch(1081344, 132, 2048, 4).increment == 4, "n=1081344");
  expect(pyinit::torch_cuda_launch(1081345, 132, 2048, 4).increment == 8, "n=1081345");
  expect(pyinit::torch_cuda_launch(3000017, 132, 2048, 4).increment == 12, "n=3000017");
  expect(pyinit::torch_cuda_launch(1081345, 132, 2048, 2).increment == 12, "double n=1081345");
  const auto slot = pyinit::torch_cuda_slot(270336 * 5 + 17, 270336, 4);
  expect(slot.thread == 17 && slot.call == 1 && slot.lane == 1, "slot");
  // curand's conversions: (0, 1], 2^-33 the smallest, 1.0 from 2^32 - 128 up.
  expect(pyinit::curand_uniform_float(0) == 0x1p-33f, "uniform min");
  expect(pyinit::curand_uniform_float(0xffffffffu) == 1.0f, "uniform max");
  expect(pyinit::curand_uniform_float(0xffffff80u) == 1.0f, "uniform rounds up to 1");
  expect(pyinit::curand_uniform_float(0xffffff7fu) < 1.0f, "uniform below 1");
  expect(pyinit::curand_uniform_double(0, 0) == 0x1p-54, "double min");
  expect(pyinit::curand_uniform_double(0x001fffffu, 0xffffffffu) == 1.0, "double max: 2^53 - 1 rounds to 1");
  // The 32-bit split (Note [The 32-bit indexing split]).
  auto pieces = pyinit::cuda::split_32bit_1d(int64_t{1} << 30, 4);  // 4 GiB of float32
  expect(pieces.size() == 2 && pieces[0].numel == (int64_t{1} << 29) && pieces[1].start == (int64_t{1} << 29),
         "split 2^30 floats in halves");
  pieces = pyinit::cuda::split_32bit_1d(536870911, 4);  // extent 1 + (n - 1) * 4 = 2^31 - 3
  expect(pieces.size() == 1, "no split just below 2 GiB");
  pieces = pyinit::cuda::split_32bit_1d(536870913, 4);  // 2^29 + 1 floats: extent above INT32_MAX
  expect(pieces.size() == 2 && pieces[0].numel == 268435456 && pieces[1].numel == 268435457, "odd split");
  pieces = pyinit::cuda::split_32bit_1d(int64_t{3} << 30, 2);  // 6 GiB of bfloat16
  int64_t covered = 0;
  bool ordered = true;
  for (const auto& p : pieces) {
    ordered = ordered && p.start == covered;
    covered += p.numel;
  }
  expect(ordered && covered == (int64_t{3} << 30) && pieces.size() == 4, "split covers in order");
  if (failures == 0) std::printf("host self-test: all checks passed\n");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
