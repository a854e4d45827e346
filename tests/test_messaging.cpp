// Spawning, handles, sending, dispatch by type, unhandled messages, dead
// letters, per-pair ordering and bounded mailboxes.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;

namespace {

struct add {
  int n;
};
struct get {};

class accumulator : public actor {
 public:
  explicit accumulator(int start) : total_(start) {}

 protected:
  behavior make_behavior() override {
    return {
        [this](add a) { total_ += a.n; },
        [this](get) { return total_; },
    };
  }

 private:
  int total_;
};

}  // namespace

TEST_CASE("class and function actors; handles are comparable, hashable, copyable", "[actor]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 6);  // ids and counters start elsewhere
  auto a = sys.spawn<accumulator>(10);
  auto f = sys.spawn([](actor&) -> behavior { return {[](int x) { return x + 1; }}; });
  REQUIRE(a);
  REQUIRE(f);
  CHECK(a != f);
  actor_ref copy = a;
  CHECK(copy == a);
  CHECK(copy.id() == a.id());
  CHECK(a.id() != f.id());
  std::unordered_set<actor_ref> set{a, f, copy};
  CHECK(set.size() == 2);
  CHECK(actor_ref{} == actor_ref{});
  CHECK_FALSE(actor_ref{});

  a.send(add{5});
  a.send(add{7});
  auto total = a.ask<int>(get{}, 10s).get();
  REQUIRE(total);
  CHECK(*total == 22);
  auto inc = f.ask<int>(41, 10s).get();
  REQUIRE(inc);
  CHECK(*inc == 42);
}

TEST_CASE("handles are safe to use from many non-actor threads at once", "[actor][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  auto a = sys.spawn<accumulator>(0);
  const int per = static_cast<int>(test::scaled(20000));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([a, per] {
      for (int i = 0; i < per; ++i) {
        actor_ref local = a;  // copies and destroys handles concurrently
        local.send(add{1});
      }
    });
  }
  for (auto& t : threads) t.join();
  auto total = a.ask<int>(get{}, 30s).get();
  REQUIRE(total);
  CHECK(*total == 4 * per);
}

TEST_CASE("any movable type is a message; the handler is chosen by static type", "[actor]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  test::recorder<std::string> seen;
  auto a = sys.spawn([&seen](actor&) -> behavior {
    return {
        [&seen](std::unique_ptr<int> p) { seen.push("unique_ptr " + std::to_string(*p)); },
        [&seen](const std::string& s) { seen.push("string " + s); },
        [&seen](int i) { seen.push("int " + std::to_string(i)); },
        [&seen](double d) { seen.push("double " + std::to_string(static_cast<int>(d))); },
    };
  });
  a.send(std::make_unique<int>(7));
  a.send(std::string("hi"));
  a.send(3);
  a.send(2.0);
  REQUIRE(seen.wait_for_size(4));
  CHECK(seen.items() == std::vector<std::string>{"unique_ptr 7", "string hi", "int 3", "double 2"});
}

TEST_CASE("a message no handler takes is counted and reported, never silently lost", "[actor]") {
  test::recorder<std::string> hook;
  libactor::system_config cfg;
  cfg.workers = 2;
  cfg.on_unhandled = [&hook](const libactor::unhandled_info& info) { hook.push(info.type_name); };
  libactor::actor_system sys{cfg};
  auto a = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
  a.send(std::string("nobody wants me"));
  REQUIRE(hook.wait_for_size(1));
  CHECK(sys.stats().unhandled == 1);
  CHECK(hook.items()[0] == "std::string");
  // An ask that no handler takes fails with errc::unhandled.
  auto r = a.ask<int>(2.5, 10s).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == libactor::errc::unhandled);
  CHECK(sys.stats().unhandled == 2);
}

