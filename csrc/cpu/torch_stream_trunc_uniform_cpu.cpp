// trunc_normal_ by uniform proposals (the narrow-window branch of torch.nn.init.trunc_normal_), bit-identical to
// torch's CPU composition. See Note [trunc_normal_ by uniform proposals].
//
// Note [trunc_normal_ by uniform proposals]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// When the mass of N(mean, std) inside [a, b] is at most 0.3, torch >= 2.12 samples by rejection with uniform
// proposals (torch/nn/init.py, _no_grad_trunc_normal_), in whole-tensor in-place operators:
//   round 1:  tensor.uniform_(a, b); candidates = copy;
//             candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)      (the log density)
//             pending = accept_buf.uniform_().log_().gt(candidates)                 (rejected)
//   round k:  while pending.any(): candidates.uniform_(a, b); result = where(pending, candidates, result);
//             candidates' log density as above;
//             pending = where(pending, accept_buf.uniform_().log_().gt(candidates), pending)
//   then tensor.copy_(result) if a second round ran.
// Every round therefore draws two whole uniform_ tensors (2n words, 4n for double) from the generator, however few
// elements are pending. pyinit draws the same words (in parallel ranges or through the serial pipeline, as
// uniform_ does) and evaluates only pending elements, skipping blocks with none: one pass over the tensor per
// round instead of about twelve. A pending element's candidate is written into the tensor at once (torch's
// `result`), so its log density is recomputed from the tensor, never stored. The arithmetic is torch's CPU
// arithmetic, element by element:
//   - float/double: each operator in the dtype with its Python number cast to the dtype, one rounding per
//     operator (pow_(2) is x * x; the extension is compiled with -ffp-contract=off, so nothing is fused);
//   - half/bfloat16: each operator in float, rounded to the dtype after each: sub_'s number is first rounded to
//     the dtype (TensorIterator casts the wrapped scalar), div_'s and mul_'s are read in float
//     (original_scalar_value), pow_(2) is x * x in float;
//   - log_ is MKL's vmsLn / vmdLn (Note [torch's CPU vector math is MKL's], mkl_vml.h); half/bfloat16 through
//     float. gt compares in the dtype.
// mean/std/log_peak come from Python, computed exactly as torch computes them there (pyinit/_streams.py).

#include <ATen/Dispatch.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/mkl_vml.h"
#include "cpu/torch_stream_cpu.h"
#include "cpu/torch_stream_jump.h"
#include "cpu/torch_stream_pipeline.h"
#include "memory_order.h"
#include "validate.h"

namespace pyinit::cpu {

namespace {

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// The log density torch computes in place on `candidates`, with its roundings (see the Note).
template <typename scalar_t>
struct LogDensity {
  using op_t = opmath_t<scalar_t>;
  op_t mean, std, log_peak;

  LogDensity(double mean_, double std_, double log_peak_)
      : mean(static_cast<op_t>(static_cast<scalar_t>(mean_))),
        std(static_cast<op_t>(std_)),
        log_peak(static_cast<op_t>(static_cast<scalar_t>(log_peak_))) {}

  static op_t round(op_t x) { return static_cast<op_t>(static_cast<scalar_t>(x)); }

  op_t operator()(scalar_t v) const {
    op_t t = round(static_cast<op_t>(v) - mean);
    t = round(t / std);
    t = round(t * t);
    t = round(t * static_cast<op_t>(-0.5));
    return round(t - log_peak);
  }
};

// Elements per region: the unit in which pending elements are tracked (their offsets fit 16 bits) and the
// alignment of the draw's pieces, so that one region is always handled by one thread.
constexpr int64_t kRegion = 4096;
static_assert(kPipelineBlock % kRegion == 0, "pipeline blocks must hold whole regions");

// One call's state: the tensor's memory-order values and, per region, its pending (rejected so far) elements as
// a list of offsets, ascending. Every loop over pending elements is branch-free: about half of them are
// rejected at random in the early rounds, and a branch on that mispredicted so often that it cost more than
// the draw.
template <typename scalar_t>
class UniformProposals {
 public:
  using op_t = opmath_t<scalar_t>;
  static constexpr int64_t kWordsPerElement = std::is_same_v<scalar_t, double> ? 2 : 1;

  UniformProposals(scalar_t* values, int64_t n, double low, double high, const LogDensity<scalar_t>& density)
      : values_(values),
        n_(n),
        low_(low),
        high_(high),
        density_(density),
        offsets_(new uint16_t[static_cast<size_t>(n)]),
        pending_((n + kRegion - 1) / kRegion, 0) {}

