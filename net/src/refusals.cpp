#include "refusals.hpp"

namespace libactor::net::detail {

std::optional<std::string> refusals::record(std::string_view peer, std::string_view rule,
                                            const std::string& text,
                                            token_bucket::clock::time_point now) {
  std::lock_guard lock(mu_);
  ++count_;
  auto key = std::make_pair(std::string(peer), std::string(rule));
  if (logged_.contains(key)) return std::nullopt;
  if (!bucket_.take(now)) {
    ++held_back_;
    return std::nullopt;
  }
  if (logged_.size() < max_keys) logged_.insert(std::move(key));
  std::string line =
      "refused " + text + " from node " + std::string(peer) + " (logged once per rule and peer)";
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
