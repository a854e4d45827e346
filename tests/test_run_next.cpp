// The run-next slot in isolation: the owner's put and take, the thief's
// steal, and a stress test in which an owner hands items through the slot
// while a thief steals as fast as it can: every item ends with exactly one
// of them, none is lost. (One window cannot be forced from a test: an owner
// preempted between reading the slot and clearing it. The `taking` flag
// covers it; the argument is in run_next.hpp. Under ThreadSanitizer the
// same test runs the symmetric variant.)

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "scheduler/run_next.hpp"
#include "support.hpp"

using libactor::detail::run_next_slot;

namespace {
struct alignas(8) item {
  int id;
};
}  // namespace

TEST_CASE("run-next slot: put, take, displace", "[run_next]") {
  libactor::detail::init_asymmetric_barriers();
  run_next_slot<item> s;
  run_next_slot<item>::owner o(s);
  item a{1}, b{2};
  CHECK(o.empty());
  CHECK(o.take() == nullptr);
  CHECK(o.put(&a) == nullptr);
  CHECK_FALSE(o.empty());
  CHECK(o.put(&b) == &a);  // displaced
  CHECK(o.take() == &b);
  CHECK(o.take() == nullptr);
}

TEST_CASE("run-next slot: the thief takes only what is there", "[run_next]") {
  run_next_slot<item> s;
  run_next_slot<item>::owner o(s);
  run_next_slot<item>::thief t(s);
  item a{1}, b{2};
  CHECK(t.peek() == nullptr);
  CHECK_FALSE(t.steal(&a));
  CHECK(o.put(&a) == nullptr);
  CHECK(t.peek() == &a);
  CHECK_FALSE(t.steal(&b));  // not the one in the slot
  CHECK(t.steal(&a));
  CHECK(o.take() == nullptr);  // gone to the thief
  CHECK(o.put(&b) == nullptr);
  CHECK(o.take() == &b);
}

TEST_CASE("run-next slot stress: each item is taken by exactly one side", "[run_next][stress]") {
  libactor::detail::init_asymmetric_barriers();
  const int n = static_cast<int>(test::scaled(60000));
  std::vector<item> items(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) items[static_cast<std::size_t>(i)].id = i;
  std::vector<std::atomic<int>> taken(static_cast<std::size_t>(n));
  run_next_slot<item> s;
  std::atomic<bool> done{false};
  std::atomic<bool> thief_running{false};
  std::atomic<long> stolen{0};
  std::thread thief_thread([&] {
    run_next_slot<item>::thief t(s);
    thief_running.store(true, std::memory_order_seq_cst);
    while (!done.load(std::memory_order_seq_cst)) {
      if (item* x = t.peek()) {
        if (t.steal(x)) {
          taken[static_cast<std::size_t>(x->id)].fetch_add(1, std::memory_order_seq_cst);
          stolen.fetch_add(1, std::memory_order_seq_cst);
        }
      }
    }
  });
  run_next_slot<item>::owner o(s);
  long by_owner = 0;
  // On a loaded machine the thief may start late or be descheduled for the
  // whole run: the owner waits for it to start, and the last quarter of the
  // items lingers (up to a deadline) until the thief has stolen something,
  // so that the race is exercised whatever the scheduler does.
  while (!thief_running.load(std::memory_order_seq_cst)) std::this_thread::yield();
  const auto linger_until = std::chrono::steady_clock::now() + test::deadline;
  for (int i = 0; i < n; ++i) {
    if (item* d = o.put(&items[static_cast<std::size_t>(i)])) {
      taken[static_cast<std::size_t>(d->id)].fetch_add(1, std::memory_order_seq_cst);
      ++by_owner;
    }
    // Linger a varying while, so that the thief's steal overlaps every part
    // of the owner's put and take; take every other time.
    for (int k = 0; k < (i * 7) % 97; ++k) __builtin_ia32_pause();
    if (i >= n - n / 4) {
      while (stolen.load(std::memory_order_seq_cst) == 0 &&
             std::chrono::steady_clock::now() < linger_until) {
        std::this_thread::yield();
      }
    }
    if (i % 2 == 1) {
      if (item* x = o.take()) {
        taken[static_cast<std::size_t>(x->id)].fetch_add(1, std::memory_order_seq_cst);
        ++by_owner;
      }
    }
  }
  // What is left: the owner takes it, or the thief (still running) does.
  if (item* x = o.take()) {
    taken[static_cast<std::size_t>(x->id)].fetch_add(1, std::memory_order_seq_cst);
    ++by_owner;
  }
  done.store(true, std::memory_order_seq_cst);
  thief_thread.join();
  int lost = 0;
  int twice = 0;
  for (auto& t : taken) {
    const int v = t.load(std::memory_order_seq_cst);
    lost += v == 0;
    twice += v > 1;
  }
  CHECK(lost == 0);
  CHECK(twice == 0);
  CHECK(by_owner + stolen.load(std::memory_order_seq_cst) == n);
  CHECK(stolen.load(std::memory_order_seq_cst) > 0);  // the race was exercised
}

TEST_CASE("run-next slot: a take racing a steal leaves the item with exactly one side",
          "[run_next][stress]") {
  // Each round: the owner puts, the thief tries to steal, the owner takes
  // after a varying delay. Whatever the interleaving (the thief may give the
  // item back because the owner announced its take), afterwards exactly one
  // side has it and the slot is empty: an owner whose take found nothing must
  // not leave the item behind (it might go to sleep next).
  libactor::detail::init_asymmetric_barriers();
  run_next_slot<item> s;
  item it{7};
  const long rounds = static_cast<long>(test::scaled(100000));
  std::atomic<long> round{0};
  std::atomic<long> done{0};
  std::atomic<bool> stole{false};
  std::thread thief_thread([&] {
    run_next_slot<item>::thief t(s);
    for (long r = 1; r <= rounds; ++r) {
      while (round.load(std::memory_order_seq_cst) != r) std::this_thread::yield();
      stole.store(t.steal(&it), std::memory_order_seq_cst);
      done.store(r, std::memory_order_seq_cst);
    }
  });
  run_next_slot<item>::owner o(s);
  long both = 0;
  long neither = 0;
  long left_behind = 0;
  for (long r = 1; r <= rounds; ++r) {
    CHECK(o.put(&it) == nullptr);
    round.store(r, std::memory_order_seq_cst);
    for (long k = 0; k < (r * 37) % 3000; ++k) __builtin_ia32_pause();
    const bool mine = o.take() != nullptr;
    while (done.load(std::memory_order_seq_cst) != r) std::this_thread::yield();
    const bool theirs = stole.load(std::memory_order_seq_cst);
    both += mine && theirs;
    neither += !mine && !theirs;
    if (!o.empty()) {
      ++left_behind;
      (void)o.take();
    }
  }
  thief_thread.join();
  CHECK(both == 0);
  CHECK(neither == 0);
  CHECK(left_behind == 0);
}
