#pragma once
/// @file
/// What another layer needs to stand in for actors that live elsewhere: a
/// proxy base (an actor without a mailbox whose `enqueue` the layer
/// overrides) and a hook that runs deferred work when the current handler
/// returns. The network layer builds its remote handles on these. @internal

#include <chrono>
#include <string>
#include <string_view>

#include "libactor/actor.hpp"
#include "libactor/detail/ref_counted.hpp"
#include "libactor/system.hpp"

namespace libactor {
class actor_system;
}

namespace libactor::detail {

/// Work to run once the current handler has returned.
class LIBACTOR_EXPORT flushable : public ref_counted {
 public:
  virtual void flush() noexcept = 0;
};

/// Delivers the one-way messages this thread's handler has batched for a
/// local receiver. A proxy calls it before it queues a message elsewhere:
/// what the handler sent before must arrive before anything the new message
/// causes (order across receivers within a handler).
LIBACTOR_EXPORT void flush_local_batch() noexcept;

/// Calls `f->flush()` when the handler running on this thread returns,
/// after the handler's batched local sends, and drops the reference it takes
/// on `f`. One flushable is pending per thread: deferring another one
/// flushes the previous one first. Returns false, and does nothing, when no
/// handler runs on this thread; the caller then flushes itself.
LIBACTOR_EXPORT bool flush_after_handler(flushable* f) noexcept;

/// While an ask hands its request to the receiver's `enqueue` (on this
/// thread): when the ask times out (the time_point's max() for a timeout too
/// long to represent). A proxy that keeps state per request (the network
/// layer's request keys) drops it then. Otherwise, as for a request that no
/// ask of this process sends (one forwarded with its asker's identity), the
/// time_point's min(): the asker's deadline is not known here.
LIBACTOR_EXPORT std::chrono::steady_clock::time_point ask_deadline() noexcept;

/// Links `local` (an actor of this process) and `remote` (a proxy) on behalf
/// of the actor `remote` stands for, which linked `local` where it lives:
/// what actor::link does, without `local`'s context. If either has stopped,
/// the other receives its exit signal at once, as with link(). False, and
/// nothing recorded, when `local` already has `max_links` links.
LIBACTOR_EXPORT bool link_on_behalf(actor* local, actor* remote, std::size_t max_links) noexcept;
/// Undoes link_on_behalf (the remote actor called unlink).
LIBACTOR_EXPORT void unlink_on_behalf(actor* local, actor* remote) noexcept;
/// Whether `local` is linked to `remote` now (a link request for a link that
/// is already there changes nothing, whoever asks: linking twice is one link).
LIBACTOR_EXPORT bool linked(actor* local, const actor* remote) noexcept;

/// A layer built on `sys` (a net::node) registers while it exists. An
/// actor_system destroyed while one is registered cannot end well (the layer
/// still uses it): its destructor then stops the process with a message
/// that says so, instead of corrupting memory.
LIBACTOR_EXPORT void attach_layer(actor_system& sys) noexcept;
LIBACTOR_EXPORT void detach_layer(actor_system& sys) noexcept;

/// Logs one line through `sys`'s logger and rate limit (system_config).
LIBACTOR_EXPORT void runtime_log(actor_system& sys, log_level level, log_category category,
                                 std::string_view text) noexcept;

/// An actor without a mailbox that stands for one that lives elsewhere.
/// Monitors and links on it work as on any actor; `terminate` fires them.
/// @threadsafe
class LIBACTOR_EXPORT proxy : public actor {
 public:
  explicit proxy(actor_system& sys) noexcept;

  /// Records that the actor this proxy stands for stopped with `reason`:
  /// its monitors get `down_msg`, linked actors an exit signal, and later
  /// monitor/link calls report it stopped at once. Only the first call counts.
  void terminate(const exit_reason& reason) noexcept;

  /// Ends this proxy's side of its link with `linked`, a local actor, if
  /// there is one: `linked` stopped and its exit signal is on its way to
  /// the actor this proxy stands for, or `linked` received that actor's
  /// exit signal through the link. Either way the link has ended on the
  /// other side; without this, the proxy would keep `linked` (and its
  /// memory) until the proxy itself goes.
  void drop_link(const actor* linked) noexcept;

  /// Drops the watchers of this proxy that have stopped (they wait for
  /// nothing) and returns how many are left.
  std::size_t sweep_monitors() noexcept;

 protected:
  /// Links this proxy holds now (for a derived destructor: on_links_changed
  /// is not called for the ones destroyed with it).
  std::size_t links_held() noexcept;
  /// Refuses `m`: a request is answered with `code` and `text`, the message
  /// is counted as a dead letter and destroyed. Returns `status`.
  send_status refuse(message* m, errc code, std::string text, send_status status) noexcept;
  /// Counts `n` messages lost without a message object (bytes queued for a
  /// connection that broke) as dead letters of this proxy's system.
  void count_dead_letters(std::uint64_t n) noexcept;
};

}  // namespace libactor::detail
