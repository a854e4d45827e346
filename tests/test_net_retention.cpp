// What the network layer keeps, and for how long: stopped actors must not
// be kept by a connection's caches, a peer's request table or node
// monitors, nor by a proxy's monitor list; a read buffer holds a large frame
// only while it is received; and where a node given to node::connect is
// redialled does not move, whichever dial wins the race to promotion.

#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"
#include "tls_support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace retention_app {
struct handle_box {
  actor_ref ref;
};
LIBACTOR_WIRE_TYPE(handle_box, "test.retention.handle_box", ref)

struct two_handles {
  actor_ref watched;
  actor_ref other;
};
LIBACTOR_WIRE_TYPE(two_handles, "test.retention.two_handles", watched, other)

struct ping {
  std::int64_t v = 0;
};
LIBACTOR_WIRE_TYPE(ping, "test.retention.ping", v)
}  // namespace retention_app

namespace {

const std::string secret = "retention-test-secret-0123456789-8c2e4f6a1b3d5e7f90";
constexpr std::uint64_t wire_bit = std::uint64_t{1} << 63;

/// Local only: makes an actor send `text` to `target` from its handler (so
/// the message's sender is that actor).
struct send_to {
  actor_ref target;
  std::string text;
};
/// Local only: makes an actor ask `target` from a task.
struct ask_to {
  actor_ref target;
};

behavior sender_behavior(actor& self) {
  return {[&self](const send_to& s) { (void)s.target.send(s.text); }};
}

/// A raw listener answering as node `name`. Its first connection completes
/// the handshake; then, with `hold_info`, it reads the dialler's node_info
/// and answers with its own only once allow(1) was called, keeping the
/// connection until allow(2); without, it waits for the dialler to close it.
/// Every later connection is counted and closed at once.
struct fake_node {
  int fd = -1;
  std::uint16_t port = 0;
  // The atomics use the default (sequentially consistent) order on purpose:
  // a test helper off any hot path, where the simplest correct order beats
  // an argument for a weaker one.
  std::atomic<bool> stop{false};
  std::atomic<int> accepts{0};
  std::atomic<bool> first_ready{false};   // hold_info: the dialler's node_info came
  std::atomic<bool> first_closed{false};  // !hold_info: the dialler closed it after the handshake
  // How far the test lets the first connection go (allow()): 1 answer the
  // node_info, 2 close. The destructor lets it go all the way.
  std::mutex mu;
  std::condition_variable cv;
  int allowed = 0;
  std::thread th;
  void allow(int step) {
    {
      std::lock_guard lock(mu);
      allowed = step;
    }
    cv.notify_all();
  }
  void wait_for(int step) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return allowed >= step; });
  }
  fake_node(std::string name, bool hold_info) {
    fd = test::listen_on("127.0.0.1", 64, port);
    th = std::thread([this, name, hold_info] {
      bool first = true;
      while (!stop.load()) {  // seq_cst: as declared above
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) != 1) continue;
        const int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        accepts.fetch_add(1);
        if (!std::exchange(first, false)) {
          ::close(c);
          continue;
        }
        if (!test::accept_handshake(c, name, secret)) {
          ::close(c);
          continue;
        }
        if (!hold_info) {
          if (test::closed_by_peer(c, 5000ms)) first_closed = true;
          ::close(c);
          continue;
        }
        if (test::next_frame(
                c, [](const net::frame& f) { return f.kind == net::frame_kind::node_info; })) {
          first_ready = true;
        }
        wait_for(1);
        test::write_all(c, test::node_info_frame(4242));
        wait_for(2);
        ::close(c);
      }
    });
  }
  ~fake_node() {
    stop = true;
    allow(2);
    th.join();
    ::close(fd);
  }
};

