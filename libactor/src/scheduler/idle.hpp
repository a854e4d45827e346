#pragma once
// How idle workers sleep and how they are woken.
//
// ## Guarantees
// - No lost wake-up: if work is made runnable while every worker is going to
//   sleep, at least one worker sees it.
// - An idle system sleeps in the kernel (a condition variable per worker): ~0% CPU.
// - At most one worker is woken per notification, and none while another
//   worker is already searching for work (that searcher will find it), which
//   avoids a thundering herd on every message.
//
// ## Protocol
// `state_` packs two counts: sleeping workers (low 32 bits) and searching
// workers (high 32 bits). Every change is a read-modify-write, and a notifier
// reads it with an RMW too (`fetch_add(0)`), so all accesses form one
// modification order. A worker about to sleep (1) increments the sleeper count
// (acq_rel RMW) and (2) re-checks every queue. A producer (1) publishes work
// into a queue and (2) RMW-reads `state_`. Either the producer's RMW comes
// later in the order, reads sleepers > 0 and wakes one, or the worker's RMW
// comes later and synchronizes with the producer's release, so its re-check
// sees the work. This is the Dekker handshake of Go's and Tokio's schedulers,
// expressed with RMWs on one word instead of seq_cst fences.
//
// The list of sleeping worker indices is a mutex-protected vector: only
// touched on the way to sleep or to wake someone, both of which pay a syscall
// anyway.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "libactor/detail/driver.hpp"

namespace libactor::detail {

/// One per worker: a binary semaphore.
///
/// A mutex and a condition variable, deliberately. An earlier version stored
/// a token with a release store and used std::atomic::wait/notify_one.
/// libstdc++ 12's notify_one skips the futex wake when its waiter count (a
/// seq_cst load) reads zero; a release store may still be in the store
/// buffer when that load executes, and the waiter may read the old token: a
/// lost wake-up, with no data race for TSan to see. With that version we saw
/// two shutdown hangs (every worker parked, work queued) in about a thousand
/// benchmark runs, and this was the mechanism we found. The mutex orders
/// token and waiter completely; its cost applies only when a sleeping worker
/// is woken.
class parker {
 public:
  void park() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return token_; });
    token_ = false;
  }
  /// Waits in the driver instead (see driver.hpp). True when woken by
  /// unpark() (the token is consumed), false when the driver returned
  /// because it handled events.
  bool park_on(io_driver* d) {
    {
      std::lock_guard lock(mu_);
      if (token_) {
        token_ = false;
        return true;
      }
      driver_ = d;
    }
    d->park();
    std::lock_guard lock(mu_);
    driver_ = nullptr;
    if (token_) {
      token_ = false;
      return true;
    }
    return false;
  }
  void unpark() {
    std::lock_guard lock(mu_);
    token_ = true;
    // Under the lock: the driver cannot be uninstalled while a worker is
    // inside it, and the worker clears driver_ (under this lock) before it
    // lets go of it.
    if (driver_ != nullptr) {
      driver_->unpark();
    } else {
      cv_.notify_one();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool token_ = false;
  io_driver* driver_ = nullptr;
};

class idle_set {
  static constexpr std::uint64_t sleeper_one = 1;
  static constexpr std::uint64_t searcher_one = std::uint64_t{1} << 32;
  static std::uint32_t sleepers(std::uint64_t s) { return static_cast<std::uint32_t>(s); }
  static std::uint32_t searchers(std::uint64_t s) { return static_cast<std::uint32_t>(s >> 32); }

 public:
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

  explicit idle_set(unsigned workers) : workers_(workers) { list_.reserve(workers); }

  /// Limits concurrent searchers to half the workers (at least one).
  [[nodiscard]] bool try_begin_search() noexcept {
    // relaxed: a heuristic limit; the RMW below is what the protocol uses.
    const std::uint64_t s = state_.load(std::memory_order_relaxed);
    if (2 * searchers(s) >= workers_ && searchers(s) > 0) return false;
    // acq_rel: part of the single RMW order on state_ (see file comment).
    state_.fetch_add(searcher_one, std::memory_order_acq_rel);
    return true;
  }

  /// Leaves the searching state; true if this was the last searcher.
  [[nodiscard]] bool end_search() noexcept {
    // acq_rel: as above.
    return searchers(state_.fetch_sub(searcher_one, std::memory_order_acq_rel)) == 1;
  }

  /// Registers `idx` as sleeping; `was_searching` moves it out of the
  /// searching count in the same RMW.
  void add_sleeper(unsigned idx, bool was_searching) {
    std::lock_guard lock(mu_);
    list_.push_back(idx);
    // acq_rel: the worker's half of the handshake; its queue re-check comes after.
    state_.fetch_add(sleeper_one - (was_searching ? searcher_one : 0), std::memory_order_acq_rel);
  }

  /// Takes `idx` off the sleeping list after its re-check found work. False
  /// if a notifier already took it (it then counts as searching and will
  /// receive an unpark).
  [[nodiscard]] bool remove_sleeper(unsigned idx) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < list_.size(); ++i) {
      if (list_[i] == idx) {
        list_[i] = list_.back();
        list_.pop_back();
        // acq_rel: as above.
        state_.fetch_sub(sleeper_one, std::memory_order_acq_rel);
        return true;
      }
    }
    return false;
  }

  /// The producer's half of the handshake: returns a sleeping worker to wake
  /// (now counted as searching), if one should be woken.
  /// True when every worker but the caller sleeps: their queues are empty,
  /// so there is nothing to steal. A hint; sleeping re-checks every queue.
  [[nodiscard]] bool others_asleep() const noexcept {
    // relaxed: a hint for skipping a steal attempt, never for correctness.
    return sleepers(state_.load(std::memory_order_relaxed)) + 1 >= workers_;
  }

  [[nodiscard]] std::optional<unsigned> worker_to_wake() {
    // acq_rel RMW read: see the file comment; a plain load could miss a
    // concurrent sleeper.
    const std::uint64_t s = state_.fetch_add(0, std::memory_order_acq_rel);
    if (searchers(s) != 0 || sleepers(s) == 0) return std::nullopt;
    std::lock_guard lock(mu_);
    if (list_.empty()) return std::nullopt;
    const unsigned idx = list_.back();
    list_.pop_back();
    // acq_rel: as above.
    state_.fetch_add(searcher_one - sleeper_one, std::memory_order_acq_rel);
    return idx;
  }

  /// True when every worker sleeps (none counts as searching or running).
  /// An RMW read, so that it takes part in the single order on the word
  /// (the run-next watch's handshake, see worker_pool::watch_tick).
  [[nodiscard]] bool all_asleep() noexcept {
    // acq_rel RMW read: as in worker_to_wake().
    return sleepers(state_.fetch_add(0, std::memory_order_acq_rel)) >= workers_;
  }

  /// For stop(): empties the list and keeps the counts consistent (the woken
  /// workers count as searchers, as if a notifier had woken each).
  [[nodiscard]] std::vector<unsigned> take_all_sleepers() {
    std::lock_guard lock(mu_);
    std::vector<unsigned> out;
    out.swap(list_);
    // acq_rel: as everywhere on state_.
    state_.fetch_add(out.size() * (searcher_one - sleeper_one), std::memory_order_acq_rel);
    return out;
  }

 private:
  const unsigned workers_;
  alignas(64) std::atomic<std::uint64_t> state_{0};
  std::mutex mu_;
  std::vector<unsigned> list_;
};

}  // namespace libactor::detail
