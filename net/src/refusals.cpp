#include "refusals.hpp"

namespace libactor::net::detail {

std::optional<std::string> refusals::record(std::string_view peer, std::string_view rule,
                                            const std::string& text,
                                            token_bucket::clock::time_point now) {
  return once(
      peer, rule,
      "refused " + text + " from node " + std::string(peer) + " (logged once per rule and peer)",
      now, true);
}

std::optional<std::string> refusals::once(std::string_view who, std::string_view rule,
                                          std::string line, token_bucket::clock::time_point now,
                                          bool counted) {
  std::lock_guard lock(mu_);
  if (counted) ++count_;
  std::string key(who);
  key += '\0';
  key += rule;
  if (auto it = logged_.find(key); it != logged_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    return std::nullopt;
  }
  if (!bucket_.take(now)) {
    ++held_back_;
    return std::nullopt;
  }
  if (logged_.size() == max_keys) {
    logged_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(key);
  logged_.emplace(std::move(key), order_.begin());
  if (held_back_ != 0) {
    line += "; " + std::to_string(held_back_) + " other refusals were not logged (rate limit)";
    held_back_ = 0;
  }
  return line;
}

std::uint64_t refusals::count() const {
  std::lock_guard lock(mu_);
  return count_;
}

}  // namespace libactor::net::detail
