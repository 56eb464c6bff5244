// CPU implementations of the deterministic initializers (fill_, eye_, dirac_) and the tail of orthogonal_.
// One pass each, no Python loops.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/Scalar.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/parallel.h"
#include "cpu/cpu_isa.h"
#include "memory_order.h"
#include "pyinit/rounded_arithmetic.h"
#include "validate.h"

namespace pyinit::cpu {
namespace {

// Bytes one at::parallel_for task writes at least: below this a tensor is filled by the calling thread.
constexpr int64_t kGrainBytes = 128 * 1024;

// Note [Structured fills on CPU]
// fill_, eye_ and dirac_ are pure stores, so they run at memory bandwidth only if the store loop is a plain
// memset / vectorized fill. A constant is converted once as torch's fill_ converts it (c10::Scalar::to, overflow
// check included) and written as its raw bit pattern (uint16/32/64 by element size), with memset when the
// pattern is all zero bits (+0.0, never -0.0). eye_ and dirac_ are what torch does (ATen's eye_out_cpu,
// nn.init.dirac_): zero-fill the tensor, then store the few ones (the diagonal, the centre taps), so where
// elements alias they end up as torch leaves them. A non-contiguous tensor is walked in memory order: its
// dimensions sorted by stride, size-1 dimensions dropped and mergeable neighbours coalesced, so a dense
// permuted view (a transpose, channels_last) is one flat fill and any other view one fill per innermost row,
// with no div/mod per element. Every check runs before the first store: a failed call writes nothing.

#if defined(__x86_64__) && defined(__GNUC__)
#define PYINIT_FILL_AVX2 1

inline __attribute__((target("avx2"))) __m256i broadcast_avx2(uint16_t bits) {
  return _mm256_set1_epi16(static_cast<int16_t>(bits));
}
inline __attribute__((target("avx2"))) __m256i broadcast_avx2(uint32_t bits) {
  return _mm256_set1_epi32(static_cast<int32_t>(bits));
}
inline __attribute__((target("avx2"))) __m256i broadcast_avx2(uint64_t bits) {
  return _mm256_set1_epi64x(static_cast<int64_t>(bits));
}

// Aligned 32-byte stores from the first 32-byte boundary on.
template <typename bits_t>
__attribute__((target("avx2"))) void fill_contiguous_avx2(bits_t* data, int64_t n, bits_t bits) {
  constexpr int64_t kLanes = 32 / sizeof(bits_t);
  int64_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(data + i) % 32 != 0; ++i) data[i] = bits;
  const __m256i v = broadcast_avx2(bits);
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(data + i), v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(data + i + kLanes), v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(data + i + 2 * kLanes), v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(data + i + 3 * kLanes), v);
  }
  for (; i + kLanes <= n; i += kLanes) _mm256_store_si256(reinterpret_cast<__m256i*>(data + i), v);
  for (; i < n; ++i) data[i] = bits;
}
#endif

// Stores `bits` into data[0, n): memset for all-zero bits (glibc switches to `rep stosb` / non-temporal stores
// for large sizes, which write zeros about 2x faster than plain stores on the reference box), else 32-byte
// AVX2 stores when the CPU has them (what torch's own vectorized fill_ does), else a loop the compiler vectorizes.
template <typename bits_t>
void fill_contiguous(bits_t* data, int64_t n, bits_t bits) {
  if (bits == 0) {
    std::memset(data, 0, static_cast<size_t>(n) * sizeof(bits_t));
    return;
  }
#ifdef PYINIT_FILL_AVX2
  if (cpu_isa() == CpuIsa::kAvx2) return fill_contiguous_avx2(data, n, bits);
#endif
  std::fill_n(data, n, bits);
}

// Stores `bits` into data[0], data[stride], ... (n elements). A function of its own, so that the loop bounds are
// locals: with -fno-strict-aliasing a store could otherwise alias the lambda's captured sizes and force reloads.
template <typename bits_t>
void strided_fill(bits_t* data, int64_t n, int64_t stride, bits_t bits) {
  for (int64_t j = 0; j < n; ++j) data[j * stride] = bits;
}

// Stores `bits` into every element of `self` (validated by the caller), in parallel. See Note [Structured fills
// on CPU].
template <typename bits_t>
void fill_bits(const at::Tensor& self, bits_t bits) {
  bits_t* base = static_cast<bits_t*>(self.data_ptr());
  const CoalescedLayout layout = coalesced_layout(self, decreasing_stride_order(self));
  const int64_t dims = static_cast<int64_t>(layout.sizes.size());
  constexpr int64_t grain = kGrainBytes / static_cast<int64_t>(sizeof(bits_t));
  if (dims == 0) {  // a single element
    *base = bits;
    return;
  }
  if (dims == 1 && layout.strides[0] == 1) {  // contiguous, or a dense permuted view
    parallel_for(0, layout.sizes[0], grain,
                 [&](int64_t begin, int64_t end) { fill_contiguous(base + begin, end - begin, bits); });
    return;
  }
  // One row per outer index; the outer offset is found once per chunk and then advanced like an odometer.
  const int64_t inner = layout.sizes[dims - 1], inner_stride = layout.strides[dims - 1];
  const int64_t rows = self.numel() / inner;
  parallel_for(0, rows, std::max<int64_t>(1, grain / inner), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> index(dims - 1);
    int64_t offset = 0, rest = begin;
    for (int64_t d = dims - 2; d >= 0; --d) {
      index[d] = rest % layout.sizes[d];
      rest /= layout.sizes[d];
      offset += index[d] * layout.strides[d];
    }
    for (int64_t row = begin; row < end; ++row) {
      bits_t* p = base + offset;
      if (inner_stride == 1) {
        fill_contiguous(p, inner, bits);
      } else {
        strided_fill(p, inner, inner_stride, bits);
      }
      for (int64_t d = dims - 2; d >= 0; --d) {
        offset += layout.strides[d];
        if (++index[d] < layout.sizes[d]) break;
        offset -= index[d] * layout.strides[d];
        index[d] = 0;
      }
    }
  });
}

