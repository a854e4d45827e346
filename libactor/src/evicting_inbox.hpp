#pragma once
// The queue of a bounded mailbox whose overload policy is drop_oldest.
//
// ## Purpose
// A full drop_oldest mailbox makes room by discarding its oldest user
// message. The lock-free mailbox cannot do that: producers only ever see its
// newest message, and the consumer takes everything at once into a private
// list, out of any producer's reach. So, with the lock-free mailbox, a
// stalled consumer let the queue grow without bound. Here every message of
// such an actor waits in one FIFO under a mutex, where a producer can evict
// the oldest user message, and the consumer takes one message at a time, so
// that what it has not started on stays evictable. The actor's mailbox then
// serves only as the scheduling word: producers `ring()` it after queueing
// (mailbox.hpp).
//
// ## Guarantees
// - At most `capacity` user messages are queued, whatever the consumer does;
//   one more may be in its handler.
// - Messages of every kind (user, replies, timers, down and exit notices,
//   kills) keep their arrival order: a sender's last messages come before
//   the runtime's notice that it stopped. Only user messages count toward
//   the capacity and only they are evicted.
//
// ## Cost
// A mutex acquisition per send and per message handled, instead of one CAS:
// the price of evicting from the front. Reject and drop_newest mailboxes
// keep the lock-free path (a count admits or refuses at the door).
//
// ## Threads
// push() from any thread; pop() and close() from the actor's activation.

#include <cstdint>
#include <mutex>

#include "libactor/detail/message.hpp"

namespace libactor::detail {

class evicting_inbox {
 public:
  explicit evicting_inbox(std::uint32_t capacity) noexcept : capacity_(capacity) {}
  evicting_inbox(const evicting_inbox&) = delete;
  evicting_inbox& operator=(const evicting_inbox&) = delete;
  ~evicting_inbox() { dispose_all(close()); }

  enum class push_result : std::uint8_t { ok, closed };

  /// Queues `m` (ownership passes unless the result is `closed`). When `m`
  /// is a user message and the queue holds `capacity` of them, the oldest is
  /// unlinked and returned in `evicted` (the caller disposes of it, outside
  /// the lock).
  push_result push(message* m, message*& evicted) noexcept {
    evicted = nullptr;
    std::lock_guard lock(mu_);
    if (closed_) return push_result::closed;
    if (m->kind == msg_kind::user) {
      if (users_ == capacity_) evicted = unlink_oldest_user();
      ++users_;
    }
    m->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = m;
    } else {
      head_ = m;
    }
    tail_ = m;
    return push_result::ok;
  }

  /// Consumer: the oldest message, or null.
  [[nodiscard]] message* pop() noexcept {
    std::lock_guard lock(mu_);
    message* m = head_;
    if (m == nullptr) return nullptr;
    head_ = m->next;
    if (head_ == nullptr) tail_ = nullptr;
    if (m->kind == msg_kind::user) --users_;
    m->next = nullptr;
    return m;
  }

  /// Consumer: refuses later pushes and returns what was queued, oldest
  /// first (linked through `next`).
  [[nodiscard]] message* close() noexcept {
    std::lock_guard lock(mu_);
    closed_ = true;
    message* all = head_;
    head_ = tail_ = nullptr;
    users_ = 0;
    return all;
  }

 private:
  // Under mu_. The oldest user message; earlier runtime messages stay.
  message* unlink_oldest_user() noexcept {
    message* prev = nullptr;
    for (message* m = head_; m != nullptr; prev = m, m = m->next) {
      if (m->kind != msg_kind::user) continue;
      (prev != nullptr ? prev->next : head_) = m->next;
      if (tail_ == m) tail_ = prev;
      m->next = nullptr;
      --users_;
      return m;
    }
    return nullptr;  // unreachable while users_ == capacity_ > 0
  }
  static void dispose_all(message* m) noexcept {
    while (m != nullptr) {
      message* next = m->next;
      m->dispose();
      m = next;
    }
  }

  const std::uint32_t capacity_;
  std::mutex mu_;
  message* head_ = nullptr;
  message* tail_ = nullptr;
  std::uint32_t users_ = 0;
  bool closed_ = false;
};

}  // namespace libactor::detail
