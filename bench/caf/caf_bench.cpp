// CAF 0.17 counterpart of the libactor benchmarks.
//
// Usage: caf_bench SCENARIO [key=value ...]
//
// Scenarios: mailbox, pingpong, spawn, idle. Every result is printed as one
// JSON object per line on stdout; diagnostics go to stderr.

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "common.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using bench::chunk_size;
using bench::clock_type;
using bench::cpu_seconds;
using bench::expected_sum;
using bench::now_ns;
using bench::param_list;
using bench::rss_bytes;

using start_atom = caf::atom_constant<caf::atom("start")>;
using continue_atom = caf::atom_constant<caf::atom("continue")>;

[[noreturn]] void fail(const std::string& msg) {
  bench::fail("caf_bench", msg);
}

void emit(const std::string& scenario, const param_list& params, double value,
          const std::string& unit) {
  bench::emit("caf", scenario, params, value, unit);
}

struct bench_config : caf::actor_system_config {
  explicit bench_config(size_t workers) { set("scheduler.max-threads", workers); }
};

// -- mailbox ------------------------------------------------------------------

struct mailbox_result {
  uint64_t count;
  uint64_t sum;
  int64_t end_ns;
};

class mailbox_receiver : public caf::event_based_actor {
 public:
  mailbox_receiver(caf::actor_config& cfg, uint64_t expected, std::promise<mailbox_result>* done)
      : caf::event_based_actor(cfg), expected_(expected), done_(done) {
    // nop
  }

  caf::behavior make_behavior() override {
    return {
        [this](int32_t x) {
          sum_ += static_cast<uint64_t>(x);
          if (++count_ == expected_) done_->set_value(mailbox_result{count_, sum_, now_ns()});
        },
    };
  }

 private:
  uint64_t expected_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  std::promise<mailbox_result>* done_;
};

class mailbox_sender : public caf::event_based_actor {
 public:
  mailbox_sender(caf::actor_config& cfg, caf::actor receiver, uint64_t total)
      : caf::event_based_actor(cfg), receiver_(std::move(receiver)), remaining_(total) {
    // nop
  }

  caf::behavior make_behavior() override {
    return {
        [this](start_atom) { send_chunk(); },
        [this](continue_atom) { send_chunk(); },
    };
  }

 private:
  void send_chunk() {
    auto n = std::min(chunk_size, remaining_);
    for (uint64_t i = 0; i < n; ++i) send(receiver_, static_cast<int32_t>(next_++ & 0xFF));
    remaining_ -= n;
    if (remaining_ > 0)
      send(this, continue_atom::value);
    else
      quit();
  }

  caf::actor receiver_;
  uint64_t remaining_;
  uint64_t next_ = 0;
};

// Sum of (i & 0xFF) for i in [0, n).

int run_mailbox(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto senders = a.get("senders", 1);
  auto messages = a.get("messages", 2000000);
  a.check_unused();
  if (senders == 0 || messages == 0) fail("mailbox: senders and messages must be > 0");
  bench_config cfg{workers};
  uint64_t want_sum = 0;
  mailbox_result res{};
  int64_t start_ns = 0;
  {
    caf::actor_system sys{cfg};
    std::promise<mailbox_result> done;
    auto fut = done.get_future();
    auto receiver = sys.spawn<mailbox_receiver>(messages, &done);
    std::vector<caf::actor> workers_vec;
    workers_vec.reserve(senders);
    for (uint64_t i = 0; i < senders; ++i) {
      auto share = messages / senders + (i < messages % senders ? 1 : 0);
      want_sum += expected_sum(share);
      workers_vec.push_back(sys.spawn<mailbox_sender>(receiver, share));
    }
    start_ns = now_ns();
    for (auto& s : workers_vec) caf::anon_send(s, start_atom::value);
    res = fut.get();
    caf::anon_send_exit(receiver, caf::exit_reason::user_shutdown);
  }
  if (res.count != messages || res.sum != want_sum) {
    std::cerr << "caf_bench: mailbox: counted " << res.count << " messages "
              << "(sum " << res.sum << "), expected " << messages << " (sum " << want_sum << ")"
              << std::endl;
    return 1;
  }
  double secs = static_cast<double>(res.end_ns - start_ns) / 1e9;
  emit("mailbox", {{"senders", senders}, {"messages", messages}},
       static_cast<double>(messages) / secs, "msg/s");
  return 0;
}

