// Stopping, exit reasons, monitors, links, trapping exits, exceptions in
// handlers, the name registry and shutdown.

#include <catch2/catch.hpp>

#include <libactor/detail/proxy.hpp>
#include <libactor/libactor.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;
using libactor::down_msg;
using libactor::exit_code;
using libactor::exit_msg;
using libactor::exit_reason;

namespace {
struct stop_normal {};
struct stop_error {};
struct throw_now {};

behavior stoppable(actor& self) {
  return {
      [&self](stop_normal) { self.quit(); },
      [&self](stop_error) { self.quit(exit_reason::error("bad state")); },
      [](throw_now) { throw std::runtime_error("handler exploded"); },
      [](int) {},
  };
}

/// Spawns an actor that monitors `target` and records down reasons.
actor_ref watch(libactor::actor_system& sys, actor_ref target, test::recorder<exit_reason>& out) {
  return sys.spawn([target, &out](actor& self) -> behavior {
    self.monitor(target);
    return {[&out](const down_msg& d) { out.push(d.reason); }};
  });
}
}  // namespace

TEST_CASE("monitors see each stop reason: normal, error text, killed, exception text",
          "[lifecycle]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 1);  // ids and counters start elsewhere
  test::recorder<exit_reason> downs;
  auto a = sys.spawn(stoppable);
  auto b = sys.spawn(stoppable);
  auto c = sys.spawn(stoppable);
  auto d = sys.spawn(stoppable);
  watch(sys, a, downs);
  watch(sys, b, downs);
  watch(sys, c, downs);
  watch(sys, d, downs);
  a.send(stop_normal{});
  REQUIRE(downs.wait_for_size(1));
  b.send(stop_error{});
  REQUIRE(downs.wait_for_size(2));
  sys.stop(c);
  REQUIRE(downs.wait_for_size(3));
  d.send(throw_now{});
  REQUIRE(downs.wait_for_size(4));
  auto r = downs.items();
  CHECK(r[0] == exit_reason::normal());
  CHECK(r[1] == exit_reason::error("bad state"));
  CHECK(r[2].code() == exit_code::killed);
  CHECK(r[3] == exit_reason::error("handler exploded"));
  // The process and its workers survived the exception: the system still works.
  auto e = sys.spawn([](actor&) -> behavior { return {[](int x) { return x; }}; });
  auto v = e.ask<int>(9, 10s).get();
  REQUIRE(v);
  CHECK(*v == 9);
}

TEST_CASE("monitoring an already stopped actor delivers down at once; demonitor cancels",
          "[lifecycle]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  test::recorder<exit_reason> downs;
  auto a = sys.spawn(stoppable);
  watch(sys, a, downs);
  a.send(stop_error{});
  REQUIRE(downs.wait_for_size(1));
  watch(sys, a, downs);  // a is dead now
  REQUIRE(downs.wait_for_size(2));
  CHECK(downs.items()[1] == exit_reason::error("bad state"));

  // demonitor: with one monitor removed, only the second remains.
  test::recorder<std::string> seen;
  auto b = sys.spawn(stoppable);
  struct arm {};
  auto w = sys.spawn([b, &seen](actor& self) -> behavior {
    self.monitor(b);
    self.monitor(b);
    self.demonitor(b);
    return {[&seen](const down_msg&) { seen.push("down"); }, [&seen](arm) { seen.push("armed"); }};
  });
  b.send(stop_normal{});
  REQUIRE(seen.wait_for_size(1));
  w.send(arm{});  // FIFO after any second down_msg, which must not exist
  REQUIRE(seen.wait_for_size(2));
  CHECK(seen.items() == std::vector<std::string>{"down", "armed"});
}

