#pragma once
// Timers for all actors of a system: one thread (or, in deterministic mode,
// none) and one ordered map of deadlines, so there is no thread per timer.
//
// A timer holds a prototype message. A one-shot timer delivers the prototype
// itself; a periodic one delivers clones. Firing enqueues into the target
// outside the lock, so an actor may cancel timers from its handlers without
// lock-order concerns. Cancel is exact on the actor's side: the actor keeps
// the set of its live timer ids and drops a timer message whose id is gone
// (a firing can race with cancel and still enqueue).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "libactor/actor.hpp"

namespace libactor::detail {

class timer_service {
 public:
  using clone_fn = message* (*)(const message&);

  explicit timer_service(bool virtual_time);
  ~timer_service();

  void start();
  void stop() noexcept;

  [[nodiscard]] time_point now() const noexcept;

  /// A periodic job for the scheduler (worker_pool's run-next watch): while
  /// active, `tick` runs on this service's thread every `period`; when it
  /// returns false the job sleeps until wake_watch(). Set before start().
  void set_watch(duration period, std::function<bool()> tick);
  /// Makes the watch active again; from any thread. A wake that races a
  /// tick deciding to sleep is not lost.
  void wake_watch() noexcept;

  /// Schedules `proto` (owned) to `target`; period zero: once. Returns the
  /// timer id (0 once stopped), which a `timer`-kind message also carries
  /// in `request_id`; other kinds keep theirs (an ask timeout names its ask).
  std::uint64_t add(actor_ref target, message* proto, clone_fn clone, duration delay,
                    duration period);
  bool cancel(std::uint64_t id) noexcept;

  /// Virtual time only: moves the clock to `t`, firing timers due on the way
  /// in deadline order. All timers due at the same instant fire together;
  /// `after_each` runs after each such instant.
  template <class F>
  void advance_to(time_point t, F&& after_each) {
    for (;;) {
      std::vector<std::pair<actor_ref, message*>> batch;
      {
        std::unique_lock lock(mu_);
        if (queue_.empty() || queue_.begin()->first > t) {
          virtual_now_ = t;
          return;
        }
        const auto instant = queue_.begin()->first;
        virtual_now_ = instant;
        while (!queue_.empty() && queue_.begin()->first == instant) batch.push_back(pop_due(lock));
      }
      for (auto& [target, m] : batch) {
        if (m) actor_access::enqueue(actor_access::get(target), m);
      }
      batch.clear();
      after_each();
    }
  }

 private:
  struct entry {
    actor_ref target;
    message* proto;
    clone_fn clone;
    duration period;
    std::multimap<time_point, std::uint64_t>::iterator pos;
  };

  std::pair<actor_ref, message*> pop_due(std::unique_lock<std::mutex>& lock);
  void loop();

  const bool virtual_;
  std::function<bool()> watch_;  // set before start(), then read-only
  duration watch_period_{};
  mutable std::mutex mu_;
  // Under mu_.
  bool watch_active_ = false;
  bool watch_woken_ = false;  // a wake_watch() since the running tick began
  time_point next_tick_{};
  std::condition_variable cv_;
  std::multimap<time_point, std::uint64_t> queue_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::uint64_t next_id_ = 1;
  time_point virtual_now_{};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace libactor::detail
