// Note [Forked children run serially]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// libgomp is not fork-safe: once a process has run an OpenMP parallel region, a child made by fork()
// inherits the thread pool's bookkeeping but not its threads, and its next parallel region waits forever
// in the pool's barrier. torch.nn.init's CPU kernels are serial, so code that forks after initializing
// (os.fork, multiprocessing's 'fork' start method, the Linux default before Python 3.14) never hit this;
// pyinit's kernels are parallel, and torch's own parallel ops run after them, so without this handler such
// a child would hang in its next parallel region. The child handler sets the child's OpenMP thread count to
// 1: loops then run inline (torch's own parallel CPU ops too, which otherwise hang in the same way), and
// values are unchanged (every kernel is bit-identical at any thread count). A child that calls
// torch.set_num_threads(n) gets new pyinit helper threads of its own (csrc/cpu/parallel.cpp: the parent's
// are not in the child), and torch's OpenMP ops at the same risk as with torch alone.
#include <omp.h>
#include <pthread.h>

namespace pyinit {
namespace {

void serial_in_forked_child() { omp_set_num_threads(1); }

// Registered once, when the operator library is loaded.
[[maybe_unused]] const int fork_handler_registered = pthread_atfork(nullptr, nullptr, &serial_in_forked_child);

}  // namespace
}  // namespace pyinit