/// A node under test ("b") with a raw peer "mallory" connected to it, and
/// an actor there that keeps the handles mallory sends.
struct raw_target {
  test::recorder<actor_ref> got;
  actor_system sys{system_config{.workers = 2}};
  std::optional<net::node> node;
  std::uint64_t holder = 0;
  int fd = -1;
  explicit raw_target(net::node_config c) {
    c.protect_frames = false;   // the raw peer writes in the clear
    c.heartbeat_timeout = 60s;  // ... and sends no heartbeats
    node.emplace(sys, c);
    auto h = sys.spawn([this](actor&) -> behavior {
      return {[this](const retention_app::handle_box& b) { got.push(b.ref); }};
    });
    holder = test::wire_id(*node, h);
    fd = test::raw_peer(node->port(), "mallory", 4242, secret);
  }
  ~raw_target() {
    if (fd >= 0) ::close(fd);
    node.reset();
  }
  actor_ref send_handle(const std::string& name, std::uint16_t port, std::uint64_t id,
                        std::uint64_t incarnation) {
    const std::size_t before = got.items().size();
    test::write_all(
        fd, test::message_frame(0, holder, 0, 0, net::wire_id_v<retention_app::handle_box>,
                                test::handle_bytes(name, incarnation, "127.0.0.1", port, id)));
    REQUIRE(got.wait_for_size(before + 1));
    return got.items()[before];
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// Pinned peers (item 3)

TEST_CASE(
    "a dial a handle started that wins the race with node::connect does not move where the pinned "
    "peer is redialled",
    "[net][retention]") {
  auto c = test::node_config("b", secret);
  raw_target t(c);
  fake_node impostor("x", true);  // listens where a handle (from mallory) says x is
  fake_node real("x", false);     // where the operator says x is
  // A peer holding the secret names "x" at the impostor's address: b dials
  // it (not pinned yet: that address is where b looks for x for now).
  const auto up_before = t.node->stats().peers_up;  // mallory
  (void)t.send_handle("x", impostor.port, wire_bit | 5, 4242);
  REQUIRE(test::eventually([&] { return impostor.first_ready.load(); }, 10s));
  // The operator connects to x where x really is. The connection
  // authenticates (on_authenticated: dial_ = that address, pinned), but the
  // impostor's attempt already sent node_info, so b closes the operator's
  // and waits for the impostor's answer.
  auto fut =
      std::async(std::launch::async, [&] { return t.node->connect("127.0.0.1", real.port, 10s); });
  REQUIRE(test::eventually([&] { return real.first_closed.load(); }, 10s));
  impostor.allow(1);
  auto r = fut.get();
  REQUIRE(r);
  CHECK(*r == "x");  // node::connect reports x connected: it is the impostor
  REQUIRE(test::eventually([&] { return t.node->stats().peers_up == up_before + 1; }, 10s));
  const int real_before = real.accepts.load();
  const int impostor_before = impostor.accepts.load();
  impostor.allow(2);
  REQUIRE(test::eventually([&] { return t.node->stats().peers_up == up_before; }, 10s));
  // x was given to node::connect: it is redialled where the operator said.
  CHECK(test::eventually([&] { return real.accepts.load() > real_before; }, 5s));
  // Not at the impostor's address (pinned: that would be for ever).
  const int impostor_redials = impostor.accepts.load() - impostor_before;
  INFO("redials to the impostor's address: " << impostor_redials);
  CHECK(impostor_redials == 0);
}

// ---------------------------------------------------------------------------
// What the network layer keeps of stopped actors (item 2)

TEST_CASE(
    "a stopped actor that monitored a peer's actor is not kept by the connection's cached sender",
    "[net][retention]") {
  std::atomic<int> destroyed{0};
  std::atomic<int> other_got{0};
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_b, 3);
  std::optional<net::node> a(std::in_place, sys_a, test::node_config("a", secret));
  std::optional<net::node> b(std::in_place, sys_b, test::node_config("b", secret));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  // On b: an actor that watches whoever messages it, then stops (a session
  // that monitors its client, ends, and forgets to demonitor).
  struct watcher : actor {
    explicit watcher(std::atomic<int>* d) : t{d}, state(1 << 20) {}
    behavior make_behavior() override {
      return {[this](const std::string&) {
        monitor(current_sender());
        quit(exit_reason::error("session over"));
      }};
    }
    test::destruction_counter t;
    std::vector<char> state;  // what it holds while kept
  };
  auto w = sys_b.spawn<watcher>(&destroyed);
  REQUIRE(sys_b.register_name("w", w));
  auto other = sys_b.spawn([&other_got](actor&) -> behavior {
    return {[&other_got](const std::string&) { other_got.fetch_add(1); }};
  });
  REQUIRE(sys_b.register_name("other", other));
  auto remote_w = *a->lookup("b", "w", 10s);
  auto remote_other = *a->lookup("b", "other", 10s);
  // A long-lived actor on a messages it: b's connection caches the proxy
  // that stands for it (last_sender_), and the watcher is in that proxy's
  // monitor list.
  auto client = sys_a.spawn(sender_behavior);
  client.send(send_to{remote_w, "hello"});
  w = actor_ref{};
  remote_w = actor_ref{};
  // Nothing of the application holds the watcher or the client's proxy on
  // b now: only the connection's cache holds the proxy (a monitor on it
  // keeps it too, until the watcher has stopped).
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  // The proxy went with it, and a new one works as well.
  client.send(send_to{remote_other, "again"});
  CHECK(test::eventually([&] { return other_got.load() == 1; }, 10s));
  a.reset();
  b.reset();
}

TEST_CASE("a stopped actor whose ask a peer never answers is not kept until the ask's timeout",
          "[net][retention]") {
  std::atomic<int> destroyed{0};
  auto c = test::node_config("b", secret);
  raw_target t(c);
  // A handle to an actor of mallory's (the raw peer never answers).
  auto silent = t.send_handle("mallory", 0, wire_bit | 21, 4242);
  struct asker : actor {
    explicit asker(std::atomic<int>* d) : t{d}, state(1 << 20) {}
    behavior make_behavior() override {
      return {[this](ask_to a) -> task<int> {
        auto r = co_await ask<std::int64_t>(a.target, std::int64_t{1}, std::chrono::hours(1));
        co_return r ? 1 : 0;
      }};
    }
    test::destruction_counter t;
    std::vector<char> state;
  };
  std::optional<actor_ref> v{t.sys.spawn<asker>(&destroyed)};
  v->send(ask_to{silent});
  REQUIRE(test::eventually([&] { return t.node->stats().pending_requests == 1; }, 10s));
  t.sys.stop(*v, exit_reason::error("done"));
  v.reset();
  // The actor stopped: its task (and the ask's timer) are gone, nothing
  // waits for the answer; the peer's request table lets it go at its next
  // sweep, an hour before the ask's timeout.
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  CHECK(test::eventually([&] { return t.node->stats().pending_requests == 0; }, 10s));
}

TEST_CASE("a stopped node monitor is not kept while the peer stays up", "[net][retention]") {
  std::atomic<int> destroyed{0};
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 2}};
  std::optional<net::node> a(std::in_place, sys_a, test::node_config("a", secret));
  std::optional<net::node> b(std::in_place, sys_b, test::node_config("b", secret));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  struct node_watcher : actor {
    explicit node_watcher(std::atomic<int>* d) : t{d}, state(1 << 20) {}
    behavior make_behavior() override {
      return {[](const net::node_down_msg&) {}, [](const net::node_up_msg&) {}};
    }
    test::destruction_counter t;
    std::vector<char> state;
  };
  std::optional<actor_ref> w{sys_b.spawn<node_watcher>(&destroyed)};
  b->monitor_node("a", *w);
  sys_b.stop(*w, exit_reason::error("done"));
  w.reset();
  // a stays up and no one else calls monitor_node: the node's sweep (every
  // heartbeat interval) drops it.
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  CHECK(test::eventually([&] { return b->stats().node_monitors == 0; }, 10s));
  a.reset();
  b.reset();
}

