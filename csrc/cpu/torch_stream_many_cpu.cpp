// The torch stream's uniform_many_ / normal_many_ on CPU: a run of calls as one draw. See Note [Many calls, one
// draw].

#include <ATen/ATen.h>

#include <algorithm>
#include <mutex>
#include <type_traits>
#include <vector>

#include "cpu/torch_stream_cpu.h"
#include "cpu/torch_stream_jump.h"
#include "cpu/torch_stream_pipeline.h"
#include "memory_order.h"
#include "validate.h"

namespace pyinit {
// The composite loop (csrc/many.cpp), for a list the CPU kernel does not take (a tensor on another device).
void uniform_many(at::TensorList selfs, c10::ArrayRef<double> low, c10::ArrayRef<double> high,
                  std::optional<at::Generator> generator);
void normal_many(at::TensorList selfs, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                 std::optional<at::Generator> generator);
}  // namespace pyinit

namespace pyinit::cpu {

// Note [Many calls, one draw]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// torch's CPU generator is one sequence of words, and uniform_ (or normal_fill, normal_'s path for a contiguous
// tensor of >= 16 elements) takes each element's words in turn: calls on tensors t0, t1, ... draw t0's words, then
// t1's, and so on. So a run of such calls is a single draw of the concatenated words, each piece of it transformed
// into its own tensor. One pipeline (or one jump-ahead parallel draw) for the whole run replaces one per tensor,
// which for tensors of a few thousand to a few hundred thousand elements is mostly start-up: waking the threads,
// the first block drawn while every other thread waits, the last one transformed while the producer waits.
// The words, values and final generator state are those of one call per tensor, in list order.
// A run holds consecutive tensors with the same words per element (2 for double, else 1), so that a word range
// aligned to it is an element range. normal_many_ also needs every element's Box-Muller block inside one tensor:
// its runs hold contiguous tensors of a multiple of 16 elements (numel % 16 != 0 draws a tail after the main words;
// fewer than 16 or non-contiguous take the serial path): any other tensor is one call of its own, in its place.

namespace {

// One tensor with elements: its index in the operator's list, its two parameters, its memory-order output.
struct Entry {
  size_t index;
  double p1, p2;
  size_t out;
};

// Calls piece(k, local_begin, count, at) for the part [at, at + count) of each entry k inside the run's elements
// [begin, end), in order, local_begin being the part's first element within entry k (ends[k]: the end of entry
// k's elements, strictly increasing).
template <typename Piece>
void for_each_entry_part(const std::vector<int64_t>& ends, int64_t begin, int64_t end, const Piece& piece) {
  size_t k = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), begin) - ends.begin());
  for (int64_t at = begin; at < end; ++k) {
    const int64_t first = k == 0 ? 0 : ends[k - 1];
    const int64_t stop = std::min(end, ends[k]);
    piece(k, at - first, stop - at, at);
    at = stop;
  }
}

// Draws the words of a run whose elements are concatenated (ends: as for_each_entry_part), `wpe` words per
// element, pieces starting at multiples of `align` elements, and calls piece(k, local_begin, count, words) for
// every piece of entry k that a block of words covers.
template <typename Piece>
void draw_run(at::CPUGeneratorImpl* gen, const std::vector<int64_t>& ends, int64_t wpe, int64_t align,
              const Piece& piece) {
  draw_elements(
      gen, /*words=*/nullptr, ends.back(), wpe, align,
      [&](int64_t begin, int64_t end, const uint32_t* w) {
        for_each_entry_part(ends, begin, end, [&](size_t k, int64_t local, int64_t count, int64_t at) {
          piece(k, local, count, w + (at - begin) * wpe);
        });
      },
      torch_stream_jump_min_threads_early().load(std::memory_order_relaxed));
}

// draw_run for a kernel that writes its outputs straight from the engine: piece(k, local_begin, count, pod) draws
// entry k's elements [local_begin, local_begin + count) from the engine whose data is `pod` (one word per
// element). False, with nothing drawn, where draw_fused leaves the draw to the pipeline (then draw_run it).
template <typename Piece>
bool draw_run_fused(at::CPUGeneratorImpl* gen, const std::vector<int64_t>& ends, const Piece& piece) {
  return draw_fused(
      gen, ends.back(), /*align=*/1,
      [&](at::mt19937& engine, int64_t begin, int64_t len) {
        at::mt19937_data_pod pod = engine.data();
        for_each_entry_part(ends, begin, begin + len,
                            [&](size_t k, int64_t local, int64_t count, int64_t) { piece(k, local, count, pod); });
        engine.set_data(pod);
      },
      torch_stream_jump_min_threads_early().load(std::memory_order_relaxed));
}

