// Request/response: outside-actor futures and in-actor co_await, with every
// failure path arriving as an error value.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <atomic>
#include <memory>
#include <string>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::behavior;
using libactor::errc;
using libactor::task;

namespace {
struct boom {};  // the handler throws
struct ping {};
struct die {};

behavior echo_behavior(actor& self) {
  return {
      [](int x) { return x * 2; },
      [](const std::string& s) { return s + "!"; },
      [](ping) {},  // void handler: answers ask<void>
      [](boom) -> int { throw std::runtime_error("kaboom"); },
      [&self](die) -> int {
        self.quit(libactor::exit_reason::error("asked to die"));
        return 0;
      },
  };
}
}  // namespace

TEST_CASE("ask from outside: value, void, and bad response type", "[ask]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  auto e = sys.spawn(echo_behavior);
  auto r = e.ask<int>(21, 10s).get();
  REQUIRE(r);
  CHECK(*r == 42);
  auto s = e.ask<std::string>(std::string("hey"), 10s).get();
  REQUIRE(s);
  CHECK(*s == "hey!");
  auto v = e.ask<void>(ping{}, 10s).get();
  CHECK(v.has_value());
  auto wrong = e.ask<std::string>(1, 10s).get();
  REQUIRE_FALSE(wrong);
  CHECK(wrong.err().code == errc::bad_response_type);
}

TEST_CASE("ask from outside: timeout", "[ask]") {
  // A deterministic system that nobody runs never answers.
  libactor::actor_system frozen{libactor::system_config{.deterministic_seed = 1}};
  auto e = frozen.spawn(echo_behavior);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = e.ask<int>(1, 50ms).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
}

TEST_CASE("ask from outside: dead receiver, dying receiver, throwing handler", "[ask]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 1);  // ids and counters start elsewhere
  auto e = sys.spawn(echo_behavior);

  auto thrown = e.ask<int>(boom{}, 10s).get();
  REQUIRE_FALSE(thrown);
  CHECK(thrown.err().code == errc::handler_failed);
  CHECK(thrown.err().text == "kaboom");

  // The throw stopped the actor: now it is dead.
  auto dead = e.ask<int>(1, 10s).get();
  REQUIRE_FALSE(dead);
  CHECK(dead.err().code == errc::receiver_down);

  auto empty = libactor::actor_ref{}.ask<int>(1, 1s).get();
  REQUIRE_FALSE(empty);
  CHECK(empty.err().code == errc::receiver_down);
}

TEST_CASE("requests queued behind a fatal one fail with receiver_down, not timeout", "[ask]") {
  test::for_seeds([](std::uint64_t seed) {
    libactor::actor_system det{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(det, seed);
    auto d = det.spawn(echo_behavior);
    auto first = d.ask<int>(die{}, 10s);
    auto second = d.ask<int>(5, 10s);
    det.run_until_idle();
    auto f = first.get();
    REQUIRE(f);  // the handler answered before stopping
    auto s = second.get();
    REQUIRE_FALSE(s);
    CHECK(s.err().code == errc::receiver_down);
  });
}

TEST_CASE("ask inside an actor: co_await a reply while other messages are handled", "[ask]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 1);  // ids and counters start elsewhere
  auto e = sys.spawn(echo_behavior);
  struct sum_of {
    int a, b;
  };
  test::counter side;
  auto client = sys.spawn([e, &side](actor& self) -> behavior {
    return {
        [&self, e](sum_of s) -> task<int> {
          auto x = co_await self.ask<int>(e, s.a, 10s);
          auto y = co_await self.ask<int>(e, s.b, 10s);
          if (!x || !y) throw std::runtime_error("ask failed");
          co_return *x + *y;
        },
        [&side](ping) { side.add(); },
    };
  });
  auto r = client.ask<int>(sum_of{1, 2}, 10s).get();
  REQUIRE(r);
  CHECK(*r == 6);
  client.send(ping{});
  REQUIRE(side.wait_for_at_least(1));
}

TEST_CASE("ask inside an actor: errors arrive as values (timeout, unhandled, throw, dead)",
          "[ask]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    // An actor of a system that never runs: asks to it are never answered.
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 12}};
    auto frozen = frozen_sys.spawn(echo_behavior);
    auto e = sys.spawn(echo_behavior);
    struct probe {};
    auto client = sys.spawn([e, frozen](actor& self) -> behavior {
      return {[&self, e, frozen](probe) -> task<std::string> {
        std::string out;
        auto name = [](const auto& r) {
          return r ? std::string("value") : std::string(libactor::to_string(r.err().code));
        };
        out += name(co_await self.ask<int>(frozen, 1, 100ms)) + ";";
        out += name(co_await self.ask<int>(self.self(), 1, 1s)) + ";";  // no int handler here
        out += name(co_await self.ask<int>(e, boom{}, 1s)) + ";";
        out += name(co_await self.ask<int>(e, 1, 1s)) + ";";  // stopped by the throw
        co_return out;
      }};
    });
    auto r = client.ask<std::string>(probe{}, 10s);
    sys.run_until_idle();
    sys.advance_time(200ms);  // virtual time: fires the 100 ms ask timeout
    sys.run_until_idle();
    auto v = r.get();
    REQUIRE(v);
    CHECK(*v == "timeout;unhandled;handler_failed;receiver_down;");
  });
}

