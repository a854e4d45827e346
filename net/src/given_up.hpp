#pragma once
// Addresses whose peer this node gave up dialling (node_config::
// max_failed_dials): a handle naming one, under any node name, dials
// nothing for a period, so that rotating node names does not renew the
// dials. The newest `capacity` addresses are remembered. Pure: the time is
// a parameter, so tests drive it without a clock. Thread-safe.

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace libactor::net::detail {

class given_up_addresses {
 public:
  using clock = std::chrono::steady_clock;
  given_up_addresses(std::size_t capacity, clock::duration period) noexcept
      : capacity_(capacity), period_(period) {}

  /// The node gave up on `address` ("host:port") at `now`.
  void remember(const std::string& address, clock::time_point now);
  /// Whether it did so less than the period before `now`.
  [[nodiscard]] bool recent(const std::string& address, clock::time_point now);

 private:
  const std::size_t capacity_;
  const clock::duration period_;
  std::mutex mu_;
  std::unordered_map<std::string, clock::time_point> when_;
  std::deque<std::string> order_;  // first remembered first
};

}  // namespace libactor::net::detail
