#pragma once
// The node-wide bound on bytes queued toward peers
// (node_config::max_outbound_bytes_total). Each connection's queue is also
// bounded on its own (max_outbound_bytes); this bounds their sum, so peers
// that stop reading cannot make the node hold max_peers times that.
//
// A connection charges the node's total in steps of `step` bytes: the
// shared counter is written only when its queue crosses a step, not per
// message, so senders on different cores do not contend on it. Over the
// bound, only a connection holding more than its share (the bound over
// max_peers) is refused: peers that stop reading cannot keep the others'
// messages out, and the total stays within about twice the bound (as the
// inbound total, inbound_account.hpp).
//
// Not thread-safe per charge: the owner (a connection) calls it under its
// write lock. The total is shared: relaxed atomics, as a polled bound (two
// connections may both pass the check at once and go over by a step each).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace libactor::net::detail {

struct outbound_total {
  static constexpr std::size_t step = 256 * 1024;
  std::atomic<std::int64_t> steps{0};
  std::int64_t bound_steps = INT64_MAX;
  std::int64_t share_steps = 0;  ///< what a connection holds before the bound applies to it
};

class outbound_charge {
 public:
  explicit outbound_charge(std::shared_ptr<outbound_total> total) noexcept
      : total_(std::move(total)) {}
  ~outbound_charge() { settle(0); }
  outbound_charge(const outbound_charge&) = delete;
  outbound_charge& operator=(const outbound_charge&) = delete;

  /// Whether the connection may hold `queued` bytes: charges the steps they
  /// need and returns true, or charges nothing and returns false when the
  /// total is over its bound and this connection would hold more than its
  /// share.
  bool admit(std::size_t queued) noexcept {
    if (!total_) return true;
    const std::int64_t need = steps_for(queued);
    if (need <= charged_) return true;
    const std::int64_t more = need - charged_;
    // relaxed: a polled bound (header).
    if (need > total_->share_steps &&
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
    return static_cast<std::int64_t>((bytes + outbound_total::step - 1) / outbound_total::step);
  }
  std::shared_ptr<outbound_total> total_;
  std::int64_t charged_ = 0;
};

}  // namespace libactor::net::detail
