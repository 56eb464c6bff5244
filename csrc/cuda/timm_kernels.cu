// The elementwise tail of timm's trunc_normal_ on CUDA: erfinv, then mul/add/clamp (and trunc_normal_tf_'s
// mul/add) with the rounding of torch's separate CUDA kernels. See Note [timm's trunc_normal_] (CPU) and
// csrc/cuda/timm_cuda.cpp. Compiled, never run on a GPU yet: pyinit/timm.py falls back to timm's composition on
// CUDA unless PYINIT_ALLOW_UNVERIFIED=1.

#include "cuda/kernels.h"
#include "cuda/scalar_ops.cuh"

namespace pyinit::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65536;

// torch runs erfinv_, mul_, add_ and clamp_ as separate kernels, so nothing may be contracted across them:
// explicit round-to-nearest operations (never fused into an FMA, whatever --fmad says).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

template <typename T>
struct Affine {
  T scale, shift, lo, hi, post_scale, post_shift;
  bool post;
};

template <typename T>
__global__ void __launch_bounds__(kBlockSize) erfinv_affine_clamp_kernel(T* data, int64_t n, Affine<T> p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    T v = ::erfinv(data[i]);  // torch's erfinv_kernel_cuda
    v = mul_rn(v, p.scale);   // mul_ with a CPU scalar: the scalar cast to the dtype
    v = add_rn(v, p.shift);   // add_: a + alpha * b with alpha = 1, exact as one rounded add
    // clamp_ with scalars: NaN propagates, else min(max(v, lo), hi).
    if (!isnan(v)) v = ::min(::max(v, p.lo), p.hi);
    if (p.post) {
      v = mul_rn(v, p.post_scale);
      v = add_rn(v, p.post_shift);
    }
    data[i] = v;
  }
}

template <typename T>
void launch_typed(void* data, int64_t n, double scale, double shift, double lo, double hi, bool post, double post_scale,
                  double post_shift, cudaStream_t stream) {
  const Affine<T> p{static_cast<T>(scale),
                    static_cast<T>(shift),
                    static_cast<T>(lo),
                    static_cast<T>(hi),
                    static_cast<T>(post_scale),
                    static_cast<T>(post_shift),
                    post};
  const int64_t blocks = std::min<int64_t>((n + kBlockSize - 1) / kBlockSize, kMaxBlocks);
  erfinv_affine_clamp_kernel<T><<<static_cast<unsigned>(blocks), kBlockSize, 0, stream>>>(static_cast<T*>(data), n, p);
}

}  // namespace

// data[0, n) (a dense float/double tensor holding timm's uniform_ values) := timm's erfinv_ and affine steps.
void launch_timm_trunc_normal_finish(DType dtype, void* data, int64_t n, double scale, double shift, double lo,
                                     double hi, bool post, double post_scale, double post_shift, cudaStream_t stream) {
  if (dtype == DType::kDouble) {
    launch_typed<double>(data, n, scale, shift, lo, hi, post, post_scale, post_shift, stream);
  } else {
    launch_typed<float>(data, n, scale, shift, lo, hi, post, post_scale, post_shift, stream);
  }
}

}  // namespace pyinit::cuda