// Fills `self` with `value` converted as torch's fill_ converts it (Scalar::to, which raises "value cannot be
// converted to type ... without overflow" before anything is written), bit for bit what torch stores.
void fill_value(const at::Tensor& self, double value) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_fill", [&] {
    using bits_t = unsigned_of_size_t<sizeof(scalar_t)>;
    const scalar_t v = c10::Scalar(value).to<scalar_t>();
    bits_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    fill_bits(self, bits);
  });
}

}  // namespace

void fill_cpu(at::Tensor self, double value) {
  if (!validate_fill(self, value)) return;
  fill_value(self, value);
}

void eye_cpu(at::Tensor self) {
  if (!validate_eye(self)) return;
  fill_value(self, 0.0);
  const int64_t diagonal = std::min(self.size(0), self.size(1));
  const int64_t step = self.stride(0) + self.stride(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_eye", [&] {
    scalar_t* base = self.data_ptr<scalar_t>();
    const scalar_t one = static_cast<scalar_t>(1);
    for (int64_t i = 0; i < diagonal; ++i) base[i * step] = one;
  });
}

void dirac_cpu(at::Tensor self, int64_t groups) {
  if (!validate_dirac(self, groups)) return;
  const int64_t dims = self.dim();
  fill_value(self, 0.0);
  const int64_t out_per_group = self.size(0) / groups;
  const int64_t min_dim = std::min(out_per_group, self.size(1));
  count_extra_writes(self, groups * min_dim);  // torch: zero_(), then one indexed write per delta
  // Offset of the centre tap within one (out, in) kernel slice.
  int64_t centre = 0;
  for (int64_t d = 2; d < dims; ++d) centre += (self.size(d) / 2) * self.stride(d);
  const int64_t out_stride = self.stride(0), in_stride = self.stride(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_dirac", [&] {
    scalar_t* base = self.data_ptr<scalar_t>() + centre;
    const scalar_t one = static_cast<scalar_t>(1);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t d = 0; d < min_dim; ++d) base[(g * out_per_group + d) * out_stride + d * in_stride] = one;
    }
  });
}

// The tail of torch.nn.init.orthogonal_: q *= sign(diag(r)); (q.t_() when transposed); self.copy_(q);
// self.mul_(gain). float and double follow torch's roundings step by step; half and bfloat16 (where torch's QR
// raises) compute in float and round once.
void orthogonal_finish_cpu(at::Tensor self, at::Tensor q, at::Tensor r, double gain, bool transposed) {
  if (!validate_orthogonal_finish(self, q, r, transposed)) return;
  count_extra_writes(self, 1);  // torch: copy_(q), then mul_(gain)
  const at::Tensor q_c = q.contiguous();
  const at::Tensor diag = r.diagonal().contiguous();
  const int64_t rows = self.size(0), cols = self.size(1);
  const int64_t row_stride = self.stride(0), col_stride = self.stride(1);
  const int64_t q_cols = q_c.size(1);
  // self[row][col] = q[qi][qj] with (qi, qj) = (row, col), or (col, row) when transposed.
  const int64_t q_row_step = transposed ? 1 : q_cols, q_col_step = transposed ? q_cols : 1;
  AT_DISPATCH_FLOATING_TYPES(q_c.scalar_type(), "pyinit_orthogonal_q", [&] {
    using q_t = scalar_t;
    const q_t* qd = q_c.data_ptr<q_t>();
    const q_t* dd = diag.data_ptr<q_t>();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "pyinit_orthogonal", [&] {
      constexpr bool kSameType = std::is_same_v<scalar_t, q_t>;
      const q_t gain_q = static_cast<q_t>(gain);
      scalar_t* base = self.data_ptr<scalar_t>();
      const int64_t grain_rows = std::max<int64_t>(1, kGrainBytes / static_cast<int64_t>(sizeof(scalar_t)) / cols);
      parallel_for(0, rows, grain_rows, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          scalar_t* out = base + row * row_stride;
          const q_t* q_row = qd + row * q_row_step;
          for (int64_t col = 0; col < cols; ++col) {
            const q_t d = dd[transposed ? row : col];
            const q_t sign = d > 0 ? q_t(1) : (d < 0 ? q_t(-1) : q_t(0));
            const q_t v = q_row[col * q_col_step] * sign;
            if constexpr (kSameType) {
              out[col * col_stride] = v * gain_q;
            } else {
              out[col * col_stride] = static_cast<scalar_t>(v * gain_q);
            }
          }
        }
      });
    });
  });
}

// The philox stream's QR (PhiloxStream.qr): q, r = torch.linalg.qr(a) with one thread, restored after. LAPACK's
// blocked QR splits its work by the thread count, and so do its roundings; the stream promises the same values for
// any thread count. An operator, so that a function compiled by torch.compile runs it too (a thread count cannot be
// set inside a graph). While it runs, torch ops of other Python threads run with one thread too.
void qr_serial_cpu(at::Tensor q, at::Tensor r, at::Tensor a) {
  validate_qr_serial(q, r, a);
  struct OneThread {
    int previous = at::get_num_threads();
    OneThread() { at::set_num_threads(1); }
    ~OneThread() { at::set_num_threads(previous); }
  };
  const OneThread one_thread;
  at::linalg_qr_out(q, r, a);
}

}  // namespace pyinit::cpu