TEST_CASE("a request served by a suspended task fails when the server stops", "[ask]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 6}};
    auto frozen = frozen_sys.spawn(echo_behavior);
    auto server = sys.spawn([frozen](actor& self) -> behavior {
      return {[&self, frozen](int) -> task<int> {
        co_await self.ask<int>(frozen, 1, 10s);  // never answered: we stay suspended
        co_return 1;
      }};
    });
    auto r = server.ask<int>(1, 10s);
    sys.run_until_idle();
    sys.stop(server);
    sys.run_until_idle();
    auto v = r.get();
    REQUIRE_FALSE(v);
    CHECK(v.err().code == errc::receiver_down);
  });
}

TEST_CASE("tasks compose: a task may co_await another task", "[ask]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  auto e = sys.spawn(echo_behavior);
  auto client = sys.spawn([e](actor& self) -> behavior {
    auto twice = [&self, e](int x) -> task<int> {
      auto r = co_await self.ask<int>(e, x, 10s);
      co_return r ? *r : -1;
    };
    return {[twice](int x) -> task<int> {
      int a = co_await twice(x);
      int b = co_await twice(a);
      co_return b;
    }};
  });
  auto r = client.ask<int>(3, 10s).get();
  REQUIRE(r);
  CHECK(*r == 12);
}

TEST_CASE("an outside ask made inside a handler is refused, and nothing is sent", "[ask]") {
  // Its reply could only be waited for by blocking the worker.
  libactor::actor_system sys{libactor::system_config{.workers = 1}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  std::atomic<int> received{0};
  auto e = sys.spawn([&received](actor&) -> behavior {
    return {[&received](int x) {
      received.fetch_add(1, std::memory_order_seq_cst);
      return x;
    }};
  });
  auto blocker = sys.spawn([e](actor&) -> behavior {
    return {[e](int x) -> std::string {
      auto r = e.ask<int>(x, 10s).get();
      return r ? std::string("blocked") : r.err().to_string();
    }};
  });
  auto r = blocker.ask<std::string>(1, 10s).get();
  REQUIRE(r);
  CHECK(r->rfind("invalid_argument: actor_ref::ask inside a handler would block", 0) == 0);
  REQUIRE(e.ask<int>(2, 10s).get());  // a round trip through e: had it been sent, it came first
  CHECK(received.load(std::memory_order_seq_cst) == 1);
}

namespace {
struct named_request {
  std::string text;
  libactor::actor_ref from;
};
}  // namespace

TEST_CASE("ask inside an actor with a message that owns resources keeps them balanced", "[ask]") {
  // The message is built as a named local (see the GCC 12 note on
  // actor::ask); the reply and every reference count come out exact.
  test::recorder<std::string> got;
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  auto answerer = sys.spawn([](actor&) -> behavior {
    return {[](const named_request& r) { return r.text + (r.from ? " with a handle" : ""); }};
  });
  std::uint32_t before = 0;
  std::uint32_t after = 0;
  auto asker = sys.spawn([&, answerer](actor& self) -> behavior {
    return {[&, answerer](int) -> task<void> {
      before = libactor::detail::actor_access::use_count(&self);
      named_request q{std::string(100, 'x'), self.self()};
      auto r = co_await self.ask<std::string>(answerer, std::move(q), 10s);
      after = libactor::detail::actor_access::use_count(&self);
      got.push(r ? *r : r.err().to_string());
    }};
  });
  asker.send(1);
  REQUIRE(got.wait_for_size(1));
  CHECK(got.items()[0] == std::string(100, 'x') + " with a handle");
  // q's handle moved into the request, which is gone by the time the
  // answer resumes the task: the count is back where it was.
  CHECK(after == before);
}

namespace {
struct first_ask {
  libactor::duration timeout;
};
struct second_ask {
  libactor::duration timeout;
};
struct outcome {
  int which;
  libactor::duration at;
  errc code;
};
}  // namespace

TEST_CASE("each ask times out at its own deadline, whatever other timers and asks exist",
          "[ask][timers]") {
  // Timer ids are system-wide and ask ids per actor: unrelated timers and
  // asks made first keep the two from coinciding by chance.
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 1}};
    auto frozen = frozen_sys.spawn(echo_behavior);  // never runs: never answers
    const auto t0 = sys.now();
    const int unrelated_timers = static_cast<int>(seed % 7) + 1;
    sys.spawn([unrelated_timers](actor& self) -> behavior {
      for (int i = 0; i < unrelated_timers; ++i) self.send_after(10h + i * 1ms, ping{});
      return {[](ping) {}};
    });
    const int unrelated_asks = static_cast<int>(seed % 5);
    auto other = sys.spawn([frozen](actor& self) -> behavior {
      return {[&self, frozen](int) -> task<void> { (void)co_await self.ask<int>(frozen, 1, 20h); }};
    });
    for (int i = 0; i < unrelated_asks; ++i) other.send(i);
    sys.run_until_idle();

    test::recorder<outcome> seen;
    auto asker = sys.spawn([&sys, &seen, frozen, t0](actor& self) -> behavior {
      return {
          [&, frozen, t0](first_ask a) -> task<void> {
            auto r = co_await self.ask<int>(frozen, 1, a.timeout);
            seen.push({1, sys.now() - t0, r ? errc{} : r.err().code});
          },
          [&, frozen, t0](second_ask a) -> task<void> {
            auto r = co_await self.ask<int>(frozen, 2, a.timeout);
            seen.push({2, sys.now() - t0, r ? errc{} : r.err().code});
          },
      };
    });
    const auto short_timeout = 10ms + std::chrono::milliseconds(seed % 13);
    const auto long_timeout = 1h;
    // Half of the seeds start the long ask first, so ask ids differ too.
    if (seed % 2 == 0) {
      asker.send(first_ask{short_timeout});
      asker.send(second_ask{long_timeout});
    } else {
      asker.send(second_ask{long_timeout});
      asker.send(first_ask{short_timeout});
    }
    sys.run_until_idle();
    sys.advance_time(short_timeout + 1ms);
    auto items = seen.items();
    REQUIRE(items.size() == 1);
    CHECK(items[0].which == 1);
    CHECK(items[0].at == short_timeout);
    CHECK(items[0].code == errc::timeout);
    sys.advance_time(long_timeout);
    items = seen.items();
    REQUIRE(items.size() == 2);
    CHECK(items[1].which == 2);
    CHECK(items[1].at == long_timeout);
    CHECK(items[1].code == errc::timeout);
  }
}

