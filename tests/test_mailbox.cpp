// The MPSC mailbox in isolation: smoke, empty, SPSC order, stampede, stress,
// blocked/unblocked hand-off, close, destructors.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "libactor/detail/mailbox.hpp"
#include "support.hpp"

using libactor::detail::mailbox;
using libactor::detail::message;
using libactor::detail::msg_kind;

namespace {

std::atomic<int> live_payloads{0};

struct tracked {
  explicit tracked(int p, int s) : producer(p), seq(s) {
    live_payloads.fetch_add(1, std::memory_order_seq_cst);
  }
  tracked(const tracked&) = delete;
  ~tracked() { live_payloads.fetch_sub(1, std::memory_order_seq_cst); }
  int producer;
  int seq;
};

message* make(int producer, int seq) {
  return libactor::detail::make_message<tracked>(msg_kind::user, nullptr, 0, producer, seq);
}
const tracked& value(message* m) {
  return libactor::detail::payload<tracked>(*m);
}

}  // namespace

TEST_CASE("mailbox smoke: FIFO for one producer", "[mailbox]") {
  mailbox mb;
  for (int i = 0; i < 5; ++i) REQUIRE(mb.push(make(0, i)) == mailbox::push_result::ok);
  message* q = mb.take_all();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(q != nullptr);
    CHECK(value(q).seq == i);
    message* n = q->next;
    q->dispose();
    q = n;
  }
  CHECK(q == nullptr);
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox empty: take_all returns null, try_block succeeds", "[mailbox]") {
  mailbox mb;
  CHECK(mb.take_all() == nullptr);
  CHECK(mb.try_block());
  // The first push into a blocked mailbox reports the transition, exactly once.
  CHECK(mb.push(make(0, 0)) == mailbox::push_result::unblocked);
  CHECK(mb.push(make(0, 1)) == mailbox::push_result::ok);
  CHECK_FALSE(mb.try_block());
  test::dispose_all(mb.take_all());
  CHECK(mb.try_block());
  CHECK(mb.push(make(0, 2)) == mailbox::push_result::unblocked);
  test::dispose_all(mb.close());
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox close: returns stash and queue in order, rejects later pushes", "[mailbox]") {
  mailbox mb;
  for (int i = 0; i < 4; ++i) (void)mb.push(make(0, i));
  message* q = mb.take_all();
  message* rest = q->next;  // consume the first, stash the rest
  q->dispose();
  mb.stash(rest);
  for (int i = 4; i < 6; ++i) (void)mb.push(make(0, i));
  message* all = mb.close();
  int expect = 1;
  for (message* m = all; m; m = m->next) CHECK(value(m).seq == expect++);
  CHECK(expect == 6);
  test::dispose_all(all);
  message* late = make(0, 99);
  CHECK(mb.push(late) == mailbox::push_result::closed);
  late->dispose();  // the caller still owns a rejected message
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox stampede: many producers, per-producer FIFO, nothing lost",
          "[mailbox][stress]") {
  constexpr int producers = 8;
  const int per = static_cast<int>(test::scaled(100000));
  mailbox mb;
  std::atomic<int> unblocks{0};
  REQUIRE(mb.try_block());
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per; ++i) {
        if (mb.push(make(p, i)) == mailbox::push_result::unblocked)
          unblocks.fetch_add(1, std::memory_order_seq_cst);
      }
    });
  }
  // The consumer: takes batches, checks order, and blocks when empty. While
  // blocked it waits for the one push that reports `unblocked`, as a
  // scheduler would; a second `unblocked` for the same block would be a bug.
  std::vector<int> next(producers, 0);
  int received = 0;
  int blocks = 1;
  bool blocked = true;
  const auto until = std::chrono::steady_clock::now() + test::deadline;
  while (received < producers * per && std::chrono::steady_clock::now() < until) {
    if (blocked) {
      REQUIRE(unblocks.load(std::memory_order_seq_cst) <= blocks);
      if (unblocks.load(std::memory_order_seq_cst) == blocks) {
        blocked = false;
      } else {
        std::this_thread::yield();
      }
      continue;
    }
    message* q = mb.take_all();
    if (!q) {
      if (mb.try_block()) {
        ++blocks;
        blocked = true;
      }
      continue;
    }
    while (q) {
      const tracked& t = value(q);
      REQUIRE(t.seq == next[t.producer]);
      ++next[t.producer];
      ++received;
      message* n = q->next;
      q->dispose();
      q = n;
    }
  }
  for (auto& t : threads) t.join();
  test::dispose_all(mb.take_all());
  CHECK(received == producers * per);
  // Each block was followed by exactly one unblock (the last maybe by none).
  CHECK((unblocks.load(std::memory_order_seq_cst) == blocks ||
         unblocks.load(std::memory_order_seq_cst) == blocks - 1));
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox close races with producers: every message either delivered or refused",
          "[mailbox][stress]") {
  const int rounds = static_cast<int>(test::scaled(200));
  for (int r = 0; r < rounds; ++r) {
    mailbox mb;
    std::atomic<int> refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < 3; ++p) {
      threads.emplace_back([&, p] {
        while (!go.load(std::memory_order_seq_cst)) {
        }
        for (int i = 0; i < 200; ++i) {
          message* m = make(p, i);
          if (mb.push(m) == mailbox::push_result::closed) {
            refused.fetch_add(1, std::memory_order_seq_cst);
            m->dispose();
          }
        }
      });
    }
    go.store(true, std::memory_order_seq_cst);
    int taken = 0;
    for (int k = 0; k < 3; ++k) {
      for (message* q = mb.take_all(); q;) {
        ++taken;
        message* n = q->next;
        q->dispose();
        q = n;
      }
    }
    message* rest = mb.close();
    for (; rest;) {
      ++taken;
      message* n = rest->next;
      rest->dispose();
      rest = n;
    }
    for (auto& t : threads) t.join();
    REQUIRE(taken + refused.load(std::memory_order_seq_cst) == 600);
  }
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox push_chain: one CAS, chain order after earlier pushes, unblocks once",
          "[mailbox]") {
  mailbox mb;
  REQUIRE(mb.try_block());
  CHECK(mb.push(make(0, 0)) == mailbox::push_result::unblocked);
  // A chain of 1..3 linked newest-first, as the outbox builds it.
  message* m1 = make(0, 1);
  message* m2 = make(0, 2);
  message* m3 = make(0, 3);
  m3->next = m2;
  m2->next = m1;
  CHECK(mb.push_chain(m3, m1) == mailbox::push_result::ok);
  CHECK(mb.push(make(0, 4)) == mailbox::push_result::ok);
  int expect = 0;
  for (message* m = mb.take_all(); m;) {
    CHECK(value(m).seq == expect++);
    message* n = m->next;
    m->dispose();
    m = n;
  }
  CHECK(expect == 5);
  REQUIRE(mb.try_block());
  message* c1 = make(0, 5);
  message* c2 = make(0, 6);
  c2->next = c1;
  CHECK(mb.push_chain(c2, c1) == mailbox::push_result::unblocked);
  test::dispose_all(mb.close());
  message* d1 = make(0, 7);
  CHECK(mb.push_chain(d1, d1) == mailbox::push_result::closed);
  d1->dispose();
  CHECK(live_payloads.load(std::memory_order_relaxed) ==
        0);  // relaxed: writers joined or same thread
}

