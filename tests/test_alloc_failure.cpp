// Exception safety of the runtime's bookkeeping: inside a handler, every
// allocation the runtime makes for an ask, a task or a timer is made to fail
// in turn (operator new is replaced in this test program). Whatever fails,
// nothing leaks (requests, their payloads, sender references, timers), the
// asker gets an answer, and the actor stops with the failure as its reason.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "support.hpp"

namespace {
// Allocations on this thread fail once the countdown reaches zero; 0 means
// disarmed. Thread-local, so only the handler that arms it is affected.
thread_local long t_fail_in = 0;
thread_local long t_failed = 0;

void* counted_alloc(std::size_t n) {
  if (t_fail_in > 0 && --t_fail_in == 0) {
    ++t_failed;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Every form of operator new and delete is replaced, so that no block is
// allocated by one implementation and freed by another (AddressSanitizer
// checks that).
void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (t_fail_in > 0 && --t_fail_in == 0) {
    ++t_failed;
    throw std::bad_alloc();
  }
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace std::chrono_literals;
using libactor::actor;
using libactor::behavior;
using libactor::errc;
using libactor::task;

namespace {
std::atomic<long> g_alive{0};

/// A payload whose instances are counted: a leaked request keeps one alive.
struct tracked {
  std::string text = std::string(40, 't');
  tracked() { g_alive.fetch_add(1, std::memory_order_seq_cst); }
  tracked(const tracked& o) : text(o.text) { g_alive.fetch_add(1, std::memory_order_seq_cst); }
  tracked(tracked&& o) noexcept : text(std::move(o.text)) {
    g_alive.fetch_add(1, std::memory_order_seq_cst);
  }
  ~tracked() { g_alive.fetch_sub(1, std::memory_order_seq_cst); }
};

struct go {
  long fail_at;
};
struct tick {};

struct outcome {
  bool failed_inside = false;  // an injected failure reached the handler
  std::string answer;
};
}  // namespace

TEST_CASE("a failed allocation in ask, task or timer bookkeeping leaks nothing",
          "[ask][timers][exceptions]") {
  // Sweep the failure point over every allocation the scenario makes,
  // until one run makes them all without a failure.
  bool completed_clean = false;
  for (long k = 1; k < 200 && !completed_clean; ++k) {
    INFO("failing allocation number " << k);
    std::atomic<long> destroyed{0};
    {
      libactor::actor_system sys{libactor::system_config{.deterministic_seed = std::uint64_t(k)}};
      sys.spawn([](actor& self) -> behavior {  // unrelated timers and asks
        self.send_after(1h, tick{});
        return {[](tick) {}};
      });
      auto echo = sys.spawn([](actor&) -> behavior {
        return {[](const tracked& t) { return static_cast<int>(t.text.size()); }};
      });
      struct worker : actor {
        worker(libactor::actor_ref echo, std::atomic<long>& d) : echo_(std::move(echo)), d_(d) {}
        ~worker() override { d_.fetch_add(1, std::memory_order_seq_cst); }
        behavior make_behavior() override {
          return {
              [this](go g) -> task<int> {
                t_fail_in = g.fail_at;  // armed for the runtime's bookkeeping below
                try {
                  send_after(1h, tick{});
                  tracked q;
                  auto r = co_await ask<int>(echo_, std::move(q), 10s);
                  send_every(1h, tick{});
                  t_fail_in = 0;
                  co_return r ? *r : -1;
                } catch (...) {
                  t_fail_in = 0;
                  throw;
                }
              },
              [](tick) {},
          };
        }
        libactor::actor_ref echo_;
        std::atomic<long>& d_;
      };
      auto w = sys.spawn<worker>(echo, destroyed);
      auto r = w.ask<int>(go{k}, 10s);
      sys.run_until_idle();
      auto v = r.get();
      if (v) {
        CHECK(*v == 40);
        completed_clean = t_failed == 0;
      } else {
        // The failure reached the handler: the asker is told, and the actor
        // stopped with it.
        CHECK((v.err().code == errc::handler_failed || v.err().code == errc::receiver_down));
        CHECK(sys.stats().live_actors == 2);
      }
      t_failed = 0;
    }
    CHECK(destroyed.load(std::memory_order_seq_cst) == 1);
    CHECK(g_alive.load(std::memory_order_seq_cst) == 0);
  }
  CHECK(completed_clean);
}
