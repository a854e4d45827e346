#pragma once
// The bound on links between this node's actors and one peer's actors
// (node_config::max_links_per_peer), and on all peers' together
// (max_links_total).
//
// A link costs memory on both of its ends here: an entry in the local
// actor's link set and one in the set of the proxy that stands for the
// peer's actor, and the proxy itself when the peer links from an actor id
// not seen before (about 850 bytes for such a link in all).
// max_links_per_actor bounds one local actor's links; without this budget,
// a peer could multiply it by every actor it may link to (those it spawned:
// max_spawned_per_peer) and hold tens of GiB.
//
// Counted where the memory is: every change of a peer's proxies' link sets
// (core::proxy::on_links_changed), whichever side made it: a link frame, a
// local actor's link() to the peer's actor, an unlink, a linked actor's
// exit passing through the proxy, the proxies terminated when the peer goes
// down. Only the peer's link frames are refused by it: this node's own
// link() calls are the application's to bound, but they count, so the
// figure is the memory held, not an estimate.
//
// Thread-safe: relaxed atomics. The check and the link it admits are not
// one step, but only the peer's connection (one thread at a time) adds
// links on the peer's behalf, so the peer's count exceeds the bound by at
// most the links local actors made meanwhile; connections of different
// peers that pass the node-wide check at once may each go over by one.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace libactor::net::detail {

class link_budget {
 public:
  struct node_total {
    std::atomic<std::int64_t> links{0};
    std::int64_t bound = INT64_MAX;
  };
  enum class verdict : std::uint8_t { admit, peer_full, node_full };

  link_budget(std::shared_ptr<node_total> total, std::int64_t per_peer) noexcept
      : total_(std::move(total)), per_peer_(per_peer) {}

  /// A proxy of the peer gained (delta > 0) or lost links.
  void changed(std::ptrdiff_t delta) noexcept {
    links_.fetch_add(delta, std::memory_order_relaxed);  // relaxed: a polled bound
    total_->links.fetch_add(delta, std::memory_order_relaxed);
  }

  /// Whether the peer may add a link now.
  [[nodiscard]] verdict check() const noexcept {
    // relaxed: a polled bound (above).
    if (links_.load(std::memory_order_relaxed) >= per_peer_) return verdict::peer_full;
    if (total_->links.load(std::memory_order_relaxed) >= total_->bound) return verdict::node_full;
    return verdict::admit;
  }

  [[nodiscard]] std::int64_t links() const noexcept {
    return links_.load(std::memory_order_relaxed);  // relaxed: a gauge
  }

 private:
  const std::shared_ptr<node_total> total_;
  const std::int64_t per_peer_;
  std::atomic<std::int64_t> links_{0};
};

}  // namespace libactor::net::detail
