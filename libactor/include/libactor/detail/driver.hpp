#pragma once
/// @file
/// An event source that idle workers wait on instead of sleeping, so that an
/// event (a network read) and the actor it wakes run on the same thread with
/// no hand-off between threads. The network layer installs its I/O context
/// as the driver (Tokio's "park on the I/O driver"). @internal
///
/// ## Contract
/// - At most one worker is inside park() or poll() at a time, so the
///   driver's handlers never run concurrently with each other.
/// - A worker enters park() only when it has nothing else to do; it leaves
///   when an event was handled or unpark() was called. Handlers run on that
///   worker and must not block; actors they make runnable run next on it.
/// - Busy workers call poll() every few dozen activations, so events are
///   handled while every worker has work. A handler that runs for a long
///   time delays them on its worker; the layer that installed the driver
///   keeps its I/O going meanwhile with poll_driver_if_idle() from a thread
///   of its own (the network layer's backstop, net/src/failure_detector.hpp).

#include "libactor/export.hpp"

namespace libactor {
class actor_system;
}

namespace libactor::detail {

class io_driver {
 public:
  virtual ~io_driver() = default;
  /// Blocks until at least one event was handled or unpark() was called.
  virtual void park() noexcept = 0;
  /// Handles the events that are ready, without blocking.
  virtual void poll() noexcept = 0;
  /// Makes a concurrent park() return, or the next one return at once.
  /// Called from any thread.
  virtual void unpark() noexcept = 0;
};

/// Installs `d` as `sys`'s driver. False, and nothing changes, when the
/// system has no worker threads (deterministic mode) or has a driver already.
LIBACTOR_EXPORT bool install_driver(actor_system& sys, io_driver* d) noexcept;

/// Uninstalls `d`; returns once no worker is inside it any more.
LIBACTOR_EXPORT void remove_driver(actor_system& sys, io_driver* d) noexcept;

/// For a thread that is not a worker: if no worker is inside `d` (all of
/// them busy, or asleep without one having taken the driver), handles the
/// events that are ready on the calling thread, then wakes a sleeping
/// worker to take the driver over. False, and nothing done, when a worker
/// is in it or `d` is not installed.
LIBACTOR_EXPORT bool poll_driver_if_idle(actor_system& sys, io_driver* d) noexcept;

}  // namespace libactor::detail
