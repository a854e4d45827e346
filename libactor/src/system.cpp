#include <cstdio>
#include <cstdlib>
#include <thread>

#include "libactor/detail/driver.hpp"
#include "libactor/detail/proxy.hpp"  // runtime_log's exported declaration
#include "scheduler/worker_pool.hpp"
#include "system_state.hpp"
#include "type_name.hpp"

namespace libactor {
namespace detail {

namespace {
std::unique_ptr<scheduler> make_scheduler(const system_config& cfg, deterministic_scheduler*& det) {
  if (cfg.deterministic_seed) {
    auto s = std::make_unique<deterministic_scheduler>(*cfg.deterministic_seed);
    det = s.get();
    return s;
  }
  unsigned n = cfg.workers != 0 ? cfg.workers : std::thread::hardware_concurrency();
  return std::make_unique<worker_pool>(n == 0 ? 1 : n, cfg.budget, cfg.run_next_timeout);
}
}  // namespace

system_state::system_state(actor_system& o, system_config c)
    : owner(o),
      cfg(std::move(c)),
      timers(cfg.deterministic_seed.has_value()),
      limiter(cfg.log_limit) {
  if (cfg.budget == 0) throw std::invalid_argument("system_config::budget must be at least 1");
  if (cfg.run_next_timeout < duration::zero()) {
    throw std::invalid_argument("system_config::run_next_timeout must not be negative");
  }
  sched = make_scheduler(cfg, det);
  if (auto* pool = dynamic_cast<worker_pool*>(sched.get());
      pool != nullptr && pool->watch_period() > duration::zero()) {
    timers.set_watch(pool->watch_period(), [pool] { return pool->watch_tick(); });
    pool->set_watch_waker([this] { timers.wake_watch(); });
  }
}

system_state::~system_state() = default;

void system_state::retire() noexcept {
  // seq_cst: see call_hook().
  retired_.store(true, std::memory_order_seq_cst);
  // seq_cst: the load must not pass the store above (Dekker with
  // call_hook()); it also acquires the hooks' release decrements.
  while (hooks_running_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

void system_state::dead_letter(message* m, actor* receiver, std::string_view why) noexcept {
  const bool user_visible = m->kind == msg_kind::user || m->kind == msg_kind::response ||
                            m->kind == msg_kind::error_reply;
  if (user_visible) {
    dead_letters.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    const char* type = readable_name(m->type);
    const std::uint64_t to = receiver ? receiver->id() : 0;
    if (cfg.on_dead_letter) call_hook([&] { cfg.on_dead_letter(dead_letter_info{to, type}); });
    // As Akka does, not while shutting down: messages left in mailboxes
    // then are expected, and would bury the ones that matter.
    // relaxed: a stale false only logs one line more.
    if (cfg.log_dead_letters && !shutting_down.load(std::memory_order_relaxed)) {
      log(log_level::warning, log_category::dead_letter, [&] {
        std::string line = type;
        if (m->request_id != 0 && m->kind == msg_kind::user) line += " request";
        if (to == 0) {
          line += " sent to an empty handle";
        } else if (why.empty()) {
          line += " sent to actor " + std::to_string(to) + ", which has stopped";
        } else {
          line += " to actor " + std::to_string(to) + " not delivered: ";
          line += why;
        }
        return line;
      });
    }
    reply_error(*m, receiver, errc::receiver_down, "the receiver is stopped");
  }
  m->dispose();
}

void system_state::unhandled_message(actor* receiver, message& m) noexcept {
  unhandled.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  const char* type = readable_name(m.type);
  if (cfg.on_unhandled) {
    call_hook([&] { cfg.on_unhandled(unhandled_info{receiver->id(), type}); });
  }
  if (cfg.log_unhandled) {
    log(log_level::warning, log_category::unhandled, [&] {
      return "actor " + std::to_string(receiver->id()) + " (" + actor_type_name(receiver) +
             ") has no handler for " + type;
    });
  }
}

void system_state::actor_failed(const actor* a, const char* where, type_id type,
                                const std::exception_ptr& ep) noexcept {
  failures.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  if (!cfg.log_failures) return;
  log(log_level::error, log_category::actor_failed, [&] {
    std::string line =
        "actor " + std::to_string(a->id()) + " (" + actor_type_name(a) + ") failed: " + where;
    if (type != nullptr) line += std::string(" ") + readable_name(type);
    return line + " threw " + describe_exception(ep);
  });
}

void system_state::track(actor* a) {
  auto& s = shards[a->id() % shards.size()];
  {
    std::lock_guard lock(s.mu);
    // relaxed: read under the shard mutex. shutdown() sets the flag before
    // it locks this shard to scan it, so either that scan finds this actor
    // (tracked first) or this lock follows the scan's and sees the flag.
    if (shutting_down.load(std::memory_order_relaxed)) {
      throw std::logic_error("actor_system::spawn: the system is shutting down");
    }
    a->live_next_ = s.head;
    if (s.head) s.head->live_prev_ = a;
    s.head = a;
    // Inside the shard lock: shutdown() scans the shards under their locks,
    // so an actor it can find is already counted and will be waited for.
    // relaxed: the shard mutex orders it with that scan; the count's final
    // decrement happens under live_mu (see untrack()).
    live.fetch_add(1, std::memory_order_relaxed);
  }
  spawned.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
}

void system_state::untrack(actor* a) noexcept {
  auto& s = shards[a->id() % shards.size()];
  {
    std::lock_guard lock(s.mu);
    if (a->live_prev_) {
      a->live_prev_->live_next_ = a->live_next_;
    } else {
      s.head = a->live_next_;
    }
    if (a->live_next_) a->live_next_->live_prev_ = a->live_prev_;
    a->live_prev_ = a->live_next_ = nullptr;
  }
  {
    // Under live_mu: shutdown() returns as soon as it sees zero, so the
    // decrement and the notify are done before it can look. relaxed: the
    // mutex provides the ordering. The actor's own reference to this state
    // keeps it valid until the release below.
    std::lock_guard lock(live_mu);
    if (live.fetch_sub(1, std::memory_order_relaxed) == 1) live_cv.notify_all();
  }
  // Last: may destroy `a`, and with it the last reference to this state.
  actor_access::release(a);
}

void system_state::shutdown() {
  std::lock_guard once(shutdown_mu);
  if (shut_down) return;
  if (current_actor() != nullptr) {
    throw std::logic_error("actor_system::shutdown must not be called from inside an actor");
  }
  // seq_cst: see the member's comment.
  shutting_down.store(true, std::memory_order_seq_cst);
  std::vector<actor_ref> all;
  for (auto& s : shards) {
    std::lock_guard lock(s.mu);
    for (actor* a = s.head; a; a = a->live_next_) all.emplace_back(ref_ptr<actor>(a));
  }
  for (auto& a : all) actor_access::get(a)->request_stop(exit_reason(exit_code::shutdown, {}));
  all.clear();
  if (det) {
    // relaxed: deterministic mode runs every actor on this thread.
    while (live.load(std::memory_order_relaxed) != 0) {
      if (!det->run_once()) break;
    }
  } else {
    std::unique_lock lock(live_mu);
    // relaxed: read under live_mu, which orders it with untrack()'s decrement.
    live_cv.wait(lock, [this] { return live.load(std::memory_order_relaxed) == 0; });
  }
  timers.stop();
  sched->stop();
  {
    std::lock_guard lock(names_mu);
    names.clear();
  }
  shut_down = true;
}

}  // namespace detail

actor_system::actor_system(system_config cfg)
    : state_(new detail::system_state(*this, std::move(cfg))) {
  try {
    state_->timers.start();
    state_->sched->start();
  } catch (...) {
    state_->timers.stop();
    state_->sched->stop();
    state_->release();
    throw;
  }
}

actor_system::~actor_system() {
  // relaxed: see the field.
  if (state_->layers.load(std::memory_order_relaxed) != 0) {
    std::fputs(
        "libactor: an actor_system is being destroyed while a net::node still uses it; "
        "destroy the node first (declare the actor_system before the node)\n",
        stderr);
    std::abort();
  }
  shutdown();
  state_->retire();
  state_->release();
}

void actor_system::shutdown() {
  state_->shutdown();
}

void actor_system::stop(const actor_ref& target, exit_reason reason) {
  if (!target) throw std::invalid_argument("actor_system::stop: empty handle");
  detail::actor_access::get(target)->request_stop(std::move(reason));
}

system_stats actor_system::stats() const noexcept {
  auto& s = *state_;
  // relaxed: statistics.
  return system_stats{s.spawned.load(std::memory_order_relaxed),
                      s.live.load(std::memory_order_relaxed),
                      s.dead_letters.load(std::memory_order_relaxed),
                      s.unhandled.load(std::memory_order_relaxed),
                      s.dropped.load(std::memory_order_relaxed),
                      s.rejected.load(std::memory_order_relaxed),
                      s.failures.load(std::memory_order_relaxed),
                      s.log_suppressed.load(std::memory_order_relaxed)};
}

unsigned actor_system::worker_count() const noexcept {
  return state_->sched->workers();
}

time_point actor_system::now() const noexcept {
  return state_->timers.now();
}

bool actor_system::deterministic() const noexcept {
  return state_->det != nullptr;
}

namespace {
detail::deterministic_scheduler& det_of(detail::system_state& s) {
  if (!s.det) throw std::logic_error("only available in deterministic mode");
  return *s.det;
}
}  // namespace

bool actor_system::run_once() {
  return det_of(*state_).run_once();
}

std::size_t actor_system::run_until_idle(std::size_t max_steps) {
  auto& d = det_of(*state_);
  std::size_t n = 0;
  while (n < max_steps && d.run_once()) ++n;
  return n;
}

void actor_system::advance_time(duration d) {
  auto& det = det_of(*state_);
  if (d < duration::zero()) {
    throw std::invalid_argument("actor_system::advance_time: virtual time does not go back");
  }
  run_until_idle();
  state_->timers.advance_to(detail::deadline_after(state_->timers.now(), d), [&det] {
    while (det.run_once()) {
    }
  });
}

namespace detail {

bool install_driver(actor_system& sys, io_driver* d) noexcept {
  return sys.state().sched->install_driver(d);
}

void remove_driver(actor_system& sys, io_driver* d) noexcept {
  sys.state().sched->remove_driver(d);
}

bool poll_driver_if_idle(actor_system& sys, io_driver* d) noexcept {
  return sys.state().sched->poll_driver_if_idle(d);
}

void attach_layer(actor_system& sys) noexcept {
  sys.state().layers.fetch_add(1, std::memory_order_relaxed);  // relaxed: see the field
}

void detach_layer(actor_system& sys) noexcept {
  sys.state().layers.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see the field
}

void runtime_log(actor_system& sys, log_level level, log_category category,
                 std::string_view text) noexcept {
  sys.state().log(level, category, [text] { return std::string(text); });
}

}  // namespace detail
}  // namespace libactor
