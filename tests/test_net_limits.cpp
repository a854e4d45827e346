// Bounded resources on a node (docs/protocol.md, "Limits"): each limit is
// pushed past here, and what is over it is refused with a clear error while
// the node keeps serving.

// GCC 12 reports false -Wrestrict and -Wstringop-overflow warnings in
// std::string concatenation and std::vector<std::byte> insertion, inlined
// into the test cases.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace limits_app {
struct bag {
  std::vector<std::int32_t> items;
};
LIBACTOR_WIRE_TYPE(bag, "test.limits.bag", items)

struct chain {
  std::vector<chain> next;
};
LIBACTOR_WIRE_TYPE(chain, "test.limits.chain", next)

chain chain_of(std::size_t levels) {
  chain c;
  for (std::size_t i = 1; i < levels; ++i) {
    chain outer;
    outer.next.push_back(std::move(c));
    c = std::move(outer);
  }
  return c;
}
}  // namespace limits_app

namespace {

const std::string secret = "limits-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2";

/// Two nodes in one process; b's log lines are kept.
struct two_nodes {
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::recorder<std::string> log_b;
  std::optional<net::node> a;
  std::optional<net::node> b;
  actor_ref remote;  // b's "server", looked up from a
  two_nodes(net::decode_limits limits_a, net::decode_limits limits_b) {
    auto ca = test::node_config("a", secret);
    ca.message_limits = limits_a;
    auto cb = test::node_config("b", secret);
    cb.message_limits = limits_b;
    cb.log = [this](std::string_view l) { log_b.push(std::string(l)); };
    a.emplace(sys_a, ca);
    b.emplace(sys_b, cb);
    REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
    auto server = sys_b.spawn([](actor&) -> behavior {
      return {
          [](const limits_app::bag& g) -> std::int64_t {
            return std::accumulate(g.items.begin(), g.items.end(), std::int64_t{0});
          },
          [](std::int64_t n) {
            limits_app::bag g;
            g.items.assign(static_cast<std::size_t>(n), 1);
            return g;
          },
          [](const limits_app::chain&) -> std::int64_t { return 1; },
      };
    });
    REQUIRE(sys_b.register_name("server", server));
    auto r = a->lookup("b", "server", 10s);
    REQUIRE(r);
    remote = *r;
  }
  ~two_nodes() {
    a.reset();
    b.reset();
  }
  std::size_t logged(std::string_view what) {
    auto lines = log_b.items();
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](auto& l) { return l.find(what) != std::string::npos; }));
  }
};

limits_app::bag bag_of(std::size_t n) {
  limits_app::bag g;
  g.items.resize(n);
  std::iota(g.items.begin(), g.items.end(), 1);
  return g;
}

}  // namespace

