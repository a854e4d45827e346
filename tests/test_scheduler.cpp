// The work-stealing scheduler under load: ping-pong pairs, a token ring,
// fan-out across workers, no starvation by a flooding actor, concurrent
// spawning, and idle workers waking up for new work.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <set>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;

namespace {
struct ball {
  int left;
  actor_ref back;
};
struct token {
  int hops;
};
struct set_next {
  actor_ref next;
};
}  // namespace

TEST_CASE("many ping-pong pairs all finish", "[scheduler][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  test::counter done;
  const int pairs = 64;
  const int rounds = static_cast<int>(test::scaled(2000));
  auto player = [&done](actor& self) -> behavior {
    return {[&done, &self](ball b) {
      if (b.left == 0) {
        done.add();
        return;
      }
      b.back.send(ball{b.left - 1, self.self()});
    }};
  };
  for (int i = 0; i < pairs; ++i) {
    auto a = sys.spawn(player);
    auto b = sys.spawn(player);
    a.send(ball{rounds, b});
  }
  REQUIRE(done.wait_for_at_least(pairs));
}

TEST_CASE("a token ring of many actors completes its hops", "[scheduler][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 5);  // ids and counters start elsewhere
  test::counter done;
  const int n = static_cast<int>(test::scaled(10000));
  const int hops = n * 5;
  std::vector<actor_ref> ring;
  for (int i = 0; i < n; ++i) {
    ring.push_back(sys.spawn([&done](actor&) -> behavior {
      auto next = std::make_shared<actor_ref>();
      return {[next](set_next s) { *next = std::move(s.next); },
              [next, &done](token t) {
                if (t.hops == 0) {
                  done.add();
                } else {
                  next->send(token{t.hops - 1});
                }
              }};
    }));
  }
  for (int i = 0; i < n; ++i) ring[i].send(set_next{ring[(i + 1) % n]});
  ring[0].send(token{hops});
  REQUIRE(done.wait_for_at_least(1));
  sys.shutdown();  // breaks the reference cycle through the behaviors
}

TEST_CASE("fan-out work spreads over workers and all results come back", "[scheduler]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  test::counter results;
  test::recorder<std::thread::id> threads;
  const int n = 200;
  struct job {
    int spin;
  };
  std::vector<actor_ref> workers;
  for (int i = 0; i < n; ++i) {
    workers.push_back(sys.spawn([&results, &threads](actor&) -> behavior {
      return {[&results, &threads](job j) {
        volatile std::uint64_t x = 0;
        for (int k = 0; k < j.spin; ++k) x = x + static_cast<std::uint64_t>(k);
        threads.push(std::this_thread::get_id());
        results.add();
      }};
    }));
  }
  for (auto& w : workers) w.send(job{200000});
  REQUIRE(results.wait_for_at_least(n));
  std::set<std::thread::id> distinct;
  for (auto id : threads.items()) distinct.insert(id);
  CHECK(distinct.size() == 2);  // both workers took part
}

TEST_CASE("a flooding actor cannot starve others (per-activation budget)", "[scheduler]") {
  // One worker: fairness must come from the budget, not from parallelism.
  libactor::actor_system sys{libactor::system_config{.workers = 1, .budget = 16}};
  struct again {};
  test::counter served;
  auto flood = sys.spawn(
      [](actor& self) -> behavior { return {[&self](again) { self.self().send(again{}); }}; });
  flood.send(again{});
  flood.send(again{});
  auto other =
      sys.spawn([&served](actor&) -> behavior { return {[&served](int) { served.add(); }}; });
  for (int i = 0; i < 100; ++i) other.send(i);
  REQUIRE(served.wait_for_at_least(100));
  sys.stop(flood);
}

TEST_CASE("actors spawned and stopped from many threads at once", "[scheduler][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 2);  // ids and counters start elsewhere
  const auto spawned_before = sys.stats().spawned;
  test::counter handled;
  const int per = static_cast<int>(test::scaled(2000));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < per; ++i) {
        auto a = sys.spawn([&handled](actor& self) -> behavior {
          return {[&handled, &self](int) {
            handled.add();
            self.quit();
          }};
        });
        a.send(1);
        if (i % 2 == 0) sys.stop(a);
      }
    });
  }
  for (auto& t : threads) t.join();
  // The actors that were not stopped all handle their message.
  REQUIRE(handled.wait_for_at_least(static_cast<std::size_t>(2 * per)));
  // The stopped ones either handled it first or not; either way all of them
  // end, and shutdown finds nothing left.
  sys.shutdown();
  CHECK(sys.stats().live_actors == 0);
  CHECK(sys.stats().spawned == spawned_before + static_cast<std::uint64_t>(4 * per));
  CHECK(handled.value() >= static_cast<std::size_t>(2 * per));
}