TEST_CASE("a task keeps the behavior that started it alive across become", "[ask][become]") {
  struct start {};
  struct switch_behavior {};
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 7}};
    auto frozen = frozen_sys.spawn(echo_behavior);
    std::weak_ptr<std::string> watch;
    test::recorder<std::string> seen;
    auto a = sys.spawn([&watch, &seen, frozen](actor& self) -> behavior {
      auto label = std::make_shared<std::string>("old behavior");
      watch = label;
      return {
          [label, &watch, &seen, &self, frozen](start) -> task<void> {
            auto r = co_await self.ask<int>(frozen, 1, 50ms);  // times out in virtual time
            if (watch.expired()) {
              seen.push("freed");
            } else {
              seen.push(*label + " resumed: " + std::string(libactor::to_string(r.err().code)));
            }
          },
          [&self, &seen](switch_behavior) {
            self.become({[&seen](int x) { seen.push("new " + std::to_string(x)); }});
          },
      };
    });
    a.send(start{});
    sys.run_until_idle();
    a.send(switch_behavior{});
    a.send(5);
    sys.run_until_idle();
    CHECK_FALSE(watch.expired());  // the suspended task still needs it
    sys.advance_time(60ms);
    CHECK(seen.items() == std::vector<std::string>{"new 5", "old behavior resumed: timeout"});
    CHECK(watch.expired());  // released when the task finished
  }
}

