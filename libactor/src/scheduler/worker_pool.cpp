#include "scheduler/worker_pool.hpp"

#include <random>

#include "libactor/detail/pool.hpp"

namespace libactor::detail {

struct worker_pool::worker {
  using queue = run_queue<local_capacity>;

  explicit worker(unsigned i)
      : index(i), local(q), stealer(q), next(slot), watch(slot), rng(0x9e3779b9u * (i + 1)) {}

  const unsigned index;
  queue q;
  queue::owner local;
  queue::stealer stealer;
  parker park;
  // The run-next slot (run_next.hpp): the owner puts and takes, the watch
  // may steal. See the header's "run-next slot and the watch".
  run_next_slot<actor> slot;
  run_next_slot<actor>::owner next;
  run_next_slot<actor>::thief watch;
  // Activations started; the owner stores, the watch reads (relaxed both:
  // a progress counter, it publishes nothing).
  std::atomic<std::uint64_t> activations{0};
  // Watch-only state: what the previous tick saw.
  actor* seen_slot = nullptr;
  std::uint64_t seen_activations = 0;
  // Owner-only state.
  unsigned lifo_streak = 0;
  std::uint64_t tick = 0;
  bool searching = false;
  std::minstd_rand rng;
  std::thread thread;
  worker_pool* pool = nullptr;
};

namespace {
// The worker (of any pool) running on this thread.
thread_local void* t_worker = nullptr;
}  // namespace

worker_pool::worker_pool(unsigned workers, unsigned budget, duration run_next_timeout)
    : budget_(budget == 0 ? 1 : budget),
      watch_period_(run_next_timeout > duration::zero() ? run_next_timeout : duration::zero()),
      idle_(workers == 0 ? 1 : workers) {
  init_asymmetric_barriers();  // before the workers start (barrier.hpp)
  if (workers == 0) workers = 1;
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<worker>(i));
    workers_.back()->pool = this;
  }
}

worker_pool::~worker_pool() {
  stop();
}

void worker_pool::start() {
  for (auto& w : workers_) {
    worker* wp = w.get();
    w->thread = std::thread([this, wp] { run(*wp); });
  }
}