TEST_CASE("sleeping workers wake for new work, repeatedly", "[scheduler]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 4);  // ids and counters start elsewhere
  test::counter handled;
  auto a =
      sys.spawn([&handled](actor&) -> behavior { return {[&handled](int) { handled.add(); }}; });
  const int rounds = static_cast<int>(test::scaled(2000));
  for (int i = 0; i < rounds; ++i) {
    a.send(i);
    // Wait for each one so the pool goes idle (and parks) between messages.
    REQUIRE(handled.wait_for_at_least(static_cast<std::size_t>(i + 1)));
  }
}

TEST_CASE("an actor never runs on two threads at once", "[scheduler][stress]") {
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 3);  // ids and counters start elsewhere
  std::atomic<int> overlaps{0};
  test::counter handled;
  // `inside` is the actor's own state; if two workers ran its handlers at the
  // same time, one would see the other's mark.
  auto target = sys.spawn([&overlaps, &handled](actor&) -> behavior {
    auto inside = std::make_shared<std::atomic<bool>>(false);
    return {[inside, &overlaps, &handled](int) {
      if (inside->exchange(true)) overlaps.fetch_add(1, std::memory_order_seq_cst);
      volatile int spin = 0;
      for (int k = 0; k < 50; ++k) spin = spin + k;
      inside->store(false);
      handled.add();
    }};
  });
  const int per = static_cast<int>(test::scaled(20000));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([target, per] {
      for (int i = 0; i < per; ++i) target.send(i);
    });
  }
  // And actor senders, which take the batched path.
  struct go {};
  for (int s = 0; s < 2; ++s) {
    sys.spawn([target, per](actor&) -> behavior {
         return {[target, per](go) {
           for (int i = 0; i < per; ++i) target.send(i);
         }};
       })
        .send(go{});
  }
  for (auto& t : threads) t.join();
  REQUIRE(handled.wait_for_at_least(static_cast<std::size_t>(5 * per)));
  CHECK(overlaps.load(std::memory_order_seq_cst) == 0);
}

namespace {
struct wake_and_wait {
  actor_ref other;
  std::chrono::steady_clock::duration patience;
};
struct note {};

/// Sends `note` to the other actor, then keeps its worker busy until the
/// other actor has handled it (or its patience runs out): true when the
/// other actor ran while this handler still ran.
behavior long_handler(actor&, std::atomic<bool>& noted, test::recorder<bool>& out) {
  return {[&noted, &out](wake_and_wait w) {
    w.other.send(note{});
    const auto until = std::chrono::steady_clock::now() + w.patience;
    while (!noted.load(std::memory_order_seq_cst) && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    out.push(noted.load(std::memory_order_seq_cst));
  }};
}
}  // namespace

TEST_CASE("an actor a long handler made runnable does not wait for it while workers idle",
          "[scheduler]") {
  // The woken actor waits in the handler's run-next slot; the other worker
  // sleeps. The slot's watch hands it over within about two of its periods
  // (system_config::run_next_timeout).
  libactor::actor_system sys{libactor::system_config{.workers = 2}};
  test::unrelated(sys, 3);  // ids and counters start elsewhere
  for (int i = 0; i < 5; ++i) sys.spawn([](actor&) -> behavior { return {[](int) {}}; });
  const int rounds = 10;
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r);
    std::atomic<bool> noted{false};
    test::recorder<bool> ran_meanwhile;
    auto other = sys.spawn([&noted](actor&) -> behavior {
      return {[&noted](note) { noted.store(true, std::memory_order_seq_cst); }};
    });
    auto busy = sys.spawn([&](actor& self) { return long_handler(self, noted, ran_meanwhile); });
    busy.send(wake_and_wait{other, 5s});
    REQUIRE(ran_meanwhile.wait_for_size(1));
    CHECK(ran_meanwhile.items()[0]);
  }
}

TEST_CASE("with run_next_timeout zero, the woken actor waits for the handler", "[scheduler]") {
  libactor::system_config cfg;
  cfg.workers = 2;
  cfg.run_next_timeout = libactor::duration::zero();
  libactor::actor_system sys{cfg};
  std::atomic<bool> noted{false};
  test::recorder<bool> ran_meanwhile;
  auto other = sys.spawn([&noted](actor&) -> behavior {
    return {[&noted](note) { noted.store(true, std::memory_order_seq_cst); }};
  });
  auto busy = sys.spawn([&](actor& self) { return long_handler(self, noted, ran_meanwhile); });
  busy.send(wake_and_wait{other, 100ms});
  REQUIRE(ran_meanwhile.wait_for_size(1));
  CHECK_FALSE(ran_meanwhile.items()[0]);
  const auto until = std::chrono::steady_clock::now() + test::deadline;
  while (!noted.load(std::memory_order_seq_cst) && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  CHECK(noted.load(std::memory_order_seq_cst));  // and runs right after it
}
