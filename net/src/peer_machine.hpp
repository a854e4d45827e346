#pragma once
// One peer's connections as a state machine without I/O: events in (a dial
// started, a handshake finished, node_info arrived, a connection closed, a
// redial timer fired), actions out (dial, send node_info, refuse, close,
// promote, tear down, schedule a redial). The node (node_impl) runs the
// actions; tests drive every order of events without sockets
// (tests/test_peer_machine.cpp).
//
// ## Phases
// - down: no connection in use and none being made. Sends are refused.
// - connecting: the first outgoing attempt is in flight and none is in use.
//   Sends queue until it is promoted (or are dropped, and counted, if it
//   fails). Redials after a loss do not queue: the peer counts as down
//   (its watchers were told) until a connection is promoted again.
// - up: one connection, the primary, carries every frame this node sends to
//   the peer. It is bound to one incarnation of the peer.
//
// ## Which connection wins
// Connections to the same peer can exist at once: both nodes dial each other,
// a user connects to a peer already up, a peer restarts while its old
// connection still looks alive. The rules, applied by both sides, leave at
// most one connection in use, and decide before any data frame is sent on
// the loser (so a pair's messages never switch connections):
// - The dialler sends node_info first, only if it has no connection in use
//   (otherwise it closes the new one: it is redundant).
// - The acceptor answers with its own node_info (accept; it is the first
//   frame the acceptor sends, before anything queued for the peer) or an
//   error frame (refuse). The dialler promotes the connection only on that
//   answer. A user's connect() that turns out to reach this peer is
//   adopted as the outgoing attempt when its handshake finishes.
// - An acceptor with a connection in use to the same incarnation refuses a
//   new one: the peer is already connected. (A peer that found its side of
//   the connection dead while this side did not is let in once this side's
//   heartbeat timeout ends the old connection.)
// - Incarnations are ordered (a node draws its incarnation from the clock
//   when it starts, node.cpp). A newer incarnation replaces the one in use:
//   the old one is torn down (its proxies stop, its asks fail, its watchers
//   hear `node_down`). An older one is refused while a newer one is in use:
//   a process that was replaced cannot come back while its successor runs,
//   and handles to its actors stay dead (node.cpp). When no connection is
//   in use, any incarnation is let in, so no claim of a far-future
//   incarnation can lock a name out.
// - Both nodes dialling at once (neither has a connection in use): the
//   connection dialled by the node whose name sorts first wins. The acceptor
//   whose own dial wins, and has reached the peer (sent node_info on it),
//   refuses the inbound one; otherwise the acceptor accepts it and closes
//   its own attempt. Both sides compare the same two names, and a dial that
//   has not sent node_info cannot have been accepted on the other side, so
//   they agree (Erlang resolves simultaneous connects the same way).
//
// Not thread-safe: the owner (a peer) serializes calls under its mutex.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace libactor::net::detail {

using duration = std::chrono::steady_clock::duration;

/// Names one connection to the node that owns the machine; 0 is none.
using conn_id = std::uint64_t;

struct peer_action {
  enum class kind : std::uint8_t {
    dial,            ///< Start outgoing attempt `conn`.
    send_node_info,  ///< Send this node's node_info on `conn`.
    refuse,          ///< Send an error frame saying `text` on `conn`, then close it; with
                     ///< `duplicate`, the code is duplicate_connection.
    close,           ///< Close `conn` (it lost, or is redundant); `text` says why.
    promote,   ///< `conn` is in use now, bound to `incarnation`: send what queued, tell watchers.
    teardown,  ///< Incarnation `incarnation` is gone: stop its proxies, fail its asks, drop
               ///< queued frames, tell watchers (`text`: why; `graceful`: it said goodbye).
    schedule_redial,  ///< Call redial_due() after `delay`.
    give_up,  ///< `text`'s number of dials in a row failed: no more are made (unless rearmed).
  };
  kind what{};
  conn_id conn = 0;
  std::uint64_t incarnation = 0;
  duration delay{};
  std::string text;
  bool graceful = false;
  bool duplicate = false;
  bool replaced = false;  ///< teardown, refuse: a newer incarnation took the peer's place
  /// teardown: forget() ended the peer (the node says so itself, once);
  /// with `again`, the peer was declared down before and only its proxies
  /// are left to end (not a second loss).
  bool forgotten = false;
  bool again = false;

  friend bool operator==(const peer_action&, const peer_action&) = default;
};

class peer_machine {
 public:
  enum class phase : std::uint8_t { down, connecting, up };