TEST_CASE("sends to a stopped actor are dead letters: counted, observable, cheap", "[actor]") {
  test::counter hook;
  libactor::system_config cfg;
  cfg.workers = 2;
  cfg.on_dead_letter = [&hook](const libactor::dead_letter_info&) { hook.add(); };
  libactor::actor_system sys{cfg};
  auto a = sys.spawn([](actor& self) -> behavior { return {[&self](int) { self.quit(); }}; });
  libactor::actor_ref watcher_done;
  test::counter down;
  sys.spawn([a, &down](actor& self) -> behavior {
    self.monitor(a);
    return {[&down](const libactor::down_msg&) { down.add(); }};
  });
  a.send(1);
  REQUIRE(down.wait_for_at_least(1));
  const auto before = sys.stats().dead_letters;
  for (int i = 0; i < 1000; ++i) CHECK(a.send(i) == libactor::send_status::dead_letter);
  CHECK(sys.stats().dead_letters == before + 1000);
  REQUIRE(hook.wait_for_at_least(before + 1000));
  // Empty handles too.
  CHECK(actor_ref{}.send(1) == libactor::send_status::dead_letter);
}

TEST_CASE("messages from one sender to one receiver arrive in send order", "[actor][ordering]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 1);  // ids and counters start elsewhere
  static constexpr int senders = 4;
  const int per = static_cast<int>(test::scaled(50000));
  struct item {
    int sender;
    int seq;
  };
  test::counter done;
  auto sink = sys.spawn([&done, per](actor&) -> behavior {
    auto next = std::make_shared<std::vector<int>>(senders, 0);
    auto bad = std::make_shared<int>(0);
    return {[next, bad, &done, per](item it) {
      if ((*next)[it.sender] != it.seq) ++*bad;
      (*next)[it.sender] = it.seq + 1;
      if (it.seq == per - 1) done.add(*bad == 0 ? 1 : 1000);
    }};
  });
  // Actor senders (sending in chunks to interleave with each other) ...
  struct go {
    int from;
  };
  for (int s = 0; s < senders / 2; ++s) {
    auto sender = sys.spawn([sink, s, per](actor& self) -> behavior {
      return {[sink, s, per, &self](go g) {
        for (int i = g.from; i < std::min(per, g.from + 100); ++i) sink.send(item{s, i});
        if (g.from + 100 < per) self.self().send(go{g.from + 100});
      }};
    });
    sender.send(go{0});
  }
  // ... and plain threads.
  std::vector<std::thread> threads;
  for (int s = senders / 2; s < senders; ++s) {
    threads.emplace_back([sink, s, per] {
      for (int i = 0; i < per; ++i) sink.send(item{s, i});
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(done.wait_for_at_least(senders));
  CHECK(done.value() == senders);  // 1000 would mean an out-of-order message
}

TEST_CASE("bounded mailbox, reject policy: send reports mailbox_full", "[actor][bounded]") {
  test::for_seeds([&](std::uint64_t seed) {
    // Deterministic mode: nothing runs until we say so, so the mailbox fills.
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::counter handled;
    auto a = sys.spawn_with(
        libactor::spawn_options{.mailbox_capacity = 3},
        [&handled](actor&) -> behavior { return {[&handled](int) { handled.add(); }}; });
    for (int i = 0; i < 3; ++i) CHECK(a.send(i) == libactor::send_status::ok);
    CHECK(a.send(3) == libactor::send_status::mailbox_full);
    CHECK(sys.stats().rejected == 1);
    auto r = a.ask<int>(4, 1s);  // an ask into a full mailbox fails at once
    auto rr = r.get();
    REQUIRE_FALSE(rr);
    CHECK(rr.err().code == libactor::errc::mailbox_full);
    sys.run_until_idle();
    CHECK(handled.value() == 3);
    CHECK(a.send(5) == libactor::send_status::ok);  // room again
    sys.run_until_idle();
    CHECK(handled.value() == 4);
  });
}

TEST_CASE("bounded mailbox, drop_newest and drop_oldest keep the right messages",
          "[actor][bounded]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::recorder<int> newest;
    test::recorder<int> oldest;
    auto dn = sys.spawn_with(
        libactor::spawn_options{.mailbox_capacity = 2,
                                .overload = libactor::overload_policy::drop_newest},
        [&newest](actor&) -> behavior { return {[&newest](int i) { newest.push(i); }}; });
    auto dold = sys.spawn_with(
        libactor::spawn_options{.mailbox_capacity = 2,
                                .overload = libactor::overload_policy::drop_oldest},
        [&oldest](actor&) -> behavior { return {[&oldest](int i) { oldest.push(i); }}; });
    for (int i = 0; i < 5; ++i) {
      const auto s = dn.send(i);
      CHECK(s == (i < 2 ? libactor::send_status::ok : libactor::send_status::dropped));
      CHECK(dold.send(i) == libactor::send_status::ok);
    }
    sys.run_until_idle();
    CHECK(newest.items() == std::vector<int>{0, 1});
    CHECK(oldest.items() == std::vector<int>{3, 4});
    CHECK(sys.stats().dropped == 6);
  });
}

TEST_CASE("become swaps the behavior from the next message on", "[actor]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    test::recorder<std::string> seen;
    auto a = sys.spawn([&seen](actor& self) -> behavior {
      return {[&seen, &self](int x) {
        seen.push("first " + std::to_string(x));
        self.become({[&seen](int y) { seen.push("second " + std::to_string(y)); }});
      }};
    });
    a.send(1);
    a.send(2);
    a.send(3);
    sys.run_until_idle();
    CHECK(seen.items() == std::vector<std::string>{"first 1", "second 2", "second 3"});
  });
}

