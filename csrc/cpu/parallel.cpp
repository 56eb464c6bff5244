// pyinit's CPU parallel loop: see Note [The caller never waits for a thread that has not started] (parallel.h).

#include "cpu/parallel.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace pyinit::cpu {
namespace {

thread_local bool t_in_chunk = false;

struct Job {
  const std::function<void(int64_t)>* body = nullptr;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};       // the next chunk to claim
  std::atomic<int64_t> completed{0};  // chunks finished (claimed chunks always finish)
  std::mutex error_mutex;
  std::exception_ptr error;
};

// Claims chunks until none is left. body is only called for a claimed chunk, and the caller of run_chunks
// returns only once every chunk has completed: body never outlives the call.
void work(Job& job) {
  t_in_chunk = true;
  for (;;) {
    const int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.chunks) break;
    try {
      (*job.body)(c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
    job.completed.fetch_add(1, std::memory_order_release);
  }
  t_in_chunk = false;
}

class Helpers {
 public:
  explicit Helpers(int count) {
    for (int i = 0; i < count; ++i) std::thread([this] { loop(); }).detach();
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& body) {
    auto job = std::make_shared<Job>();
    job->body = &body;
    job->chunks = chunks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    work(*job);
    for (int spins = 0; job->completed.load(std::memory_order_acquire) < chunks; ++spins) back_off(spins);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (job_ == job) job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void loop() {
    uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // Spin a little for the next call (kernels often come in runs), then sleep.
      for (int spins = 0; spins < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spins) {
#if defined(__x86_64__) || defined(_M_X64)
        __builtin_ia32_pause();
#endif
      }
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (generation_.load(std::memory_order_acquire) == seen) {
          sleeping_.fetch_add(1, std::memory_order_acq_rel);
          wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          sleeping_.fetch_sub(1, std::memory_order_acq_rel);
        }
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
      }
      if (job) work(*job);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::shared_ptr<Job> job_;
};

// One set of helpers per thread count, made on first use and never destroyed (detached threads park
// between calls). After fork() the child has none of the parent's threads: it makes its own.
Helpers& helpers_for(int threads) {
  static std::mutex mutex;
  static pid_t owner = 0;
  static auto* sets = new std::map<int, Helpers*>();
  std::lock_guard<std::mutex> lock(mutex);
  if (owner != getpid()) {  // first use, or a forked child: the parent's helpers are not here
    sets = new std::map<int, Helpers*>();
    owner = getpid();
  }
  Helpers*& set = (*sets)[threads];
  if (set == nullptr) set = new Helpers(threads - 1);
  return *set;
}

// One caller at a time per set of helpers: concurrent calls from several Python threads run inline.
std::atomic<bool> g_busy{false};

}  // namespace

bool in_parallel_work() { return t_in_chunk || at::in_parallel_region(); }

void run_chunks(int64_t chunks, const std::function<void(int64_t)>& body) {
  const int threads = at::get_num_threads();
  bool expected = false;
  if (chunks <= 1 || threads <= 1 || !g_busy.compare_exchange_strong(expected, true)) {
    t_in_chunk = true;
    try {
      for (int64_t c = 0; c < chunks; ++c) body(c);
    } catch (...) {
      t_in_chunk = false;
      throw;
    }
    t_in_chunk = false;
    return;
  }
  try {
    helpers_for(threads).run(chunks, body);
  } catch (...) {
    g_busy.store(false);
    throw;
  }
  g_busy.store(false);
}

}  // namespace pyinit::cpu