TEST_CASE("links propagate failure both ways; normal exits do not; trap_exit receives exit_msg",
          "[lifecycle]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 6);  // ids and counters start elsewhere
  test::recorder<exit_reason> downs;
  struct link_to {
    actor_ref other;
  };
  auto linker = [](actor& self) -> behavior {
    return {
        [&self](link_to l) { self.link(l.other); },
        [&self](stop_error) { self.quit(exit_reason::error("chain")); },
        [&self](stop_normal) { self.quit(); },
    };
  };
  // a <-> b; a fails -> b fails with the same reason.
  auto a = sys.spawn(linker);
  auto b = sys.spawn(linker);
  watch(sys, a, downs);
  watch(sys, b, downs);
  REQUIRE(a.ask<void>(link_to{b}, 10s).get());
  a.send(stop_error{});
  REQUIRE(downs.wait_for_size(2));
  for (auto& r : downs.items()) CHECK(r == exit_reason::error("chain"));

  // The other direction: b fails -> a fails.
  test::recorder<exit_reason> downs2;
  auto c = sys.spawn(linker);
  auto d = sys.spawn(linker);
  watch(sys, c, downs2);
  REQUIRE(c.ask<void>(link_to{d}, 10s).get());
  d.send(stop_error{});
  REQUIRE(downs2.wait_for_size(1));
  CHECK(downs2.items()[0] == exit_reason::error("chain"));

  // Normal exit does not take the partner down.
  auto e = sys.spawn(linker);
  auto f = sys.spawn(linker);
  REQUIRE(e.ask<void>(link_to{f}, 10s).get());
  test::recorder<exit_reason> downs3;
  watch(sys, e, downs3);
  e.send(stop_normal{});
  REQUIRE(downs3.wait_for_size(1));
  auto probe = f.ask<void>(link_to{sys.spawn(linker)}, 10s).get();
  CHECK(probe.has_value());  // f still answers

  // trap_exit: the failure arrives as a message instead.
  test::recorder<exit_reason> trapped;
  auto t = sys.spawn([&trapped](actor& self) -> behavior {
    self.trap_exit(true);
    return {
        [&self](link_to l) { self.link(l.other); },
        [&trapped](const exit_msg& m) { trapped.push(m.reason); },
    };
  });
  auto g = sys.spawn(linker);
  REQUIRE(t.ask<void>(link_to{g}, 10s).get());
  g.send(stop_error{});
  REQUIRE(trapped.wait_for_size(1));
  CHECK(trapped.items()[0] == exit_reason::error("chain"));
  CHECK(t.ask<void>(link_to{sys.spawn(linker)}, 10s).get().has_value());  // t survived

  // Linking to a dead actor delivers its exit at once.
  test::recorder<exit_reason> late;
  auto dead = sys.spawn(linker);
  watch(sys, dead, late);
  dead.send(stop_error{});
  REQUIRE(late.wait_for_size(1));
  auto u = sys.spawn([&trapped](actor& self) -> behavior {
    self.trap_exit(true);
    return {[&self](link_to l) { self.link(l.other); },
            [&trapped](const exit_msg& m) { trapped.push(m.reason); }};
  });
  u.send(link_to{dead});
  REQUIRE(trapped.wait_for_size(2));
}

TEST_CASE("an exception in make_behavior stops the new actor with the exception's text",
          "[lifecycle]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  auto a = sys.spawn([](actor&) -> behavior { throw std::runtime_error("init failed"); });
  test::recorder<exit_reason> downs;
  watch(sys, a, downs);
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0] == exit_reason::error("init failed"));
  // An empty behavior is a normal stop.
  auto b = sys.spawn([](actor&) -> behavior { return {}; });
  watch(sys, b, downs);
  REQUIRE(downs.wait_for_size(2));
  CHECK(downs.items()[1] == exit_reason::normal());
}

