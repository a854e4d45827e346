#pragma once
// Failure detection: when a peer counts as down, and what keeps this node's
// own heartbeats and reads flowing while its actors are busy.
//
// A connection's timer fires every heartbeat_interval: it sends a
// heartbeat, and closes the connection when nothing at all (heartbeat or
// data) arrived for heartbeat_timeout, or when the handshake and the
// node_info exchange took longer than handshake_timeout. The timeout must
// be at least three intervals (node_config checks it): a peer is declared
// down only after several heartbeats in a row were missed, not after one
// late one. The defaults (500 ms, 3 s: six heartbeats) detect a dead peer
// within 3.5 s and ride out a peer stalled by a long garbage-collection-like
// pause of its host of a few seconds.
//
// Heartbeats are handled on the I/O driver, which idle workers take turns
// to wait in (libactor/detail/driver.hpp). When the worker that handled an
// event runs the actor it woke and that handler runs for seconds, no worker
// may be left in the driver: the other workers sleep on their condition
// variables. The backstop is a thread that checks every quarter heartbeat
// interval whether a worker is in the driver; if none is, it handles what
// is ready itself and wakes a sleeping worker to take the driver over. So
// heartbeats and reads keep flowing whatever the handlers do, and an idle
// node costs the backstop four wake-ups a second at the default interval.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "libactor/actor.hpp"

namespace libactor::detail {
class io_driver;
}

namespace libactor::net::detail {

/// What a connection's timer does now.
struct liveness_verdict {
  bool send_heartbeat = false;
  const char* close_reason = nullptr;  ///< Set: close the connection, for this reason.
};

/// `promoted`: the connection is in use (heartbeats flow); before that the
/// handshake deadline applies.
[[nodiscard]] inline liveness_verdict check_liveness(time_point now, time_point started,
                                                     time_point last_received, bool promoted,
                                                     duration handshake_timeout,
                                                     duration heartbeat_timeout) noexcept {
  if (!promoted) {
    if (now - started > handshake_timeout) return {false, "handshake timed out"};
    return {};
  }
  if (now - last_received > heartbeat_timeout) {
    return {false, "no frame within the heartbeat timeout"};
  }
  return {true, nullptr};
}

/// The thread that keeps a driven node's I/O running (see above).
class io_backstop {
 public:
  io_backstop(actor_system& sys, libactor::detail::io_driver& d, duration period);
  ~io_backstop();
  io_backstop(const io_backstop&) = delete;
  io_backstop& operator=(const io_backstop&) = delete;
  /// Stops and joins the thread (idempotent).
  void stop();

 private:
  void run();
  actor_system& sys_;
  libactor::detail::io_driver& driver_;
  const duration period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace libactor::net::detail
