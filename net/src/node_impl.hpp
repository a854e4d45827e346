#pragma once
// The node: what ties the network layer's mechanisms together. Each has its
// own file:
//   peer_machine.*     one peer's connections as pure transitions
//   peer.*             a peer's state, and the machine's actions carried out
//   connection.*       the transport: socket, handshake, frames in and out
//   session.*          what frames mean after the handshake
//   failure_detector.* liveness checks and the I/O backstop
//   dialer.cpp         outgoing connections and redials
//   address_filter.*   which addresses a peer's message may make this node dial
//   given_up.*         addresses given up, not dialled again for a while
//   export_table.*     the local actors peers may address
//   service.cpp        the service actor (lookup, spawn, export notices)
//   remote_proxy.*     handles to actors of other nodes
//   node.cpp           start, shutdown, handles on the wire, the public facade
// Threads: one thread at a time runs the io_context (a worker parked in the
// driver, the backstop, or the node's own thread): accepts, connects, reads,
// timers, closes, and every peer machine event. Actor workers encode and
// queue outgoing messages and write them when their handler returns.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "address_filter.hpp"
#include "connection.hpp"
#include "export_table.hpp"
#include "failure_detector.hpp"
#include "given_up.hpp"
#include "libactor/detail/driver.hpp"
#include "libactor/net/node.hpp"
#include "outbound_total.hpp"
#include "peer.hpp"
#include "refusals.hpp"
#include "remote_proxy.hpp"
#include "tls_channel.hpp"
#include "token_bucket.hpp"

namespace libactor::net::detail {

/// A node_config count or size as a signed bound: SIZE_MAX (or anything
/// past INT64_MAX) means no bound, not a negative one.
inline std::int64_t as_bound(std::size_t v) noexcept {
  return static_cast<std::int64_t>(std::min<std::size_t>(v, INT64_MAX));
}

/// The node's io_context as the actor system's I/O driver: idle workers
/// wait in epoll, and a message read runs its actor on the same thread.
class asio_driver final : public core::io_driver {
 public:
  explicit asio_driver(asio::io_context& io) : io_(io) {}
  void park() noexcept override {
    // One handler, then every other one already ready: an epoll_wait may
    // return several events, and only the worker in the driver runs them.
    // (run_one() alone saves one epoll_wait per message in a ping-pong,
    // 1-2 us of a round trip, but leaves the rest of a batch to wait until
    // this worker comes back while the others sleep: eight ready actors of
    // 100 ms took 801 ms on two workers instead of 401.)
    try {
      if (io_.run_one() != 0) io_.poll();
    } catch (...) {
    }
  }
  void poll() noexcept override {
    try {
      io_.poll();
    } catch (...) {
    }
  }
  void unpark() noexcept override {
    try {
      asio::post(io_, [] {});
    } catch (...) {
    }
  }

 private:
  asio::io_context& io_;
};

/// "address:port", for log lines.
std::string endpoint_text(const tcp::endpoint& ep);

class node_impl final : public handle_context, public std::enable_shared_from_this<node_impl> {
 public:
  node_impl(actor_system& sys, node_config cfg);
  ~node_impl();
  void start();
  void shutdown();

  // Handles on the wire (node.cpp).
  void encode_handle(writer& w, const actor_ref& h) override;
  bool decode_handle(reader& r, actor_ref& h) override;

  void log(const std::string& line);
  /// A line about `p` (up, down, closed, refused): within p's own rate
  /// limit, so that one peer whose connection flaps cannot flood the log.
  /// Takes p.mu_.
  void log_about(peer& p, const std::string& line);
  /// A frame from `p` that the authorization rules refuse: counted, and
  /// logged once per rule and peer within a rate limit (refusals.hpp).
  void refuse(const peer& p, std::string_view rule, const std::string& text);

