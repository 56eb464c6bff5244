#pragma once
// Memory order, for every device: the order in which TensorIterator visits the elements of a single written
// tensor (its dimensions sorted by decreasing stride, size-1 dimensions left in place, then row-major). The torch
// stream must draw its random numbers in that order to write what torch writes; the fills use it to walk any
// view with long contiguous runs.

#include <ATen/ATen.h>
#include <ATen/core/LegacyTypeDispatch.h>

#include <algorithm>
#include <numeric>
#include <vector>

namespace pyinit {

// The permutation of self's dimensions into memory order (outermost first).
inline std::vector<int64_t> memory_order_permutation(const at::Tensor& self) {
  std::vector<int64_t> perm(self.dim());
  std::iota(perm.begin(), perm.end(), 0);
  const auto strides = self.strides();
  const auto sizes = self.sizes();
  // Size-1 dimensions do not change the order; keep them in place so ties stay stable.
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    if (sizes[a] == 1 || sizes[b] == 1) return false;
    return strides[a] > strides[b];
  });
  return perm;
}

// self's dimensions other than size-1 ones, by decreasing stride (a strict sort, ties kept in order): the walk
// order of the fills, whose values do not depend on the order of the walk.
inline std::vector<int64_t> decreasing_stride_order(const at::Tensor& self) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < self.dim(); ++d) {
    if (self.size(d) != 1) dims.push_back(d);
  }
  std::stable_sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) { return self.stride(a) > self.stride(b); });
  return dims;
}

// TensorIterator's coalesced shape of self's dimensions taken in the order `perm` (outermost first): size-1
// dimensions dropped, neighbours merged where one steps exactly over the other. Strides in elements.
struct CoalescedLayout {
  std::vector<int64_t> sizes, strides;
};

inline CoalescedLayout coalesced_layout(const at::Tensor& self, const std::vector<int64_t>& perm) {
  CoalescedLayout layout;
  for (const int64_t d : perm) {
    const int64_t size = self.size(d), stride = self.stride(d);
    if (size == 1) continue;
    if (!layout.sizes.empty() && layout.strides.back() == stride * size) {
      layout.sizes.back() *= size;
      layout.strides.back() = stride;
    } else {
      layout.sizes.push_back(size);
      layout.strides.push_back(stride);
    }
  }
  return layout;
}

// An op's own copy from its scratch buffer into self: below ADInplaceOrView, so that it does not move the version
// counter again (the op counted its write once, in has_elements_to_write).
inline void copy_into(const at::Tensor& self, const at::Tensor& buffer) {
  at::AutoDispatchBelowADInplaceOrView guard;
  self.copy_(buffer);
}

// A contiguous buffer standing for `self` in memory order: self itself when that order is its memory layout
// (every dense tensor), else a temporary that commit() copies back. Write into data(), then call commit().
class MemoryOrderOutput {
 public:
  explicit MemoryOrderOutput(const at::Tensor& self) {
    if (self.is_contiguous()) {
      view_ = self;
      buffer_ = self;
      return;
    }
    view_ = self.permute(memory_order_permutation(self));
    buffer_ = view_.is_contiguous() ? view_ : at::empty(view_.sizes(), self.options());
  }
  void* data() const { return buffer_.data_ptr(); }
  template <typename T>
  T* data_as() const {
    return buffer_.data_ptr<T>();
  }
  int64_t numel() const { return buffer_.numel(); }
  // self with its dimensions permuted into memory order.
  const at::Tensor& view() const { return view_; }
  void commit() {
    if (!buffer_.is_same(view_)) copy_into(view_, buffer_);
  }

 private:
  at::Tensor view_;
  at::Tensor buffer_;
};

// A contiguous buffer standing for `self` in row-major order (the order of the kernels that address elements by
// row-major index: the philox stream's, the torch stream's on blocks): self itself when contiguous, else a
// temporary that commit() copies back. Write into data(), then call commit().
class RowMajorOutput {
 public:
  explicit RowMajorOutput(const at::Tensor& self)
      : self_(self), buffer_(self.is_contiguous() ? self : at::empty(self.sizes(), self.options())) {}
  void* data() const { return buffer_.data_ptr(); }
  int64_t numel() const { return buffer_.numel(); }
  void commit() {
    if (!buffer_.is_same(self_)) copy_into(self_, buffer_);
  }

 private:
  at::Tensor self_;
  at::Tensor buffer_;
};

}  // namespace pyinit
