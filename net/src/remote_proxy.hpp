#pragma once
// Handles to actors of other nodes: a remote_proxy stands for an actor of one
// incarnation of a peer and encodes what is sent to it onto the peer's
// connection; a dead_proxy stands for a handle that was dead when it arrived
// (a node down, an incarnation replaced) and stays dead wherever it goes;
// the drain counts and answers messages that reach no actor on this node.

#include <atomic>
#include <cstdint>
#include <string>

#include "libactor/detail/proxy.hpp"
#include "libactor/detail/ref_counted.hpp"
#include "libactor/net/frame.hpp"
#include "protocol.hpp"

namespace libactor::net::detail {

namespace core = libactor::detail;

class peer;

/// Stands for an actor on another node. Its enqueue encodes the message and
/// queues the frame on the peer's connection.
class remote_proxy final : public core::proxy {
 public:
  enum class role : std::uint8_t {
    actor,      ///< An actor with an id on the peer.
    service,    ///< The peer's service actor (wire id 0).
    anonymous,  ///< A requester outside any actor on the peer: only replies reach it.
  };
  /// `incarnation`: the peer process the actor lives in (0 for the service
  /// and anonymous roles, which stand for whichever process is connected).
  remote_proxy(actor_system& sys, core::ref_ptr<peer> p, std::uint64_t remote_id,
               std::uint64_t incarnation, role r);
  ~remote_proxy() override;
  send_status enqueue(core::message* m) noexcept override;

  /// Marks the proxy unreachable, then fires its monitors and links.
  void kill(const exit_reason& reason) noexcept;
  /// Lets go of the reference the proxy holds to itself for its watchers
  /// (held_) if none of them is still running (the node's sweep).
  void release_if_unwatched() noexcept;
  [[nodiscard]] bool dead() const noexcept {
    return dead_.load(std::memory_order_acquire);  // acquire: pairs with kill()
  }

  const core::ref_ptr<peer> peer_;
  const std::uint64_t remote_id_;
  const std::uint64_t incarnation_;
  const role role_;

 protected:
  void on_watched() noexcept override;
  void on_linked(actor* local) noexcept override;
  void on_unlinked(actor* local) noexcept override;
  void on_links_changed(std::ptrdiff_t delta) noexcept override;
  void on_stop_request(const exit_reason& reason) noexcept override;

 private:
  void send_link_frame(frame_kind kind, actor* local) noexcept;
  /// Ends the hold (held_ already cleared): unregisters it from the peer
  /// and releases its reference, which may be the last.
  void let_go() noexcept;
  /// refuse(), and for an answer (a response), an error answer in its place.
  send_status refuse_reply(core::message* m, errc code, std::string text,
                           send_status status) noexcept;

  std::atomic<bool> dead_{false};
  std::atomic<bool> watch_sent_{false};
  // Set while the proxy holds a reference to itself: from its first watch
  // until it is killed. A monitor does not hold what it watches, and a
  // local actor that monitored a remote handle and let it go must still
  // get its down_msg (the proxy is what the peer's `down` finds).
  std::atomic<bool> held_{false};
  std::string why_;  // the kill reason; written before dead_ is set, read after it is seen
};

/// A handle that named a dead actor when it arrived: of a node that is down,
/// of an incarnation that was replaced, of this node's own earlier
/// incarnation. It is stopped from the start (monitors fire at once), every
/// send is refused, and it encodes as the handle it came as, so it stays
/// dead on every node it is passed to.
class dead_proxy final : public core::proxy {
 public:
  dead_proxy(actor_system& sys, handle_fields f, errc code, const exit_reason& why);
  send_status enqueue(core::message* m) noexcept override {
    return refuse(m, code_, text_, send_status::dead_letter);
  }
  const handle_fields fields_;

 private:
  const errc code_;
  const std::string text_;
};

/// A local stand-in used to count and answer messages that reach no actor.
class drain final : public core::proxy {
 public:
  using core::proxy::proxy;
  send_status enqueue(core::message* m) noexcept override {
    return refuse(m, errc::receiver_down, "no such actor on this node", send_status::dead_letter);
  }
  send_status drop(core::message* m, errc code, std::string text, send_status status) noexcept {
    return refuse(m, code, std::move(text), status);
  }
  void lost(std::uint64_t n) noexcept { count_dead_letters(n); }
};

}  // namespace libactor::net::detail
