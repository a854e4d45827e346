#pragma once
// A worker's run-next slot: the one actor that runs next on this worker.
//
// ## Purpose
// When a handler makes another actor runnable, that actor runs next on the
// same worker: a request and its answer stay on one warm core and nobody is
// woken (Tokio's LIFO slot, Go's runnext). The owner puts and takes on every
// such hop, so both must be cheap. But a handler that keeps running after it
// woke someone would hold that actor hostage, so the slot can also be taken
// from outside, by one slow party: the worker pool's watch (worker_pool.hpp),
// which steals an actor that waited a whole period.
//
// ## Algorithm
// The slot word holds an actor pointer, null, or the `stealing` tag. Only the
// owner stores pointers; the thief only turns a pointer into `stealing` and
// then into null (it took the actor) or back (it gave up). The owner's take
// is a small critical section announced by the `taking` flag:
//
//     owner take:  taking = true; light barrier; x = slot;
//                  if x is an actor: slot = null (ours); taking = false
//     thief steal: CAS slot x -> stealing; heavy barrier; if taking: CAS back
//                  to x (give up); else CAS stealing -> null (ours, if it
//                  succeeds; the owner's store of null may have won: theirs)
//
// Each side stores, then loads the other's word: a Dekker handshake. With
// asymmetric barriers (barrier.hpp) the owner's side costs no fence and no
// read-modify-write; the thief pays a membarrier system call, once per
// steal. Either the thief sees `taking` (the owner may have read the actor:
// give it back), or the owner's read comes after the thief's CAS and sees
// `stealing` (not ours). A thief that sees `taking` clear still finishes
// with a CAS from `stealing`, because the owner's plain store of null (from
// a take that read the actor before the CAS) may have overwritten the tag:
// then the CAS fails and the actor is the owner's. The owner never stores
// over `stealing` (put waits for the thief to settle, a few microseconds).
// An owner whose take reads `stealing` waits, still announced, until the
// thief settles: a thief that sees the announcement gives the actor back,
// and the owner's second look then takes it, so no actor is left in the slot
// of an owner that found it empty (and might go to sleep).
//
// ## Progress and ordering
// Owner operations are wait-free except while a steal is in flight: put and
// take then wait for the thief to settle, a few microseconds (longer only
// if the thief's thread is preempted in between; steals are rare, one per
// handler that outlasted the watch's period). The thief's CAS acquires the
// owner's release store of the actor, so the thread that runs a stolen actor
// sees what made it runnable.
//
// ## Threads
// Encoded in types: `run_next_slot::owner` (move-only, the worker) puts and
// takes; `run_next_slot::thief` (copyable) only steals. Under
// ThreadSanitizer (which models neither membarrier nor fences) both sides
// use seq_cst read-modify-writes instead of the asymmetric barriers.

#include <atomic>
#include <cstdint>
#include <thread>

#include "scheduler/barrier.hpp"

namespace libactor::detail {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool run_next_symmetric = true;
#else
inline constexpr bool run_next_symmetric = false;
#endif

template <class T>
class run_next_slot {
  static_assert(alignof(T) >= 2, "the stealing tag must not be a valid address");
  static constexpr std::uintptr_t stealing = 1;

 public:
  class owner {
   public:
    explicit owner(run_next_slot& s) noexcept : s_(&s) {}
    owner(owner&&) noexcept = default;
    owner(const owner&) = delete;
    owner& operator=(const owner&) = delete;

    /// Puts `x` in the slot; returns the actor it displaced, or null.
    [[nodiscard]] T* put(T* x) noexcept {
      for (;;) {
        // relaxed: only this thread stores pointers, so an empty slot stays
        // empty (a thief never fills one).
        const std::uintptr_t cur = s_->slot_.load(std::memory_order_relaxed);
        if (cur == 0) {
          // release: pairs with the thief's acquire CAS.
          s_->slot_.store(reinterpret_cast<std::uintptr_t>(x), std::memory_order_release);
          return nullptr;
        }
        if (cur == stealing) {
          std::this_thread::yield();  // a steal in flight settles in microseconds
          continue;
        }
        T* prev = take();
        if (prev == nullptr) continue;  // stolen meanwhile, or given back later: look again
        s_->slot_.store(reinterpret_cast<std::uintptr_t>(x), std::memory_order_release);
        return prev;
      }
    }