// The body of both operators, after validation: announces every write (as the single-tensor operator does, empty
// tensors included), then, under the generator's mutex and in list order, runs single(self, out, p1, p2) for a
// tensor that `joins` no run and, for each run (consecutive tensors that join, with the same words per element),
// one draw_run whose pieces go to transform(dtype, out, words, count, p1, p2), with out at the piece's first element.
// When `fused` is given (uniform_many_), a run of one word per element goes through draw_run_fused instead, its
// pieces to fused(dtype, out, count, p1, p2, pod).
template <typename Joins, typename Single, typename Transform, typename Fused = std::nullptr_t>
void run_many(at::TensorList selfs, c10::ArrayRef<double> p1, c10::ArrayRef<double> p2, at::CPUGeneratorImpl* gen,
              int64_t align, const Joins& joins, const Single& single, const Transform& transform,
              const Fused& fused = nullptr) {
  std::vector<Entry> entries;
  std::vector<MemoryOrderOutput> outs;
  outs.reserve(selfs.size());
  for (size_t i = 0; i < selfs.size(); ++i) {
    if (!has_elements_to_write(selfs[i])) continue;
    entries.push_back({i, p1[i], p2[i], outs.size()});
    outs.emplace_back(selfs[i]);
  }
  std::vector<Entry> run;
  auto finish = [&] {
    if (run.size() == 1) single(selfs[run[0].index], outs[run[0].out], run[0].p1, run[0].p2);
    if (run.size() > 1) {
      std::vector<int64_t> ends;
      int64_t total = 0;
      for (const Entry& e : run) ends.push_back(total += outs[e.out].numel());
      const int64_t wpe = torch_words_per_element(selfs[run[0].index].scalar_type());
      auto out_at = [&](const Entry& e, int64_t begin) {
        const at::ScalarType dtype = selfs[e.index].scalar_type();
        return static_cast<void*>(static_cast<char*>(outs[e.out].data()) +
                                  begin * static_cast<int64_t>(c10::elementSize(dtype)));
      };
      bool drawn = false;
      if constexpr (!std::is_same_v<Fused, std::nullptr_t>) {
        drawn = wpe == 1 &&
                draw_run_fused(gen, ends, [&](size_t k, int64_t begin, int64_t count, at::mt19937_data_pod& pod) {
                  const Entry& e = run[k];
                  fused(selfs[e.index].scalar_type(), out_at(e, begin), count, e.p1, e.p2, pod);
                });
      }
      if (!drawn) {
        draw_run(gen, ends, wpe, align, [&](size_t k, int64_t begin, int64_t count, const uint32_t* w) {
          const Entry& e = run[k];
          transform(selfs[e.index].scalar_type(), out_at(e, begin), w, count, e.p1, e.p2);
        });
      }
    }
    run.clear();
  };
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    for (const Entry& e : entries) {
      const at::Tensor& t = selfs[e.index];
      if (!joins(t)) {
        finish();
        single(t, outs[e.out], e.p1, e.p2);
        continue;
      }
      if (!run.empty() &&
          torch_words_per_element(selfs[run[0].index].scalar_type()) != torch_words_per_element(t.scalar_type()))
        finish();
      run.push_back(e);
    }
    finish();
  }
  for (auto& out : outs) out.commit();
}

bool all_cpu(at::TensorList selfs) {
  return std::all_of(selfs.begin(), selfs.end(), [](const at::Tensor& t) { return t.device().is_cpu(); });
}

}  // namespace

void uniform_many_cpu(at::TensorList selfs, c10::ArrayRef<double> low, c10::ArrayRef<double> high,
                      std::optional<at::Generator> generator) {
  if (!all_cpu(selfs)) return pyinit::uniform_many(selfs, low, high, generator);
  check_many(selfs, {low.size(), high.size()}, "uniform_many_");
  const auto bounds = validate_uniform_many(selfs, low, high);
  std::vector<double> lo, hi;
  for (const auto& [l, h] : bounds) lo.push_back(l), hi.push_back(h);
  auto* gen = cpu_generator(generator);
  const auto& kernels = torch_stream_kernels();
  run_many(
      selfs, lo, hi, gen, /*align=*/1, [](const at::Tensor&) { return true; },
      [&](const at::Tensor& self, MemoryOrderOutput& out, double l, double h) {
        uniform_locked(gen, out, self.scalar_type(), l, h, /*mask=*/false, 0.0);
      },
      [&](at::ScalarType dtype, void* out, const uint32_t* w, int64_t count, double l, double h) {
        kernels.uniform_from_words(dtype, out, w, 0, count, l, h, /*mask=*/false, 0.0);
      },
      [&](at::ScalarType dtype, void* out, int64_t count, double l, double h, at::mt19937_data_pod& pod) {
        kernels.draw_uniform(pod, dtype, out, count, l, h, /*mask=*/false, 0.0);
      });
}

void normal_many_cpu(at::TensorList selfs, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                     std::optional<at::Generator> generator) {
  if (!all_cpu(selfs)) return pyinit::normal_many(selfs, mean, std, generator);
  check_many(selfs, {mean.size(), std.size()}, "normal_many_");
  validate_normal_many(selfs, std);
  auto* gen = cpu_generator(generator);
  const auto& kernels = torch_stream_kernels();
  // normal_fill with no tail: every Box-Muller block of 16 lies inside the tensor, and its words are all it draws.
  run_many(
      selfs, mean, std, gen, /*align=*/16,
      [](const at::Tensor& t) { return t.is_contiguous() && t.numel() >= 16 && t.numel() % 16 == 0; },
      [&](const at::Tensor& self, MemoryOrderOutput& out, double m, double s) { normal_locked(gen, self, out, m, s); },
      [&](at::ScalarType dtype, void* out, const uint32_t* w, int64_t count, double m, double s) {
        kernels.normal_blocks(dtype, out, w, 0, count / 16, m, s, /*zero_mask=*/nullptr);
      });
}

}  // namespace pyinit::cpu
