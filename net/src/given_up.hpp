#pragma once
// Addresses whose peer this node gave up dialling (node_config::
// max_failed_dials): a handle naming one, under any node name, dials
// nothing for a period, so that rotating node names does not renew the
// dials. The newest `capacity` addresses are remembered. A host on which
// `ports_per_host` ports were given up within the period is given up on
// every port: messages naming one host at many ports would otherwise make
// this node scan its ports, max_failed_dials dials each. Pure: the time is
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
  given_up_addresses(std::size_t capacity, clock::duration period,
                     std::size_t ports_per_host = 4) noexcept
      : capacity_(capacity), period_(period), ports_per_host_(ports_per_host) {}

  /// The node gave up on `address` ("host:port", "[v6]:port") at `now`.
  void remember(const std::string& address, clock::time_point now);
  /// Whether it did so less than the period before `now`, or gave up on
  /// ports_per_host other ports of its host within the period.
  [[nodiscard]] bool recent(const std::string& address, clock::time_point now);

 private:
  /// Drops what expired (caller holds mu_).
  void expire(clock::time_point now);

  const std::size_t capacity_;
  const clock::duration period_;
  const std::size_t ports_per_host_;
  std::mutex mu_;
  std::unordered_map<std::string, clock::time_point> when_;
  std::deque<std::string> order_;  // first remembered first
  // Per host, the times ports of it were given up, oldest first; no more
  // than ports_per_host each, and only hosts with an entry in when_.
  std::unordered_map<std::string, std::deque<clock::time_point>> by_host_;
};

}  // namespace libactor::net::detail