TEST_CASE("become keeps the running handler's captures alive until the handler returns",
          "[actor][become]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    // Unrelated actors first, so the one under test is not the first of its system.
    for (std::uint64_t i = 0; i < seed % 4; ++i) sys.spawn<accumulator>(0);
    std::weak_ptr<std::string> watch;
    test::recorder<std::string> seen;
    auto a = sys.spawn([&watch, &seen](actor& self) -> behavior {
      auto label = std::make_shared<std::string>("first");  // owned by the handler only
      watch = label;
      return {[label, &watch, &seen, &self](int x) {
        self.become({[&seen](int y) { seen.push("second " + std::to_string(y)); }});
        // The old behavior, and with it `label`, must outlive this handler.
        // `watch` belongs to the test, so asking it is defined either way.
        if (watch.expired()) {
          seen.push("freed");
        } else {
          seen.push("alive " + *label + " " + std::to_string(x));
        }
      }};
    });
    for (int i = 1; i <= 3; ++i) a.send(i);
    sys.run_until_idle();
    CHECK(seen.items() == std::vector<std::string>{"alive first 1", "second 2", "second 3"});
    CHECK(watch.expired());  // and it is freed once the handler returned
  }
}

TEST_CASE("actors spawn actors; the child belongs to the same system", "[actor]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  const auto spawned_before = sys.stats().spawned;
  struct child : actor {
    behavior make_behavior() override {
      return {[](int x) { return x * 10; }};
    }
  };
  struct make_child {};
  auto parent = sys.spawn([](actor& self) -> behavior {
    return {[&self](make_child) -> libactor::task<int> {
      auto c = self.spawn<child>();
      auto r = co_await self.ask<int>(c, 4, 10s);
      co_return r ? *r : -1;
    }};
  });
  auto r = parent.ask<int>(make_child{}, 10s).get();
  REQUIRE(r);
  CHECK(*r == 40);
  CHECK(sys.stats().spawned == spawned_before + 2);
}

