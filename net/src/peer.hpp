#pragma once
// Another node, known by name: its connection state machine, the connection
// in use, frames queued while the first connection is made, and the tables
// of what stands for it here (proxies, pending asks, node watchers). The
// node carries out the machine's actions (peer.cpp).

#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it

#include <boost/asio/ip/tcp.hpp>

#include "libactor/detail/proxy.hpp"
#include "link_budget.hpp"
#include "outbound_total.hpp"
#include "peer_machine.hpp"
#include "token_bucket.hpp"

namespace libactor::net::detail {

namespace core = libactor::detail;

class node_impl;
class connection;
class remote_proxy;

/// Resolves a blocking node::connect() with the peer's name or an error.
using waiter = std::shared_ptr<std::promise<expected<std::string>>>;

class peer final : public core::flushable {
 public:
  peer(node_impl* n, std::weak_ptr<node_impl> owner, std::string name, peer_machine::settings s,
       std::shared_ptr<link_budget::node_total> links_total, std::int64_t max_links,
       std::shared_ptr<outbound_total> outbound)
      : links_(std::move(links_total), max_links),
        node_(n),
        owner_(std::move(owner)),
        name_(std::move(name)),
        machine_(s),
        pending_charge_(std::move(outbound)) {}
  /// Writes what the current handler queued for the peer (core::flushable).
  void flush() noexcept override;
  struct request;
  /// Removes and returns the ask waiting for the answer with `key`.
  std::optional<request> take_request(std::uint64_t key);

  /// Proxies are keyed by actor id and incarnation: while the first
  /// connection is made, handles of different incarnations can arrive.
  struct proxy_key {
    std::uint64_t id;
    std::uint64_t incarnation;
    bool operator==(const proxy_key&) const = default;
  };
  struct proxy_key_hash {
    std::size_t operator()(const proxy_key& k) const noexcept {
      return std::hash<std::uint64_t>{}(k.id * 0x9e3779b97f4a7c15ull ^ k.incarnation);
    }
  };
  struct request {
    actor_ref asker;
    std::uint64_t id;
    /// When the ask times out (its asker stops waiting): the entry goes.
    std::chrono::steady_clock::time_point expires = std::chrono::steady_clock::time_point::max();
  };
  /// Moves the requests whose asks timed out, or whose asker has stopped
  /// (it waits for nothing, and its entry must not keep its memory), into
  /// `out` (caller holds mu_; `out` must be released after mu_: an asker's
  /// last reference may run code that takes it). A later answer is a dead
  /// letter.
  void expire_requests(std::chrono::steady_clock::time_point now, std::vector<request>& out) {
    for (auto it = requests_.begin(); it != requests_.end();) {
      if (it->second.expires <= now ||
          core::actor_access::stopped(core::actor_access::get(it->second.asker))) {
        out.push_back(std::move(it->second));
        it = requests_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Links held by this peer's proxies (link_budget.hpp); thread-safe.
  link_budget links_;

  // Everything below is guarded by mu_.
  std::mutex mu_;
  node_impl* node_;                       // null after the node shut down
  const std::weak_ptr<node_impl> owner_;  // for use outside mu_
  const std::string name_;
  peer_machine machine_;
  std::shared_ptr<connection> primary_;  // the machine's primary, once promoted
  std::string adv_host_;                 // from the peer's node_info
  std::uint16_t adv_port_ = 0;
  std::optional<boost::asio::ip::tcp::endpoint> dial_;  // where to (re)dial
  // Frames queued while the first connection is made; `pending_inc_` is
  // the incarnation they were addressed to (0: any, only the service).
  std::vector<std::byte> pending_;
  // Control frames (watch, link, unlink, down) queued meanwhile, each with
  // the incarnation its proxy stands for (0: any): at promotion those for
  // the process that answered go out before the messages, whatever
  // becomes of the messages, so a monitor made while connecting is not
  // lost with messages queued for another incarnation.
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> pending_control_;
  std::size_t pending_control_bytes_ = 0;
  // What pending_ and pending_control_ hold, charged to the node's
  // outbound total as a connection's queue is (max_outbound_bytes_total):
  // settled whenever they change size.
  outbound_charge pending_charge_;
  std::uint64_t pending_msgs_ = 0;
  std::uint64_t pending_inc_ = 0;
  std::unordered_map<proxy_key, remote_proxy*, proxy_key_hash> proxies_;  // not owned
  // Proxies that hold themselves for their watchers (remote_proxy::hold):
  // the node's sweep lets go of those whose watchers all stopped.
  std::unordered_set<remote_proxy*> held_;
  remote_proxy* service_ = nullptr;
  remote_proxy* anonymous_ = nullptr;
  std::uint64_t next_key_ = 0;
  std::unordered_map<std::uint64_t, request> requests_;
  std::vector<actor_ref> watchers_;  // node monitors
  // Lines logged about this peer (node_impl::log_about): a peer whose
  // connection flaps cannot flood the log.
  static constexpr double log_burst = 20;
  static constexpr double log_every_s = 10;
  token_bucket log_budget_{log_burst, 1.0 / log_every_s};
  std::uint64_t log_held_ = 0;
  /// Moves the watchers that have stopped into `out` (caller holds mu_;
  /// `out` must be released after mu_, as for expire_requests).
  void prune_watchers(std::vector<actor_ref>& out) {
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      if (core::actor_access::stopped(core::actor_access::get(*it))) {
        out.push_back(std::move(*it));
        it = watchers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::vector<waiter> waiters_;     // connect() calls waiting for the peer's own connection
  std::uint64_t stale_logged_ = 0;  // the last refused incarnation logged
  bool mismatch_logged_ = false;    // "the address now hosts another node" logged
  bool refused_logged_ = false;     // a refusal by the peer logged (until connected again)
  // Set when the node took the peer out of its table for a node that
  // connected (node_impl::get_peer): why its handles fail. Whoever finds it
  // set holds a peer the table no longer has, and asks the table again.
  std::string forgotten_;
};

}  // namespace libactor::net::detail
