#pragma once
/// @file
/// The actor mailbox: a lock-free multi-producer, single-consumer queue whose
/// head word also records whether the actor is scheduled.
///
/// ## Purpose
/// `push` must both enqueue and tell the producer whether it has to schedule
/// the actor, with one atomic operation, so that an actor is scheduled exactly
/// once per transition from "idle and empty" to "has work", and the send path
/// of a busy receiver is one CAS with no lock and no syscall.
///
/// ## Algorithm
/// A Treiber-style LIFO stack with tagged sentinel values (the scheme of the
/// "LIFO inbox" used by several actor runtimes, after Treiber 1986). The head
/// word holds either a message pointer (the newest message) or a tag:
/// - `empty`: no messages; the consumer is running (or about to), so a push
///   need not schedule it.
/// - `blocked`: no messages and the actor is not scheduled; the push that
///   replaces this tag returns `unblocked` and its caller schedules the actor.
/// - `closed`: the actor stopped; pushes fail and the caller turns the message
///   into a dead letter.
/// - `notified`: no messages here, but the actor has work elsewhere (the
///   evicting inbox of a drop_oldest mailbox, see actor.cpp). Set by
///   `ring()`; it keeps `try_block` from succeeding until the consumer has
///   taken it with `take_all` and looked.
/// The consumer never pops single nodes: it takes the whole stack with one
/// `exchange` and reverses it into FIFO order. Because nodes leave the stack
/// only all at once, the stack has no ABA problem and needs no tags or hazard
/// pointers.
///
/// ## Ordering
/// Messages pushed by one thread are taken in push order (their CASes are
/// ordered in the head's modification order, and reversal restores it). No
/// order is defined between different producers.
///
/// ## Progress
/// push: lock-free (a CAS loop that fails only when another push or a take
/// succeeded). take_all, try_block, close: wait-free (one atomic operation).
///
/// ## Threads
/// `push` from any thread. Everything else only from the actor's own
/// activation: the consumer role is held by whoever runs the actor, which the
/// scheduler guarantees is one thread at a time (see `actor::resume`).
///
/// ## Memory
/// Two words per mailbox plus a count for bounded mailboxes; messages are
/// intrusive (`message::next`). The consumer keeps the FIFO it took in a local
/// variable while it runs and stores only the remainder back (`stash`), so the
/// consumer does not write the head's cache line per message.

#include <atomic>
#include <cstdint>

#include "libactor/detail/message.hpp"

namespace libactor::detail {

class mailbox {
 public:
  enum class push_result : std::uint8_t {
    ok,         ///< Enqueued; the actor is running or already scheduled.
    unblocked,  ///< Enqueued into a blocked mailbox: the caller must schedule the actor.
    closed,     ///< Not enqueued: the actor stopped. The caller still owns `m`.
  };

  mailbox() noexcept = default;
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;

  /// @threadsafe Pushes a chain linked newest-first (`newest->next` ... ends
  /// at `oldest`, whose `next` is overwritten): one CAS for many messages,
  /// taken by the consumer in chain order after everything pushed before.
  push_result push_chain(message* newest, message* oldest) noexcept {
    // relaxed: the loaded value is only the CAS's first guess; it is never
    // dereferenced (a pointer value is only stored into oldest->next).
    std::uintptr_t h = head_.load(std::memory_order_relaxed);
    for (;;) {
      if (h == closed_tag) return push_result::closed;
      oldest->next = is_tag(h) ? nullptr : reinterpret_cast<message*>(h);
      // Success is acq_rel. Release: publishes the messages and the
      // producer's earlier writes to the consumer's acquire exchange in
      // take_all()/close(). Acquire: pairs with the release CAS in
      // try_block(), so a producer that unblocks the actor carries the last
      // activation's writes to whichever worker runs the next activation
      // (through the run queue's release/acquire). Failure is relaxed: we
      // only retry with the fresh value.
      if (head_.compare_exchange_weak(h, reinterpret_cast<std::uintptr_t>(newest),
                                      std::memory_order_acq_rel, std::memory_order_relaxed)) {
        return h == blocked_tag ? push_result::unblocked : push_result::ok;
      }
    }
  }

  /// @threadsafe One message: a chain of one.
  push_result push(message* m) noexcept { return push_chain(m, m); }