TEST_CASE("batched sends keep order across receivers and count dead letters", "[actor][ordering]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  struct item {
    int seq;
  };
  struct relay {
    actor_ref to;
  };
  struct burst {
    actor_ref a, b;
    int n;
  };
  test::recorder<int> at_a;
  auto a =
      sys.spawn([&at_a](actor&) -> behavior { return {[&at_a](item i) { at_a.push(i.seq); }}; });
  // b forwards a marker to a: it must arrive after everything the burst
  // handler sent to a before it sent to b.
  auto b = sys.spawn([](actor&) -> behavior { return {[](relay r) { r.to.send(item{-1}); }}; });
  auto sender = sys.spawn([](actor&) -> behavior {
    return {[](burst x) {
      for (int i = 0; i < x.n; ++i) x.a.send(item{i});  // more than one batch
      x.b.send(relay{x.a});
    }};
  });
  const int n = 1000;
  sender.send(burst{a, b, n});
  REQUIRE(at_a.wait_for_size(n + 1));
  auto got = at_a.items();
  for (int i = 0; i < n; ++i) REQUIRE(got[i] == i);
  CHECK(got[n] == -1);

  // A batch that reaches a stopped actor: every message is a dead letter.
  test::counter down;
  auto victim = sys.spawn([](actor&) -> behavior { return {[](item) {}}; });
  sys.spawn([victim, &down](actor& self) -> behavior {
    self.monitor(victim);
    return {[&down](const libactor::down_msg&) { down.add(); }};
  });
  sys.stop(victim);
  REQUIRE(down.wait_for_at_least(1));
  const auto before = sys.stats().dead_letters;
  sender.send(burst{victim, b, 100});
  auto probe = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
  // b's relay to the victim adds one more dead letter.
  const auto until = std::chrono::steady_clock::now() + test::deadline;
  while (sys.stats().dead_letters < before + 101 && std::chrono::steady_clock::now() < until) {
    REQUIRE(probe.ask<void>(1, 10s).get());  // a round trip through the system, then look again
  }
  CHECK(sys.stats().dead_letters == before + 101);
}

TEST_CASE("log_unhandled prints one line per unhandled message to stderr", "[actor]") {
  std::vector<std::uint64_t> ids;
  const std::string text = test::capture_stderr([&ids] {
    test::for_seeds([&ids](std::uint64_t seed) {
      libactor::system_config cfg;
      cfg.deterministic_seed = seed;
      cfg.log_unhandled = true;
      libactor::actor_system sys{cfg};
      test::unrelated(sys, seed);
      auto a = sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
      ids.push_back(a.id());
      a.send(std::string("stray"));
      sys.run_until_idle();
      CHECK(sys.stats().unhandled == 1);
    });
  });
  std::size_t from = 0;
  for (auto id : ids) {  // in seed order; ids repeat across the systems
    from = text.find("actor " + std::to_string(id) + " ", from);
    REQUIRE(from != std::string::npos);
    ++from;
  }
  std::size_t lines = 0;
  for (std::size_t at = 0;
       (at = text.find("has no handler for std::string", at)) != std::string::npos; ++at)
    ++lines;
  CHECK(lines == ids.size());
}

namespace {

namespace shop {
struct order {
  int qty;
};
}  // namespace shop
}  // namespace

TEST_CASE("an actor whose one-way handler throws is logged by default: actor, type, exception",
          "[actor][logging]") {
  std::vector<std::pair<std::uint64_t, int>> failed;  // actor id, quantity
  const std::string text = test::capture_stderr([&failed] {
    test::for_seeds([&failed](std::uint64_t seed) {
      libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
      test::unrelated(sys, seed);
      auto a = sys.spawn([](actor&) -> behavior {
        return {[](shop::order o) {
          if (o.qty < 0) throw std::runtime_error("negative quantity " + std::to_string(o.qty));
        }};
      });
      const int qty = -1 - static_cast<int>(seed % 11);
      failed.emplace_back(a.id(), qty);
      a.send(shop::order{qty});
      sys.run_until_idle();
    });
  });
  // One line per seed, in seed order (ids repeat across the systems).
  std::size_t from = 0;
  for (auto [id, qty] : failed) {
    const std::string line = "actor " + std::to_string(id) + " (";
    const auto at = text.find(line, from);
    INFO(line);
    REQUIRE(at != std::string::npos);
    const std::string rest = text.substr(at, text.find('\n', at) - at);
    from = at + rest.size();
    CHECK(rest.find("the handler for (anonymous namespace)::shop::order") != std::string::npos);
    CHECK(rest.find("negative quantity " + std::to_string(qty)) != std::string::npos);
  }
}

