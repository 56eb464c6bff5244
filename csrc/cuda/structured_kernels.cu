// Deterministic initializers on CUDA (fill_, eye_, dirac_), the zeroing pass of sparse_ and the tail of
// orthogonal_: one kernel each. Each element's value is a function of its row-major index; contiguous tensors
// are written with 16-byte stores, other layouts element by element through their strides.

#include "cuda/kernels.h"
#include "cuda/scalar_ops.cuh"
#include "pyinit/rounded_arithmetic.h"

namespace pyinit::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65536;

__device__ __forceinline__ int64_t strided_offset(const Layout& layout, int64_t index) {
  int64_t offset = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d >= layout.dims) continue;
    const int64_t size = layout.sizes[d];
    offset += (index % size) * layout.strides[d];
    index /= size;
  }
  return offset;
}

// out[element with row-major index i] = value(i), for every i.
template <typename Ops, typename Value, bool kAligned>
__global__ void __launch_bounds__(kBlockSize) contiguous_kernel(Layout layout, Value value) {
  using storage_t = typename Ops::storage_t;
  constexpr int V = 16 / sizeof(storage_t);
  auto* out = static_cast<storage_t*>(layout.data);
  const int64_t groups = (layout.numel + V - 1) / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    const int64_t first = g * V;
    storage_t values[V];
#pragma unroll
    for (int v = 0; v < V; ++v) values[v] = value(first + v);
    store_group<storage_t, V, kAligned>(out + first, values, layout.numel - first);
  }
}

template <typename Ops, typename Value>
__global__ void __launch_bounds__(kBlockSize) strided_kernel(Layout layout, Value value) {
  using storage_t = typename Ops::storage_t;
  auto* out = static_cast<storage_t*>(layout.data);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < layout.numel; i += stride) {
    out[strided_offset(layout, i)] = value(i);
  }
}

template <typename Ops, typename Value>
void launch_by_index(const Layout& layout, const Value& value, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(typename Ops::storage_t);
  const int64_t per_thread = layout.contiguous ? V : 1;
  const int64_t work = (layout.numel + per_thread - 1) / per_thread;
  int64_t blocks = (work + kBlockSize - 1) / kBlockSize;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) return;
  if (!layout.contiguous) {
    strided_kernel<Ops, Value><<<blocks, kBlockSize, 0, stream>>>(layout, value);
  } else if (is_aligned16(layout.data)) {
    contiguous_kernel<Ops, Value, true><<<blocks, kBlockSize, 0, stream>>>(layout, value);
  } else {
    contiguous_kernel<Ops, Value, false><<<blocks, kBlockSize, 0, stream>>>(layout, value);
  }
}

template <typename storage_t>
struct ConstantValue {
  storage_t constant;
  __device__ storage_t operator()(int64_t) const { return constant; }
};

template <typename storage_t>
struct EyeValue {
  storage_t one, zero;
  int64_t cols;
  __device__ storage_t operator()(int64_t i) const { return i / cols == i % cols ? one : zero; }
};

// torch.nn.init.dirac_: out[g * out_per_group + d, d, centre...] = 1 for d < min(out_per_group, in).
template <typename storage_t>
struct DiracValue {
  storage_t one, zero;
  int64_t slice, centre, in_channels, out_per_group, min_dim;
  __device__ storage_t operator()(int64_t i) const {
    const int64_t tap = i % slice;
    const int64_t in = (i / slice) % in_channels;
    const int64_t out = i / (slice * in_channels);
    return tap == centre && out % out_per_group == in && in < min_dim ? one : zero;
  }
};