  /// @threadsafe Tells the consumer that work was queued elsewhere: an RMW
  /// on the head in every case (so it is ordered after the caller's earlier
  /// writes for the consumer's acquire in take_all), turning `empty` or
  /// `blocked` into `notified`. `unblocked` when it replaced `blocked`: the
  /// caller schedules the actor.
  push_result ring() noexcept {
    // relaxed: only the CAS's first guess.
    std::uintptr_t h = head_.load(std::memory_order_relaxed);
    for (;;) {
      if (h == closed_tag) return push_result::closed;
      const std::uintptr_t desired = h == empty_tag || h == blocked_tag ? notified_tag : h;
      // acq_rel on success, as in push_chain(); also when desired == h, so
      // that the caller's writes are released to the next take_all.
      if (head_.compare_exchange_weak(h, desired, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
        return h == blocked_tag ? push_result::unblocked : push_result::ok;
      }
    }
  }

  /// Consumer: takes every queued message, oldest first, or null.
  [[nodiscard]] message* take_all() noexcept {
    // relaxed pre-check: avoids an RMW on the shared line when nothing is
    // queued; a stale `empty` only delays taking until the next check.
    if (head_.load(std::memory_order_relaxed) == empty_tag) return nullptr;
    // acquire: pairs with the release CAS in push_chain(); makes the messages'
    // contents visible.
    std::uintptr_t h = head_.exchange(empty_tag, std::memory_order_acquire);
    return is_tag(h) ? nullptr : reverse(reinterpret_cast<message*>(h));
  }

  /// Consumer: marks the mailbox blocked if it is empty. On success the next
  /// push schedules the actor and this activation must end without touching
  /// the actor again. On failure messages arrived: take them.
  [[nodiscard]] bool try_block() noexcept {
    if (stash_ != nullptr) return false;
    std::uintptr_t expected = empty_tag;
    // release: publishes this activation's writes to the producer whose
    // acquire CAS in push_chain() observes `blocked` and schedules the next
    // activation. Failure relaxed: the caller follows up with take_all().
    return head_.compare_exchange_strong(expected, blocked_tag, std::memory_order_release,
                                         std::memory_order_relaxed);
  }

  /// Consumer: closes the mailbox and returns every message it still held
  /// (stash first, then queued ones), oldest first. Later pushes fail.
  [[nodiscard]] message* close() noexcept {
    // acquire: as in take_all(), we take ownership of the queued messages.
    std::uintptr_t h = head_.exchange(closed_tag, std::memory_order_acquire);
    message* queued = is_tag(h) ? nullptr : reverse(reinterpret_cast<message*>(h));
    message* first = stash_;
    stash_ = nullptr;
    if (!first) return queued;
    message* last = first;
    while (last->next) last = last->next;
    last->next = queued;
    return first;
  }

  /// Any thread: the actor stopped (its mailbox was closed). A hint that
  /// only goes from false to true.
  [[nodiscard]] bool closed() const noexcept {
    // relaxed: a hint; nothing is read through it.
    return head_.load(std::memory_order_relaxed) == closed_tag;
  }

  /// Consumer: the messages put aside by the last activation (oldest first).
  [[nodiscard]] message* take_stash() noexcept {
    message* s = stash_;
    stash_ = nullptr;
    return s;
  }
  /// Consumer: puts aside an already-taken FIFO for the next activation.
  void stash(message* fifo) noexcept { stash_ = fifo; }

  /// Consumer, before the actor is first published: starts blocked-able.
  static constexpr std::uintptr_t empty_tag = 0;
  static constexpr std::uintptr_t blocked_tag = 1;
  static constexpr std::uintptr_t closed_tag = 2;
  static constexpr std::uintptr_t notified_tag = 3;

 private:
  static bool is_tag(std::uintptr_t v) noexcept { return v <= notified_tag; }
  static message* reverse(message* m) noexcept {
    message* out = nullptr;
    while (m) {
      message* next = m->next;
      m->next = out;
      out = m;
      m = next;
    }
    return out;
  }

  // Producer-written word. The actor starts `empty` (running) while its
  // initializer runs, then blocks.
  std::atomic<std::uintptr_t> head_{empty_tag};
  // Consumer-only.
  message* stash_ = nullptr;
};

static_assert(alignof(message) >= 8, "tags 0..3 must never be valid message addresses");
static_assert(sizeof(mailbox) == 16);
static_assert(std::atomic<std::uintptr_t>::is_always_lock_free);

}  // namespace libactor::detail