void worker_pool::stop() noexcept {
  // release: workers that see the flag also see everything before stop().
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  for (unsigned idx : idle_.take_all_sleepers()) workers_[idx]->park.unpark();
  for (auto& w : workers_) w->park.unpark();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void worker_pool::schedule(actor* a) noexcept {
  auto* w = static_cast<worker*>(t_worker);
  if (w != nullptr && w->pool == this) {
    if (actor* prev = w->next.put(a)) push_local(*w, prev);
    return;
  }
  inject_.push(a);
  notify_one();
}

void worker_pool::release_run_next() noexcept {
  auto* w = static_cast<worker*>(t_worker);
  if (w == nullptr || w->pool != this) return;
  if (actor* a = w->next.take()) push_local(*w, a);
}

void worker_pool::push_local(worker& w, actor* a) noexcept {
  if (!w.local.push(a)) inject_.push(a);
  notify_one();
}

void worker_pool::notify_one() noexcept {
  if (auto idx = idle_.worker_to_wake()) workers_[*idx]->park.unpark();
}

bool worker_pool::work_visible() const noexcept {
  if (!inject_.empty_hint()) return true;
  for (auto& w : workers_) {
    if (!w->stealer.empty()) return true;
  }
  return false;
}

actor* worker_pool::next_local(worker& w) noexcept {
  ++w.tick;
  if (w.tick % inject_interval == 0) {
    if (actor* a = inject_.pop()) return a;
  }
  if (actor* next = w.next.take()) {
    // The streak limit is for fairness to queued work; with nothing queued
    // the chain keeps its warm core instead of being split by a wake-up.
    if (w.lifo_streak < max_lifo_streak || (w.local.size() == 0 && inject_.empty_hint())) {
      ++w.lifo_streak;
      return next;
    }
    // The slot had its turn; let the queue run first.
    push_local(w, next);
  }
  w.lifo_streak = 0;
  if (actor* a = w.local.pop()) return a;
  return inject_.pop();
}

actor* worker_pool::search(worker& w) noexcept {
  // Nobody else has work to steal; the injection queue is checked again on
  // the way to sleep.
  if (idle_.others_asleep()) return inject_.pop();
  if (!w.searching) {
    if (!idle_.try_begin_search()) return nullptr;
    w.searching = true;
  }
  const auto n = static_cast<unsigned>(workers_.size());
  for (unsigned round = 0; round < search_rounds; ++round) {
    const unsigned start = n > 1 ? static_cast<unsigned>(w.rng() % n) : 0;
    for (unsigned k = 0; k < n; ++k) {
      worker& victim = *workers_[(start + k) % n];
      if (&victim == &w) continue;
      if (actor* a = w.local.steal_from(victim.stealer)) return a;
    }
    if (actor* a = inject_.pop()) return a;
    std::this_thread::yield();
  }
  return nullptr;
}

bool worker_pool::watch_tick() noexcept {
  for (auto& wp : workers_) {
    worker& w = *wp;
    actor* a = w.watch.peek();
    // relaxed: see the field.
    const std::uint64_t act = w.activations.load(std::memory_order_relaxed);
    if (a != nullptr && a == w.seen_slot && act == w.seen_activations) {
      // The same actor waited a whole period while its worker started no
      // activation: the worker is inside one long handler.
      if (w.watch.steal(a)) {
        inject_.push(a);
        notify_one();
        steals_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      }
      a = nullptr;
    }
    w.seen_slot = a;
    w.seen_activations = act;
  }
  if (!idle_.all_asleep()) return true;
  // Every worker sleeps, so no slot is full: the watch may sleep. Dekker with
  // restart_watch(): store the flag, then RMW-read the idle word. A worker
  // that woke before our RMW is seen here; one that wakes after it (its own
  // or its notifier's RMW comes later in the word's order) sees the flag.
  // seq_cst: the store must not pass the RMW below.
  watching_.store(false, std::memory_order_seq_cst);
  if (idle_.all_asleep()) return false;
  watching_.store(true, std::memory_order_relaxed);  // relaxed: only we clear it
  return true;
}

void worker_pool::restart_watch() noexcept {
  if (watch_period_ == duration::zero()) return;
  // seq_cst: the load must not pass the idle-word RMW that woke us.
  if (watching_.load(std::memory_order_seq_cst)) return;
  // One waker per sleep of the watch.
  if (!watching_.exchange(true, std::memory_order_acq_rel) && wake_watch_) wake_watch_();
}

bool worker_pool::install_driver(io_driver* d) noexcept {
  io_driver* none = nullptr;
  // seq_cst: see driver_.
  if (!driver_.compare_exchange_strong(none, d, std::memory_order_seq_cst)) return false;
  // A worker may be asleep on its condition variable with nobody in the
  // driver: wake one so that it takes the driver.
  notify_one();
  return true;
}

void worker_pool::remove_driver(io_driver* d) noexcept {
  io_driver* expected = d;
  // seq_cst: see driver_.
  if (!driver_.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst)) return;
  // seq_cst: see driver_.
  while (driver_busy_.load(std::memory_order_seq_cst)) {
    d->unpark();
    std::this_thread::yield();
  }
}

io_driver* worker_pool::acquire_driver() noexcept {
  // relaxed: a hint; the handshake below decides.
  if (driver_.load(std::memory_order_relaxed) == nullptr) return nullptr;
  // seq_cst: see driver_.
  if (driver_busy_.exchange(true, std::memory_order_seq_cst)) return nullptr;
  // seq_cst: see driver_.
  io_driver* d = driver_.load(std::memory_order_seq_cst);
  if (d == nullptr) driver_busy_.store(false, std::memory_order_release);  // release: as below
  return d;
}

