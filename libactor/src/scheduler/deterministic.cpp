#include "scheduler/deterministic.hpp"

namespace libactor::detail {

void deterministic_scheduler::schedule(actor* a) noexcept {
  std::lock_guard lock(mu_);
  runnable_.push_back(a);
}

bool deterministic_scheduler::run_once() {
  actor* a;
  {
    std::lock_guard lock(mu_);
    if (runnable_.empty()) return false;
    std::uniform_int_distribution<std::size_t> pick(0, runnable_.size() - 1);
    const std::size_t i = pick(rng_);
    a = runnable_[i];
    runnable_[i] = runnable_.back();
    runnable_.pop_back();
  }
  // One message per activation (not system_config::budget): it maximises
  // the interleavings a seed can produce.
  if (actor_access::resume(a, 1) == resume_result::more) schedule(a);
  return true;
}

}  // namespace libactor::detail