TEST_CASE("a message over the receiver's decode limits is refused on its own; the connection stays",
          "[net][limits]") {
  two_nodes n({}, net::decode_limits{.max_elements = 1000, .max_total_elements = 64});
  // Asks before, so that the refused request's key is not the first.
  for (int i = 1; i <= 3; ++i) {
    auto ok = net::ask<std::int64_t>(n.remote, bag_of(static_cast<std::size_t>(i)), 30s).get();
    REQUIRE(ok);
    CHECK(*ok == i * (i + 1) / 2);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto big = net::ask<std::int64_t>(n.remote, bag_of(100), 60s).get();
  REQUIRE_FALSE(big);
  CHECK(big.err().code == errc::invalid_argument);
  CHECK(big.err().text.find("over_budget") != std::string::npos);
  CHECK(big.err().text.find("message_limits") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);  // answered, not timed out
  // One-way messages over the limits are dropped one by one, and counted.
  for (int i = 0; i < 5; ++i) CHECK(net::send(n.remote, bag_of(65)) == send_status::ok);
  // Too deep: 40 levels of chain are 80 of nesting, over b's 64.
  auto deep = net::ask<std::int64_t>(n.remote, limits_app::chain_of(40), 60s).get();
  REQUIRE_FALSE(deep);
  CHECK(deep.err().text.find("too_deep") != std::string::npos);
  // The same connection serves what fits, after all of that.
  auto fits = net::ask<std::int64_t>(n.remote, bag_of(64), 30s).get();
  REQUIRE(fits);
  CHECK(*fits == 64 * 65 / 2);
  CHECK(*net::ask<std::int64_t>(n.remote, limits_app::chain_of(20), 30s).get() == 1);
  CHECK(n.b->stats().undecodable == 7);
  CHECK(n.b->stats().protocol_errors == 0);
  CHECK(n.a->stats().node_downs == 0);
  CHECK(n.b->stats().peers_up == 1);
  // Logged once per type and connection, not once per message.
  CHECK(n.logged("cannot decode") == 2);
}

TEST_CASE("an answer over the asker's decode limits fails the ask at once", "[net][limits]") {
  two_nodes n(net::decode_limits{.max_elements = 1000, .max_total_elements = 500}, {});
  auto small = net::ask<limits_app::bag>(n.remote, std::int64_t{500}, 30s).get();
  REQUIRE(small);
  CHECK(small->items.size() == 500);
  const auto t0 = std::chrono::steady_clock::now();
  auto big = net::ask<limits_app::bag>(n.remote, std::int64_t{501}, 60s).get();
  REQUIRE_FALSE(big);
  CHECK(big.err().code == errc::invalid_argument);
  CHECK(big.err().text.find("over_budget") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);
  CHECK(n.a->stats().undecodable == 1);
  CHECK(n.a->stats().protocol_errors == 0);
  // And the connection still carries answers.
  CHECK(net::ask<limits_app::bag>(n.remote, std::int64_t{3}, 30s).get());
}

TEST_CASE("message_limits are checked when the node starts", "[net][limits]") {
  actor_system sys{system_config{.workers = 1}};
  auto c = test::node_config("a", secret);
  c.message_limits.max_depth = 3;
  CHECK_THROWS_WITH(net::node(sys, c), Catch::Contains("max_depth"));
}

// --- the peer table and dialing ----------------------------------------------

namespace limits_app {
struct handle_box {
  actor_ref ref;
};
LIBACTOR_WIRE_TYPE(handle_box, "test.limits.handle_box", ref)
}  // namespace limits_app

namespace {

/// A port on 127.0.0.1 where nothing listens (bound, then closed): a dial
/// there is refused at once.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A node that a raw peer ("mallory") sends handles to; an actor there
/// keeps every handle it is given.
struct handle_target {
  actor_system sys{system_config{.workers = 2}};
  test::recorder<std::string> log;
  test::recorder<actor_ref> got;
  std::optional<net::node> node;
  std::uint64_t holder = 0;
  int fd = -1;
  explicit handle_target(net::node_config c) {
    c.protect_frames = false;  // the raw peer writes in the clear
    c.log = [this](std::string_view l) { log.push(std::string(l)); };
    node.emplace(sys, c);
    auto h = sys.spawn([this](actor&) -> behavior {
      return {[this](const limits_app::handle_box& b) { got.push(b.ref); }};
    });
    holder = test::wire_id(*node, h);
    fd = test::raw_peer(node->port(), "mallory", 4242, secret);
  }
  ~handle_target() {
    ::close(fd);
    node.reset();
  }
  /// Sends a handle to actor `id` of `name` at 127.0.0.1:`port`; returns it
  /// as the node decoded it.
  actor_ref send_handle(const std::string& name, std::uint16_t port, std::uint64_t id) {
    const std::size_t before = got.items().size();
    test::write_all(fd, test::message_frame(0, holder, 0, 0, net::wire_id_v<limits_app::handle_box>,
                                            test::handle_bytes(name, 99, "127.0.0.1", port, id)));
    REQUIRE(got.wait_for_size(before + 1));
    return got.items()[before];
  }
  std::size_t logged(std::string_view what) {
    auto lines = log.items();
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](auto& l) { return l.find(what) != std::string::npos; }));
  }
};

/// The error an ask through `h` ends with (empty text: it was answered).
error ask_error(const actor_ref& h) {
  auto r = h.ask<std::int64_t>(std::int64_t{1}, 30s).get();
  return r ? error{} : r.err();
}

