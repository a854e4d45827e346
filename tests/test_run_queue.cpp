// The local run queue with a tiny capacity, so tests hit wrap-around and
// overflow: smoke, empty, FIFO across wrap, overflow, steal half, stampede.

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "scheduler/run_queue.hpp"
#include "support.hpp"

using libactor::actor;

namespace {
// The queue stores actor pointers and never dereferences them.
actor* fake(std::uintptr_t i) {
  return reinterpret_cast<actor*>((i + 1) * 16);
}
std::uintptr_t index_of(actor* a) {
  return reinterpret_cast<std::uintptr_t>(a) / 16 - 1;
}
using small_queue = libactor::detail::run_queue<4>;
}  // namespace

TEST_CASE("run_queue smoke and empty", "[run_queue]") {
  small_queue q;
  small_queue::owner o(q);
  CHECK(o.pop() == nullptr);
  REQUIRE(o.push(fake(1)));
  CHECK(o.size() == 1);
  CHECK(o.pop() == fake(1));
  CHECK(o.pop() == nullptr);
}

TEST_CASE("run_queue FIFO across wrap-around; overflow returns false", "[run_queue]") {
  small_queue q;
  small_queue::owner o(q);
  std::uintptr_t next_in = 0;
  std::uintptr_t next_out = 0;
  for (int round = 0; round < 10; ++round) {
    while (o.push(fake(next_in))) ++next_in;
    CHECK(o.size() == 4);  // full: the 5th push failed
    for (int k = 0; k < 3; ++k) CHECK(o.pop() == fake(next_out++));
  }
  while (actor* a = o.pop()) CHECK(a == fake(next_out++));
  CHECK(next_out == next_in);
}

TEST_CASE("run_queue steal takes half and returns one to run", "[run_queue]") {
  small_queue victim_q;
  small_queue thief_q;
  small_queue::owner victim(victim_q);
  small_queue::owner thief(thief_q);
  for (int i = 0; i < 4; ++i) REQUIRE(victim.push(fake(i)));
  actor* run = thief.steal_from(victim.make_stealer());
  REQUIRE(run != nullptr);
  // Half (2) moved: one returned, one queued at the thief; the oldest went.
  CHECK(victim.size() == 2);
  CHECK(thief.size() == 1);
  CHECK(run == fake(1));
  CHECK(thief.pop() == fake(0));
  CHECK(victim.pop() == fake(2));
  CHECK(thief.steal_from(victim.make_stealer()) == fake(3));
  CHECK(thief.steal_from(victim.make_stealer()) == nullptr);
}

TEST_CASE("run_queue stampede: owner pushes and pops while thieves steal; each item taken once",
          "[run_queue][stress]") {
  using queue = libactor::detail::run_queue<16>;
  const std::uintptr_t total = test::scaled(400000);
  queue q;
  queue::owner owner(q);
  const auto stealer = owner.make_stealer();
  std::vector<std::atomic<int>> seen(total);
  std::atomic<bool> done{false};
  std::atomic<std::uintptr_t> taken{0};
  // Catch2 assertions are not thread-safe: threads count violations, the
  // main thread checks them.
  std::atomic<int> violations{0};
  auto record = [&](actor* a) {
    const auto i = index_of(a);
    if (i >= total || seen[i].fetch_add(1, std::memory_order_seq_cst) != 0)
      violations.fetch_add(1, std::memory_order_seq_cst);
    taken.fetch_add(1, std::memory_order_seq_cst);
  };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 2; ++t) {
    thieves.emplace_back([&] {
      queue mine;
      queue::owner me(mine);
      while (
          !done.load(std::memory_order_acquire)) {  // acquire: pairs with the release store below
        if (actor* a = me.steal_from(stealer)) {
          record(a);
          while (actor* b = me.pop()) record(b);
        }
      }
    });
  }
  for (std::uintptr_t i = 0; i < total; ++i) {
    while (!owner.push(fake(i))) {
      if (actor* a = owner.pop()) record(a);
    }
    if (i % 3 == 0) {
      if (actor* a = owner.pop()) record(a);
    }
  }
  while (actor* a = owner.pop()) record(a);
  const auto until = std::chrono::steady_clock::now() + test::deadline;
  // acquire: pairs with the thieves' increments, after their records.
  while (taken.load(std::memory_order_acquire) < total && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  CHECK(violations.load(std::memory_order_seq_cst) == 0);
  CHECK(taken.load(std::memory_order_seq_cst) == total);
}
