#include "scheduler/barrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace libactor::detail {

namespace {
long membarrier(int cmd) noexcept {
  return ::syscall(__NR_membarrier, cmd, 0, 0);
}
}  // namespace

void init_asymmetric_barriers() noexcept {
  // Once per process; a thread-safe static.
  static const bool registered = [] {
    const long supported = membarrier(MEMBARRIER_CMD_QUERY);
    if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  // relaxed: see the flag; the threads that read it start after this.
  if (registered) g_asymmetric_barriers.store(true, std::memory_order_relaxed);
}

void heavy_barrier() noexcept {
#if defined(__SANITIZE_THREAD__)
  // Not used under ThreadSanitizer (run_next.hpp's symmetric variant), and
  // TSan rejects standalone fences.
#else
  // relaxed: as above. Once registered, the expedited command does not fail
  // (membarrier(2) lists no error for it then), so both sides stay
  // asymmetric together.
  if (g_asymmetric_barriers.load(std::memory_order_relaxed)) {
    (void)membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
#endif
}

}  // namespace libactor::detail