// -- pingpong -----------------------------------------------------------------

struct pingpong_result {
  uint64_t rounds;
  int64_t end_ns;
};

class pong_actor : public caf::event_based_actor {
 public:
  explicit pong_actor(caf::actor_config& cfg) : caf::event_based_actor(cfg) {
    // nop
  }

  caf::behavior make_behavior() override {
    return {
        [this](int32_t x) { send(caf::actor_cast<caf::actor>(current_sender()), x + 1); },
    };
  }
};

class ping_actor : public caf::event_based_actor {
 public:
  ping_actor(caf::actor_config& cfg, caf::actor pong, uint64_t rounds,
             std::promise<pingpong_result>* done)
      : caf::event_based_actor(cfg), pong_(std::move(pong)), rounds_(rounds), done_(done) {
    // nop
  }

  caf::behavior make_behavior() override {
    return {
        [this](start_atom) { send(pong_, int32_t{0}); },
        [this](int32_t x) {
          // The payload must come back incremented exactly once per round trip.
          if (static_cast<uint64_t>(x) != ((completed_ * 2 + 1) & 0x3FFFFFFF))
            fail("pingpong: unexpected payload");
          if (++completed_ == rounds_) {
            done_->set_value(pingpong_result{completed_, now_ns()});
            quit();
            return;
          }
          send(pong_, static_cast<int32_t>((x + 1) & 0x3FFFFFFF));
        },
    };
  }

 private:
  caf::actor pong_;
  uint64_t rounds_;
  uint64_t completed_ = 0;
  std::promise<pingpong_result>* done_;
};

int run_pingpong(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto rounds = a.get("rounds", 200000);
  a.check_unused();
  if (rounds == 0) fail("pingpong: rounds must be > 0");
  bench_config cfg{workers};
  pingpong_result res{};
  int64_t start_ns = 0;
  {
    caf::actor_system sys{cfg};
    std::promise<pingpong_result> done;
    auto fut = done.get_future();
    auto pong = sys.spawn<pong_actor>();
    auto ping = sys.spawn<ping_actor>(pong, rounds, &done);
    start_ns = now_ns();
    caf::anon_send(ping, start_atom::value);
    res = fut.get();
    caf::anon_send_exit(pong, caf::exit_reason::user_shutdown);
  }
  if (res.rounds != rounds) {
    std::cerr << "caf_bench: pingpong: completed " << res.rounds << " rounds, expected " << rounds
              << std::endl;
    return 1;
  }
  emit("pingpong", {{"rounds", rounds}},
       static_cast<double>(res.end_ns - start_ns) / static_cast<double>(rounds), "ns");
  return 0;
}

// -- spawn / idle -------------------------------------------------------------

// Number of idle actors whose behavior has been initialized. CAF runs the
// initialization of a spawned actor on a worker thread, so the spawn benchmark
// waits for this counter to reach the target before stopping the clock.
std::atomic<uint64_t> idle_initialized{0};

caf::behavior idle_actor(caf::event_based_actor*) {
  idle_initialized.fetch_add(1, std::memory_order_relaxed);
  return {
      [](int32_t) {
        // nop
      },
  };
}

