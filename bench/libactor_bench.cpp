// libactor side of the benchmarks. Same scenarios, parameters and output as
// caf/caf_bench.cpp, so bench/run can put the two side by side.
//
//   libactor_bench SCENARIO [key=value ...]

#include <libactor/libactor.hpp>
#include <libactor/net/node.hpp>

#include <atomic>
#include <cstdlib>
#include <future>
#include <thread>

#include "common.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;

namespace {

[[noreturn]] void fail(const std::string& msg) {
  bench::fail("libactor_bench", msg);
}

void emit(const std::string& scenario, const bench::param_list& params, double value,
          const std::string& unit) {
  bench::emit("libactor", scenario, params, value, unit);
}

libactor::system_config config(std::uint64_t workers) {
  libactor::system_config cfg;
  cfg.workers = static_cast<unsigned>(workers);
  return cfg;
}

// --- mailbox ---------------------------------------------------------------

struct start {};
struct more {};

struct mailbox_result {
  std::uint64_t count;
  std::uint64_t sum;
  std::int64_t end_ns;
};

class mailbox_receiver : public actor {
 public:
  mailbox_receiver(std::uint64_t expected, std::promise<mailbox_result>* done)
      : expected_(expected), done_(done) {}

 protected:
  behavior make_behavior() override {
    return {[this](std::int32_t x) {
      sum_ += static_cast<std::uint64_t>(x);
      if (++count_ == expected_) done_->set_value(mailbox_result{count_, sum_, bench::now_ns()});
    }};
  }

 private:
  std::uint64_t expected_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::promise<mailbox_result>* done_;
};

class mailbox_sender : public actor {
 public:
  mailbox_sender(actor_ref receiver, std::uint64_t total)
      : receiver_(std::move(receiver)), remaining_(total) {}

 protected:
  behavior make_behavior() override {
    return {[this](start) { send_chunk(); }, [this](more) { send_chunk(); }};
  }

 private:
  void send_chunk() {
    const auto n = std::min(bench::chunk_size, remaining_);
    for (std::uint64_t i = 0; i < n; ++i) receiver_.send(static_cast<std::int32_t>(next_++ & 0xFF));
    remaining_ -= n;
    if (remaining_ > 0) {
      self().send(more{});
    } else {
      quit();
    }
  }

  actor_ref receiver_;
  std::uint64_t remaining_;
  std::uint64_t next_ = 0;
};

int run_mailbox(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto senders = a.get("senders", 1);
  const auto messages = a.get("messages", 2000000);
  a.check_unused();
  if (senders == 0 || messages == 0) fail("mailbox: senders and messages must be > 0");
  std::uint64_t want_sum = 0;
  mailbox_result res{};
  std::int64_t start_ns = 0;
  {
    libactor::actor_system sys{config(workers)};
    std::promise<mailbox_result> done;
    auto fut = done.get_future();
    auto receiver = sys.spawn<mailbox_receiver>(messages, &done);
    std::vector<actor_ref> all;
    for (std::uint64_t i = 0; i < senders; ++i) {
      const auto share = messages / senders + (i < messages % senders ? 1 : 0);
      want_sum += bench::expected_sum(share);
      all.push_back(sys.spawn<mailbox_sender>(receiver, share));
    }
    start_ns = bench::now_ns();
    for (auto& s : all) s.send(start{});
    res = fut.get();
  }
  if (res.count != messages || res.sum != want_sum) {
    fail("mailbox: counted " + std::to_string(res.count) + " (sum " + std::to_string(res.sum) +
         "), expected " + std::to_string(messages) + " (sum " + std::to_string(want_sum) + ")");
  }
  const double secs = static_cast<double>(res.end_ns - start_ns) / 1e9;
  emit("mailbox", {{"senders", senders}, {"messages", messages}},
       static_cast<double>(messages) / secs, "msg/s");
  return 0;
}

// --- pingpong ----------------------------------------------------------------

struct pingpong_result {
  std::uint64_t rounds;
  std::int64_t end_ns;
};

class ping_actor : public actor {
 public:
  ping_actor(actor_ref pong, std::uint64_t rounds, std::promise<pingpong_result>* done)
      : pong_(std::move(pong)), rounds_(rounds), done_(done) {}

