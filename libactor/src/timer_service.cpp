#include "timer_service.hpp"

namespace libactor::detail {

timer_service::timer_service(bool virtual_time) : virtual_(virtual_time) {}

timer_service::~timer_service() {
  stop();
}

void timer_service::start() {
  if (!virtual_) thread_ = std::thread([this] { loop(); });
}

void timer_service::set_watch(duration period, std::function<bool()> tick) {
  std::lock_guard lock(mu_);
  watch_period_ = period;
  watch_ = std::move(tick);
  watch_active_ = watch_ != nullptr;
  next_tick_ = steady_clock::now() + period;
}

void timer_service::wake_watch() noexcept {
  {
    std::lock_guard lock(mu_);
    if (!watch_) return;
    watch_woken_ = true;
    if (watch_active_) return;
    watch_active_ = true;
    next_tick_ = steady_clock::now() + watch_period_;
  }
  cv_.notify_one();
}

void timer_service::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, e] : entries_) e.proto->dispose();
    entries_.clear();
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

time_point timer_service::now() const noexcept {
  if (!virtual_) return steady_clock::now();
  std::lock_guard lock(mu_);
  return virtual_now_;
}

std::uint64_t timer_service::add(actor_ref target, message* proto, clone_fn clone, duration delay,
                                 duration period) {
  message_ptr owned{proto};  // disposed (outside the lock) unless the timer takes it
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    return 0;
  }
  const std::uint64_t id = next_id_++;
  // A timer message carries its timer id, by which the actor recognises a
  // cancelled timer. Other messages (an ask's timeout) carry their own id,
  // which is not the timer's.
  if (proto->kind == msg_kind::timer) proto->request_id = id;
  const auto base = virtual_ ? virtual_now_ : steady_clock::now();
  const auto due = deadline_after(base, delay);
  auto pos = queue_.emplace(due, id);
  try {
    entries_.emplace(id, entry{std::move(target), proto, clone, period, pos});
  } catch (...) {
    queue_.erase(pos);
    lock.unlock();
    throw;  // `owned` disposes the message
  }
  (void)owned.release();
  const bool earliest = pos == queue_.begin();
  lock.unlock();
  if (earliest) cv_.notify_one();
  return id;
}

bool timer_service::cancel(std::uint64_t id) noexcept {
  message* proto = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    queue_.erase(it->second.pos);
    proto = it->second.proto;
    entries_.erase(it);
  }
  proto->dispose();
  return true;
}

std::pair<actor_ref, message*> timer_service::pop_due(std::unique_lock<std::mutex>&) {
  // Extracted, not erased: a periodic timer re-inserts the same node, so
  // re-arming never allocates (and cannot fail).
  auto node = queue_.extract(queue_.begin());
  const auto due = node.key();
  const std::uint64_t id = node.mapped();
  auto it = entries_.find(id);
  entry& e = it->second;
  if (e.period == duration::zero()) {
    std::pair<actor_ref, message*> out{std::move(e.target), e.proto};
    entries_.erase(it);
    return out;
  }
  message* m = nullptr;
  try {
    m = e.clone(*e.proto);
  } catch (...) {
    m = nullptr;  // out of memory while copying: skip this tick, keep the timer
  }
  node.key() = deadline_after(due, e.period);
  e.pos = queue_.insert(std::move(node));
  return {e.target, m};
}

void timer_service::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (watch_active_ && steady_clock::now() >= next_tick_) {
      watch_woken_ = false;
      lock.unlock();
      const bool more = watch_();
      lock.lock();
      // A wake during the tick keeps the watch on: the tick may have seen
      // the state from before it.
      watch_active_ = more || watch_woken_;
      next_tick_ = steady_clock::now() + watch_period_;
      continue;
    }
    if (queue_.empty()) {
      if (watch_active_) {
        cv_.wait_until(lock, next_tick_);
      } else {
        cv_.wait(lock);
      }
      continue;
    }
    const auto due = queue_.begin()->first;
    if (steady_clock::now() < due) {
      cv_.wait_until(lock, watch_active_ && next_tick_ < due ? next_tick_ : due);
      continue;
    }
    auto [target, m] = pop_due(lock);
    lock.unlock();
    if (m) actor_access::enqueue(actor_access::get(target), m);
    target = actor_ref{};
    lock.lock();
  }
}

}  // namespace libactor::detail
