#pragma once
// Test helpers: events and counters that tests wait on with deadlines.
//
// Atomics in the tests: where no weaker order is named with its reason, the
// tests pass std::memory_order_seq_cst explicitly. Test bookkeeping is not a
// hot path, and one total order keeps the checks easy to reason about.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace test {

inline constexpr std::chrono::seconds deadline{30};

/// Scales an iteration count down under sanitizers.
constexpr std::size_t scaled(std::size_t n) {
  return n / LIBACTOR_TEST_SCALE > 0 ? n / LIBACTOR_TEST_SCALE : 1;
}

/// Deterministic scenarios run under this many seeds.
inline constexpr std::uint64_t seeds = 200;

/// Runs `scenario(seed)` for seeds 0..n-1; a failure reports its seed.
template <class F>
void for_seeds(F&& scenario, std::uint64_t n = seeds) {
  for (std::uint64_t seed = 0; seed < n; ++seed) {
    INFO("seed " << seed);
    scenario(seed);
  }
}

/// A member that counts its owner's destruction into `*destroyed`: tells
/// when a stopped actor's memory goes (release: the test reads what the
/// actor wrote before it).
struct destruction_counter {
  std::atomic<int>* destroyed;
  ~destruction_counter() { destroyed->fetch_add(1, std::memory_order_release); }
};

namespace detail {
struct noise_tick {};
struct noise_ask {};
}  // namespace detail

/// Makes `sys`'s counters start elsewhere before a scenario: a few unrelated
/// actors (ids), timers (timer ids) and asks, varying with `seed`, so that a
/// test cannot pass because two counters both start at 1. The timers are
/// far in the future and the actors idle; in deterministic mode the asks are
/// answered by the next run.
inline void unrelated(libactor::actor_system& sys, std::uint64_t seed) {
  using libactor::actor;
  using libactor::behavior;
  for (std::uint64_t i = 0; i < 1 + seed % 4; ++i) {
    sys.spawn([](actor&) -> behavior { return {[](detail::noise_tick) {}}; });
  }
  const auto timers = static_cast<int>(1 + seed % 3);
  auto holder = sys.spawn([timers](actor& self) -> behavior {
    for (int i = 0; i < timers; ++i)
      self.send_after(std::chrono::hours(100 + i), detail::noise_tick{});
    self.send_every(std::chrono::hours(77), detail::noise_tick{});
    return {[](detail::noise_tick) {}, [](detail::noise_ask) { return 1; }};
  });
  for (std::uint64_t i = 0; i < seed % 3; ++i) {
    (void)holder.ask<int>(detail::noise_ask{}, std::chrono::hours(1));
  }
}

/// Runs `body` with stderr redirected to a file; returns what was written.
template <class F>
std::string capture_stderr(F&& body) {
  char path[] = "/tmp/libactor_stderr_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  REQUIRE(dup2(fd, STDERR_FILENO) >= 0);
  body();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);
  return text.str();
}

/// Disposes of a chain of messages linked through `next`.
inline void dispose_all(libactor::detail::message* m) {
  while (m != nullptr) {
    libactor::detail::message* next = m->next;
    m->dispose();
    m = next;
  }
}

/// A counter that a test waits on until it reaches a target.
class counter {
 public:
  // Notifies under the lock: a waiter that sees the value may destroy this
  // object as soon as it can take the mutex, so the notify must be done by then.
  void add(std::size_t n = 1) {
    std::lock_guard lock(mu_);
    value_ += n;
    cv_.notify_all();
  }
  [[nodiscard]] bool wait_for_at_least(std::size_t target,
                                       std::chrono::steady_clock::duration d = deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return value_ >= target; });
  }
  [[nodiscard]] std::size_t value() const {
    std::lock_guard lock(mu_);
    return value_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::size_t value_ = 0;
};

/// Actors wait at a gate until the test opens it. Declare it after the
/// actor systems: leaving its scope opens it before they stop, so a failed
/// REQUIRE cannot leave an actor blocked in a handler. Actors wait on a copy
/// of passage(), which outlives the gate.
class gate {
 public:
  gate() : passage_(open_.get_future().share()) {}
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;
  ~gate() { open(); }
  void open() {
    std::call_once(once_, [this] { open_.set_value(); });
  }
  [[nodiscard]] std::shared_future<void> passage() const { return passage_; }

 private:
  std::promise<void> open_;
  std::shared_future<void> passage_;
  std::once_flag once_;
};

/// A thread-safe log of values that a test waits on.
template <class T>
class recorder {
 public:
  void push(T v) {
    std::lock_guard lock(mu_);  // notify under the lock: see counter::add()
    items_.push_back(std::move(v));
    cv_.notify_all();
  }
  [[nodiscard]] bool wait_for_size(std::size_t n,
                                   std::chrono::steady_clock::duration d = deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return items_.size() >= n; });
  }
  [[nodiscard]] std::vector<T> items() const {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;
};

}  // namespace test