 protected:
  behavior make_behavior() override {
    return {
        [this](start) { pong_.send(std::int32_t{0}); },
        [this](std::int32_t x) {
          if (static_cast<std::uint64_t>(x) != ((completed_ * 2 + 1) & 0x3FFFFFFF)) {
            fail("pingpong: unexpected payload");
          }
          if (++completed_ == rounds_) {
            done_->set_value(pingpong_result{completed_, bench::now_ns()});
            quit();
            return;
          }
          pong_.send(static_cast<std::int32_t>((x + 1) & 0x3FFFFFFF));
        },
    };
  }

 private:
  actor_ref pong_;
  std::uint64_t rounds_;
  std::uint64_t completed_ = 0;
  std::promise<pingpong_result>* done_;
};

int run_pingpong(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto rounds = a.get("rounds", 200000);
  a.check_unused();
  if (rounds == 0) fail("pingpong: rounds must be > 0");
  pingpong_result res{};
  std::int64_t start_ns = 0;
  {
    libactor::actor_system sys{config(workers)};
    std::promise<pingpong_result> done;
    auto fut = done.get_future();
    auto pong = sys.spawn([](actor& self) -> behavior {
      return {[&self](std::int32_t x) { self.current_sender().send(x + 1); }};
    });
    auto ping = sys.spawn<ping_actor>(pong, rounds, &done);
    start_ns = bench::now_ns();
    ping.send(start{});
    res = fut.get();
  }
  if (res.rounds != rounds) fail("pingpong: completed " + std::to_string(res.rounds) + " rounds");
  emit("pingpong", {{"rounds", rounds}},
       static_cast<double>(res.end_ns - start_ns) / static_cast<double>(rounds), "ns");
  return 0;
}

// --- spawn and idle ------------------------------------------------------------

std::atomic<std::uint64_t> idle_initialized{0};

behavior idle_actor(actor&) {
  // relaxed: a progress count read by the same measuring thread.
  idle_initialized.fetch_add(1, std::memory_order_relaxed);
  return {[](std::int32_t) {}};
}

int run_spawn(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto actors = a.get("actors", 1000000);
  a.check_unused();
  if (actors == 0) fail("spawn: actors must be > 0");
  double secs = 0;
  std::int64_t rss_delta = 0;
  {
    libactor::actor_system sys{config(workers)};
    std::vector<actor_ref> handles;
    handles.reserve(actors);
    const auto rss_before = bench::rss_bytes();
    const auto t0 = bench::clock_type::now();
    for (std::uint64_t i = 0; i < actors; ++i) handles.push_back(sys.spawn(idle_actor));
    // libactor builds behaviors inside spawn(); the wait mirrors the CAF side.
    while (idle_initialized.load(std::memory_order_relaxed) < actors) std::this_thread::yield();
    const auto t1 = bench::clock_type::now();
    rss_delta = bench::rss_bytes() - rss_before;
    secs = std::chrono::duration<double>(t1 - t0).count();
    if (sys.stats().live_actors != actors) fail("spawn: live actor count mismatch");
  }
  const bench::param_list params{{"actors", actors}};
  emit("spawn", params, static_cast<double>(actors) / secs, "actors/s");
  emit("spawn", params, static_cast<double>(rss_delta) / static_cast<double>(actors),
       "bytes/actor");
  return 0;
}

int run_idle(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto actors = a.get("actors", 1000);
  const auto seconds = a.get("seconds", 2);
  a.check_unused();
  if (seconds == 0) fail("idle: seconds must be > 0");
  double cpu = 0;
  {
    libactor::actor_system sys{config(workers)};
    std::vector<actor_ref> handles;
    for (std::uint64_t i = 0; i < actors; ++i) handles.push_back(sys.spawn(idle_actor));
    std::this_thread::sleep_for(200ms);  // measurement window, not synchronization
    const auto cpu0 = bench::cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    cpu = bench::cpu_seconds() - cpu0;
  }
  emit("idle", {{"actors", actors}, {"seconds", seconds}},
       100.0 * cpu / static_cast<double>(seconds), "%core");
  return 0;
}

// --- remote ---------------------------------------------------------------------
//
// Two processes on loopback, each an actor system with a node. Messages are
// std::uint64_t (a built-in wire type): a 32-byte frame each.

/// How the remote scenarios protect frames: sealed records under the
/// secret (the default), nothing, or TLS 1.3 with certificates.
enum class protection { sealed, clear, tls };

/// `sealed=0|1` (default 1) and `tls=0|1` (default 0; TLS wins).
protection protection_of(bench::args& a) {
  const bool sealed = a.get("sealed", 1) != 0;
  const bool tls = a.get("tls", 0) != 0;
  return tls ? protection::tls : sealed ? protection::sealed : protection::clear;
}

/// The result's parameters: what was asked for, and the protection.
bench::param_list remote_params(const char* what, std::uint64_t n, protection p) {
  return {{what, n},
          {"sealed", p == protection::sealed ? 1 : 0},
          {"tls", p == protection::tls ? 1 : 0}};
}

/// With TLS, the files come from the directory in LIBACTOR_BENCH_TLS_DIR
/// (bench/run makes a CA there): ca.pem, node.crt and node.key, a
/// certificate naming every node of the scenarios.
libactor::net::node_config node_cfg(const char* name, protection p) {
  libactor::net::node_config c;
  c.name = name;
  c.protect_frames = p == protection::sealed;
  if (p == protection::tls) {
    const char* dir = std::getenv("LIBACTOR_BENCH_TLS_DIR");
    if (dir == nullptr || *dir == '\0')
      fail("tls=1 needs LIBACTOR_BENCH_TLS_DIR (bench/run sets it)");
    const std::string d = dir;
    c.tls = {.ca_file = d + "/ca.pem",
             .certificate_file = d + "/node.crt",
             .private_key_file = d + "/node.key"};
  } else {
    c.secret = "bench-secret-0123456789abcdef-5f1d2a7e9b3c4d60a1b2";
  }
  c.log = [](std::string_view) {};  // the end of a run closes connections: not news
  return c;
}

/// Receives `expected` numbers in order; acknowledges every ack_every and
/// the last one to the sender.
behavior remote_sink(actor& self, std::uint64_t expected) {
  auto count = std::make_shared<std::uint64_t>(0);
  return {[&self, count, expected](std::uint64_t x) {
    if (x != *count) fail("remote-throughput: out of order");
    ++*count;
    if (*count % bench::ack_every == 0 || *count == expected) self.current_sender().send(*count);
  }};
}

struct sent_more {};

/// Sends `total` numbers to `sink`, at most bench::window unacknowledged,
/// in slices so acknowledgements get their turn.
class remote_source : public actor {
 public:
  remote_source(actor_ref sink, std::uint64_t total, std::promise<std::int64_t>* done)
      : sink_(std::move(sink)), total_(total), done_(done) {}

