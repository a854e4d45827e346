// The addresses given up, and their expiry (given_up.hpp).

#include "given_up.hpp"

namespace libactor::net::detail {

void given_up_addresses::remember(const std::string& address, clock::time_point now) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = when_.insert_or_assign(address, now);
  if (fresh) order_.push_back(address);
  while (order_.size() > capacity_) {
    when_.erase(order_.front());
    order_.pop_front();
  }
}

bool given_up_addresses::recent(const std::string& address, clock::time_point now) {
  std::lock_guard lock(mu_);
  // Expired entries leave from the front (first remembered first; a renewal
  // keeps its old place, so it may leave up to one period early: the bound
  // on dials still holds per period).
  while (!order_.empty()) {
    auto it = when_.find(order_.front());
    if (it != when_.end() && now - it->second < period_) break;
    if (it != when_.end()) when_.erase(it);
    order_.pop_front();
  }
  auto it = when_.find(address);
  return it != when_.end() && now - it->second < period_;
}

}  // namespace libactor::net::detail
