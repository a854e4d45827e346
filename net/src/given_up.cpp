// The addresses given up, and their expiry (given_up.hpp).

#include "given_up.hpp"

namespace libactor::net::detail {

namespace {

std::string host_of(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

}  // namespace

void given_up_addresses::remember(const std::string& address, clock::time_point now) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = when_.insert_or_assign(address, now);
  if (fresh) order_.push_back(address);
  auto& times = by_host_[host_of(address)];
  times.push_back(now);
  if (times.size() > ports_per_host_) times.pop_front();
  while (order_.size() > capacity_) {
    const std::string& gone = order_.front();
    when_.erase(gone);
    // Its host forgets its oldest port with it (at most one per address).
    if (auto h = by_host_.find(host_of(gone)); h != by_host_.end()) {
      h->second.pop_front();
      if (h->second.empty()) by_host_.erase(h);
    }
    order_.pop_front();
  }
}

void given_up_addresses::expire(clock::time_point now) {
  // Expired entries leave from the front (first remembered first; a renewal
  // keeps its old place, so it may leave up to one period early: the bound
  // on dials still holds per period).
  while (!order_.empty()) {
    auto it = when_.find(order_.front());
    if (it != when_.end() && now - it->second < period_) break;
    if (it != when_.end()) when_.erase(it);
    order_.pop_front();
  }
}

bool given_up_addresses::recent(const std::string& address, clock::time_point now) {
  std::lock_guard lock(mu_);
  expire(now);
  if (auto it = when_.find(address); it != when_.end() && now - it->second < period_) return true;
  auto h = by_host_.find(host_of(address));
  if (h == by_host_.end()) return false;
  auto& times = h->second;
  while (!times.empty() && now - times.front() >= period_) times.pop_front();
  if (times.empty()) {
    by_host_.erase(h);
    return false;
  }
  return times.size() >= ports_per_host_;
}

}  // namespace libactor::net::detail
