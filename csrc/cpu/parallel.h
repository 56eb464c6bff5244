#pragma once
// pyinit's CPU parallel loop. See Note [The caller never waits for a thread that has not started].

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace pyinit::cpu {

// Note [The caller never waits for a thread that has not started]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// at::parallel_for is an OpenMP region: the calling thread waits at its closing barrier until every thread of
// the team has run its share. On a machine whose cores are busy with other processes, a team thread may not be
// scheduled for a whole scheduler slice (4-12 ms), and a 0.1 ms fill then takes that long: slower than torch's
// serial kernel. pyinit's kernels split their work into chunks claimed from an atomic counter by the caller and
// by helper threads (get_num_threads() - 1 of them, parked between calls). The caller works through chunks
// itself and waits only for chunks a helper has claimed, never for a helper that has not woken up: on a busy
// machine the caller simply does all the work. Every chunk writes values that depend only on element indices,
// so who runs a chunk never changes a value. Inside a chunk (and inside an OpenMP region) loops run inline.

// Waiting for another thread: pause, then yield, then sleep. A thread that only yields can keep its core for a
// whole scheduler slice when the thread it waits for shares that core.
inline void back_off(int spins) {
  if (spins < 4096) {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_ia32_pause();
#endif
  } else if (spins < 4096 + 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// Runs body(c) for c in [0, chunks), on the calling thread and the helpers.
void run_chunks(int64_t chunks, const std::function<void(int64_t)>& body);

// Whether the calling thread is inside run_chunks or an OpenMP parallel region (then loops run inline).
bool in_parallel_work();

// Drop-in for at::parallel_for(begin, end, grain, f): f(b, e) over consecutive ranges of at least `grain`
// (the last may be shorter), at most 16 per thread.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  const int64_t threads = at::get_num_threads();
  grain = std::max<int64_t>(grain, 1);
  if (threads <= 1 || n <= grain || in_parallel_work()) {
    f(begin, end);
    return;
  }
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, 16 * threads);
  const int64_t size = (n + chunks - 1) / chunks;
  chunks = (n + size - 1) / size;
  run_chunks(chunks, [&](int64_t c) {
    const int64_t b = begin + c * size;
    f(b, std::min(end, b + size));
  });
}

}  // namespace pyinit::cpu