// ---------------------------------------------------------------------------
// Read buffers (item 1)

namespace {
enum class transport { clear, sealed, tls };

const char* name_of(transport m) {
  switch (m) {
    case transport::clear:
      return "clear";
    case transport::sealed:
      return "sealed";
    case transport::tls:
      return "tls";
  }
  return "?";
}

/// Two nodes, a dialling b, with `m` on their connection.
struct pair_of_nodes {
  test::test_ca pki;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  std::optional<net::node> a;
  std::optional<net::node> b;
  pair_of_nodes(transport m, std::size_t max_inbound) {
    auto ca = test::node_config("a", secret);
    auto cb = test::node_config("b", secret);
    ca.protect_frames = cb.protect_frames = m == transport::sealed;
    if (m == transport::tls) {
      ca.tls = pki.issue("a");
      cb.tls = pki.issue("b");
    }
    cb.max_inbound_bytes = max_inbound;
    b.emplace(sys_b, cb);
    a.emplace(sys_a, ca);
    REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  }
  ~pair_of_nodes() {
    a.reset();
    b.reset();
  }
};
}  // namespace

TEST_CASE(
    "read buffers hold at most 128 KiB each after frames of 64 to 128 KiB, 64 KiB after larger "
    "ones",
    "[net][retention]") {
  const auto m = GENERATE(transport::clear, transport::sealed, transport::tls);
  INFO(name_of(m));
  pair_of_nodes p(m, std::size_t{64} << 20);
  auto sink = p.sys_b.spawn([](actor&) -> behavior {
    return {[](const std::string& s) { return static_cast<std::int64_t>(s.size()); }};
  });
  REQUIRE(p.sys_b.register_name("sink", sink));
  auto remote = *p.a->lookup("b", "sink", 10s);
  const auto check_after = [&](std::size_t size, std::uint64_t most) {
    for (int i = 0; i < 3; ++i) {
      auto r = net::ask<std::int64_t>(remote, std::string(size + i, 'x'), 10s).get();
      REQUIRE(r);
      CHECK(*r == static_cast<std::int64_t>(size + i));
    }
    for (int i = 0; i < 5; ++i) {
      REQUIRE(net::ask<std::int64_t>(remote, std::string(100, 'y'), 10s).get());
    }
    // One connection is read here: docs/protocol.md ("Limits").
    const auto held = p.b->stats().read_buffer_bytes;
    INFO("after frames of " << size << " bytes, b's one connection holds " << held);
    CHECK(held <= most);
  };
  // Under the trimming threshold: kept, within 128 KiB a buffer.
  const std::uint64_t buffers = m == transport::clear ? 1 : 2;
  check_after(100 * 1024, buffers * 128 * 1024);
  // Over it: back to 64 KiB a buffer (a sealed record of 64 KiB needs its
  // header and tag besides).
  check_after(300 * 1024, buffers * (64 * 1024 + 64));
}

