// Timers: one-shot, periodic, cancel; exact in virtual time, and working in
// real time on the worker pool.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <filesystem>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::behavior;

namespace {
struct tick {
  int n;
};
struct start {};
struct cancel {};
}  // namespace

TEST_CASE("virtual time: send_after fires exactly at its deadline", "[timers]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    const auto t0 = sys.now();
    test::recorder<libactor::duration> fired;
    auto a = sys.spawn([&sys, &fired, t0](actor& self) -> behavior {
      self.send_after(100ms, tick{1});
      self.send_after(30ms, tick{2});
      return {[&sys, &fired, t0](tick) { fired.push(sys.now() - t0); }};
    });
    sys.advance_time(29ms);
    CHECK(fired.items().empty());
    sys.advance_time(1ms);
    REQUIRE(fired.items().size() == 1);
    CHECK(fired.items()[0] == 30ms);
    sys.advance_time(100ms);
    REQUIRE(fired.items().size() == 2);
    CHECK(fired.items()[1] == 100ms);
  });
}

TEST_CASE("virtual time: periodic timers repeat until cancelled; cancel is exact", "[timers]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::counter ticks;
    auto a = sys.spawn([&ticks](actor& self) -> behavior {
      auto id = std::make_shared<libactor::timer_id>();
      *id = self.send_every(10ms, tick{0});
      return {
          [&ticks](tick) { ticks.add(); },
          [&self, id](cancel) { return self.cancel_timer(*id); },
      };
    });
    sys.advance_time(95ms);
    CHECK(ticks.value() == 9);
    auto r = a.ask<bool>(cancel{}, 1s);
    sys.run_until_idle();
    auto cancelled = r.get();
    REQUIRE(cancelled);
    CHECK(*cancelled);
    sys.advance_time(1s);
    CHECK(ticks.value() == 9);
  });
}

TEST_CASE("a timer cancelled while its message is already queued is not handled", "[timers]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::recorder<int> ticks;
    sys.spawn([&ticks](actor& self) -> behavior {
      // Both are due at the same instant, so both messages are queued before
      // the actor runs; handling the first cancels the second.
      auto second = std::make_shared<libactor::timer_id>();
      self.send_after(10ms, tick{1});
      *second = self.send_after(10ms, tick{2});
      return {[&ticks, &self, second](tick t) {
        ticks.push(t.n);
        if (t.n == 1) CHECK(self.cancel_timer(*second));
      }};
    });
    sys.advance_time(20ms);
    CHECK(ticks.items() == std::vector<int>{1});
  });
}

namespace {
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}
}  // namespace

TEST_CASE("real time: timers fire on the worker pool; no thread per timer", "[timers]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  const std::size_t before = thread_count();
  // 1000 pending long timers add no thread.
  for (int i = 0; i < 1000; ++i) {
    sys.spawn([](actor& self) -> behavior {
      self.send_after(1h, tick{0});
      return {[](tick) {}};
    });
  }
  CHECK(thread_count() == before);
  test::counter fired;
  const int n = 1000;
  for (int i = 0; i < n; ++i) {
    sys.spawn([&fired, i](actor& self) -> behavior {
      self.send_after(std::chrono::milliseconds(i % 20), tick{i});
      return {[&fired, &self](tick) {
        fired.add();
        self.quit();
      }};
    });
  }
  REQUIRE(fired.wait_for_at_least(n));
}

TEST_CASE("real time: a periodic timer keeps firing until the actor stops", "[timers]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 6);  // ids and counters start elsewhere
  test::counter fired;
  auto a = sys.spawn([&fired](actor& self) -> behavior {
    self.send_every(1ms, tick{0});
    return {[&fired](tick) { fired.add(); }};
  });
  REQUIRE(fired.wait_for_at_least(5));
  sys.stop(a);
}
