// The drop_oldest mailbox's queue in isolation: FIFO, eviction of the
// oldest user message only, runtime messages never evicted or counted,
// close, and every message destroyed exactly once under concurrent pushes.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "evicting_inbox.hpp"
#include "support.hpp"

using libactor::detail::evicting_inbox;
using libactor::detail::message;
using libactor::detail::msg_kind;

namespace {
std::atomic<int> live{0};
struct item {
  explicit item(int v) : value(v) { live.fetch_add(1, std::memory_order_seq_cst); }
  item(const item&) = delete;
  ~item() { live.fetch_sub(1, std::memory_order_seq_cst); }
  int value;
};
message* make(int v, msg_kind k = msg_kind::user) {
  return libactor::detail::make_message<item>(k, nullptr, 0, v);
}
int value(message* m) {
  return libactor::detail::payload<item>(*m).value;
}
}  // namespace

TEST_CASE("evicting inbox: FIFO below capacity, oldest user message evicted at it", "[inbox]") {
  evicting_inbox box(3);
  message* evicted = nullptr;
  for (int i = 0; i < 3; ++i) {
    CHECK(box.push(make(i), evicted) == evicting_inbox::push_result::ok);
    CHECK(evicted == nullptr);
  }
  // A runtime message does not count and is never evicted.
  CHECK(box.push(make(100, msg_kind::down), evicted) == evicting_inbox::push_result::ok);
  CHECK(evicted == nullptr);
  CHECK(box.push(make(3), evicted) == evicting_inbox::push_result::ok);
  REQUIRE(evicted != nullptr);
  CHECK(value(evicted) == 0);
  evicted->dispose();
  std::vector<int> order;
  while (message* m = box.pop()) {
    order.push_back(value(m));
    m->dispose();
  }
  CHECK(order == std::vector<int>{1, 2, 100, 3});
  CHECK(live.load(std::memory_order_seq_cst) == 0);
}

TEST_CASE("evicting inbox: eviction skips runtime messages at the front", "[inbox]") {
  evicting_inbox box(1);
  message* evicted = nullptr;
  CHECK(box.push(make(7, msg_kind::exit_signal), evicted) == evicting_inbox::push_result::ok);
  CHECK(box.push(make(1), evicted) == evicting_inbox::push_result::ok);
  CHECK(box.push(make(2), evicted) == evicting_inbox::push_result::ok);
  REQUIRE(evicted != nullptr);
  CHECK(value(evicted) == 1);
  evicted->dispose();
  message* a = box.pop();
  message* b = box.pop();
  CHECK(value(a) == 7);
  CHECK(value(b) == 2);
  CHECK(box.pop() == nullptr);
  a->dispose();
  b->dispose();
}

TEST_CASE("evicting inbox: close returns what is queued and refuses later pushes", "[inbox]") {
  evicting_inbox box(4);
  message* evicted = nullptr;
  for (int i = 0; i < 3; ++i) (void)box.push(make(i), evicted);
  message* rest = box.close();
  int n = 0;
  for (message* m = rest; m; m = m->next) CHECK(value(m) == n++);
  CHECK(n == 3);
  test::dispose_all(rest);
  message* late = make(9);
  CHECK(box.push(late, evicted) == evicting_inbox::push_result::closed);
  late->dispose();
  CHECK(live.load(std::memory_order_seq_cst) == 0);
}

TEST_CASE("evicting inbox stampede: bounded, per-producer order, each message freed once",
          "[inbox][stress]") {
  const int producers = 3;
  const int per = static_cast<int>(test::scaled(30000));
  const std::uint32_t capacity = 8;
  evicting_inbox box(capacity);
  std::atomic<int> evictions{0};
  std::atomic<int> refused{0};
  std::atomic<int> peak{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  // Catch's assertions are not thread-safe: the threads only count.
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&, p] {
      for (int i = 0; i < per; ++i) {
        message* ev = nullptr;
        message* m = make(p * per + i);
        if (box.push(m, ev) != evicting_inbox::push_result::ok) {
          refused.fetch_add(1, std::memory_order_seq_cst);
          m->dispose();
        }
        if (ev) {
          evictions.fetch_add(1, std::memory_order_seq_cst);
          ev->dispose();
        }
        const int now = live.load(std::memory_order_seq_cst);
        int prev = peak.load(std::memory_order_seq_cst);
        while (now > prev && !peak.compare_exchange_weak(prev, now, std::memory_order_seq_cst)) {
        }
      }
    });
  }
  std::vector<int> last(producers, -1);
  int popped = 0;
  int out_of_order = 0;
  std::thread consumer([&] {
    for (;;) {
      message* m = box.pop();
      if (m == nullptr) {
        if (done.load(std::memory_order_seq_cst)) {
          m = box.pop();
          if (m == nullptr) break;
        } else {
          std::this_thread::yield();
          continue;
        }
      }
      const int v = value(m);
      const int p = v / per;
      if (v <= last[p]) ++out_of_order;  // per-producer FIFO among the survivors
      last[p] = v;
      ++popped;
      m->dispose();
    }
  });
  for (auto& t : ts) t.join();
  done.store(true, std::memory_order_seq_cst);
  consumer.join();
  CHECK(refused.load(std::memory_order_seq_cst) == 0);
  CHECK(out_of_order == 0);
  // Queued, the consumer's current one, and per producer at most two more
  // (one being built, one just evicted).
  CHECK(peak.load(std::memory_order_seq_cst) <= static_cast<int>(capacity) + 1 + 2 * producers);
  CHECK(popped + evictions.load(std::memory_order_seq_cst) == producers * per);
  CHECK(live.load(std::memory_order_seq_cst) == 0);
}