  // accept_buf.uniform_().log_().gt(candidates) for the pending elements (all of them when `all`); returns how
  // many stay pending.
  int64_t accept(at::CPUGeneratorImpl* gen, bool all) {
    draw(gen, [&](int64_t region, const uint32_t* w, int64_t len) {
      const int64_t count = all ? len : pending_[region];
      if (count == 0) return;
      Scratch& s = scratch();
      uniform_units(s.u, w, len, 0.0, 1.0);
      // Locals, so that the loops below vectorize: the extension is built with -fno-strict-aliasing, under
      // which every store could otherwise alias the members and force their reload per element.
      const LogDensity<scalar_t> density = density_;
      const scalar_t* __restrict values = values_ + region * kRegion;
      const scalar_t* __restrict u = s.u;
      op_t* __restrict x = s.x;
      op_t* __restrict d = s.d;
      uint16_t* __restrict offsets = offsets_.get() + region * kRegion;
      if (all) {
        for (int64_t j = 0; j < count; ++j) x[j] = static_cast<op_t>(u[j]);
        for (int64_t j = 0; j < count; ++j) d[j] = density(values[j]);
      } else {
        for (int64_t j = 0; j < count; ++j) x[j] = static_cast<op_t>(u[offsets[j]]);
        for (int64_t j = 0; j < count; ++j) d[j] = density(values[offsets[j]]);
      }
      {
        const mkl::OneThread one_thread;
        mkl::log(x, x, count);
      }
      // The rejected stay pending: the list is compacted in place, 64 elements at a time through a bit mask.
      // (A store to offsets[kept] per element made each element's loads wait for the previous element's
      // comparison: about 6 ns an element.) Writes go to offsets[kept] with kept <= j0 + b, never past what is
      // still to be read.
      int64_t kept = 0;
      for (int64_t j0 = 0; j0 < count; j0 += 64) {
        const int64_t m = std::min<int64_t>(64, count - j0);
        uint64_t mask = 0;
        for (int64_t j = 0; j < m; ++j) {
          mask |= static_cast<uint64_t>(LogDensity<scalar_t>::round(x[j0 + j]) > d[j0 + j]) << j;
        }
        while (mask != 0) {
          const int64_t j = j0 + __builtin_ctzll(mask);
          offsets[kept++] = all ? static_cast<uint16_t>(j) : offsets[j];
          mask &= mask - 1;
        }
      }
      pending_[region] = kept;
    });
    int64_t total = 0;
    for (const int64_t count : pending_) total += count;
    return total;
  }

  // candidates.uniform_(a, b); result = where(pending, candidates, result), for the pending elements.
  void propose(at::CPUGeneratorImpl* gen) {
    draw(gen, [&](int64_t region, const uint32_t* w, int64_t len) {
      const int64_t count = pending_[region];
      if (count == 0) return;
      Scratch& s = scratch();
      uniform_units(s.u, w, len, low_, high_);
      const uint16_t* __restrict offsets = offsets_.get() + region * kRegion;
      scalar_t* __restrict values = values_ + region * kRegion;
      const scalar_t* __restrict u = s.u;
      for (int64_t j = 0; j < count; ++j) values[offsets[j]] = u[offsets[j]];
    });
  }

 private:
  struct Scratch {
    scalar_t u[kRegion];
    op_t x[kRegion];  // the acceptance draw's log
    op_t d[kRegion];  // the candidates' log density
  };

  // Not inlined: the caller then holds a plain pointer, where an inlined thread_local was re-resolved
  // (__tls_get_addr) inside the loops, at every element.
  __attribute__((noinline)) static Scratch& scratch() {
    thread_local Scratch s;
    return s;
  }

  static void uniform_units(scalar_t* out, const uint32_t* w, int64_t len, double low, double high) {
    torch_stream_kernels().uniform_from_words(c10::CppTypeToScalarType<scalar_t>::value, out, w, 0, len, low, high,
                                              /*mask=*/false, 0.0);
  }

  // Draws one whole uniform_ tensor's words (as uniform_locked does: parallel ranges, else the pipeline) and
  // calls body(region, words, len) for every region, on any thread, in any order.
  template <typename Body>
  void draw(at::CPUGeneratorImpl* gen, const Body& body) {
    auto regions = [&](int64_t begin, int64_t end, const uint32_t* w) {
      for (int64_t start = begin; start < end; start += kRegion) {
        body(start / kRegion, w + (start - begin) * kWordsPerElement, std::min(kRegion, end - start));
      }
    };
    draw_elements(gen, /*words=*/nullptr, n_, kWordsPerElement, kRegion, regions);
  }

  scalar_t* values_;
  int64_t n_;
  double low_, high_;
  LogDensity<scalar_t> density_;
  std::unique_ptr<uint16_t[]> offsets_;
  std::vector<int64_t> pending_;  // per region: how many of its elements are pending
};

}  // namespace

void trunc_normal_uniform_cpu(at::Tensor self, double mean, double std, double a, double b, double log_peak,
                              std::optional<at::Generator> generator) {
  // torch's first write is tensor.uniform_(a, b): its checks and messages come first, and it counts one write.
  double low = a, high = b;
  if (!validate_uniform(self, low, high)) return;
  TORCH_CHECK(
      self.is_contiguous() || self.is_non_overlapping_and_dense(),
      "pyinit.trunc_normal_uniform_: the kernel needs a dense tensor (the Python wrapper falls back otherwise)");
  TORCH_CHECK(mkl::has_log(),
              "pyinit.trunc_normal_uniform_: this torch has no MKL log (the Python wrapper falls back otherwise)");
  auto* gen = cpu_generator(generator);
  MemoryOrderOutput out(self);
  const auto dtype = self.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pyinit_trunc_normal_uniform", [&] {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    uniform_locked(gen, out, dtype, low, high, /*mask=*/false, 0.0);
    UniformProposals<scalar_t> rounds(out.data_as<scalar_t>(), out.numel(), low, high,
                                      LogDensity<scalar_t>(mean, std, log_peak));
    if (rounds.accept(gen, /*all=*/true) == 0) return;
    count_extra_writes(self, 1);  // torch's tensor.copy_(result) after the resampling rounds
    do {
      rounds.propose(gen);
    } while (rounds.accept(gen, /*all=*/false) > 0);
  });
  out.commit();
}

}  // namespace pyinit::cpu