TEST_CASE("type names in errors and hooks are readable, not mangled", "[actor][logging]") {
  libactor::system_config cfg;
  cfg.workers = 2;
  test::recorder<std::string> dead;
  cfg.on_dead_letter = [&dead](const libactor::dead_letter_info& d) { dead.push(d.type_name); };
  libactor::actor_system sys{cfg};
  auto a = sys.spawn([](actor&) -> behavior { return {[](int x) { return x; }}; });
  auto wrong = a.ask<std::optional<int>>(1, 10s).get();
  REQUIRE_FALSE(wrong);
  CHECK(wrong.err().text == "expected std::optional<int>, got int");
  sys.stop(a);
  test::counter down;
  sys.spawn([a, &down](actor& self) -> behavior {
    self.monitor(a);
    return {[&down](const libactor::down_msg&) { down.add(); }};
  });
  REQUIRE(down.wait_for_at_least(1));
  a.send(shop::order{1});
  REQUIRE(dead.wait_for_size(1));
  CHECK(dead.items()[0] == "(anonymous namespace)::shop::order");
}

namespace {
std::atomic<long> g_payloads{0};
/// A payload whose live instances are counted.
struct counted_payload {
  int seq;
  explicit counted_payload(int s) : seq(s) { g_payloads.fetch_add(1, std::memory_order_seq_cst); }
  counted_payload(const counted_payload& o) : seq(o.seq) {
    g_payloads.fetch_add(1, std::memory_order_seq_cst);
  }
  counted_payload(counted_payload&& o) noexcept : seq(o.seq) {
    g_payloads.fetch_add(1, std::memory_order_seq_cst);
  }
  ~counted_payload() { g_payloads.fetch_sub(1, std::memory_order_seq_cst); }
};
}  // namespace

TEST_CASE("a drop_oldest mailbox holds at most its capacity while its consumer is stalled",
          "[actor][bounded]") {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    INFO("seed " << seed);
    const std::uint32_t capacity = 2 + static_cast<std::uint32_t>(seed % 6);
    const int sent = 300 + static_cast<int>(seed % 50);
    {
      libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
      test::recorder<int> got;
      auto a = sys.spawn_with(
          libactor::spawn_options{.mailbox_capacity = capacity,
                                  .overload = libactor::overload_policy::drop_oldest},
          [&got](actor&) -> behavior {
            return {[&got](const counted_payload& p) { got.push(p.seq); }, [](int) {}};
          });
      // Nothing runs until run_until_idle: the consumer is stalled.
      for (int i = 0; i < sent; ++i) {
        CHECK(a.send(counted_payload{i}) == libactor::send_status::ok);
        REQUIRE(g_payloads.load(std::memory_order_seq_cst) <= static_cast<long>(capacity));
      }
      CHECK(sys.stats().dropped == static_cast<std::uint64_t>(sent) - capacity);
      sys.run_until_idle();
      std::vector<int> newest;
      for (int i = sent - static_cast<int>(capacity); i < sent; ++i) newest.push_back(i);
      CHECK(got.items() == newest);
    }
    CHECK(g_payloads.load(std::memory_order_seq_cst) == 0);
  }
}