TEST_CASE("context functions called from outside the actor throw a clear error", "[lifecycle]") {
  libactor::actor_system sys{libactor::system_config{.deterministic_seed = 1}};
  actor* raw = nullptr;
  auto a = sys.spawn([&raw](actor& self) -> behavior {
    raw = &self;
    return {[](int) {}};
  });
  REQUIRE(raw != nullptr);
  CHECK_THROWS_AS(raw->quit(), std::logic_error);
  CHECK_THROWS_AS(raw->monitor(a), std::logic_error);
  CHECK_THROWS_AS(sys.stop(actor_ref{}), std::invalid_argument);
}

TEST_CASE("registry: register, look up, duplicate refused, removed when the actor stops",
          "[registry]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  auto a = sys.spawn(stoppable);
  auto b = sys.spawn(stoppable);
  CHECK(sys.register_name("alpha", a));
  CHECK_FALSE(sys.register_name("alpha", b));
  CHECK(sys.register_name("beta", b));
  CHECK(sys.lookup("alpha") == a);
  CHECK(sys.lookup("nope") == actor_ref{});
  CHECK(sys.unregister_name("beta"));
  CHECK(sys.lookup("beta") == actor_ref{});
  test::recorder<exit_reason> downs;
  watch(sys, a, downs);
  a.send(stop_normal{});
  REQUIRE(downs.wait_for_size(1));
  // Removal happens before monitors are told.
  CHECK(sys.lookup("alpha") == actor_ref{});
  CHECK_FALSE(sys.register_name("gamma", a));  // a stopped actor cannot be registered
  CHECK(sys.register_name("alpha", b));        // the name is free again
}

TEST_CASE("shutdown stops every actor, runs on_exit, refuses new spawns", "[shutdown]") {
  std::atomic<int> exits{0};
  struct counted : actor {
    explicit counted(std::atomic<int>& n) : n_(n) {}
    behavior make_behavior() override {
      return {[](int) {}};
    }
    void on_exit(const exit_reason& r) override {
      if (r.code() == exit_code::shutdown) n_.fetch_add(1, std::memory_order_seq_cst);
    }
    std::atomic<int>& n_;
  };
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  const int n = static_cast<int>(test::scaled(1000));
  std::vector<actor_ref> all;
  for (int i = 0; i < n; ++i) all.push_back(sys.spawn<counted>(exits));
  for (auto& a : all) a.send(1);
  sys.shutdown();
  CHECK(exits.load(std::memory_order_relaxed) == n);  // relaxed: shutdown() joined every writer
  CHECK(sys.stats().live_actors == 0);
  CHECK_THROWS_AS(sys.spawn<counted>(exits), std::logic_error);
  CHECK(all[0].send(1) == libactor::send_status::dead_letter);
  sys.shutdown();  // idempotent
}

TEST_CASE("a member destructor may send while its actor is destroyed", "[lifecycle]") {
  test::counter farewells;
  struct farewell {};
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  auto sink = sys.spawn(
      [&farewells](actor&) -> behavior { return {[&farewells](farewell) { farewells.add(); }}; });
  struct notifier {
    actor_ref to;
    ~notifier() { to.send(farewell{}); }
  };
  struct leaving : actor {
    explicit leaving(actor_ref to) : n_{std::move(to)} {}
    behavior make_behavior() override {
      return {[this](stop_normal) { quit(); }};
    }
    notifier n_;
  };
  {
    auto a = sys.spawn<leaving>(sink);
    a.send(stop_normal{});
  }  // the last handle goes; the actor is destroyed on whichever thread drops the last reference
  REQUIRE(farewells.wait_for_at_least(1));
}

