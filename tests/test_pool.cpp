// The message pool: local reuse, cross-thread frees returned to the home heap,
// and a producer/consumer stress where every block is freed by another thread.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "libactor/detail/pool.hpp"
#include "support.hpp"

namespace pool = libactor::detail::pool;

TEST_CASE("pool size classes", "[pool]") {
  CHECK(pool::size_class_for(1) == 0);
  CHECK(pool::size_class_for(64) == 0);
  CHECK(pool::size_class_for(65) == 1);
  CHECK(pool::size_class_for(512) == 3);
  CHECK(pool::size_class_for(513) == -1);
}

TEST_CASE("pool reuses a freed block on the same thread", "[pool]") {
  void* a = pool::allocate(1);
  std::memset(a, 0xab, pool::class_size[1]);
  pool::deallocate(a, 1);
  void* b = pool::allocate(1);
  CHECK(a == b);
  pool::deallocate(b, 1);
}

TEST_CASE("pool: blocks freed by another thread come back to their home heap", "[pool]") {
  constexpr int n = 1000;
  std::vector<void*> blocks;
  for (int i = 0; i < n; ++i) blocks.push_back(pool::allocate(0));
  std::set<void*> original(blocks.begin(), blocks.end());
  std::thread([&] {
    for (void* b : blocks) pool::deallocate(b, 0);
    pool::flush_thread_cache();
  }).join();
  // All n come back without carving new memory: the next n allocations are
  // exactly the same blocks.
  std::set<void*> again;
  for (int i = 0; i < n; ++i) again.insert(pool::allocate(0));
  CHECK(again == original);
  for (void* b : again) pool::deallocate(b, 0);
}

TEST_CASE("pool stress: producer allocates, consumer frees, blocks keep their contents",
          "[pool][stress]") {
  const std::size_t total = test::scaled(1000000);
  constexpr std::size_t ring = 1024;
  std::vector<std::atomic<void*>> slots(ring);
  for (auto& s : slots) s.store(nullptr, std::memory_order_relaxed);  // relaxed: not yet shared
  std::atomic<std::size_t> corrupted{0};  // counted off the main thread, checked on it
  std::thread consumer([&] {
    for (std::size_t i = 0; i < total; ++i) {
      auto& s = slots[i % ring];
      void* p;
      while ((p = s.exchange(nullptr, std::memory_order_acquire)) == nullptr)
        std::this_thread::yield();
      std::size_t v;
      std::memcpy(&v, static_cast<char*>(p) + 8, sizeof v);
      if (v != i) corrupted.fetch_add(1, std::memory_order_seq_cst);
      pool::deallocate(p, static_cast<int>(i % 2));
    }
    pool::flush_thread_cache();
  });
  for (std::size_t i = 0; i < total; ++i) {
    void* p = pool::allocate(static_cast<int>(i % 2));
    std::memcpy(static_cast<char*>(p) + 8, &i, sizeof i);
    auto& s = slots[i % ring];
    while (s.load(std::memory_order_relaxed) != nullptr) std::this_thread::yield();
    s.store(p, std::memory_order_release);
  }
  consumer.join();
  CHECK(corrupted.load(std::memory_order_relaxed) == 0);  // relaxed: after join()
}
