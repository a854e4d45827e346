#pragma once
// Everything an actor system owns, shared by actor.cpp and system.cpp.

#include <array>
#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "evicting_inbox.hpp"
#include "libactor/system.hpp"
#include "log.hpp"
#include "scheduler/deterministic.hpp"
#include "scheduler/scheduler.hpp"
#include "timer_service.hpp"

namespace libactor::detail {

/// Lazily created per-actor state that most actors never need.
struct actor_extra {
  // Shared part: guarded by actor::lock_.
  std::vector<actor_ref> monitors;  // actors to send down_msg to
  // monitor() sweeps out watchers that stopped once the list reaches this
  // size, and sets it to twice what is left: the list holds at most about
  // twice its running watchers, at an amortized O(1) per monitor().
  std::size_t monitors_sweep_at = 16;
  // A set (Erlang's links): keyed by the other actor, O(1) to add, find
  // and remove however many there are.
  std::unordered_map<const actor*, actor_ref> links;
  std::vector<std::string> names;
  bool stopped = false;
  exit_reason final_reason;
  exit_reason stop_request;

  // A drop_oldest mailbox's queue (set at spawn, before anyone can send).
  std::unique_ptr<evicting_inbox> inbox;

  // Owner-only part.
  exit_reason quit_reason;
  std::unordered_map<std::uint64_t, bool> timers;  // live timer id -> periodic
  bool timers_closed = false;                      // stopping: start_timer refuses
  struct pending_ask {
    std::coroutine_handle<> handle;
    pending_ask_slot slot;
    std::uint64_t timer;
    root_task::promise_type* root;  // the task the awaiting coroutine belongs to
  };
  std::unordered_map<std::uint64_t, pending_ask> asks;
  std::uint64_t next_request = 0;
  root_task::promise_type* roots = nullptr;  // running root tasks, linked through their promises
};

/// A test-and-test-and-set lock for the short critical sections of
/// actor_extra (a push to a vector); never held across user code.
class spin_guard {
 public:
  explicit spin_guard(std::atomic<bool>& f) noexcept : f_(f) {
    // acquire: pairs with the release in the destructor.
    while (f_.exchange(true, std::memory_order_acquire)) {
      // relaxed: only waits for the holder; the exchange above re-validates.
      while (f_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~spin_guard() { f_.store(false, std::memory_order_release); }  // release: see above
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;

 private:
  std::atomic<bool>& f_;
};

/// Everything an actor system owns. Reference counted: the actor_system
/// holds one reference and every actor object (handles keep actors) one
/// more, so the state outlives the actor_system as long as some handle does.
/// When the actor_system is destroyed, the state is retired: all actors
/// have stopped, the threads are joined, and the hooks are never called
/// again; what a stray handle can still reach (a closed mailbox, the
/// dead-letter count) stays valid.
class system_state {
 public:
  system_state(actor_system& owner, system_config cfg);
  ~system_state();
  system_state(const system_state&) = delete;
  system_state& operator=(const system_state&) = delete;

  void retain() noexcept {
    // relaxed: a reference is only made from an existing one (the system's
    // or a spawning actor's), which keeps the count above zero.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    // acq_rel: as ref_counted::release(); the last owner sees every use.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// After shutdown, from ~actor_system: no hook runs after this returns.
  void retire() noexcept;

  /// Runs `f` (a call of a user hook) unless the system is retired; a
  /// concurrent retire() waits for it.
  template <class F>
  void call_hook(F&& f) noexcept {
    // seq_cst, with the flag in retire(): either this sees the flag, or
    // retire() sees this count and waits (a Dekker handshake).
    hooks_running_.fetch_add(1, std::memory_order_seq_cst);
    if (!retired_.load(std::memory_order_seq_cst)) {
      try {
        f();
      } catch (...) {
      }
    }
    // release: the hook's effects happen before retire() returns.
    hooks_running_.fetch_sub(1, std::memory_order_release);
  }

  void schedule(actor* a) noexcept { sched->schedule(a); }
  /// Counts (user messages) and disposes `m`; a request is answered with
  /// errc::receiver_down. `why` (logged) says why it was not delivered;
  /// empty: the receiver has stopped.
  void dead_letter(message* m, actor* receiver, std::string_view why = {}) noexcept;
  void unhandled_message(actor* receiver, message& m) noexcept;
  /// Counts and logs an exception that escaped actor code: `where` names
  /// the code ("the handler for", "make_behavior", "on_exit"), `type` the
  /// message it was handling (or null).
  void actor_failed(const actor* a, const char* where, type_id type,
                    const std::exception_ptr& ep) noexcept;

  /// Logs one line of category `c`, made by `format()` only if the rate
  /// limit lets it pass.
  template <class Format>
  void log(log_level level, log_category c, Format&& format) noexcept {
    std::uint64_t suppressed = 0;
    if (!limiter.admit(c, timers.now(), suppressed)) {
      log_suppressed.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      return;
    }
    try {
      const std::string text = format();
      const log_record r{level, c, text, suppressed};
      if (cfg.logger) {
        call_hook([&] { cfg.logger(r); });
      } else {
        log_to_stderr(r);
      }
    } catch (...) {
      // No memory to format the line: the event is still counted.
    }
  }

  /// Adds a newly built actor to the live set. Throws std::logic_error
  /// (tracking nothing) once shutdown has begun: shutdown scans the live
  /// set under the same shard locks, so every actor it misses is refused.
  void track(actor* a);
  /// Forgets `a` and drops the system's reference (may destroy `a`).
  void untrack(actor* a) noexcept;
  void erase_name(const std::string& name, actor* a) noexcept;
  void shutdown();

  actor_system& owner;
  const system_config cfg;
  timer_service timers;
  log_limiter limiter;
  std::unique_ptr<scheduler> sched;
  deterministic_scheduler* det = nullptr;

  // Registry.
  mutable std::mutex names_mu;
  std::unordered_map<std::string, actor_ref> names;

  // Counters. relaxed everywhere: statistics, not synchronization.
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> dead_letters{0};
  std::atomic<std::uint64_t> unhandled{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> log_suppressed{0};
  std::atomic<std::uint64_t> live{0};

  // Live actors, sharded to keep spawns from contending on one lock.
  struct alignas(64) shard {
    std::mutex mu;
    actor* head = nullptr;
  };
  std::array<shard, 16> shards;
  std::mutex live_mu;
  std::condition_variable live_cv;
  // Set by shutdown() before it scans the shards; track() reads it under
  // a shard lock, so the shard mutex orders the two (see track()). seq_cst
  // for spawn_scope's early check, which is only a fast refusal.
  std::atomic<bool> shutting_down{false};
  std::mutex shutdown_mu;
  bool shut_down = false;
  // Layers (net::node) using this system now; relaxed: a count checked by
  // the destructor after the layers' own synchronisation with the user.
  std::atomic<int> layers{0};

 private:
  std::atomic<std::uint64_t> refs_{1};
  std::atomic<bool> retired_{false};
  std::atomic<std::uint32_t> hooks_running_{0};
};

/// Sets the thread's current actor for the scope.
class current_guard {
 public:
  explicit current_guard(actor* a) noexcept;
  ~current_guard();
  current_guard(const current_guard&) = delete;
  current_guard& operator=(const current_guard&) = delete;

 private:
  actor* previous_;
};

/// Answers request `m` (if it is one) with an error. Does not dispose `m`.
void reply_error(const message& m, actor* from, errc code, std::string text) noexcept;

}  // namespace libactor::detail