TEST_CASE("unlink stops failure propagation", "[lifecycle]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    struct link_to {
      actor_ref other;
    };
    struct unlink_from {
      actor_ref other;
    };
    auto linker = [](actor& self) -> behavior {
      return {
          [&self](link_to l) { self.link(l.other); },
          [&self](unlink_from u) { self.unlink(u.other); },
          [&self](stop_error) { self.quit(exit_reason::error("alone")); },
          [](int) {},
      };
    };
    sys.run_until_idle();
    const auto base = sys.stats().live_actors;
    auto a = sys.spawn(linker);
    auto b = sys.spawn(linker);
    test::recorder<exit_reason> downs;
    watch(sys, a, downs);
    watch(sys, b, downs);
    a.send(link_to{b});
    sys.run_until_idle();
    a.send(unlink_from{b});
    sys.run_until_idle();
    b.send(stop_error{});
    sys.run_until_idle();
    REQUIRE(downs.items().size() == 1);  // only b stopped
    CHECK(downs.items()[0] == exit_reason::error("alone"));
    CHECK(sys.stats().live_actors == base + 3);  // a and the two watchers
  });
}

TEST_CASE("a down notice to a watcher that already stopped is not a dead letter", "[lifecycle]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    sys.run_until_idle();
    const auto base = sys.stats();
    auto watched = sys.spawn(stoppable);
    auto watcher = sys.spawn([watched](actor& self) -> behavior {
      self.monitor(watched);
      return {[&self](stop_normal) { self.quit(); }, [](const down_msg&) {}};
    });
    watcher.send(stop_normal{});
    sys.run_until_idle();
    watched.send(stop_normal{});
    sys.run_until_idle();
    CHECK(sys.stats().live_actors == base.live_actors);
    CHECK(sys.stats().dead_letters == base.dead_letters);
    // A user message to the stopped watcher still is one.
    watcher.send(1);
    CHECK(sys.stats().dead_letters == base.dead_letters + 1);
  });
}

namespace {
struct farewell {};
struct who_sent {};
/// Sends `farewell` to `to` when destroyed.
struct notifier {
  actor_ref to;
  ~notifier() {
    if (to) to.send(farewell{});
  }
};
}  // namespace

TEST_CASE("a sender destroyed by the runtime after delivery does not borrow the receiver's name",
          "[lifecycle][api]") {
  // The last reference to an actor can be the sender reference of a message
  // it sent. When the receiver's activation drops it, the actor's members
  // are destroyed there; what they send must not appear to come from the
  // receiver.
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    for (std::uint64_t i = 0; i < seed % 3; ++i) sys.spawn(stoppable);  // unrelated actors
    test::recorder<std::string> farewell_senders;
    auto probe = sys.spawn([&farewell_senders](actor& self) -> behavior {
      return {[&self, &farewell_senders](farewell) {
        auto s = self.current_sender();
        farewell_senders.push(s ? "actor " + std::to_string(s.id()) : "nobody");
      }};
    });
    auto receiver = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
    struct leaving : actor {
      leaving(actor_ref probe, actor_ref to) : n_{std::move(probe)}, to_(std::move(to)) {}
      behavior make_behavior() override {
        return {[this](stop_normal) {
          to_.send(1);  // its sender reference may be the last one to this actor
          to_ = {};
          quit();
        }};
      }
      notifier n_;
      actor_ref to_;
    };
    {
      auto x = sys.spawn<leaving>(probe, receiver);
      x.send(stop_normal{});
    }
    sys.run_until_idle();
    REQUIRE(farewell_senders.items().size() == 1);
    CHECK(farewell_senders.items()[0] == "nobody");
  }
}

