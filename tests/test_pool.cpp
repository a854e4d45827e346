// The message pool: local reuse, cross-thread frees returned to the home heap,
// and a producer/consumer stress where every block is freed by another thread.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
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

TEST_CASE("pool: trim gives back the chunks a burst left free, and keeps what is in use",
          "[pool]") {
  // On a thread of its own: a fresh heap, so the figures are this test's.
  std::thread t([] {
    namespace pool = libactor::detail::pool;
    CHECK(pool::heap_bytes() == 0);
    // A burst: 64 MiB of 64-byte blocks (1,023 to a 64 KiB chunk).
    std::vector<void*> blocks;
    const std::size_t n = (std::size_t{64} << 20) / 64;
    blocks.reserve(n);
    for (std::size_t i = 0; i < n; ++i) blocks.push_back(pool::allocate(0));
    const std::size_t grown = pool::heap_bytes();
    CHECK(grown >= n * 64);
    // Half of the chunks keep one block in use: they stay.
    std::vector<void*> kept;
    for (std::size_t i = 0; i < n; ++i) {
      const bool keep = (i / 1023) % 2 == 0 && i % 1023 == 5;
      if (keep) {
        kept.push_back(blocks[i]);
      } else {
        pool::deallocate(blocks[i], 0);
      }
    }
    const std::size_t freed = pool::trim(0);
    INFO("grown " << grown << ", freed " << freed << ", kept blocks " << kept.size());
    CHECK(freed >= grown / 2 - 2 * pool::chunk_size);
    CHECK(freed <= grown / 2 + 2 * pool::chunk_size);
    CHECK(pool::heap_bytes() == grown - freed);
    // What stays is usable; the freed chunks' blocks are gone from the lists.
    for (void* p : kept) std::memset(p, 0xab, 64);
    std::set<void*> again;
    for (int i = 0; i < 5000; ++i) again.insert(pool::allocate(0));
    CHECK(again.size() == 5000);
    for (void* p : again) pool::deallocate(p, 0);
    for (void* p : kept) pool::deallocate(p, 0);
    // Everything free now: down to what `keep` allows.
    CHECK(pool::trim(4 * pool::chunk_size) > 0);
    CHECK(pool::heap_bytes() <= 5 * pool::chunk_size);
  });
  t.join();
}

TEST_CASE("pool: blocks freed by another thread count as free when the owner trims", "[pool]") {
  namespace pool = libactor::detail::pool;
  std::vector<void*> blocks;
  std::size_t grown = 0;
  std::size_t freed = 0;
  std::promise<void> allocated, released;
  std::thread owner([&] {
    for (int i = 0; i < 100'000; ++i) blocks.push_back(pool::allocate(1));
    grown = pool::heap_bytes();
    allocated.set_value();
    // The other thread frees them all meanwhile (into this heap's remote lists).
    if (released.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready) {
      freed = pool::trim(0);
    }
  });
  std::thread freer([&] {
    if (allocated.get_future().wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      return;
    }
    for (void* p : blocks) pool::deallocate(p, 1);
    pool::flush_thread_cache();
    released.set_value();
  });
  freer.join();
  owner.join();
  INFO("grown " << grown << ", freed " << freed);
  CHECK(grown >= 100'000 * 128);
  CHECK(freed + 2 * pool::chunk_size >= grown);
}
