#pragma once
// Emulation of TensorIterator's 32-bit-indexing split for torch's CUDA distribution kernels. Plain C++ (no
// torch, no CUDA), shared by the glue and the host self-test.
//
// Note [The 32-bit indexing split]
// torch's distribution_nullary_kernel reserves Philox offsets for the whole tensor first, and only then asks
// TensorIterator whether 32-bit indexing works: numel <= INT32_MAX and the byte extent
// 1 + sum((size - 1) * stride_bytes) <= INT32_MAX. If not, it runs itself again on each sub-iterator of
// with_32bit_indexing(), each of which reserves its own offsets for its own numel and numbers its elements
// from 0. The split repeatedly halves the dimension of largest byte extent (first half = floor(size / 2),
// visited first). For a tensor that TensorIterator coalesces to one dimension (every dense tensor, and 1-d
// strided views) the pieces are ranges of the linear index; pyinit emulates exactly that case and refuses the
// others (multi-dimensional non-dense views above 2 GiB of extent), for which the Python side uses torch.

#include <cstdint>
#include <vector>

namespace pyinit::cuda {

constexpr int64_t kInt32Max = 2147483647;

struct IndexPiece {
  int64_t start;  // first linear index of the piece
  int64_t numel;  // elements in the piece
};

// TensorIterator::can_use_32bit_indexing for one operand, dims in any order.
inline bool fits_32bit_indexing(const int64_t* sizes, const int64_t* stride_bytes, int dims) {
  int64_t numel = 1, extent = 1;
  for (int d = 0; d < dims; ++d) {
    numel *= sizes[d];
    if (sizes[d] == 0) return true;
    extent += (sizes[d] - 1) * stride_bytes[d];
  }
  return numel <= kInt32Max && extent <= kInt32Max;
}

inline bool fits_32bit_indexing_1d(int64_t numel, int64_t stride_bytes) {
  return fits_32bit_indexing(&numel, &stride_bytes, 1);
}

// The pieces, in launch order, of a one-dimensional iteration of `numel` elements `stride_bytes` apart.
// A single piece covering everything when no split happens.
inline void split_32bit_1d(int64_t start, int64_t numel, int64_t stride_bytes, std::vector<IndexPiece>* pieces) {
  if (fits_32bit_indexing_1d(numel, stride_bytes)) {
    pieces->push_back(IndexPiece{start, numel});
    return;
  }
  const int64_t first = numel / 2;
  split_32bit_1d(start, first, stride_bytes, pieces);
  split_32bit_1d(start + first, numel - first, stride_bytes, pieces);
}

inline std::vector<IndexPiece> split_32bit_1d(int64_t numel, int64_t stride_bytes) {
  std::vector<IndexPiece> pieces;
  split_32bit_1d(0, numel, stride_bytes, &pieces);
  return pieces;
}

}  // namespace pyinit::cuda
