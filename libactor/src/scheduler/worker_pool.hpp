#pragma once
// The work-stealing scheduler: a fixed pool of worker threads.
//
// ## Guarantees
// - An actor runs on at most one worker at a time (the mailbox hands it to
//   the scheduler once per blocked -> runnable transition; see mailbox.hpp).
// - No starvation while handlers return in bounded time: an activation
//   handles at most `budget` messages; an actor with more is re-queued at the
//   tail of the FIFO local queue; the run-next slot yields to the queue after
//   `max_lifo_streak` consecutive uses; the injection queue is checked first
//   every `inject_interval` activations; idle workers steal.
// - An idle pool sleeps (see idle.hpp).
//
// ## Current behaviour (tuning, not guaranteed)
// - Local queue: 256 slots; overflow goes to the injection queue.
// - An actor made runnable by a worker goes to that worker's run-next slot
//   (LIFO, the "warm cache" path of a request/response chain); the actor it
//   displaces goes to the local queue.
// - A worker that runs out of work searches (steals half of a random other
//   worker's queue, polls the injection queue) for `search_rounds` rounds,
//   then sleeps.
// - With an I/O driver installed (driver.hpp), one sleeping worker sleeps in
//   the driver. When events give it more than one actor to run, it wakes
//   another sleeper; busy workers poll the driver every `driver_interval`
//   activations.
//
// ## The run-next slot and the watch
// An actor a handler makes runnable waits in its worker's run-next slot for
// the handler to return: a request and its answer stay on one warm core and
// nobody is woken. A handler that then runs for long would hold that actor
// hostage while other workers sleep (the problem Tokio's LIFO slot has). So
// the slot is stealable, by one party only: the watch, a job on the timer
// thread that runs every `run_next_timeout` (system_config) while any
// worker is awake. A worker whose slot holds the same actor at two ticks in
// a row, with no activation started in between, is stuck in one handler;
// the watch takes the actor out of its slot, puts it in the injection queue
// and wakes a worker. An actor therefore waits at most about two periods.
//
// Costs: with asymmetric barriers (run_next.hpp), the owner's put and take
// are plain loads and stores; a steal costs the watch a membarrier system
// call. The watch ticks about 100 times a second (at the default 10 ms)
// while workers are busy, and not at all while every worker sleeps. Its
// handshake with waking workers is the idle word's (see watch_tick()).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "scheduler/idle.hpp"
#include "scheduler/inject.hpp"
#include "scheduler/run_next.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/scheduler.hpp"

namespace libactor::detail {

class worker_pool final : public scheduler {
 public:
  static constexpr std::uint32_t local_capacity = 256;
  static constexpr unsigned max_lifo_streak = 32;
  static constexpr unsigned inject_interval = 61;
  static constexpr unsigned search_rounds = 4;
  static constexpr unsigned driver_interval = 61;

  /// `run_next_timeout` zero: the run-next slot is never stolen (no watch).
  worker_pool(unsigned workers, unsigned budget, duration run_next_timeout);
  ~worker_pool() override;

  void start() override;
  void schedule(actor* a) noexcept override;
  void stop() noexcept override;
  void release_run_next() noexcept override;
  [[nodiscard]] unsigned workers() const noexcept override {
    return static_cast<unsigned>(workers_.size());
  }
  bool install_driver(io_driver* d) noexcept override;
  void remove_driver(io_driver* d) noexcept override;
  bool poll_driver_if_idle(io_driver* d) noexcept override;

  /// The watch's period (zero: none).
  [[nodiscard]] duration watch_period() const noexcept { return watch_period_; }
  /// One tick of the run-next watch (timer thread). False when every worker
  /// sleeps: the watch may sleep until `wake` (set_watch_waker) is called.
  bool watch_tick() noexcept;
  /// How a worker that wakes while the watch sleeps restarts it.
  void set_watch_waker(std::function<void()> wake) { wake_watch_ = std::move(wake); }
  /// Actors the watch took out of a stuck worker's slot (for tests).
  [[nodiscard]] std::uint64_t run_next_steals() const noexcept {
    return steals_.load(std::memory_order_relaxed);  // relaxed: statistics
  }

 private:
  struct worker;
  void run(worker& w) noexcept;
  actor* next_local(worker& w) noexcept;
  actor* search(worker& w) noexcept;
  void push_local(worker& w, actor* a) noexcept;
  void notify_one() noexcept;
  void sleep(worker& w) noexcept;
  bool work_visible() const noexcept;
  /// The installed driver, now owned by the calling worker, or null.
  io_driver* acquire_driver() noexcept;
  void release_driver() noexcept;

  void restart_watch() noexcept;

  const unsigned budget_;
  const duration watch_period_;
  std::function<void()> wake_watch_;  // set before start()
  // False only while the watch sleeps. seq_cst: the store in watch_tick()
  // and a waking worker's load pair with RMWs on the idle word (Dekker).
  std::atomic<bool> watching_{true};
  std::atomic<std::uint64_t> steals_{0};
  std::vector<std::unique_ptr<worker>> workers_;
  inject_queue inject_;
  idle_set idle_;
  // release store in stop(), acquire loads in the worker loop.
  std::atomic<bool> stopping_{false};
  // The driver and the flag of the worker inside it. seq_cst: remove_driver
  // stores driver_ then loads driver_busy_; acquire_driver stores
  // driver_busy_ then loads driver_. Neither may pass the other (a Dekker
  // handshake), or a worker could enter a driver being removed.
  std::atomic<io_driver*> driver_{nullptr};
  std::atomic<bool> driver_busy_{false};
};

}  // namespace libactor::detail
