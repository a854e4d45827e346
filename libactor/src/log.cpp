#include "log.hpp"

#include <cstdio>

namespace libactor::detail {

bool log_limiter::admit(log_category c, time_point now, std::uint64_t& suppressed) noexcept {
  suppressed = 0;
  if (limit_.lines == 0) return true;
  window& w = windows_[static_cast<std::size_t>(c)];
  const std::int64_t t = now.time_since_epoch().count();
  // relaxed everywhere: these are counts for a log, not a publication; the
  // line itself is formatted and written by the admitted caller alone.
  std::int64_t start = w.start.load(std::memory_order_relaxed);
  if (start == INT64_MIN || t - start >= limit_.period.count()) {
    if (w.start.compare_exchange_strong(start, t, std::memory_order_relaxed)) {
      w.used.store(0, std::memory_order_relaxed);
    }
  }
  if (w.used.fetch_add(1, std::memory_order_relaxed) < limit_.lines) {
    suppressed = w.dropped.exchange(0, std::memory_order_relaxed);
    return true;
  }
  w.dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void log_to_stderr(const log_record& r) noexcept {
  // One fprintf per line: stdio locks the stream, so lines from different
  // threads do not interleave.
  if (r.suppressed != 0) {
    std::fprintf(stderr, "libactor: %s: %.*s (%llu similar lines suppressed)\n",
                 to_string(r.category), static_cast<int>(r.text.size()), r.text.data(),
                 static_cast<unsigned long long>(r.suppressed));
  } else {
    std::fprintf(stderr, "libactor: %s: %.*s\n", to_string(r.category),
                 static_cast<int>(r.text.size()), r.text.data());
  }
}

}  // namespace libactor::detail
