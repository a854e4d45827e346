#pragma once
// A worker's local run queue: a bounded, single-producer multi-consumer FIFO
// ring of runnable actors.
//
// ## Purpose
// Each worker pushes the actors it makes runnable into its own queue and pops
// from it without contention; idle workers steal half of a busy worker's queue
// at once. FIFO (not the LIFO owner end of a Chase-Lev deque) keeps local
// scheduling fair: an actor re-queued after spending its budget goes behind
// the actors already waiting. The "run next" slot in the worker provides the
// LIFO locality a message chain wants (see worker_pool.hpp).
//
// ## Algorithm
// The ring of the Go runtime's runqueue and Tokio's local queue (after the
// work-stealing of Blumofe & Leiserson and Chase & Lev, SPAA 2005): `tail` is
// written only by the owner, `head` is advanced by CAS by the owner and by
// stealers alike. Both are 64-bit counters that never wrap in practice, so a
// successful CAS on `head` proves that no other consumer took the same slots
// (no ABA). The owner writes slot `t` only when `t - head < Capacity`, which
// with a monotonic head means no consumer can still be reading that slot:
// a consumer reads slot `h` before its CAS from h, and the CAS fails if head
// moved past h.
//
// ## Progress
// push: wait-free (the owner's store; a full queue returns false and the
// caller overflows to the injection queue). pop/steal: lock-free (a CAS that
// fails only when another consumer succeeded).
//
// ## Threads
// Encoded in types: `run_queue::owner` (move-only, one per worker) pushes and
// pops; `run_queue::stealer` (copyable) only steals.
//
// ## Memory
// Capacity pointers plus two counters on separate cache lines; the capacity is
// a template parameter so tests can use tiny rings that wrap and overflow.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "libactor/actor.hpp"

namespace libactor::detail {

template <std::uint32_t Capacity>
class run_queue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "capacity must be a power of two of at least 2");
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  static constexpr std::uint64_t mask = Capacity - 1;

 public:
  class stealer;

  class owner {
   public:
    explicit owner(run_queue& q) noexcept : q_(&q) {}
    owner(owner&&) noexcept = default;
    owner(const owner&) = delete;
    owner& operator=(const owner&) = delete;

    /// False when full (the actor was not queued).
    [[nodiscard]] bool push(actor* a) noexcept {
      // relaxed: only this thread writes tail.
      const std::uint64_t t = q_->tail_.load(std::memory_order_relaxed);
      // acquire: pairs with the consumers' CAS on head, so their reads of the
      // slots we are about to overwrite happened before our writes.
      const std::uint64_t h = q_->head_.load(std::memory_order_acquire);
      if (t - h >= Capacity) return false;
      // relaxed: published by the release store of tail below.
      q_->slots_[t & mask].store(a, std::memory_order_relaxed);
      // release: pairs with the acquire loads of tail in pop()/steal_into().
      q_->tail_.store(t + 1, std::memory_order_release);
      return true;
    }

    [[nodiscard]] actor* pop() noexcept { return q_->pop_one(); }

    /// Moves up to half of `victim`'s actors into this queue; returns one of
    /// them to run now, or null.
    [[nodiscard]] actor* steal_from(const stealer& victim) noexcept {
      return victim.q_->steal_into(*q_);
    }

    [[nodiscard]] std::uint64_t size() const noexcept { return q_->size(); }
    [[nodiscard]] stealer make_stealer() const noexcept { return stealer(*q_); }

   private:
    run_queue* q_;
  };

  class stealer {
   public:
    explicit stealer(run_queue& q) noexcept : q_(&q) {}
    [[nodiscard]] bool empty() const noexcept { return q_->size() == 0; }

   private:
    friend class owner;
    run_queue* q_;
  };

  run_queue() {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);  // relaxed: not yet shared
  }

  [[nodiscard]] std::uint64_t size() const noexcept {
    // acquire on both: a snapshot used to decide whether stealing is worth it.
    const std::uint64_t h = head_.load(std::memory_order_acquire);
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    return t > h ? t - h : 0;
  }

 private:
  actor* pop_one() noexcept {
    // acquire: see steal_into().
    std::uint64_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      // acquire: pairs with the owner's release store of tail; the slot
      // written before it is visible.
      const std::uint64_t t = tail_.load(std::memory_order_acquire);
      if (h >= t) return nullptr;
      // relaxed: ordered by the acquire on tail; the CAS below validates it.
      actor* a = slots_[h & mask].load(std::memory_order_relaxed);
      // acq_rel: release orders our slot read before the owner may reuse the
      // slot (its acquire load of head); acquire keeps later reads after it.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return a;
      }
    }
  }

  actor* steal_into(run_queue& dst) noexcept {
    // relaxed: dst's tail is written only by dst's owner, which is this thread.
    const std::uint64_t dt = dst.tail_.load(std::memory_order_relaxed);
    // acquire: as in push().
    const std::uint64_t dh = dst.head_.load(std::memory_order_acquire);
    const std::uint64_t room = Capacity - (dt - dh);
    std::uint64_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t t = tail_.load(std::memory_order_acquire);
      if (h >= t) return nullptr;
      std::uint64_t n = (t - h + 1) / 2;
      if (n > room) n = room;
      if (n == 0) return nullptr;
      // Copy first, commit with the CAS; the copies are only published to
      // dst's consumers after the CAS succeeds (tail store below).
      for (std::uint64_t i = 0; i < n; ++i) {
        // relaxed: see pop_one(); dst slots are published by the release store of dst.tail_.
        dst.slots_[(dt + i) & mask].store(slots_[(h + i) & mask].load(std::memory_order_relaxed),
                                          std::memory_order_relaxed);
      }
      // acq_rel: as in pop_one().
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        // Keep the last stolen actor to run now; publish the rest.
        actor* run = dst.slots_[(dt + n - 1) & mask].load(std::memory_order_relaxed);
        // release: pairs with consumers' acquire load of tail.
        dst.tail_.store(dt + n - 1, std::memory_order_release);
        return run;
      }
    }
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  alignas(64) std::array<std::atomic<actor*>, Capacity> slots_;
};

}  // namespace libactor::detail