int run_spawn(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto actors = a.get("actors", 1000000);
  a.check_unused();
  if (actors == 0) fail("spawn: actors must be > 0");
  bench_config cfg{workers};
  double secs = 0;
  int64_t rss_delta = 0;
  {
    caf::actor_system sys{cfg};
    std::vector<caf::actor> handles;
    handles.reserve(actors);
    auto rss_before = rss_bytes();
    auto t0 = clock_type::now();
    for (uint64_t i = 0; i < actors; ++i) handles.push_back(sys.spawn(idle_actor));
    while (idle_initialized.load(std::memory_order_relaxed) < actors) std::this_thread::yield();
    auto t1 = clock_type::now();
    auto rss_after = rss_bytes();
    secs = std::chrono::duration<double>(t1 - t0).count();
    rss_delta = rss_after - rss_before;
    if (handles.size() != actors) fail("spawn: handle count mismatch");
    for (auto& h : handles) caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    handles.clear();
    // ~actor_system waits for all actors to terminate.
  }
  param_list params{{"actors", actors}};
  emit("spawn", params, static_cast<double>(actors) / secs, "actors/s");
  emit("spawn", params, static_cast<double>(rss_delta) / static_cast<double>(actors),
       "bytes/actor");
  return 0;
}

int run_idle(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto actors = a.get("actors", 1000);
  auto seconds = a.get("seconds", 2);
  a.check_unused();
  if (seconds == 0) fail("idle: seconds must be > 0");
  bench_config cfg{workers};
  double cpu = 0;
  double wall = 0;
  {
    caf::actor_system sys{cfg};
    std::vector<caf::actor> handles;
    handles.reserve(actors);
    for (uint64_t i = 0; i < actors; ++i) handles.push_back(sys.spawn(idle_actor));
    while (idle_initialized.load(std::memory_order_relaxed) < actors) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto cpu0 = cpu_seconds();
    auto t0 = clock_type::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    auto cpu1 = cpu_seconds();
    auto t1 = clock_type::now();
    cpu = cpu1 - cpu0;
    wall = std::chrono::duration<double>(t1 - t0).count();
    for (auto& h : handles) caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    handles.clear();
  }
  if (wall + 0.05 < static_cast<double>(seconds)) fail("idle: measurement window ended early");
  emit("idle", {{"actors", actors}, {"seconds", seconds}},
       100.0 * cpu / static_cast<double>(seconds), "%core");
  return 0;
}

void usage() {
  bench::usage("caf_bench");
}

}  // namespace

// -- remote (io::middleman, BASP over TCP) -------------------------------------

using more_atom = caf::atom_constant<caf::atom("more")>;

struct remote_config : caf::actor_system_config {
  explicit remote_config(size_t workers) {
    set("scheduler.max-threads", workers);
    load<caf::io::middleman>();
  }
};

caf::behavior remote_sink(caf::event_based_actor* self, uint64_t expected) {
  auto count = std::make_shared<uint64_t>(0);
  return {[=](uint64_t x) {
    if (x != *count) fail("remote-throughput: out of order");
    ++*count;
    if (*count % bench::ack_every == 0 || *count == expected) {
      self->send(caf::actor_cast<caf::actor>(self->current_sender()), *count);
    }
  }};
}

class remote_source : public caf::event_based_actor {
 public:
  remote_source(caf::actor_config& cfg, caf::actor sink, uint64_t total,
                std::promise<int64_t>* done)
      : caf::event_based_actor(cfg), sink_(std::move(sink)), total_(total), done_(done) {}

  caf::behavior make_behavior() override {
    return {[this](start_atom) { pump(); }, [this](more_atom) { pump(); },
            [this](uint64_t acked) {
              acked_ = acked;
              if (acked_ == total_) {
                done_->set_value(now_ns());
              } else if (stalled_) {
                pump();
              }
            }};
  }

 private:
  void pump() {
    stalled_ = false;
    const uint64_t slice_end = std::min(total_, sent_ + 8192);
    while (sent_ < slice_end) {
      if (sent_ - acked_ >= bench::window) {
        stalled_ = true;
        return;
      }
      send(sink_, sent_);
      ++sent_;
    }
    if (sent_ < total_) send(this, more_atom::value);
  }

  caf::actor sink_;
  uint64_t total_;
  std::promise<int64_t>* done_;
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  bool stalled_ = false;
};

template <class Server>
uint16_t publish_or_fail(caf::actor_system& sys, const Server& who) {
  auto port = sys.middleman().publish(who, 0, "127.0.0.1");
  if (!port) fail("publish failed: " + sys.render(port.error()));
  return *port;
}

