#pragma once
// The global injection queue: runnable actors made runnable by threads that
// are not workers, and overflow from full local queues.
//
// This is Boost.Lockfree's `queue` (the Michael & Scott PODC 1996 MPMC queue
// with tagged pointers and a node free list). It fits exactly: many producers
// (any thread), many consumers (every worker), unbounded, lock-free, and its
// node free list means a steady stream of injections does not allocate. The
// run queues and the mailbox have single-consumer or single-producer shapes
// that Boost.Lockfree does not offer in an intrusive, non-allocating form, so
// they are our own structures.
//
// `size_hint` is an approximate count maintained beside the queue so that
// workers can skip the queue cheaply when it is empty.

#include <atomic>
#include <boost/lockfree/queue.hpp>
#include <cstdint>

#include "libactor/actor.hpp"

namespace libactor::detail {

class inject_queue {
 public:
  inject_queue() : q_(256) {}

  void push(actor* a) noexcept {
    // Allocation of a new node can only fail when memory is exhausted, in
    // which case no recovery is possible for the scheduler.
    while (!q_.push(a)) {
    }
    // release: a worker that sees the new size also sees the pushed node.
    approx_.fetch_add(1, std::memory_order_release);
  }

  [[nodiscard]] actor* pop() noexcept {
    // acquire: pairs with the fetch_add in push().
    if (approx_.load(std::memory_order_acquire) <= 0) return nullptr;
    actor* a = nullptr;
    if (!q_.pop(a)) return nullptr;
    // relaxed: the count is a hint; the queue itself carries the ordering.
    approx_.fetch_sub(1, std::memory_order_relaxed);
    return a;
  }

  [[nodiscard]] bool empty_hint() const noexcept {
    // acquire: as in pop().
    return approx_.load(std::memory_order_acquire) <= 0;
  }

 private:
  boost::lockfree::queue<actor*> q_;
  std::atomic<std::int64_t> approx_{0};
};

}  // namespace libactor::detail