TEST_CASE("current_sender is the requester for a whole task, and owner-only", "[lifecycle][api]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    for (int i = 0; i < 5; ++i) sys.spawn(stoppable);  // ids differ from the trivial case
    auto echo = sys.spawn([](actor&) -> behavior { return {[](int x) { return x; }}; });
    actor* server_self = nullptr;
    struct query {};
    auto server = sys.spawn([&server_self, echo](actor& self) -> behavior {
      server_self = &self;
      return {[&self, echo](query) -> libactor::task<std::string> {
        const auto before = self.current_sender();
        (void)co_await self.ask<int>(echo, 1, 10s);  // resumed by echo's answer
        const auto after = self.current_sender();
        co_return std::to_string(before.id()) + "/" + std::to_string(after.id());
      }};
    });
    test::recorder<std::string> answers;
    auto client = sys.spawn([server, &answers](actor& self) -> behavior {
      return {[&self, server, &answers](int) -> libactor::task<void> {
        auto r = co_await self.ask<std::string>(server, query{}, 10s);
        answers.push((r ? *r : r.err().to_string()) + " from " + std::to_string(self.id()));
      }};
    });
    client.send(1);
    sys.run_until_idle();
    REQUIRE(answers.items().size() == 1);
    const std::string id = std::to_string(client.id());
    CHECK(answers.items()[0] == id + "/" + id + " from " + id);
    // Not from outside the actor's handlers.
    REQUIRE(server_self != nullptr);
    CHECK_THROWS_AS(server_self->current_sender(), std::logic_error);
  });
}

TEST_CASE("a timer started in on_exit never fires and does not keep the actor alive",
          "[lifecycle][timers]") {
  test::for_seeds([&](std::uint64_t seed) {
    struct tick {};
    std::atomic<bool> destroyed{false};
    struct restless : actor {
      explicit restless(std::atomic<bool>& d) : d_(d) {}
      ~restless() override { d_.store(true, std::memory_order_seq_cst); }
      behavior make_behavior() override {
        return {[this](stop_normal) { quit(); }, [](tick) {}};
      }
      void on_exit(const exit_reason&) override {
        send_every(1ms, tick{});
        send_after(1ms, tick{});
      }
      std::atomic<bool>& d_;
    };
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    sys.spawn([](actor& self) -> behavior {  // unrelated timers first
      self.send_after(1h, 1);
      self.send_every(1h, 2);
      return {[](int) {}};
    });
    {
      auto a = sys.spawn<restless>(destroyed);
      a.send(stop_normal{});
    }
    sys.run_until_idle();
    sys.advance_time(50ms);
    CHECK(destroyed.load(std::memory_order_seq_cst));
  });
}

TEST_CASE("a handle that outlives its system is safe: sends are dead letters, hooks stay quiet",
          "[lifecycle][shutdown]") {
  std::atomic<int> hook_calls{0};
  actor_ref survivor;
  actor_ref stopped_survivor;
  {
    libactor::system_config cfg;
    cfg.workers = 2;
    cfg.on_dead_letter = [&hook_calls](const libactor::dead_letter_info&) {
      hook_calls.fetch_add(1, std::memory_order_seq_cst);
    };
    libactor::actor_system sys{cfg};
    for (int i = 0; i < 3; ++i) sys.spawn(stoppable);
    survivor = sys.spawn(stoppable);
    stopped_survivor = sys.spawn(stoppable);
    test::recorder<exit_reason> downs;
    watch(sys, stopped_survivor, downs);
    stopped_survivor.send(stop_normal{});
    REQUIRE(downs.wait_for_size(1));
  }
  const int calls = hook_calls.load(std::memory_order_seq_cst);
  for (auto* h : {&survivor, &stopped_survivor}) {
    CHECK(h->send(1) == libactor::send_status::dead_letter);
    auto r = h->ask<int>(1, 1s).get();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == libactor::errc::receiver_down);
  }
  // The dead system's hooks are not called any more.
  CHECK(hook_calls.load(std::memory_order_seq_cst) == calls);
  // A live system sees the old handles as stopped actors.
  libactor::actor_system other{libactor::system_config{.workers = 2}};
  test::recorder<exit_reason> downs;
  watch(other, survivor, downs);
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0].code() == exit_code::shutdown);
  CHECK_THROWS_AS(other.stop(actor_ref{}), std::invalid_argument);
  other.stop(survivor);  // stopping a stopped actor is harmless
  CHECK_FALSE(other.register_name("old", survivor));
}