caf::actor remote_or_fail(caf::actor_system& sys, uint16_t port) {
  auto r = sys.middleman().remote_actor("127.0.0.1", port);
  if (!r) fail("remote_actor failed: " + sys.render(r.error()));
  return *r;
}

int run_remote_throughput(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto messages = a.get("messages", bench::remote_messages);
  a.check_unused();
  if (messages == 0) fail("remote-throughput: messages must be > 0");
  double rate = 0;
  bench::run_two_processes(
      "caf_bench",
      [&](const bench::server_ctl& ctl) {
        remote_config cfg{workers};
        caf::actor_system sys{cfg};
        auto sink = sys.spawn(remote_sink, messages);
        ctl.publish(publish_or_fail(sys, sink));
        ctl.wait_for_stop();
        caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
      },
      [&](uint16_t port) {
        remote_config cfg{workers};
        caf::actor_system sys{cfg};
        auto sink = remote_or_fail(sys, port);
        std::promise<int64_t> done;
        auto fut = done.get_future();
        auto src = sys.spawn<remote_source>(sink, messages, &done);
        const auto t0 = now_ns();
        caf::anon_send(src, start_atom::value);
        const auto t1 = fut.get();
        rate = static_cast<double>(messages) * 1e9 / static_cast<double>(t1 - t0);
        caf::anon_send_exit(src, caf::exit_reason::user_shutdown);
      });
  emit("remote-throughput", {{"messages", messages}}, rate, "msg/s");
  return 0;
}

int run_remote_pingpong(bench::args& a) {
  auto workers = a.get("workers", std::thread::hardware_concurrency());
  auto rounds = a.get("rounds", bench::remote_rounds);
  a.check_unused();
  if (rounds == 0) fail("remote-pingpong: rounds must be > 0");
  const uint64_t warmup = std::min<uint64_t>(1000, rounds);
  double ns = 0;
  bench::run_two_processes(
      "caf_bench",
      [&](const bench::server_ctl& ctl) {
        remote_config cfg{workers};
        caf::actor_system sys{cfg};
        auto pong = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
          return {[self](uint64_t x) {
            self->send(caf::actor_cast<caf::actor>(self->current_sender()), x + 1);
          }};
        });
        ctl.publish(publish_or_fail(sys, pong));
        ctl.wait_for_stop();
        caf::anon_send_exit(pong, caf::exit_reason::user_shutdown);
      },
      [&](uint16_t port) {
        remote_config cfg{workers};
        caf::actor_system sys{cfg};
        auto pong = remote_or_fail(sys, port);
        std::promise<int64_t> warm;
        std::promise<int64_t> done;
        auto warm_fut = warm.get_future();
        auto fut = done.get_future();
        auto ping = sys.spawn([&, pong](caf::event_based_actor* self) -> caf::behavior {
          return {[&, self, pong](uint64_t x) {
            if (x == warmup) warm.set_value(now_ns());
            if (x == warmup + rounds) {
              done.set_value(now_ns());
              return;
            }
            self->send(pong, x);
          }};
        });
        caf::anon_send(ping, uint64_t{0});
        const auto w = warm_fut.get();
        const auto t1 = fut.get();
        ns = static_cast<double>(t1 - w) / static_cast<double>(rounds);
        caf::anon_send_exit(ping, caf::exit_reason::user_shutdown);
      });
  emit("remote-pingpong", {{"rounds", rounds}}, ns, "ns");
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  std::string scenario = argv[1];
  if (scenario == "-h" || scenario == "--help") {
    usage();
    return 0;
  }
  bench::args a{"caf_bench", argc, argv};
  if (scenario == "mailbox") return run_mailbox(a);
  if (scenario == "pingpong") return run_pingpong(a);
  if (scenario == "spawn") return run_spawn(a);
  if (scenario == "idle") return run_idle(a);
  if (scenario == "remote-throughput") return run_remote_throughput(a);
  if (scenario == "remote-pingpong") return run_remote_pingpong(a);
  std::cerr << "caf_bench: unknown scenario '" << scenario << "'\n";
  usage();
  return 2;
}