 protected:
  behavior make_behavior() override {
    return {[this](start) { pump(); }, [this](sent_more) { pump(); },
            [this](std::uint64_t acked) {
              acked_ = acked;
              if (acked_ == total_) {
                done_->set_value(bench::now_ns());
              } else if (stalled_) {
                pump();
              }
            }};
  }

 private:
  void pump() {
    stalled_ = false;
    const std::uint64_t slice_end = std::min(total_, sent_ + 8192);
    while (sent_ < slice_end) {
      if (sent_ - acked_ >= bench::window) {
        stalled_ = true;  // the next acknowledgement resumes
        return;
      }
      if (sink_.send(sent_) != libactor::send_status::ok) fail("remote-throughput: send refused");
      ++sent_;
    }
    if (sent_ < total_) self().send(sent_more{});
  }

  actor_ref sink_;
  std::uint64_t total_;
  std::promise<std::int64_t>* done_;
  std::uint64_t sent_ = 0;
  std::uint64_t acked_ = 0;
  bool stalled_ = false;
};

int run_remote_throughput(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto messages = a.get("messages", bench::remote_messages);
  const auto prot = protection_of(a);
  a.check_unused();
  if (messages == 0) fail("remote-throughput: messages must be > 0");
  double rate = 0;
  bench::run_two_processes(
      "libactor_bench",
      [&](const bench::server_ctl& ctl) {
        libactor::actor_system sys{config(workers)};
        libactor::net::node node(sys, node_cfg("sink", prot));
        sys.register_name(
            "sink", sys.spawn([messages](actor& self) { return remote_sink(self, messages); }));
        ctl.publish(node.port());
        ctl.wait_for_stop();
      },
      [&](std::uint16_t port) {
        libactor::actor_system sys{config(workers)};
        libactor::net::node node(sys, node_cfg("source", prot));
        if (!node.connect("127.0.0.1", port, 30s)) fail("remote-throughput: cannot connect");
        auto sink = node.lookup("sink", "sink", 30s);
        if (!sink) fail("remote-throughput: lookup failed: " + sink.err().to_string());
        std::promise<std::int64_t> done;
        auto fut = done.get_future();
        auto src = sys.spawn<remote_source>(*sink, messages, &done);
        const auto t0 = bench::now_ns();
        src.send(start{});
        const auto t1 = fut.get();
        rate = static_cast<double>(messages) * 1e9 / static_cast<double>(t1 - t0);
      });
  emit("remote-throughput", remote_params("messages", messages, prot), rate, "msg/s");
  return 0;
}

int run_remote_pingpong(bench::args& a) {
  const auto workers = a.get("workers", std::thread::hardware_concurrency());
  const auto rounds = a.get("rounds", bench::remote_rounds);
  const auto prot = protection_of(a);
  a.check_unused();
  if (rounds == 0) fail("remote-pingpong: rounds must be > 0");
  double ns = 0;
  bench::run_two_processes(
      "libactor_bench",
      [&](const bench::server_ctl& ctl) {
        libactor::actor_system sys{config(workers)};
        libactor::net::node node(sys, node_cfg("pong", prot));
        sys.register_name("pong", sys.spawn([](actor& self) -> behavior {
          return {[&self](std::uint64_t x) { self.current_sender().send(x + 1); }};
        }));
        ctl.publish(node.port());
        ctl.wait_for_stop();
      },
      [&](std::uint16_t port) {
        libactor::actor_system sys{config(workers)};
        libactor::net::node node(sys, node_cfg("ping", prot));
        if (!node.connect("127.0.0.1", port, 30s)) fail("remote-pingpong: cannot connect");
        auto pong = node.lookup("pong", "pong", 30s);
        if (!pong) fail("remote-pingpong: lookup failed: " + pong.err().to_string());
        const std::uint64_t warmup = std::min<std::uint64_t>(1000, rounds);
        std::promise<std::int64_t> warm;
        std::promise<std::int64_t> done;
        auto warm_fut = warm.get_future();
        auto fut = done.get_future();
        auto ping = sys.spawn([&, p = *pong](actor&) -> behavior {
          return {[&, p](std::uint64_t x) {
            if (x == warmup) warm.set_value(bench::now_ns());
            if (x == warmup + rounds) {
              done.set_value(bench::now_ns());
              return;
            }
            p.send(x);
          }};
        });
        ping.send(std::uint64_t{0});
        const auto w = warm_fut.get();
        const auto t1 = fut.get();
        ns = static_cast<double>(t1 - w) / static_cast<double>(rounds);
      });
  emit("remote-pingpong", remote_params("rounds", rounds, prot), ns, "ns");
  return 0;
}

void usage() {
  bench::usage("libactor_bench");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string scenario = argv[1];
  if (scenario == "-h" || scenario == "--help") {
    usage();
    return 0;
  }
  bench::args a{"libactor_bench", argc, argv};
  if (scenario == "mailbox") return run_mailbox(a);
  if (scenario == "pingpong") return run_pingpong(a);
  if (scenario == "spawn") return run_spawn(a);
  if (scenario == "idle") return run_idle(a);
  if (scenario == "remote-throughput") return run_remote_throughput(a);
  if (scenario == "remote-pingpong") return run_remote_pingpong(a);
  std::cerr << "libactor_bench: unknown scenario '" << scenario << "'\n";
  usage();
  return 2;
}