  // Peers (peer.cpp).
  /// Who asks for a peer entry, which decides what it may displace when the
  /// table is full.
  enum class admission : std::uint8_t {
    own,        ///< This node's own calls: the entry is made whatever the bound.
    named,      ///< A name a message gave (a handle): only an idle peer makes room.
    connected,  ///< A node that connected and authenticated (I/O thread only): may
                ///< also displace a peer that nothing on this node needs.
  };
  /// The peer named `name`, created on first use. When the table holds
  /// node_config::max_peers, a peer with nothing left to do is forgotten to
  /// make room. A node that connects and still finds no room displaces the
  /// oldest peer nothing here needs (not up, no authenticated connection,
  /// not pinned by node::connect, no node monitor, no connect() waiting; one
  /// already down first): its handles fail with node_down saying why, so
  /// names a peer sends cannot keep nodes that hold the secret out. Null if
  /// there is no room (never for `own`).
  core::ref_ptr<peer> get_peer(const std::string& name, admission how = admission::own);
  core::ref_ptr<peer> find_peer(std::string_view name);
  std::uint64_t peer_count() {
    std::lock_guard lock(peers_mu_);
    return peers_.size();
  }
  /// Actors watching peers (node::monitor_node) that have not stopped, and
  /// asks waiting for peers' answers.
  std::pair<std::uint64_t, std::uint64_t> watchers_and_requests() {
    std::vector<actor_ref> stopped;  // released after both locks
    std::lock_guard lock(peers_mu_);
    std::uint64_t watchers = 0, requests = 0;
    for (auto& [name, p] : peers_) {
      std::lock_guard plock(p->mu_);  // peers_mu_ before a peer's mutex
      p->prune_watchers(stopped);
      watchers += p->watchers_.size();
      requests += p->requests_.size();
    }
    return {watchers, requests};
  }
  /// Records where `p` listens and asks its machine for a connection.
  void want_connection(const core::ref_ptr<peer>& p, const tcp::endpoint& ep);
  /// A proxy (owned reference) for actor `id` of incarnation `inc` of `p`:
  /// a dead one when `p` is down or connected to another incarnation.
  /// `origin`: the handle it was decoded from, if any (a dead one keeps its
  /// address). `why_down`: why a dead one is dead, when `p` is down.
  actor* proxy_for(peer& p, std::uint64_t id, std::uint64_t inc, remote_proxy::role r,
                   const handle_fields* origin = nullptr, const std::string* why_down = nullptr);
  /// Queues a control frame on `p`'s connection, or with what waits for
  /// the first one. Caller holds p.mu_.
  /// Queues a control frame for `p` (caller holds p.mu_); `incarnation`:
  /// the process it is about (0: whichever is connected).
  void send_control(peer& p, frame_kind kind, std::span<const std::byte> payload,
                    std::uint64_t incarnation = 0);

  // Events from connections (I/O thread; peer.cpp).
  void on_authenticated(const std::shared_ptr<connection>& c);
  void on_node_info(const std::shared_ptr<connection>& c, const node_info_fields& info);
  void on_refused(const std::shared_ptr<connection>& c, const protocol_error& e);
  /// `line`: what the connection logs about its end (empty: nothing); the
  /// node logs it, saying in the same line whether the peer is now down.
  void on_closed(const std::shared_ptr<connection>& c, const std::string& why, bool graceful,
                 const std::string& line);

  // Dialling (dialer.cpp).
  conn_id next_conn() noexcept {
    return next_conn_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a unique number
  }
  void dial(core::ref_ptr<peer> p, tcp::endpoint ep, waiter w, conn_id id);
  void schedule_redial(const core::ref_ptr<peer>& p, duration delay);
  /// Every heartbeat interval, drops the request keys of every peer whose
  /// asks timed out (or forwarded_request_timeout passed), whatever the
  /// peer's phase: an answer that comes later finds none and is dropped as
  /// late (node.cpp).
  void sweep_requests();

