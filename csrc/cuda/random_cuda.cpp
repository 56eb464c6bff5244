// CUDA implementations of the torch stream's random initializers: the glue between the operators and the
// kernels of random_kernels.cu. See Note [torch CUDA element mapping] and Note [Graph-safe Philox state].

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "../cpu/mt19937_bulk.h"
#include "cuda_glue.h"

namespace pyinit::cuda {
namespace {

// Upper bound on trunc_normal_ rounds. torch would loop forever when no value can be accepted (the Python
// wrapper only takes this path when the mass inside [a, b] exceeds 0.3, so ~50 rounds suffice for 2^40 values).
constexpr int32_t kTruncNormalMaxRounds = 10000;

// One torch distribution call over `self` (already checked, numel > 0): reserve the generator's offsets as
// torch does, then launch(dtype, launch, stream) for each piece.
template <typename Launch>
void run_distribution(at::Tensor& self, const std::optional<at::Generator>& generator, const Launch& launch) {
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  const DType dtype = to_dtype(self.scalar_type());
  const DeviceLimits limits = checked_device_limits(self);
  MemoryOrderOutput out(self);
  auto* gen = cuda_generator(generator);
  std::vector<RandomLaunch> launches;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    launches = reserve_launches(gen, out, dtype, limits);
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (const RandomLaunch& piece : launches) {
    launch(dtype, piece, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  out.commit();
}

void uniform_impl(at::Tensor& self, double low, double high, bool mask, double threshold,
                  const std::optional<at::Generator>& generator) {
  check_uniform_bounds(self, low, high);
  if (self.numel() == 0) return;
  const UniformParams params{low, high, mask, threshold};
  run_distribution(self, generator, [&](DType dtype, const RandomLaunch& piece, cudaStream_t stream) {
    launch_uniform(dtype, piece, params, stream);
  });
}

void uniform_cuda(at::Tensor self, double low, double high, std::optional<at::Generator> generator) {
  uniform_impl(self, low, high, /*mask=*/false, 0.0, generator);
}

void masked_uniform_cuda(at::Tensor self, double low, double high, double threshold,
                         std::optional<at::Generator> generator) {
  uniform_impl(self, low, high, /*mask=*/true, threshold, generator);
}

void normal_cuda(at::Tensor self, double mean, double std, std::optional<at::Generator> generator) {
  check_floating(self, "normal_");
  check_normal_std(std);
  if (self.numel() == 0) return;
  const NormalParams params{mean, std};
  run_distribution(self, generator, [&](DType dtype, const RandomLaunch& piece, cudaStream_t stream) {
    launch_normal(dtype, piece, params, stream);
  });
}

// See Note [trunc_normal_ by normal proposals] (CPU) and Note [trunc_normal_ in one kernel].
void trunc_normal_cuda(at::Tensor self, double mean, double std, double a, double b,
                       std::optional<at::Generator> generator) {
  check_floating(self, "trunc_normal_");
  check_normal_std(std);
  if (self.numel() == 0) return;
  check_writable(self);
  TORCH_CHECK(self.is_contiguous() || self.is_non_overlapping_and_dense(),
              "pyinit.trunc_normal_: the kernel needs a dense tensor (the Python wrapper falls back otherwise)");
  c10::cuda::CUDAGuard device_guard(self.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TORCH_CHECK(capture == cudaStreamCaptureStatusNone,
              "pyinit.trunc_normal_: not capturable in a CUDA graph (the number of rounds depends on the data, "
              "as in torch.nn.init.trunc_normal_)");
  const DType dtype = to_dtype(self.scalar_type());
  const DeviceLimits limits = checked_device_limits(self);
  MemoryOrderOutput out(self);
  auto* gen = cuda_generator(generator);
  at::Tensor max_round = at::zeros({1}, self.options().dtype(at::kInt));
  // The lock is held across the rounds so that the offsets of rounds 1..R follow round 0 directly, as they do
  // in torch when nothing else draws from the generator meanwhile.
  std::lock_guard<std::mutex> lock(gen->mutex_);
  uint64_t round_stride = 0;
  const std::vector<RandomLaunch> launches = reserve_launches(gen, out, dtype, limits, &round_stride);
  for (const RandomLaunch& launch : launches) {
    const TruncNormalParams params{mean, std, a, b, round_stride, kTruncNormalMaxRounds, max_round.data_ptr<int32_t>()};
    launch_trunc_normal(dtype, launch, params, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const int32_t rounds = max_round.item<int32_t>();  // synchronizes, as torch's `mask.any()` does every round
  TORCH_CHECK(rounds < kTruncNormalMaxRounds, "pyinit.trunc_normal_: no value inside [", a, ", ", b, "] after ",
              kTruncNormalMaxRounds, " rounds of normal(", mean, ", ", std, ") proposals");
  for (int32_t round = 1; round <= rounds; ++round) reserve_launches(gen, out, dtype, limits);
  out.commit();
}

// Fisher-Yates words of torch.randperm(rows) for every column (rows - 1 words each), from the default CPU
// generator, then the first `zeros` entries of each column's permutation. See Note [sparse_ without a Python
// loop] (CPU).
at::Tensor sparse_zero_rows(int64_t rows, int64_t cols, int64_t zeros) {
  const int64_t words_per_column = rows - 1;
  const int64_t word_count = std::max<int64_t>(cols * words_per_column, 0);
  auto words_storage = at::empty({std::max<int64_t>(word_count, 1)}, at::TensorOptions().dtype(at::kInt));
  uint32_t* words = reinterpret_cast<uint32_t*>(words_storage.data_ptr<int32_t>());
  {
    auto* cpu_gen = at::get_generator_or_default<at::CPUGeneratorImpl>(std::nullopt,
                                                                        at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(cpu_gen->mutex_);
    at::mt19937 engine = cpu_gen->engine();
    pyinit::cpu::mt19937_draw(engine, words, word_count);
    cpu_gen->set_engine(engine);
  }
  auto indices = at::empty({std::max<int64_t>(cols * zeros, 1)}, at::TensorOptions().dtype(at::kLong));
  int64_t* out = indices.data_ptr<int64_t>();
  at::parallel_for(0, cols, std::max<int64_t>(1, 32768 / std::max<int64_t>(rows, 1)), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> perm(rows);
    for (int64_t c = begin; c < end; ++c) {
      std::iota(perm.begin(), perm.end(), 0);
      const uint32_t* w = words + c * words_per_column;
      for (int64_t k = 0; k < zeros; ++k) {
        if (k < rows - 1) std::swap(perm[k], perm[k + static_cast<int64_t>(w[k]) % (rows - k)]);
        out[c * zeros + k] = perm[k];
      }
    }
  });
  return indices;
}

void sparse_cuda(at::Tensor self, int64_t num_zeros, double std, std::optional<at::Generator> generator) {
  check_floating(self, "sparse_");
  TORCH_CHECK(self.dim() == 2, "Only tensors with 2 dimensions are supported");
  check_normal_std(std);
  if (self.numel() == 0) return;
  check_writable(self);
  c10::cuda::CUDAGuard device_guard(self.device());
  const int64_t rows = self.size(0), cols = self.size(1);
  const int64_t zeros = num_zeros >= 0 ? std::min(num_zeros, rows) : std::max<int64_t>(rows + num_zeros, 0);
  static auto normal_op = c10::Dispatcher::singleton().findSchemaOrThrow("pyinit::normal_", "").typed<void(
      at::Tensor, double, double, std::optional<at::Generator>)>();
  normal_op.call(self, 0.0, std, generator);
  // torch calls randperm(rows) for every column even when no row is zeroed: draw the words regardless.
  const at::Tensor rows_cpu = sparse_zero_rows(rows, cols, zeros);
  if (zeros == 0) return;
  const at::Tensor rows_device = rows_cpu.to(self.device());
  launch_sparse_zero(to_dtype(self.scalar_type()), self.data_ptr(), self.stride(0), self.stride(1),
                     rows_device.data_ptr<int64_t>(), cols, zeros, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

TORCH_LIBRARY_IMPL(pyinit, CUDA, m) {
  m.impl("uniform_", &uniform_cuda);
  m.impl("masked_uniform_", &masked_uniform_cuda);
  m.impl("normal_", &normal_cuda);
  m.impl("trunc_normal_", &trunc_normal_cuda);
  m.impl("sparse_", &sparse_cuda);
}

}  // namespace pyinit::cuda
