#include "failure_detector.hpp"

#include "libactor/detail/driver.hpp"
#include "libactor/detail/pool.hpp"

namespace libactor::net::detail {

io_backstop::io_backstop(actor_system& sys, libactor::detail::io_driver& d, duration period)
    : sys_(sys), driver_(d), period_(period), thread_([this] { run(); }) {}

io_backstop::~io_backstop() {
  stop();
}

void io_backstop::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void io_backstop::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
    lock.unlock();
    (void)libactor::detail::poll_driver_if_idle(sys_, &driver_);
    // What it decoded while every worker was busy lives in this thread's
    // heap; the workers that handle it free it there. Given back here, as
    // a worker does when it parks (at most once a second, above the heap's
    // retained size).
    libactor::detail::pool::flush_thread_cache();
    libactor::detail::pool::trim_if_due();
    lock.lock();
  }
}

}  // namespace libactor::net::detail