  // Exports (service.cpp).
  /// Exports a local actor and returns its wire id: peers that get a
  /// handle to it may now address it. `spawner`: the peer (incarnation
  /// `spawner_inc`) that spawned it.
  /// `spawner_gone`, when given, is set if that spawner had gone down (the
  /// actor was not recorded as its).
  std::uint64_t export_local(actor* a, peer* spawner = nullptr, std::uint64_t spawner_inc = 0,
                             bool* spawner_gone = nullptr);
  /// Lets any peer that can address `a` stop it.
  void allow_remote_stop(actor* a);
  /// `a` keeps running when the peer that spawned it goes down.
  void detach(actor* a);
  /// An actor exported for the first time (`e.fresh`) is monitored by the
  /// service, which drops its entry when it stops.
  void monitor_if_fresh(const export_table::added& e, actor* a);
  actor_ref find_exported(std::uint64_t wire_id) { return exports_.find(wire_id); }
  /// Records that `p` watches `wire_id`; false (and `p` is sent `down`)
  /// when no actor is exported under it.
  bool add_watch(peer& p, std::uint64_t wire_id);
  void local_down(std::uint64_t actor_id, const exit_reason& reason);
  actor_ref make_service();

  void forget(connection* c);
  /// An accepted connection `id` from `addr` may start its handshake: false
  /// (and logged, counted) when `addr` holds its share of the caps on
  /// unauthenticated connections (node_config::max_unauthenticated). When
  /// the overall cap is reached, the oldest connection of the address with
  /// the most makes room, if it has more than `addr`. I/O thread.
  bool admit(const std::string& addr, conn_id id);
  /// Takes a token for a TLS handshake from `addr`: false when over
  /// tls.max_handshakes_per_second, overall or for the address.
  bool tls_handshake_allowed(const std::string& addr);
  /// Closes the oldest unauthenticated connection of the address holding
  /// the most, if it holds more than `newcomer_holds`; true if a slot is
  /// free then.
  bool evict_unauthenticated(std::size_t newcomer_holds);
  /// `c` authenticated or closed: it no longer counts against the caps.
  void admitted(connection& c);

  actor_system& sys_;
  const node_config cfg_;
  const std::uint64_t incarnation_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  asio_driver driver_{io_};
  bool driven_ = false;  // the system's workers run io_; otherwise thread_ does
  std::thread thread_;
  std::optional<io_backstop> backstop_;
  std::vector<std::shared_ptr<asio::steady_timer>> redials_;  // pending (I/O side)
  std::shared_ptr<asio::steady_timer> sweep_;                 // sweep_requests (I/O side)
  core::ref_ptr<drain> drain_;
  actor_ref service_;
  // Set once by shutdown(). acquire loads: a handler that sees it also sees
  // what shutdown did before (it only decides whether to start new work, so
  // a stale false just starts work that shutdown's close then ends).
  std::atomic<bool> stopping_{false};
  std::atomic<conn_id> next_conn_{1};

  /// Forgets one peer that nothing refers to and that has nothing to do,
  /// looking at no more than eviction_checks entries; false if none was
  /// found. Caller holds peers_mu_.
  bool make_room();
  /// Takes the oldest peer that nothing on this node needs (see get_peer;
  /// one already down first) out of the table, marked forgotten for
  /// `newcomer`, and returns it, to be ended by its machine once peers_mu_
  /// is released; null if there is none. Caller holds peers_mu_, on the I/O
  /// thread (it reads conns_).
  core::ref_ptr<peer> displace_unneeded(const std::string& newcomer);
  static constexpr std::size_t eviction_checks = 16;
  /// Addresses whose peer was given up (max_failed_dials): for a minute a
  /// handle naming one, or any port of a host with four of them, dials
  /// nothing (given_up.hpp).
  given_up_addresses given_up_{4096, std::chrono::seconds(60), 4};