// torch.nn.init.orthogonal_'s tail: q *= sign(diag(r)); (transpose); copy; mul_(gain). In q's type when the
// output has it (torch's roundings step by step), else computed in q's type and rounded once.
template <typename Ops, typename q_t>
struct OrthogonalValue {
  using storage_t = typename Ops::storage_t;
  const q_t* q;
  const q_t* diag;
  int64_t q_cols, cols;
  bool transposed;
  q_t gain;
  __device__ storage_t operator()(int64_t i) const {
    const int64_t row = i / cols, col = i % cols;
    const int64_t qi = transposed ? col : row, qj = transposed ? row : col;
    const q_t d = diag[qj];
    const q_t sign = d > 0 ? q_t(1) : (d < 0 ? q_t(-1) : q_t(0));
    const q_t v = __ldg(q + qi * q_cols + qj) * sign;
    return Ops::round(static_cast<typename Ops::opmath_t>(v * gain));
  }
};

template <typename word_t>
__global__ void __launch_bounds__(kBlockSize) sparse_zero_kernel(word_t* data, int64_t row_stride, int64_t col_stride,
                                                                 const int64_t* rows, int64_t cols, int64_t zeros) {
  const int64_t total = cols * zeros;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t col = i / zeros;
    data[rows[i] * row_stride + col * col_stride] = word_t(0);
  }
}

}  // namespace

void launch_fill(DType dtype, const Layout& out, double value, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    launch_by_index<Ops>(out, ConstantValue<typename Ops::storage_t>{Ops::from_double(value)}, stream);
  });
}

void launch_eye(DType dtype, const Layout& out, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    const EyeValue<typename Ops::storage_t> value{Ops::from_double(1.0), Ops::from_double(0.0), out.sizes[1]};
    launch_by_index<Ops>(out, value, stream);
  });
}

void launch_dirac(DType dtype, const Layout& out, int64_t groups, cudaStream_t stream) {
  int64_t centre = 0, slice = 1;
  for (int d = 2; d < out.dims; ++d) {
    centre = centre * out.sizes[d] + out.sizes[d] / 2;
    slice *= out.sizes[d];
  }
  const int64_t out_per_group = out.sizes[0] / groups;
  const int64_t min_dim = out_per_group < out.sizes[1] ? out_per_group : out.sizes[1];
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    const DiracValue<typename Ops::storage_t> value{Ops::from_double(1.0), Ops::from_double(0.0), slice,  centre,
                                                    out.sizes[1],          out_per_group,         min_dim};
    launch_by_index<Ops>(out, value, stream);
  });
}

void launch_sparse_zero(DType dtype, void* data, int64_t row_stride, int64_t col_stride, const int64_t* rows,
                        int64_t cols, int64_t zeros, cudaStream_t stream) {
  const int64_t total = cols * zeros;
  if (total <= 0) return;
  int64_t blocks = (total + kBlockSize - 1) / kBlockSize;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  switch (dtype_size(dtype)) {
    case 2:
      sparse_zero_kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<unsigned_of_size_t<2>*>(data), row_stride,
                                                            col_stride, rows, cols, zeros);
      break;
    case 4:
      sparse_zero_kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<unsigned_of_size_t<4>*>(data), row_stride,
                                                            col_stride, rows, cols, zeros);
      break;
    default:
      sparse_zero_kernel<<<blocks, kBlockSize, 0, stream>>>(static_cast<unsigned_of_size_t<8>*>(data), row_stride,
                                                            col_stride, rows, cols, zeros);
  }
}

void launch_orthogonal_finish(DType dtype, const Layout& out, const OrthogonalParams& params, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto ops) {
    using Ops = decltype(ops);
    if (params.q_dtype == DType::kDouble) {
      const OrthogonalValue<Ops, double> value{static_cast<const double*>(params.q),
                                               static_cast<const double*>(params.diag),
                                               params.q_cols,
                                               out.sizes[1],
                                               params.transposed,
                                               params.gain};
      launch_by_index<Ops>(out, value, stream);
    } else {
      const OrthogonalValue<Ops, float> value{static_cast<const float*>(params.q),
                                              static_cast<const float*>(params.diag),
                                              params.q_cols,
                                              out.sizes[1],
                                              params.transposed,
                                              static_cast<float>(params.gain)};
      launch_by_index<Ops>(out, value, stream);
    }
  });
}

}  // namespace pyinit::cuda