bool worker_pool::poll_driver_if_idle(io_driver* d) noexcept {
  io_driver* got = acquire_driver();
  if (got == nullptr) return false;  // a worker is in it (or it was removed)
  if (got == d) got->poll();
  release_driver();
  if (got != d) return false;
  // Nobody was waiting in the driver: a sleeping worker takes it over (it
  // finds no work and parks in it), so that events are handled at once
  // again rather than at the caller's next check.
  notify_one();
  return true;
}

void worker_pool::release_driver() noexcept {
  // release: the driver's handlers run by this worker happen before the
  // next worker's use of it (which acquires through the exchange).
  driver_busy_.store(false, std::memory_order_release);
}

void worker_pool::sleep(worker& w) noexcept {
  pool::flush_thread_cache();
  pool::trim_if_due();  // a burst's memory goes back while the system is idle
  idle_.add_sleeper(w.index, w.searching);
  w.searching = false;
  // After add_sleeper: install_driver stores driver_ and then notifies with
  // an RMW on the idle word. Either that RMW sees this sleeper and wakes it,
  // or add_sleeper's RMW came after it, and then the store is visible here.
  io_driver* d = acquire_driver();
  // acquire: see stop(). A full run-next slot is work too (the slot's owner
  // never leaves one behind, see run_next.hpp; this is the belt to that).
  if (stopping_.load(std::memory_order_acquire) || work_visible() || !w.next.empty()) {
    if (d != nullptr) release_driver();
    if (idle_.remove_sleeper(w.index)) {
      // Back to the loop. If searching is refused (enough searchers), the
      // work is theirs; yield rather than spin on the idle mutex.
      std::this_thread::yield();
    } else {
      // A notifier already took us off the list and counted us as searching;
      // its unpark is imminent. Consume it now: a token left behind would make
      // a later park() return while we are still listed as a sleeper, and the
      // counts would drift (a searcher count that never returns to zero stops
      // all wake-ups).
      w.park.park();
      w.searching = true;
    }
    return;
  }
  if (d != nullptr) {
    const bool notified = w.park.park_on(d);
    release_driver();
    if (notified) {
      w.searching = true;  // as below
      return;
    }
    // The driver handled events; what they made runnable is in this
    // worker's queues. Leave the sleepers' list. With more work than the one
    // actor in the run-next slot, wake another worker for it (it will also
    // take the driver when it runs out). With just that actor (a request
    // and its answer), waking nobody keeps the wake-up off the path.
    if (idle_.remove_sleeper(w.index)) {
      if (w.local.size() > 0) notify_one();
      return;
    }
    // A notifier took us off the list meanwhile; its unpark is imminent.
    w.park.park();
    w.searching = true;
    return;
  }
  w.park.park();
  // A notifier (or stop(), through take_all_sleepers) moved us from
  // sleeping to searching before unparking.
  w.searching = true;
}

void worker_pool::run(worker& w) noexcept {
  t_worker = &w;
  // acquire: see stop().
  while (!stopping_.load(std::memory_order_acquire)) {
    if (w.tick % driver_interval == 0) {
      if (io_driver* d = acquire_driver()) {
        d->poll();
        release_driver();
      }
    }
    actor* a = next_local(w);
    if (a == nullptr) a = search(w);
    if (a == nullptr) {
      sleep(w);
      // Awake again (taken off the sleepers by an RMW on the idle word, ours
      // or a notifier's): the watch must be running while we may fill our
      // slot.
      restart_watch();
      continue;
    }
    if (w.searching) {
      w.searching = false;
      // The last searcher found work: more may be waiting, let another look.
      if (idle_.end_search()) notify_one();
    }
    // relaxed: see the field; a plain increment by the only writer.
    w.activations.store(w.activations.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
    if (actor_access::resume(a, budget_) == resume_result::more) push_local(w, a);
  }
  if (w.searching) {
    w.searching = false;
    (void)idle_.end_search();
  }
  pool::flush_thread_cache();
  t_worker = nullptr;
}

}  // namespace libactor::detail