TEST_CASE("a monitor on a peer's actor fires after the watcher let go of every handle to it",
          "[net][retention]") {
  test::recorder<std::string> downs;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_a, 8);
  std::optional<net::node> a(std::in_place, sys_a, test::node_config("a", secret));
  std::optional<net::node> b(std::in_place, sys_b, test::node_config("b", secret));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto target = sys_b.spawn([](actor&) -> behavior { return {[](std::int64_t x) { return x; }}; });
  auto other = sys_b.spawn([](actor&) -> behavior { return {[](std::int64_t x) { return x; }}; });
  REQUIRE(sys_b.register_name("target", target));
  REQUIRE(sys_b.register_name("other", other));
  struct watch_it {
    actor_ref h;
  };
  auto w = sys_a.spawn([&downs](actor& self) -> behavior {
    return {[&self](const watch_it& m) { self.monitor(m.h); },
            [&downs](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  {
    auto remote = *a->lookup("b", "target", 10s);
    REQUIRE(w.ask<void>(watch_it{remote}, 10s).get());
    REQUIRE(net::ask<std::int64_t>(remote, std::int64_t{1}, 10s).get());
  }
  // No handle to the target is left on a; the connection's cache of the
  // last sender moves on to another actor of b's.
  auto remote_other = *a->lookup("b", "other", 10s);
  REQUIRE(net::ask<std::int64_t>(remote_other, std::int64_t{2}, 10s).get());
  sys_b.stop(target, exit_reason::error("gone"));
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0] == "error: gone");
  a.reset();
  b.reset();
}

namespace {
/// The incarnation and wire id under which `n` exports `h`.
std::pair<std::uint64_t, std::uint64_t> inc_and_id(net::node& n, const actor_ref& h) {
  std::vector<std::byte> bytes;
  net::writer w{bytes, n.context()};
  net::wire_encode(w, h);
  net::reader r{bytes, net::decode_limits{}};
  std::uint8_t tag = 0;
  std::string node, host;
  std::uint64_t incarnation = 0, id = 0;
  std::uint16_t port = 0;
  REQUIRE(r.fixed(tag));
  REQUIRE(net::wire_decode(r, node));
  REQUIRE(r.fixed(incarnation));
  REQUIRE(net::wire_decode(r, host));
  REQUIRE(r.fixed(port));
  REQUIRE(r.varint(id));
  return {incarnation, id};
}

}  // namespace

TEST_CASE("a monitor made while the peer is connected to survives a message to another incarnation",
          "[net][retention]") {
  // Both with and without the message that queues for another incarnation.
  const bool send_other = GENERATE(false, true);
  INFO("message to the other incarnation: " << send_other);
  test::recorder<std::string> downs;
  test::recorder<int> done;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  auto ca = test::node_config("a", secret);
  auto cb = test::node_config("b", secret);
  ca.protect_frames = cb.protect_frames = false;  // mallory writes in the clear
  ca.heartbeat_timeout = 60s;                     // ... and sends no heartbeats
  std::optional<net::node> a(std::in_place, sys_a, ca);
  std::optional<net::node> b(std::in_place, sys_b, cb);
  auto target = sys_b.spawn([](actor&) -> behavior { return {[](std::int64_t x) { return x; }}; });
  auto other = sys_b.spawn([](actor&) -> behavior { return {[](std::int64_t x) { return x; }}; });
  const auto [inc_b, target_id] = inc_and_id(*b, target);
  const auto other_id = inc_and_id(*b, other).second;
  // a reaches "b" through a relay that connects only when told.
  std::uint16_t relay_port = 0;
  const int lfd = test::listen_on("127.0.0.1", 4, relay_port);
  auto w = sys_a.spawn([&](actor& self) -> behavior {
    return {[&self, &done, send_other](const retention_app::two_handles& m) {
              self.monitor(m.watched);  // its watch frame is queued: b is being connected
              if (send_other) (void)m.other.send(retention_app::ping{1});
              done.push(1);
            },
            [&downs](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  const auto holder = test::wire_id(*a, w);
  const int mfd = test::raw_peer(a->port(), "mallory", 4242, secret);
  // Two handles of b: the incarnation b runs, and a newer one (which
  // mallory may well name: handles carry any incarnation).
  std::vector<std::byte> payload =
      test::handle_bytes("b", inc_b, "127.0.0.1", relay_port, target_id);
  const auto h2 = test::handle_bytes("b", inc_b + 1, "127.0.0.1", relay_port, other_id);
  payload.insert(payload.end(), h2.begin(), h2.end());
  test::write_all(mfd, test::message_frame(0, holder, 0, 0,
                                           net::wire_id_v<retention_app::two_handles>, payload));
  REQUIRE(done.wait_for_size(1));
  // Now let a's dial through to b.
  pollfd pl{lfd, POLLIN, 0};
  REQUIRE(::poll(&pl, 1, 10000) == 1);
  const int afd = ::accept(lfd, nullptr, nullptr);
  REQUIRE(afd >= 0);
  const int bfd = test::raw_connect(b->port());
  std::atomic<bool> stop{false};
  std::thread relay([&] { test::pump(afd, bfd, stop); });
  // Up: mallory and b.
  REQUIRE(test::eventually([&] { return a->stats().peers_up >= 2; }, 10s));
  // A watch that reaches b after the target stopped is answered at once.
  sys_b.stop(target, exit_reason::error("gone"));
  INFO("the watcher monitored b's target (incarnation "
       << inc_b << ", the one that answered) before b was up");
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0] == "error: gone");
  stop = true;
  relay.join();
  ::close(afd);
  ::close(bfd);
  ::close(lfd);
  ::close(mfd);
  a.reset();
  b.reset();
}

TEST_CASE("a stopped actor that a peer messaged last is not kept by the connection",
          "[net][retention]") {
  std::atomic<int> destroyed{0};
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_b, 2);
  std::optional<net::node> a(std::in_place, sys_a, test::node_config("a", secret));
  std::optional<net::node> b(std::in_place, sys_b, test::node_config("b", secret));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  struct big : actor {
    explicit big(std::atomic<int>* d) : t{d}, state(1 << 20) {}
    behavior make_behavior() override {
      return {[](std::int64_t x) { return x; }};
    }
    test::destruction_counter t;
    std::vector<char> state;  // what a stopped actor kept alive would hold
  };
  std::optional<actor_ref> v{sys_b.spawn<big>(&destroyed)};
  REQUIRE(sys_b.register_name("big", *v));
  std::optional<actor_ref> remote{*a->lookup("b", "big", 10s)};
  // The connection's last message went to it.
  REQUIRE(net::ask<std::int64_t>(*remote, std::int64_t{3}, 10s).get());
  sys_b.stop(*v, exit_reason::error("done"));
  v.reset();
  remote.reset();
  // No other frame comes: the connection's ticks let it go.
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  a.reset();
  b.reset();
}