TEST_CASE("a spawn racing shutdown either fails or runs and stops; nothing is left behind",
          "[lifecycle][shutdown]") {
  // The spawned actor's constructor runs after spawn's first shutdown check
  // and before the actor is tracked: hold it there while shutdown runs.
  struct gate {
    std::mutex mu;
    std::condition_variable cv;
    bool in_constructor = false;
    bool go = false;
  };
  struct slow_to_build : actor {
    slow_to_build(gate& g, std::atomic<int>& exits) : exits_(exits) {
      std::unique_lock lock(g.mu);
      g.in_constructor = true;
      g.cv.notify_all();
      g.cv.wait(lock, [&g] { return g.go; });
    }
    behavior make_behavior() override {
      return {[](int) {}};
    }
    void on_exit(const exit_reason&) override { exits_.fetch_add(1, std::memory_order_seq_cst); }
    std::atomic<int>& exits_;
  };
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    gate g;
    std::atomic<int> exits{0};
    libactor::actor_system sys{libactor::system_config{.workers = 2}};
    test::unrelated(sys, 0);                                    // ids and counters start elsewhere
    for (int i = 0; i <= round % 4; ++i) sys.spawn(stoppable);  // unrelated actors
    std::atomic<int> outcome{0};                                // 1: spawned, 2: refused
    std::thread spawner([&] {
      try {
        auto a = sys.spawn<slow_to_build>(g, exits);
        a.send(1);
        outcome.store(1, std::memory_order_seq_cst);
      } catch (const std::logic_error&) {
        outcome.store(2, std::memory_order_seq_cst);
      }
    });
    {
      std::unique_lock lock(g.mu);
      REQUIRE(g.cv.wait_for(lock, test::deadline, [&g] { return g.in_constructor; }));
    }
    sys.shutdown();  // must not finish with the new actor left behind
    {
      std::lock_guard lock(g.mu);
      g.go = true;
      g.cv.notify_all();
    }
    spawner.join();
    sys.shutdown();
    const int o = outcome.load(std::memory_order_seq_cst);
    REQUIRE(o != 0);
    CHECK(sys.stats().live_actors == 0);
    if (o == 1) CHECK(exits.load(std::memory_order_seq_cst) == 1);
  }
}

namespace {
struct link_then_unlink {
  actor_ref other;
};
struct trap {};

/// Links to a stopped actor (whose exit signal is then queued at once) and
/// unlinks it in the same handler.
behavior unlinker(actor& self) {
  return {
      [&self](link_then_unlink l) {
        self.link(l.other);
        self.unlink(l.other);
      },
      [&self](trap) { self.trap_exit(true); },
      [](const exit_msg&) { throw std::logic_error("an exit signal after unlink was delivered"); },
      [](int x) { return x; },
  };
}
}  // namespace

TEST_CASE("after unlink returns, the other actor's exit has no effect, trapped or not",
          "[lifecycle][links]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    for (std::uint64_t i = 0; i < seed % 5; ++i) sys.spawn(stoppable);
    auto gone = sys.spawn(stoppable);
    gone.send(stop_error{});
    sys.run_until_idle();
    auto a = sys.spawn(unlinker);
    auto trapping = sys.spawn(unlinker);
    trapping.send(trap{});
    test::recorder<exit_reason> downs;
    watch(sys, a, downs);
    watch(sys, trapping, downs);
    a.send(link_then_unlink{gone});
    trapping.send(link_then_unlink{gone});
    sys.run_until_idle();
    CHECK(downs.items().empty());
    auto r = a.ask<int>(7, 1s);
    sys.run_until_idle();
    CHECK(r.get().value() == 7);
  }
}

