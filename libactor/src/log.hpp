#pragma once
// The runtime's log: one sink (system_config::logger, or stderr) behind a
// rate limit per category.
//
// The limit is a fixed window per category: the first `lines` lines of each
// `period` pass, the rest are only counted, and the next line that passes
// carries that count (log_record::suppressed). The window restarts lazily,
// when a line comes after it ended. Admission is two or three atomic
// operations, so a flood of dead letters costs little once its first lines
// are out; concurrent callers at a window boundary may let a line or two
// more through, which is harmless for a log.
//
// Time is the system's clock: virtual in deterministic mode, so tests drive
// the windows with advance_time().

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "libactor/system.hpp"

namespace libactor::detail {

class log_limiter {
 public:
  explicit log_limiter(log_rate_limit limit) noexcept : limit_(limit) {}

  /// True if a line of category `c` may pass at `now`; then `suppressed`
  /// receives the lines dropped since the previous one passed.
  bool admit(log_category c, time_point now, std::uint64_t& suppressed) noexcept;

 private:
  // One cache line per category: a flood in one does not slow the others.
  struct alignas(64) window {
    std::atomic<std::int64_t> start{INT64_MIN};  // steady-clock ticks
    std::atomic<std::uint32_t> used{0};
    std::atomic<std::uint64_t> dropped{0};
  };
  const log_rate_limit limit_;
  std::array<window, log_category_count> windows_;
};

/// The default sink: one line on stderr.
void log_to_stderr(const log_record& r) noexcept;

}  // namespace libactor::detail