constexpr std::uint64_t wire_bit = std::uint64_t{1} << 63;

}  // namespace

TEST_CASE(
    "a node named only in messages and never reached is given up after max_failed_dials; its "
    "handles then say so, and naming it again dials nothing",
    "[net][limits]") {
  auto c = test::node_config("a", secret);
  c.max_failed_dials = 3;
  handle_target t(c);
  const std::uint16_t ghost_port = closed_port();
  const auto dialled0 = t.node->stats().dialled;
  auto first = t.send_handle("ghost", ghost_port, wire_bit | 17);
  REQUIRE(test::eventually([&] { return t.logged("gave up on node ghost") == 1; }));
  CHECK(t.node->stats().dialled - dialled0 == 3);
  const auto e1 = ask_error(first);
  CHECK(e1.code == errc::node_down);
  // Named again: no dial, and the handle says why.
  auto second = t.send_handle("ghost", ghost_port, wire_bit | 18);
  CHECK(t.node->stats().dialled - dialled0 == 3);
  const auto e2 = ask_error(second);
  CHECK(e2.code == errc::node_down);
  CHECK(e2.text.find("gave up") != std::string::npos);
  CHECK(e2.text.find("max_failed_dials") != std::string::npos);
  CHECK(t.logged("gave up on node ghost") == 1);
}

TEST_CASE("the peer table holds at most max_peers nodes named by messages", "[net][limits]") {
  auto c = test::node_config("a", secret);
  c.max_peers = 8;
  c.max_failed_dials = 0;  // never given up: each named node stays, redialling
  c.reconnect_min = 30s;   // ... with its redial pending for the whole test
  c.reconnect_max = 30s;
  handle_target t(c);
  REQUIRE(t.node->stats().peers_known == 1);  // mallory
  const std::uint16_t ghost_port = closed_port();
  std::vector<actor_ref> handles;
  for (int i = 0; i < 20; ++i) {
    handles.push_back(t.send_handle("n" + std::to_string(i), ghost_port, wire_bit | (100 + i)));
  }
  CHECK(t.node->stats().peers_known == 8);
  std::size_t refused = 0;
  for (auto& h : handles) {
    const auto e = ask_error(h);
    CHECK(e.code == errc::node_down);
    refused += e.text.find("max_peers") != std::string::npos ? 1 : 0;
  }
  CHECK(refused == 20 - 7);
  CHECK(t.logged("max_peers") >= 1);
}

TEST_CASE("nodes named by messages with nothing pending are forgotten to make room",
          "[net][limits]") {
  auto c = test::node_config("a", secret);
  c.max_peers = 8;
  handle_target t(c);
  // Port 0: the handle names no address, so the node is never dialled and
  // keeps nothing pending. 5,000 names pass through a table of 8.
  for (int i = 0; i < 5000; ++i) {
    auto h = t.send_handle("p" + std::to_string(i), 0, wire_bit | (1000 + i));
    if (i % 1000 == 0) {
      const auto e = ask_error(h);
      CHECK(e.code == errc::node_down);
      CHECK(e.text.find("max_peers") == std::string::npos);
    }
  }
  CHECK(t.node->stats().peers_known <= 8);
  CHECK(t.logged("max_peers") == 0);
}

TEST_CASE("a handle naming an address outside dial_allow is not dialled, and says why",
          "[net][limits]") {
  const std::uint16_t port = closed_port();
  auto c = test::node_config("a", secret);
  c.dial_allow = {"10.0.0.0/8", "fd00::/8"};
  handle_target t(c);
  const auto dialled0 = t.node->stats().dialled;
  auto h = t.send_handle("far", port, wire_bit | 7);
  const auto e = ask_error(h);
  CHECK(e.code == errc::node_down);
  CHECK(e.text.find("dial_allow") != std::string::npos);
  CHECK(t.node->stats().dialled == dialled0);
  CHECK(t.node->stats().refused == 1);
  CHECK(t.logged("dial_allow") == 1);
  // The control: a node that allows loopback dials the same handle.
  auto c2 = test::node_config("a2", secret);
  c2.dial_allow = {"127.0.0.0/8"};
  handle_target t2(c2);
  const auto dialled2 = t2.node->stats().dialled;
  (void)t2.send_handle("far", port, wire_bit | 7);
  REQUIRE(test::eventually([&] { return t2.node->stats().dialled == dialled2 + 1; }));
  CHECK(t2.node->stats().refused == 0);
}

