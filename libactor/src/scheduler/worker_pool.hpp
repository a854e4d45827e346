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

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "scheduler/idle.hpp"
#include "scheduler/inject.hpp"
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

  worker_pool(unsigned workers, unsigned budget);
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

  const unsigned budget_;
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
