#pragma once
/// @file
/// Inbound flow control: how many bytes of the messages one connection
/// delivered are still queued in mailboxes or being handled.
///
/// ## Purpose
/// A peer that sends faster than this node's actors handle would otherwise
/// grow their mailboxes without bound (a flood of valid messages is not bad
/// input). Each message decoded from a connection is charged to the
/// connection's account, and gives its bytes back when it is destroyed
/// (handled, or dropped). While the account holds more than its bound the
/// connection stops reading: the peer's writes then stall in TCP, and its
/// own outbound bound turns that into back-pressure on its senders. Reading
/// resumes when the account is down to half the bound.
///
/// ## Algorithm
/// The reader (the I/O thread) charges, then checks over(); if so it calls
/// pause(), which sets `paused_` and reads `queued_` again. A release (any
/// thread) subtracts from `queued_` and then reads `paused_`. Both pairs are
/// sequentially consistent, so at least one side sees the other's write:
/// either pause() finds the account already drained and the reader reads
/// on, or the release that brings it under half the bound finds `paused_`
/// set; the `exchange` makes exactly one of them resume. The account lives
/// as long as its connection or any message charged to it (`refs_`).
///
/// ## The node's total
/// Every account of a node also adds to one node-wide total, bounded by
/// node_config::max_inbound_bytes_total, so that many connections (or one
/// peer's successive connections) cannot multiply the per-connection
/// bound. Over the total, only connections holding more than their share
/// (the bound over max_peers) stop: a peer that floods does not stop the
/// reading of one that sends a lookup. So the total stays within twice its
/// bound (each of at most max_peers connections reads on while within its
/// share), plus what one read brings in per connection. A reader over the
/// total stops without pause(): no release of its own account need ever
/// come, so its connection's heartbeat tick, which runs on the same
/// thread, resumes it once the total is down to half or its own bytes to
/// its share (over_total()). The total is read relaxed: that resumption is
/// a poll, and the poll retries.
///
/// ## Threads
/// charge(), over() and pause(): the connection's reader. release(): any
/// thread.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "libactor/detail/message.hpp"

namespace libactor::net::detail {

class inbound_account {
 public:
  /// The node-wide total and its bound (inbound_account's header).
  struct node_total {
    std::atomic<std::int64_t> queued{0};
    std::int64_t bound = INT64_MAX;
    std::int64_t share = 0;  ///< what a connection holds before the total stops it
  };

  /// `bound`: bytes above which reading stops; it resumes at half.
  /// `total`: the node's, which this account adds to (may be null).
  explicit inbound_account(std::int64_t bound, std::shared_ptr<node_total> total = nullptr) noexcept
      : bound_(bound), resume_at_(bound / 2), total_(std::move(total)) {}
  inbound_account(const inbound_account&) = delete;
  inbound_account& operator=(const inbound_account&) = delete;

  /// A message of `bytes` was delivered from the connection.
  void charge(std::uint32_t bytes) noexcept {
    refs_.fetch_add(1, std::memory_order_relaxed);  // relaxed: the caller holds a reference
    // relaxed: the total is polled (see the header).
    if (total_) total_->queued.fetch_add(bytes, std::memory_order_relaxed);
    // seq_cst: see the header (pairs with the loads in release()).
    queued_.fetch_add(bytes, std::memory_order_seq_cst);
  }
  /// A message charged with `bytes` was destroyed. May resume the reader.
  void release(std::uint32_t bytes) noexcept {
    if (total_) total_->queued.fetch_sub(bytes, std::memory_order_relaxed);  // relaxed: polled
    // seq_cst (both): the store-load pair of the header's argument.
    const std::int64_t after = queued_.fetch_sub(bytes, std::memory_order_seq_cst) - bytes;
    if (after <= resume_at_ && paused_.load(std::memory_order_seq_cst) &&
        paused_.exchange(false, std::memory_order_seq_cst)) {
      resume();
    }
    drop();
  }
  /// Over this account's bound, or over the node's total.
  [[nodiscard]] bool over() const noexcept { return over_own() || over_total(); }
  [[nodiscard]] bool over_own() const noexcept {
    return queued_.load(std::memory_order_relaxed) > bound_;  // relaxed: the reader's own charges
  }
  /// The node's total is over its bound and this account holds more than
  /// its share; once over, the total counts as over until down to half (so
  /// that readers do not resume one message at a time).
  [[nodiscard]] bool over_total() const noexcept {
    if (!total_) return false;
    // relaxed: polled (see the header); the own count is the reader's.
    const auto q = total_->queued.load(std::memory_order_relaxed);
    const bool total_over = q > total_->bound || (total_paused_ && q > total_->bound / 2);
    return total_over && queued_.load(std::memory_order_relaxed) > total_->share;
  }
  /// The reader stopped for the node's total (over_total), or goes on.
  void set_total_paused(bool paused) noexcept { total_paused_ = paused; }
  /// The reader stops. True when it stays stopped (resume() comes later);
  /// false when the messages were handled meanwhile and it reads on.
  [[nodiscard]] bool pause() noexcept {
    paused_.store(true, std::memory_order_seq_cst);
    return !(queued_.load(std::memory_order_seq_cst) <= resume_at_ &&
             paused_.exchange(false, std::memory_order_seq_cst));
  }
  [[nodiscard]] std::int64_t queued() const noexcept {
    return queued_.load(std::memory_order_relaxed);  // relaxed: a reading for statistics
  }
  /// Gives up one reference (the connection's, or a message's).
  void drop() noexcept {
    // acq_rel: the last owner sees every other owner's writes before it deletes.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 protected:
  virtual ~inbound_account() = default;
  /// Reading may go on. Called once per pause that stayed, on the thread of
  /// the release that brought the account down to half its bound.
  virtual void resume() noexcept = 0;

 private:
  std::atomic<std::int64_t> queued_{0};
  std::atomic<std::int64_t> refs_{1};  // the connection's, plus one per message charged
  std::atomic<bool> paused_{false};
  const std::int64_t bound_;
  const std::int64_t resume_at_;
  const std::shared_ptr<node_total> total_;
  bool total_paused_ = false;  // the reader's
};

/// A message whose bytes are charged to an inbound account until it is
/// destroyed.
template <class T>
struct accounted_message final : libactor::detail::typed_message<T> {
  using libactor::detail::typed_message<T>::typed_message;
  inbound_account* account = nullptr;
  std::uint32_t bytes = 0;

  static void destroy_fn(libactor::detail::message* m) noexcept {
    auto* self = static_cast<accounted_message*>(m);
    inbound_account* a = self->account;
    const std::uint32_t b = self->bytes;
    libactor::detail::destroy_message(self);
    a->release(b);  // after the payload is freed: the bytes are gone
  }
};

/// make_message, with the message's `bytes` charged to `account`.
template <class T>
libactor::detail::message* make_accounted_message(libactor::detail::msg_kind kind, actor* sender,
                                                  std::uint64_t request_id,
                                                  inbound_account* account, std::uint32_t bytes,
                                                  T&& value) {
  using am = accounted_message<std::remove_cvref_t<T>>;
  am* m = libactor::detail::construct_message<am>(kind, sender, request_id, std::forward<T>(value));
  // The block itself counts: a payload with large inline storage is small
  // on the wire and large here.
  const std::uint64_t total = std::uint64_t{bytes} + sizeof(am);
  m->account = account;
  m->bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(total, 0xffffffffu));
  bytes = m->bytes;
  account->charge(bytes);
  return m;
}

}  // namespace libactor::net::detail