    /// The actor in the slot (now ours), or null.
    [[nodiscard]] T* take() noexcept {
      // A local reference: the compiler barrier below does not make the
      // compiler reload it.
      run_next_slot& s = *s_;
      // relaxed pre-check: see put().
      if (s.slot_.load(std::memory_order_relaxed) == 0) return nullptr;
      std::uintptr_t x;
      if constexpr (run_next_symmetric) {
        s.taking_.exchange(true, std::memory_order_seq_cst);
        x = s.slot_.load(std::memory_order_seq_cst);
      } else {
        // relaxed, then a light barrier: the store is ordered before the load
        // for a thief that issues the heavy barrier (see the file comment).
        s.taking_.store(true, std::memory_order_relaxed);
        light_barrier();
        // acquire: pairs with our own release store; the actor's state was
        // published to this thread already.
        x = s.slot_.load(std::memory_order_acquire);
      }
      // A steal in flight: it may still give the actor back (if it sees our
      // `taking`), and then it must be ours now, not left in a slot whose
      // owner goes to sleep. Wait for the thief to settle (one membarrier,
      // microseconds), still announced, and look again: the actor or 0.
      while (x == stealing) {
        std::this_thread::yield();
        // acquire: the thief's give-back (a relaxed CAS) put back the
        // pointer we stored ourselves; nothing else to acquire from it.
        x = s.slot_.load(run_next_symmetric ? std::memory_order_seq_cst
                                            : std::memory_order_acquire);
      }
      T* got = nullptr;
      if (x != 0) {
        got = reinterpret_cast<T*>(x);
        // relaxed: a thief that CASes the pointer before this store lands
        // fails its final CAS (see the file comment).
        s.slot_.store(0, std::memory_order_relaxed);
      }
      // release: the section's effects precede a thief's later look.
      s.taking_.store(false, std::memory_order_release);
      return got;
    }

    /// A relaxed look, for heuristics only.
    [[nodiscard]] bool empty() const noexcept {
      return s_->slot_.load(std::memory_order_relaxed) == 0;  // relaxed: a hint
    }

   private:
    run_next_slot* s_;
  };

  class thief {
   public:
    explicit thief(run_next_slot& s) noexcept : s_(&s) {}

    /// The actor in the slot right now, or null. For deciding whether to steal.
    [[nodiscard]] T* peek() const noexcept {
      // acquire: pairs with the owner's release store (what steal() returns
      // is read through this value).
      const std::uintptr_t x = s_->slot_.load(std::memory_order_acquire);
      return x == stealing ? nullptr : reinterpret_cast<T*>(x);
    }

    /// Takes `x` out of the slot if it is still there and the owner is not
    /// taking it. True: `x` is now the caller's to run.
    [[nodiscard]] bool steal(T* x) noexcept {
      auto expected = reinterpret_cast<std::uintptr_t>(x);
      // acq_rel: acquire pairs with the owner's release store of x; seq_cst
      // in the symmetric variant (Dekker with the owner's exchange).
      if (!s_->slot_.compare_exchange_strong(
              expected, stealing,
              run_next_symmetric ? std::memory_order_seq_cst : std::memory_order_acq_rel,
              std::memory_order_relaxed)) {
        return false;
      }
      bool taking;
      if constexpr (run_next_symmetric) {
        taking = s_->taking_.load(std::memory_order_seq_cst);
      } else {
        heavy_barrier();
        // After the heavy barrier, an owner's announcement made before it is
        // visible (see barrier.hpp). acquire: if this reads the owner's
        // closing `taking = false` (a release store), the owner's store of 0
        // to the slot before it is visible too, so the final CAS below fails
        // when the owner took the actor (on any architecture, not only x86).
        taking = s_->taking_.load(std::memory_order_acquire);
      }
      std::uintptr_t tag = stealing;
      // relaxed on both CASes: we own the word's tag; the actor's state was
      // acquired by the first CAS.
      if (taking) {
        (void)s_->slot_.compare_exchange_strong(tag, reinterpret_cast<std::uintptr_t>(x),
                                                std::memory_order_relaxed);
        return false;
      }
      return s_->slot_.compare_exchange_strong(tag, 0, std::memory_order_relaxed);
    }

   private:
    run_next_slot* s_;
  };

 private:
  std::atomic<std::uintptr_t> slot_{0};
  std::atomic<bool> taking_{false};
};

}  // namespace libactor::detail