TEST_CASE("an exit signal from an actor that is not linked is ignored; a stop is not",
          "[lifecycle][links]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    auto stranger = sys.spawn(stoppable);
    auto a = sys.spawn(unlinker);
    auto trapping = sys.spawn(unlinker);
    trapping.send(trap{});
    sys.run_until_idle();
    test::recorder<exit_reason> downs;
    watch(sys, a, downs);
    watch(sys, trapping, downs);
    auto signal = [&](const actor_ref& to, exit_reason why) {
      using namespace libactor::detail;
      actor* from = actor_access::get(stranger);
      actor_access::add_ref(from);
      actor_access::enqueue(actor_access::get(to),
                            make_message<exit_msg>(msg_kind::exit_signal, from, 0,
                                                   exit_msg{stranger, std::move(why)}));
    };
    signal(a, exit_reason::error("forged"));
    signal(trapping, exit_reason::error("forged"));
    // A linked actor that was killed passes on `killed`: from a stranger,
    // that too is only a signal, and ignored.
    signal(a, exit_reason::killed("passed on by a stranger"));
    sys.run_until_idle();
    CHECK(downs.items().empty());
    // The kill that nothing prevents, trapping or not, is a stop.
    sys.stop(trapping, exit_reason::killed("by the test"));
    sys.run_until_idle();
    REQUIRE(downs.items().size() == 1);
    CHECK(downs.items()[0] == exit_reason::killed("by the test"));
  });
}

namespace {
/// A runtime stand-in that looks up a name at the moment an exit signal is
/// delivered to it, which is the moment a supervisor could react.
class name_probe final : public libactor::detail::proxy {
 public:
  name_probe(libactor::actor_system& sys, std::string name, test::recorder<std::string>& seen)
      : proxy(sys), sys_(sys), name_(std::move(name)), seen_(seen) {}

 private:
  libactor::send_status enqueue(libactor::detail::message* m) noexcept override {
    if (m->kind == libactor::detail::msg_kind::exit_signal) {
      seen_.push(sys_.lookup(name_) ? "still registered" : "released");
    }
    m->dispose();
    return libactor::send_status::ok;
  }
  libactor::actor_system& sys_;
  std::string name_;
  test::recorder<std::string>& seen_;
};
}  // namespace

TEST_CASE("a stopping actor's names are released before anyone is notified",
          "[lifecycle][registry]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    for (std::uint64_t i = 0; i < seed % 3; ++i)
      sys.register_name("other" + std::to_string(i), sys.spawn(stoppable));
    test::recorder<std::string> seen;
    auto probe = libactor::detail::actor_access::adopt(new name_probe(sys, "svc", seen));
    struct link_to {
      actor_ref other;
    };
    auto svc = sys.spawn([](actor& self) -> behavior {
      return {[&self](link_to l) { self.link(l.other); },
              [&self](stop_error) { self.quit(exit_reason::error("crash")); }};
    });
    REQUIRE(sys.register_name("svc", svc));
    svc.send(link_to{probe});
    sys.run_until_idle();
    svc.send(stop_error{});
    sys.run_until_idle();
    CHECK(seen.items() == std::vector<std::string>{"released"});
  }
}

TEST_CASE("a supervisor re-registers a restarted actor's name on its down message",
          "[lifecycle][registry]") {
  // The supervisor monitors first; 300 more monitors make the dying actor's
  // notification loop long, so the supervisor handles its down message on
  // the other worker while the loop still runs.
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  test::recorder<std::string> outcomes;
  struct restart {};
  auto supervisor = sys.spawn([&sys, &outcomes](actor& self) -> behavior {
    auto current = std::make_shared<actor_ref>(sys.spawn(stoppable));
    self.monitor(*current);
    sys.register_name("svc", *current);
    return {
        [&self, &sys, &outcomes, current](const down_msg&) {
          auto c = sys.spawn(stoppable);
          self.monitor(c);
          *current = c;
          outcomes.push(sys.register_name("svc", c) ? "registered" : "name still taken");
        },
        [current](restart) { current->send(stop_error{}); },
    };
  });
  const std::size_t rounds = test::scaled(40);
  const std::size_t watchers = 300;
  test::counter ready;
  for (std::size_t r = 0; r < rounds; ++r) {
    auto svc = sys.lookup("svc");
    REQUIRE(svc);
    for (std::size_t i = 0; i < watchers; ++i) {
      sys.spawn([svc, &ready](actor& self) -> behavior {
        self.monitor(svc);
        ready.add();
        return {[&self](const down_msg&) { self.quit(); }};
      });
    }
    REQUIRE(ready.wait_for_at_least(watchers * (r + 1)));
    supervisor.send(restart{});
    REQUIRE(outcomes.wait_for_size(r + 1));
  }
  for (const auto& o : outcomes.items()) CHECK(o == "registered");
}