TEST_CASE("become twice in one handler, and become from a resumed task, free what they replace",
          "[ask][become]") {
  struct start {};
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 3}};
    test::unrelated(sys, 2 + seed % 3);  // ids and counters start elsewhere
    auto frozen = frozen_sys.spawn(echo_behavior);
    // One label per behavior, owned by that behavior's handlers only.
    std::weak_ptr<std::string> wa, wb, wc, wd;
    test::recorder<std::string> seen;
    auto a = sys.spawn([&](actor& self) -> behavior {
      auto la = std::make_shared<std::string>("A");
      wa = la;
      return {[la, &self, &seen, &wa, &wb, &wc, &wd, frozen](int x) {
        auto lb = std::make_shared<std::string>("B");
        wb = lb;
        self.become({[lb = std::move(lb)](int) {}});  // replaced before it ever runs
        auto lc = std::make_shared<std::string>("C");
        wc = lc;
        self.become({
            [lc, &seen](int y) { seen.push(*lc + " " + std::to_string(y)); },
            [lc, &self, &seen, &wd, frozen](start) -> task<void> {
              auto r = co_await self.ask<int>(frozen, 1, 50ms);  // times out
              auto ld = std::make_shared<std::string>("D");
              wd = ld;
              self.become({[ld, &seen](int z) { seen.push(*ld + " " + std::to_string(z)); }});
              seen.push(*lc + " resumed: " + std::string(libactor::to_string(r.err().code)));
            },
        });
        seen.push(wb.expired() ? "B freed" : "B alive");
        seen.push(wa.expired() ? "A freed" : "alive " + *la + " " + std::to_string(x));
      }};
    });
    a.send(1);
    a.send(2);
    sys.run_until_idle();
    CHECK(wa.expired());  // freed once its handler returned
    CHECK(wb.expired());
    a.send(start{});
    sys.run_until_idle();
    sys.advance_time(60ms);
    for (int i = 3; i <= 5; ++i) a.send(i);
    sys.run_until_idle();
    CHECK(seen.items() == std::vector<std::string>{"B freed", "alive A 1", "C 2",
                                                   "C resumed: timeout", "D 3", "D 4", "D 5"});
    CHECK(wc.expired());  // the task that held it has finished
    CHECK_FALSE(wd.expired());
  }
}

TEST_CASE("an ask's timeout must be positive, inside an actor and outside; nothing is sent",
          "[ask]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    sys.spawn([](actor& self) -> behavior {  // unrelated timers
      self.send_after(1h, ping{});
      return {[](ping) {}};
    });
    int requests = 0;
    auto counter = sys.spawn([&requests](actor&) -> behavior {
      return {[&requests](int x) {
        ++requests;
        return x;
      }};
    });
    const libactor::duration timeout = seed % 2 == 0 ? libactor::duration::zero() : -1ms;
    // Outside: refused at once.
    auto outside = counter.ask<int>(1, timeout).get();
    REQUIRE_FALSE(outside);
    CHECK(outside.err().code == errc::invalid_argument);
    // Inside: the same, and the task goes on.
    test::recorder<std::string> inside;
    auto asker = sys.spawn([&inside, counter, timeout](actor& self) -> behavior {
      return {[&inside, &self, counter, timeout](ping) -> task<void> {
        auto r = co_await self.ask<int>(counter, 2, timeout);
        inside.push(r ? "value" : std::string(libactor::to_string(r.err().code)));
      }};
    });
    asker.send(ping{});
    sys.run_until_idle();
    CHECK(inside.items() == std::vector<std::string>{"invalid_argument"});
    CHECK(requests == 0);
  }
}

TEST_CASE("an ask with the largest timeout waits for its answer", "[ask]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  auto e = sys.spawn(echo_behavior);
  auto outside = e.ask<int>(21, libactor::duration::max()).get();
  REQUIRE(outside);
  CHECK(*outside == 42);
  auto asker = sys.spawn([e](actor& self) -> behavior {
    return {[&self, e](int x) -> task<int> {
      auto r = co_await self.ask<int>(e, x, libactor::duration::max());
      co_return r ? *r : -1;
    }};
  });
  auto inside = asker.ask<int>(4, 30s).get();
  REQUIRE(inside);
  CHECK(*inside == 8);
}

TEST_CASE("a suspended task of a replaced behavior is destroyed before that behavior",
          "[ask][become]") {
  // Stopping the actor destroys the task; its frame's locals may use the
  // captures of the handler that started it, which become() replaced.
  struct start {};
  struct switch_behavior {};
  struct guard {
    std::weak_ptr<std::string>& watch;
    test::recorder<std::string>& out;
    ~guard() { out.push(watch.expired() ? "captures freed first" : "captures alive"); }
  };
  test::for_seeds([](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    libactor::actor_system frozen_sys{libactor::system_config{.deterministic_seed = seed + 1}};
    auto frozen = frozen_sys.spawn(echo_behavior);
    std::weak_ptr<std::string> watch;
    test::recorder<std::string> out;
    auto a = sys.spawn([&watch, &out, frozen](actor& self) -> behavior {
      auto label = std::make_shared<std::string>("closure");
      watch = label;
      return {
          [label, &watch, &out, &self, frozen](start) -> task<void> {
            guard g{watch, out};
            (void)co_await self.ask<int>(frozen, 1, 1h);  // never answered here
          },
          [&self](switch_behavior) { self.become({[](int) {}}); },
      };
    });
    a.send(start{});
    sys.run_until_idle();
    a.send(switch_behavior{});  // now only the task holds the old behavior
    sys.run_until_idle();
    sys.stop(a);  // destroys the suspended task
    sys.run_until_idle();
    CHECK(out.items() == std::vector<std::string>{"captures alive"});
    CHECK(watch.expired());
  });
}