TEST_CASE("mailbox ring: a doorbell without a message, ordered like a push", "[mailbox]") {
  mailbox mb;
  // While the consumer runs (empty): the ring makes try_block fail once.
  CHECK(mb.ring() == mailbox::push_result::ok);
  CHECK_FALSE(mb.try_block());
  CHECK(mb.take_all() == nullptr);  // takes the tag, no message
  CHECK(mb.try_block());
  // Blocked: the ring asks the caller to schedule, exactly once.
  CHECK(mb.ring() == mailbox::push_result::unblocked);
  CHECK(mb.ring() == mailbox::push_result::ok);
  CHECK(mb.take_all() == nullptr);
  // Messages pushed after a ring are still taken in order.
  mb.push(make(0, 1));
  mb.push(make(0, 2));
  CHECK(mb.ring() == mailbox::push_result::ok);
  message* all = mb.take_all();
  REQUIRE(all != nullptr);
  CHECK(value(all).seq == 1);
  CHECK(value(all->next).seq == 2);
  test::dispose_all(all);
  test::dispose_all(mb.close());
  CHECK(mb.ring() == mailbox::push_result::closed);
  CHECK(live_payloads.load(std::memory_order_seq_cst) == 0);
}

TEST_CASE("mailbox ring stampede: a consumer that blocks never misses a ring",
          "[mailbox][stress]") {
  // Producers ring after setting a flag; the consumer clears the doorbell,
  // looks at the flags, and blocks. Every ring either finds the consumer
  // running (and it sees the flag) or unblocks it.
  const int producers = 3;
  const int rounds = static_cast<int>(test::scaled(20000));
  mailbox mb;
  REQUIRE(mb.try_block());
  std::atomic<int> pending{0};  // flags set and not yet seen
  std::atomic<int> schedules{0};
  std::atomic<int> seen{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        pending.fetch_add(1, std::memory_order_seq_cst);
        if (mb.ring() == mailbox::push_result::unblocked) {
          schedules.fetch_add(1, std::memory_order_seq_cst);
        }
      }
    });
  }
  // The consumer runs once per schedule, like the scheduler would run it.
  std::thread consumer([&] {
    int ran = 0;
    for (;;) {
      if (ran == schedules.load(std::memory_order_seq_cst)) {
        if (done.load(std::memory_order_seq_cst) &&
            ran == schedules.load(std::memory_order_seq_cst)) {
          break;
        }
        std::this_thread::yield();
        continue;
      }
      ++ran;
      for (;;) {
        (void)mb.take_all();
        seen.fetch_add(pending.exchange(0, std::memory_order_seq_cst), std::memory_order_seq_cst);
        if (mb.try_block()) break;
      }
    }
  });
  for (auto& t : ts) t.join();
  done.store(true, std::memory_order_seq_cst);
  consumer.join();
  CHECK(seen.load(std::memory_order_seq_cst) == producers * rounds);
}