TEST_CASE("a drop_oldest mailbox stays bounded while its handler runs, under many senders",
          "[actor][bounded][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  test::counter in_handler;
  const std::uint32_t capacity = 16;
  auto a =
      sys.spawn_with(libactor::spawn_options{.mailbox_capacity = capacity,
                                             .overload = libactor::overload_policy::drop_oldest},
                     [&](actor&) -> behavior {
                       return {[&](const counted_payload& p) {
                                 if (p.seq == -1) {  // the first message stalls the consumer
                                   in_handler.add();
                                   std::unique_lock lock(mu);
                                   cv.wait(lock, [&] { return release; });
                                 }
                               },
                               [](int x) { return x; }};
                     });
  a.send(counted_payload{-1});
  REQUIRE(in_handler.wait_for_at_least(1));
  const int per_thread = static_cast<int>(test::scaled(20000));
  std::vector<std::thread> senders;
  std::atomic<long> peak{0};
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        (void)a.send(counted_payload{t * per_thread + i});
        long now = g_payloads.load(std::memory_order_seq_cst);
        long prev = peak.load(std::memory_order_seq_cst);
        while (now > prev && !peak.compare_exchange_weak(prev, now, std::memory_order_seq_cst)) {
        }
      }
    });
  }
  for (auto& s : senders) s.join();
  // The one being handled, the queue, and per sender in flight two more
  // (its temporary and the message made from it, before the send evicts).
  CHECK(peak.load(std::memory_order_seq_cst) <= static_cast<long>(capacity) + 1 + 2 * 3);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  REQUIRE(a.ask<int>(1, 30s).get());
}

namespace {
int doubled(int x) {
  return 2 * x;
}
}  // namespace

TEST_CASE("a plain function is a handler too", "[actor]") {
  test::for_seeds([&](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    auto a = sys.spawn([](actor&) -> behavior { return {&doubled}; });
    auto r = a.ask<int>(21, 1s);
    sys.run_until_idle();
    CHECK(r.get().value() == 42);
  });
}

TEST_CASE("an actor spawns function actors and class actors alike", "[actor]") {
  test::for_seeds([](std::uint64_t seed) {
    libactor::actor_system sys{libactor::system_config{.deterministic_seed = seed}};
    test::unrelated(sys, seed);
    struct make_children {};
    auto parent = sys.spawn([](actor& self) -> behavior {
      return {[&self](make_children) -> libactor::task<int> {
        auto f = self.spawn([](actor&) -> behavior { return {[](int x) { return x + 1; }}; });
        auto c = self.spawn<accumulator>(10);
        c.send(add{5});
        auto a = co_await self.ask<int>(f, 1, 10s);
        auto b = co_await self.ask<int>(c, get{}, 10s);
        co_return (a ? *a : -100) + (b ? *b : -100);
      }};
    });
    auto r = parent.ask<int>(make_children{}, 10s);
    sys.run_until_idle();
    CHECK(r.get().value() == 2 + 15);
  });
}

TEST_CASE("the value of an expected that holds an error says what the error is", "[actor]") {
  libactor::expected<int> e{libactor::error{libactor::errc::timeout, "no reply"}};
  CHECK_THROWS_WITH(e.value(), Catch::Contains("timeout: no reply"));
  CHECK_THROWS_AS(*e, libactor::bad_expected_access);
  libactor::expected<int> v{3};
  CHECK(v.value() == 3);
  CHECK_THROWS_AS(v.err(), libactor::bad_expected_access);
}

TEST_CASE("virtual time does not go back", "[actor][deterministic]") {
  libactor::actor_system sys{libactor::system_config{.deterministic_seed = 1}};
  const auto before = sys.now();
  CHECK_THROWS_AS(sys.advance_time(-1s), std::invalid_argument);
  CHECK(sys.now() == before);
  test::counter ticks;
  sys.spawn([&ticks](actor& self) -> behavior {
    self.send_after(10ms, 1);
    return {[&ticks](int) { ticks.add(); }};
  });
  sys.advance_time(10ms);
  CHECK(ticks.value() == 1);
}