  struct settings {
    /// True when this node's name sorts before the peer's: this node's dial
    /// wins a simultaneous connect.
    bool own_dial_wins = false;
    duration reconnect_min = std::chrono::milliseconds(50);
    duration reconnect_max = std::chrono::seconds(2);
    /// Failed dials in a row after which a peer is given up (0: never),
    /// unless it is pinned.
    unsigned max_failed_dials = 0;
  };

  using actions = std::vector<peer_action>;

  explicit peer_machine(settings s) : s_(s), backoff_(s.reconnect_min) {}

  // --- events ---------------------------------------------------------------

  /// The node can dial the peer (an address is known), and wants a
  /// connection: dials unless one is in use or being made, or the peer was
  /// given up. `next` names the attempt if one is made (the dial action
  /// carries it).
  actions want_connection(conn_id next);
  /// `c`'s handshake finished. `dialled`: this node opened it.
  actions authenticated(conn_id c, bool dialled);
  /// The peer's node_info arrived on `c`, naming incarnation `inc`.
  actions node_info(conn_id c, bool dialled, std::uint64_t inc);
  /// `c` closed (or an attempt failed). `graceful`: the peer said `leaving`.
  actions closed(conn_id c, const std::string& why, bool graceful);
  /// The acceptor refused outgoing attempt `c` because it has, or is making,
  /// another connection with this node (protocol_errc::duplicate_connection).
  /// Not a failure: this side waits for that connection, and redials later
  /// in case it never comes.
  actions duplicate(conn_id c);
  /// A redial scheduled earlier is due; `next` as for want_connection.
  actions redial_due(conn_id next);
  /// This node's own code asked for the peer (node::connect): it is
  /// redialled after every loss, never given up.
  void pin() noexcept {
    pinned_ = true;
    given_up_ = false;
  }
  /// A given-up peer may be dialled again (a handle named it after the
  /// node's cool-down, or at another address): the failed dials count from
  /// zero, and the next attempt is a first one (connecting, not down).
  void rearm() noexcept {
    if (!given_up_) return;
    given_up_ = false;
    failed_dials_ = 0;
    announced_down_ = false;
  }
  /// The node shuts down: everything closes, nothing redials.
  actions stop();
  /// The node forgets the peer to make room in its table (`why` says so):
  /// as stop(), but for this peer alone, not graceful, and always with a
  /// teardown (also of a peer already down: its proxies end with `why`).
  /// Nothing redials.
  actions forget(const std::string& why);

  // --- state ------------------------------------------------------------------

  [[nodiscard]] phase current() const noexcept {
    if (primary_ != 0) return phase::up;
    return (outgoing_ != 0 || awaiting_peer_) && !announced_down_ ? phase::connecting : phase::down;
  }
  [[nodiscard]] conn_id primary() const noexcept { return primary_; }
  [[nodiscard]] conn_id outgoing() const noexcept { return outgoing_; }
  /// The incarnation in use, or the newest one seen (0: never connected).
  [[nodiscard]] std::uint64_t incarnation() const noexcept { return incarnation_; }
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// want_connection() was called (or this node dialled the peer): the
  /// machine dials, or redials after every loss, on its own from then on.
  [[nodiscard]] bool wanted() const noexcept { return want_; }
  /// max_failed_dials dials in a row failed (and the peer is not pinned): it
  /// is not dialled again until it connects here, a dial of this node's own
  /// choosing (node::connect) reaches it, or rearm().
  [[nodiscard]] bool given_up() const noexcept { return given_up_; }
  /// pin() was called: this node's own code wants the peer.
  [[nodiscard]] bool pinned() const noexcept { return pinned_; }
  /// Nothing is connected, being made or scheduled: the node may forget
  /// the peer.
  [[nodiscard]] bool idle() const noexcept {
    return primary_ == 0 && outgoing_ == 0 && !redial_pending_ && !awaiting_peer_;
  }
  [[nodiscard]] duration next_backoff() const noexcept { return backoff_; }

 private:
  void promote(conn_id c, std::uint64_t inc, actions& out);
  void redial(actions& out);
  actions end(const std::string& close_text, const std::string& down_text, bool graceful);

  settings s_;
  conn_id primary_ = 0;
  conn_id outgoing_ = 0;
  bool outgoing_authenticated_ = false;
  std::uint64_t incarnation_ = 0;
  bool announced_down_ = false;  // torn down since the last promote: redials queue nothing
  bool awaiting_peer_ = false;   // the peer's own connection is expected (duplicate())
  bool want_ = false;            // a dial address is known: redial after losses
  bool redial_pending_ = false;
  bool stopped_ = false;
  std::string stop_text_;  // why a stopped machine closes what still comes
  bool given_up_ = false;
  bool pinned_ = false;
  unsigned failed_dials_ = 0;  // in a row, since the last promote
  duration backoff_;
};

}  // namespace libactor::net::detail