  std::mutex peers_mu_;
  std::unordered_map<std::string, core::ref_ptr<peer>> peers_;
  std::deque<std::string> evict_order_;  // peers_'s names, oldest first (under peers_mu_)
  std::condition_variable peer_up_;      // with peers_mu_: a peer came up (await_peer)
  std::unordered_map<conn_id, std::shared_ptr<connection>> conns_;  // I/O thread only
  // Accepted connections not yet authenticated, in all and by address (I/O thread).
  // Ids by address, oldest first.
  std::size_t unauthenticated_ = 0;
  std::unordered_map<std::string, std::deque<conn_id>> unauthenticated_by_addr_;

  export_table exports_;
  refusals refusals_;
  const address_filter dial_allow_{cfg_.dial_allow};
  /// The bytes all connections delivered and actors have not handled yet
  /// (node_config::max_inbound_bytes_total; inbound_account.hpp).
  const std::shared_ptr<inbound_account::node_total> inbound_total_ = [this] {
    auto t = std::make_shared<inbound_account::node_total>();
    t->bound = as_bound(cfg_.max_inbound_bytes_total);
    t->share = t->bound / as_bound(cfg_.max_peers);
    return t;
  }();
  /// The bytes all connections hold toward peers, in steps
  /// (node_config::max_outbound_bytes_total; outbound_total.hpp).
  const std::shared_ptr<outbound_total> outbound_total_ = [this] {
    auto t = std::make_shared<outbound_total>();
    t->bound_steps = as_bound(cfg_.max_outbound_bytes_total / outbound_total::step);
    // At least a step: a queue under one step is never refused.
    t->share_steps = std::max<std::int64_t>(1, t->bound_steps / as_bound(cfg_.max_peers));
    return t;
  }();
  /// The links all peers' proxies hold (node_config::max_links_total;
  /// link_budget.hpp).
  const std::shared_ptr<link_budget::node_total> links_total_ = [this] {
    auto t = std::make_shared<link_budget::node_total>();
    t->bound = as_bound(cfg_.max_links_total);
    return t;
  }();
  /// Bytes the connections' read buffers hold (node_stats::read_buffer_bytes).
  const std::shared_ptr<std::atomic<std::int64_t>> read_buffers_ =
      std::make_shared<std::atomic<std::int64_t>>(0);
  /// Set when node_config::tls is: what every connection's TLS shares.
  const std::unique_ptr<tls_context> tls_ =
      cfg_.tls.enabled() ? std::make_unique<tls_context>(cfg_.tls, cfg_.name, cfg_.aes_gcm)
                         : nullptr;
  // TLS handshakes accepted, in all and per address (I/O thread).
  token_bucket tls_all_{static_cast<double>(cfg_.tls.max_handshakes_per_second),
                        static_cast<double>(cfg_.tls.max_handshakes_per_second)};
  std::unordered_map<std::string, token_bucket> tls_by_addr_;

  std::mutex fac_mu_;
  std::unordered_map<std::string, node::factory> factories_;

  struct counters {
    std::atomic<std::uint64_t> accepted{0}, dialled{0}, handshakes_failed{0}, protocol_errors{0},
        peers_up{0}, node_downs{0}, messages_out{0}, messages_in{0}, writes{0}, unreachable{0},
        overloaded{0}, not_serializable{0}, unknown_types{0}, undecodable{0}, read_pauses{0},
        connections_refused{0}, connections_evicted{0}, peers_displaced{0};
  } stats_;

  /// Runs `event` on p's machine under p's lock, with the state changes of
  /// its actions (so that a sender never sees the machine and the peer's
  /// connection disagree); then, unlocked, their effects on connections,
  /// proxies, asks and watchers. Returns whether the peer was torn down.
  using event = std::function<peer_machine::actions(peer_machine&)>;
  bool drive(const core::ref_ptr<peer>& p, const event& e, const std::string& log_line = {});
  struct effects;

 private:
  void stage(peer& p, const peer_machine::actions& acts, effects& fx);
  bool finish(const core::ref_ptr<peer>& p, effects& fx, const std::string& log_line);
  std::shared_ptr<connection> find_conn(conn_id id);
};

}  // namespace libactor::net::detail
