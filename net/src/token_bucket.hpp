#pragma once
// A token bucket: at most `burst` events at once, then `per_second` on
// average. A pure value: the caller passes the time, so tests drive it
// without clocks or threads. Not thread-safe (its owner's lock or thread).

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace libactor::net::detail {

class token_bucket {
 public:
  using clock = std::chrono::steady_clock;
  token_bucket(double burst, double per_second) noexcept
      : burst_(burst), rate_(per_second), tokens_(burst) {}

  /// Takes one token at time `now`; false when the bucket is empty.
  [[nodiscard]] bool take(clock::time_point now) noexcept {
    if (last_ != clock::time_point{}) {
      const double dt = std::chrono::duration<double>(now - last_).count();
      if (dt > 0) tokens_ = std::min(burst_, tokens_ + dt * rate_);
    }
    if (now > last_) last_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double burst_;
  double rate_;
  double tokens_;
  clock::time_point last_{};
};

}  // namespace libactor::net::detail
