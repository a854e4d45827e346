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
///   handled while every worker has work (a handler that runs for a long
///   time delays them, as it delays everything else on its worker).

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

}  // namespace libactor::detail
