#pragma once
// The node-wide bound on bytes queued toward peers
// (node_config::max_outbound_bytes_total). Each connection's queue is also
// bounded on its own (max_outbound_bytes); this bounds their sum, so peers
// that stop reading cannot make the node hold max_peers times that.
//
// A connection charges the node's total in whole steps of `step` bytes
// (and so does a peer for the messages queued while it is being connected),
// rounded down: the shared counter is written only when a queue crosses a
// step, and a queue that stays under one step (ask and answer traffic,
// drained after every handler) never writes it, so senders on different
// cores do not contend on it. The count is therefore short by less than a
// step per connection.
//
// Over the bound, a message is refused only toward a peer whose queue
// already holds its share (the bound over max_peers, at least one step):
// peers that stop reading cannot keep the others' messages out, whatever
// their size, and the total stays within about twice the bound plus one
// frame per connection (as the inbound total, inbound_account.hpp).
//
// Not thread-safe per charge: the owner (a connection) calls it under its
// write lock. The total is shared: relaxed atomics, as a polled bound
// (connections that pass the check at once may each go over by a frame).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace libactor::net::detail {

struct outbound_total {
  static constexpr std::size_t step = 256 * 1024;
  std::atomic<std::int64_t> steps{0};
  std::int64_t bound_steps = INT64_MAX;
  std::int64_t share_steps = 1;  ///< what a queue holds before the bound applies to it (>= 1)
};

class outbound_charge {
 public:
  explicit outbound_charge(std::shared_ptr<outbound_total> total) noexcept
      : total_(std::move(total)) {}
  ~outbound_charge() { settle(0); }
  outbound_charge(const outbound_charge&) = delete;
  outbound_charge& operator=(const outbound_charge&) = delete;

  /// Whether a message may take the queue from `before` to `after` bytes:
  /// charges the steps they need and returns true, or charges nothing and
  /// returns false when the total is over its bound and the queue already
  /// held its share.
  bool admit(std::size_t before, std::size_t after) noexcept {
    if (!total_) return true;
    const std::int64_t need = steps_for(after);
    if (need <= charged_) return true;
    const std::int64_t more = need - charged_;
    // relaxed: a polled bound (header).
    if (steps_for(before) >= total_->share_steps &&
        total_->steps.load(std::memory_order_relaxed) + more > total_->bound_steps) {
      return false;
    }
    total_->steps.fetch_add(more, std::memory_order_relaxed);  // relaxed: as above
    charged_ = need;
    return true;
  }
  /// Charges exactly what `queued` bytes need, whatever the bound (bytes
  /// queued already, control frames, or 0 once the connection closed).
  void settle(std::size_t queued) noexcept {
    if (!total_) return;
    const std::int64_t need = steps_for(queued);
    if (need != charged_) {
      total_->steps.fetch_add(need - charged_, std::memory_order_relaxed);  // relaxed: as above
      charged_ = need;
    }
  }
  [[nodiscard]] std::int64_t charged() const noexcept { return charged_; }

 private:
  static std::int64_t steps_for(std::size_t bytes) noexcept {
    return static_cast<std::int64_t>(bytes / outbound_total::step);
  }
  std::shared_ptr<outbound_total> total_;
  std::int64_t charged_ = 0;
};

}  // namespace libactor::net::detail
