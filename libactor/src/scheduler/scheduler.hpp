#pragma once
// The interface between the actor system and its two schedulers: the
// work-stealing worker pool (worker_pool.hpp) and the deterministic test
// scheduler (deterministic.hpp).

#include "libactor/actor.hpp"
#include "libactor/detail/driver.hpp"

namespace libactor::detail {

class scheduler {
 public:
  virtual ~scheduler() = default;
  virtual void start() = 0;
  /// Makes `a` runnable. Called exactly once per transition of its mailbox
  /// from blocked to non-empty (or at spawn), from any thread.
  virtual void schedule(actor* a) noexcept = 0;
  /// Called by an activation that goes on to its next message: makes the
  /// actor waiting in the calling worker's run-next slot stealable.
  virtual void release_run_next() noexcept {}
  /// Joins all threads. Called once, after every actor has stopped.
  virtual void stop() noexcept = 0;
  [[nodiscard]] virtual unsigned workers() const noexcept = 0;
  /// See driver.hpp. Schedulers without workers refuse.
  virtual bool install_driver(io_driver*) noexcept { return false; }
  virtual void remove_driver(io_driver*) noexcept {}
  virtual bool poll_driver_if_idle(io_driver*) noexcept { return false; }
};

}  // namespace libactor::detail
