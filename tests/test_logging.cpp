// The runtime's log: failures, unhandled messages and dead letters are
// counted and logged by default through one hook, rate-limited per
// category; nothing disappears without a trace.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <string>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::behavior;
using libactor::log_category;
using libactor::log_level;

namespace {
namespace shop {
struct order {
  int qty;
};
struct audit {};
}  // namespace shop

struct line {
  log_level level;
  log_category category;
  std::string text;
  std::uint64_t suppressed;
};

/// A deterministic system whose log lines are recorded.
struct logged_system {
  test::recorder<line> lines;
  libactor::actor_system sys;
  explicit logged_system(std::uint64_t seed, libactor::log_rate_limit limit = {})
      : sys(config(seed, limit, lines)) {}
  static libactor::system_config config(std::uint64_t seed, libactor::log_rate_limit limit,
                                        test::recorder<line>& out) {
    libactor::system_config cfg;
    cfg.deterministic_seed = seed;
    cfg.log_limit = limit;
    cfg.logger = [&out](const libactor::log_record& r) {
      out.push({r.level, r.category, std::string(r.text), r.suppressed});
    };
    return cfg;
  }
  [[nodiscard]] std::vector<line> of(log_category c) const {
    std::vector<line> out;
    for (auto& l : lines.items()) {
      if (l.category == c) out.push_back(l);
    }
    return out;
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("every way actor code can throw is counted and logged with actor, type and text",
          "[logging]") {
  test::for_seeds([&](std::uint64_t seed) {
    logged_system l{seed};
    auto& sys = l.sys;
    test::unrelated(sys, seed);
    for (int i = 0; i < 4; ++i) sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
    struct failing_start : actor {
      behavior make_behavior() override { throw std::invalid_argument("bad configuration"); }
    };
    struct failing_exit : actor {
      behavior make_behavior() override {
        return {[this](shop::audit) { quit(); }};
      }
      void on_exit(const libactor::exit_reason&) override { throw std::runtime_error("cleanup"); }
    };
    auto one_way = sys.spawn([](actor&) -> behavior {
      return {[](shop::order o) { throw std::out_of_range("qty " + std::to_string(o.qty)); }};
    });
    auto task_actor = sys.spawn([](actor&) -> behavior {
      return {[](shop::order o) -> libactor::task<int> {
        throw std::length_error("in a task " + std::to_string(o.qty));
        co_return 0;
      }};
    });
    auto started = sys.spawn<failing_start>();
    auto exiting = sys.spawn<failing_exit>();
    one_way.send(shop::order{7});
    auto r = task_actor.ask<int>(shop::order{8}, 1s);
    exiting.send(shop::audit{});
    sys.run_until_idle();
    CHECK(r.get().err().code == libactor::errc::handler_failed);
    CHECK(sys.stats().failures == 4);
    auto failed = l.of(log_category::actor_failed);
    REQUIRE(failed.size() == 4);
    auto find = [&failed](std::uint64_t id) {
      for (auto& f : failed) {
        if (contains(f.text, "actor " + std::to_string(id) + " ")) return f.text;
      }
      return std::string("(no line)");
    };
    const auto a = find(one_way.id());
    CHECK(contains(a, "the handler for (anonymous namespace)::shop::order"));
    CHECK(contains(a, "std::out_of_range: qty 7"));
    const auto t = find(task_actor.id());
    CHECK(contains(t, "the handler for (anonymous namespace)::shop::order"));
    CHECK(contains(t, "std::length_error: in a task 8"));
    const auto s = find(started.id());
    CHECK(contains(s, "failing_start"));
    CHECK(contains(s, "make_behavior threw std::invalid_argument: bad configuration"));
    CHECK(contains(find(exiting.id()), "on_exit threw std::runtime_error: cleanup"));
    for (auto& f : failed) CHECK(f.level == log_level::error);
  });
}

TEST_CASE("unhandled messages and dead letters are logged by default", "[logging]") {
  test::for_seeds([&](std::uint64_t seed) {
    logged_system l{seed};
    auto& sys = l.sys;
    test::unrelated(sys, seed);
    auto a = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
    a.send(shop::audit{});
    sys.run_until_idle();
    sys.stop(a);
    sys.run_until_idle();
    a.send(shop::order{1});
    struct send_to_nobody {};
    auto sender = sys.spawn(
        [](actor&) -> behavior { return {[](send_to_nobody) { libactor::actor_ref{}.send(2); }}; });
    sender.send(send_to_nobody{});
    sys.run_until_idle();
    auto unhandled = l.of(log_category::unhandled);
    REQUIRE(unhandled.size() == 1);
    CHECK(contains(unhandled[0].text, "actor " + std::to_string(a.id())));
    CHECK(contains(unhandled[0].text, "has no handler for (anonymous namespace)::shop::audit"));
    auto dead = l.of(log_category::dead_letter);
    REQUIRE(dead.size() == 2);
    CHECK(dead[0].text == "(anonymous namespace)::shop::order sent to actor " +
                              std::to_string(a.id()) + ", which has stopped");
    CHECK(dead[1].text == "int sent to an empty handle");
    CHECK(sys.stats().dead_letters == 2);
  });
}

TEST_CASE("the rate limit is per category, and reports what it suppressed", "[logging]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    const std::uint32_t burst = 3 + static_cast<std::uint32_t>(seed % 5);
    logged_system l{seed, libactor::log_rate_limit{.lines = burst, .period = 1s}};
    auto& sys = l.sys;
    sys.spawn([](actor& self) -> behavior {  // an unrelated timer
      self.send_after(10min, 1);
      return {[](int) {}};
    });
    auto gone = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
    sys.stop(gone);
    sys.run_until_idle();
    const int flood = 50 + static_cast<int>(seed % 17);
    for (int i = 0; i < flood; ++i) gone.send(i);
    // A failure in the middle of the flood is not hidden by it.
    auto thrower = sys.spawn([](actor&) -> behavior {
      return {[](shop::order) { throw std::runtime_error("while flooded"); }};
    });
    thrower.send(shop::order{1});
    sys.run_until_idle();
    CHECK(l.of(log_category::dead_letter).size() == burst);
    CHECK(l.of(log_category::actor_failed).size() == 1);
    CHECK(sys.stats().dead_letters == static_cast<std::uint64_t>(flood));
    CHECK(sys.stats().log_suppressed == flood - burst);
    // The next window: the first line says how many were dropped.
    sys.advance_time(1s);
    gone.send(-1);
    auto dead = l.of(log_category::dead_letter);
    REQUIRE(dead.size() == burst + 1);
    CHECK(dead.back().suppressed == flood - burst);
  }
}

TEST_CASE("logging can be turned off per category; the counters still count", "[logging]") {
  test::for_seeds([&](std::uint64_t seed) {
    test::recorder<line> lines;
    libactor::system_config cfg;
    cfg.deterministic_seed = seed;
    cfg.log_dead_letters = false;
    cfg.log_unhandled = false;
    cfg.log_failures = false;
    cfg.logger = [&lines](const libactor::log_record& r) {
      lines.push({r.level, r.category, std::string(r.text), r.suppressed});
    };
    libactor::actor_system sys{cfg};
    test::unrelated(sys, seed);
    auto a = sys.spawn([](actor&) -> behavior {
      return {[](shop::order) { throw std::runtime_error("quiet"); }};
    });
    a.send(shop::audit{});
    a.send(shop::order{1});
    sys.run_until_idle();
    a.send(shop::order{2});
    CHECK(lines.items().empty());
    const auto st = sys.stats();
    CHECK(st.unhandled == 1);
    CHECK(st.failures == 1);
    CHECK(st.dead_letters == 1);
  });
}

TEST_CASE("messages left in mailboxes at shutdown are counted, not logged", "[logging]") {
  test::for_seeds([&](std::uint64_t seed) {
    logged_system l{seed};
    auto& sys = l.sys;
    test::unrelated(sys, seed);
    sys.run_until_idle();
    auto a = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
    for (int i = 0; i < 20; ++i) a.send(i);  // never run: still queued at shutdown
    sys.shutdown();
    CHECK(sys.stats().dead_letters == 20);
    CHECK(l.of(log_category::dead_letter).empty());
  });
}