TEST_CASE("dial_allow entries are checked when the node starts", "[net][limits]") {
  actor_system sys{system_config{.workers = 1}};
  for (const char* bad : {"10.0.0.0/33", "example.com", "10.0.0.0/8/8", "", "fd00::/129"}) {
    auto c = test::node_config("a", secret);
    c.dial_allow = {"127.0.0.1", bad};
    INFO(bad);
    CHECK_THROWS_WITH(net::node(sys, c), Catch::Contains("dial_allow"));
  }
}

// --- inbound flow control --------------------------------------------------------

namespace limits_app {
struct blob {
  std::uint64_t seq = 0;
  std::string bytes;
};
LIBACTOR_WIRE_TYPE(blob, "test.limits.blob", seq, bytes)
}  // namespace limits_app

TEST_CASE(
    "a connection whose delivered messages wait beyond max_inbound_bytes is not read until they "
    "are handled; nothing is lost and the peer is not declared down",
    "[net][limits]") {
  auto ca = test::node_config("a", secret);
  auto cb = test::node_config("b", secret);
  cb.max_inbound_bytes = 1 << 20;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  std::optional<net::node> a(std::in_place, sys_a, ca);
  std::optional<net::node> b(std::in_place, sys_b, cb);
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  // The receiver blocks in its first message until released: everything
  // after it waits in its mailbox.
  std::promise<void> release;
  auto released = release.get_future().share();
  bool was_released = false;
  struct on_exit {
    std::function<void()> f;
    ~on_exit() { f(); }
  } unblock{[&] {
    if (!std::exchange(was_released, true)) release.set_value();
  }};
  test::recorder<std::uint64_t> first;
  std::atomic<std::uint64_t> handled{0}, in_order{0};
  auto slow = sys_b.spawn([&](actor&) -> behavior {
    return {[&](const limits_app::blob& m) {
      if (m.seq == 0) {
        first.push(m.seq);
        released.wait();
      }
      if (m.seq == handled.load()) in_order.fetch_add(1);
      handled.fetch_add(1);
    }};
  });
  REQUIRE(sys_b.register_name("slow", slow));
  auto remote = *a->lookup("b", "slow", 10s);
  // 20,000 messages of 1 KB: 20 times b's bound.
  constexpr std::uint64_t n = 20'000;
  const std::string kb(1000, 'x');
  for (std::uint64_t i = 0; i < n; ++i) {
    REQUIRE(net::send(remote, limits_app::blob{i, kb}) == send_status::ok);
  }
  REQUIRE(first.wait_for_size(1));
  // b pauses; without flow control it would take in all n instead.
  REQUIRE(
      test::eventually([&] { return b->stats().read_pauses >= 1 || b->stats().messages_in >= n; }));
  // What b took in is its bound plus at most one read buffer (64 KiB) of
  // frames decoded before the check.
  const auto in_while_paused = b->stats().messages_in;
  INFO("messages in while paused: " << in_while_paused);
  CHECK(in_while_paused <= (1u << 20) / 1000 + 64 * 1024 / 1000 + 8);
  CHECK(in_while_paused < n / 4);
  CHECK(b->stats().read_pauses >= 1);
  // The scenario: the handler stays blocked for longer than the heartbeat
  // timeout (1.5 s); b reads nothing from a meanwhile, and neither side
  // declares the other down.
  std::this_thread::sleep_for(ca.heartbeat_timeout + 500ms);
  CHECK(b->stats().messages_in == in_while_paused);
  unblock.f();
  REQUIRE(test::eventually([&] { return handled.load() == n; }, 60s));
  CHECK(in_order.load() == n);
  CHECK(a->stats().node_downs == 0);
  CHECK(b->stats().node_downs == 0);
  a.reset();
  b.reset();
}
