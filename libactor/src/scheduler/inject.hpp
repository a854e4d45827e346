#pragma once
// The global injection queue: actors made runnable by threads that are not
// workers of this pool (the caller's threads, the timer thread), and overflow
// from full local queues.
//
// A mutex-protected FIFO with an atomic length for lock-free emptiness checks,
// as the Go runtime's global run queue and Tokio's inject queue are. This is
// the cold path: a worker's own scheduling goes to its run-next slot and
// local queue, and the send path of a running receiver never gets here.
//
// Boost.Lockfree's `queue` has the right shape (MPMC, unbounded) and was the
// first choice. ThreadSanitizer reports a data race inside it: its node free
// list re-constructs a recycled node (a plain write) while a concurrent pop
// may still load that node's `next` (the tagged-pointer CAS then fails, which
// makes the race benign in practice but not in the C++ memory model). The
// suite runs under TSan and we do not suppress races in the scheduler, so the
// queue is ours. See docs/architecture.md, "Choice of structures".

#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>

#include "libactor/actor.hpp"

namespace libactor::detail {

class inject_queue {
 public:
  void push(actor* a) {
    std::lock_guard lock(mu_);
    q_.push_back(a);
    // release: a worker that reads the new length (acquire) before taking the
    // lock, or a sleeper re-checking after its idle RMW, sees the push.
    len_.store(q_.size(), std::memory_order_release);
  }

  [[nodiscard]] actor* pop() {
    if (empty_hint()) return nullptr;
    std::lock_guard lock(mu_);
    if (q_.empty()) return nullptr;
    actor* a = q_.front();
    q_.pop_front();
    len_.store(q_.size(), std::memory_order_release);  // release: as in push()
    return a;
  }

  [[nodiscard]] bool empty_hint() const noexcept {
    // acquire: pairs with the release stores above.
    return len_.load(std::memory_order_acquire) == 0;
  }

 private:
  std::mutex mu_;
  std::deque<actor*> q_;
  std::atomic<std::size_t> len_{0};
};

}  // namespace libactor::detail