TEST_CASE("a requester destroyed when a task ends does not borrow the task's actor's name",
          "[lifecycle][api]") {
  // The task keeps the requester (for current_sender) and its reply target
  // keeps the asker; both are dropped on the server's thread. If that is the
  // last reference, the requester's members must not send as the server.
  struct request {};
  struct go {};
  test::for_seeds([](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::recorder<std::string> farewell_senders;
    auto probe = sys.spawn([&farewell_senders](actor& self) -> behavior {
      return {[&self, &farewell_senders](farewell) {
        auto s = self.current_sender();
        farewell_senders.push(s ? "actor " + std::to_string(s.id()) : "nobody");
      }};
    });
    auto slow = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });  // never answers
    auto server = sys.spawn([slow](actor& self) -> behavior {
      return {[&self, slow](request) -> libactor::task<int> {
        (void)co_await self.ask<int>(slow, 1, 10ms);  // times out
        co_return 1;
      }};
    });
    struct asker : actor {
      asker(actor_ref p, actor_ref s) : n_{std::move(p)}, server_(std::move(s)) {}
      behavior make_behavior() override {
        return {[this](go) -> libactor::task<void> {
          auto s = std::exchange(server_, actor_ref{});
          quit();  // its task goes with this activation; the request is out
          request q;
          (void)co_await ask<int>(s, std::move(q), 1h);
        }};
      }
      notifier n_;
      actor_ref server_;
    };
    {
      auto a = sys.spawn<asker>(probe, server);
      a.send(go{});
    }
    sys.run_until_idle();
    sys.advance_time(20ms);
    REQUIRE(farewell_senders.items().size() == 1);
    CHECK(farewell_senders.items()[0] == "nobody");
  });
}

TEST_CASE("watchers that stopped without demonitor are not kept by what they watched",
          "[lifecycle]") {
  struct watcher : actor {
    watcher(std::atomic<int>* d, actor_ref t) : t_{d}, target_(std::move(t)) {}
    behavior make_behavior() override {
      // A session that watches a long-lived service and ends without
      // demonitor().
      monitor(target_);
      target_ = actor_ref{};
      quit();
      return {};
    }
    test::destruction_counter t_;
    actor_ref target_;
  };
  test::for_seeds(
      [](std::uint64_t seed) {
        // Declared before the system: watchers count into it until destroyed.
        std::atomic<int> destroyed{0};
        libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
        test::unrelated(sys, seed);
        // The watched one lives on.
        auto service = sys.spawn([](actor&) -> behavior { return {[](int x) { return x; }}; });
        const int n = 100 + static_cast<int>(seed % 50);
        for (int i = 0; i < n; ++i) {
          (void)sys.spawn<watcher>(&destroyed, service);
          sys.run_until_idle();  // it monitored and stopped
        }
        // monitor() sweeps out stopped watchers when the list reaches 16
        // (and twice what is left after): at most the last 16 are kept.
        INFO("seed " << seed << ": " << destroyed.load(std::memory_order_acquire) << " of " << n
                     << " watchers destroyed");
        CHECK(destroyed.load(std::memory_order_acquire) >= n - 16);
        // The service still tells its watchers, the ones kept included:
        // they are stopped, and nothing arrives for them.
        sys.stop(service);
        sys.run_until_idle();
        CHECK(destroyed.load(std::memory_order_acquire) == n);
      },
      20);
}
