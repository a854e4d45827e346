// Nodes against peers that misbehave and networks that strand connections:
// a flood of messages of an unknown type, a peer that claims a far-future
// incarnation, a dial that hangs in TCP connect while the peer dials in, a
// watch queued behind a full queue while connecting, a dead service handle
// sent in a message.

#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libactor/net/handshake.hpp>
#include <libactor/net/node.hpp>

#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace hostile {
struct box {
  actor_ref ref;
};
LIBACTOR_WIRE_TYPE(box, "test.hostile.box", ref)
}  // namespace hostile

namespace {

const std::string secret = "hostile-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2";

/// Raw peers write frames in the clear: the nodes here do too (sealed
/// records have tests of their own).
net::node_config cfg(std::string name) {
  auto c = test::node_config(std::move(name), secret);
  c.protect_frames = false;
  return c;
}

int raw_peer(std::uint16_t port, const std::string& name, std::uint64_t incarnation) {
  return test::raw_peer(port, name, incarnation, secret);
}

std::vector<std::byte> unknown_type_message(std::uint64_t request) {
  std::vector<std::byte> msg;
  net::writer m{msg};
  m.fixed(std::uint8_t{0});                       // user
  m.varint(0);                                    // receiver: the service
  m.varint(0);                                    // sender
  m.fixed(request);                               // 0: one-way
  m.fixed(std::uint64_t{0x1234567890abcdefull});  // a type the node does not know
  return test::frame_of(net::frame_kind::message, msg);
}

/// Outgoing TCP connections in SYN_SENT to 127.0.0.1:`port`.
std::size_t syn_sent_to(std::uint16_t port) {
  std::size_t n = 0;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state != "02") continue;
    const auto p =
        static_cast<std::uint16_t>(std::stoul(remote.substr(remote.find(':') + 1), nullptr, 16));
    n += p == port ? 1 : 0;
  }
  return n;
}

}  // namespace

// A peer on newer code (a rolling upgrade) or a hostile one sends messages
// of a type this node does not know, at wire speed: one line per type and
// peer, not one per message.
TEST_CASE("messages of an unknown type are logged once per type, not once each", "[net][hostile]") {
  test::recorder<std::string> log;
  actor_system sys{system_config{.workers = 2}};
  auto c = cfg("a");
  c.log = [&](std::string_view l) { log.push(std::string(l)); };
  net::node a(sys, c);
  const int fd = raw_peer(a.port(), "x", 1000);
  constexpr int n = 5000;
  std::vector<std::byte> burst;
  for (int i = 0; i < n; ++i) {
    auto f = unknown_type_message(0);
    burst.insert(burst.end(), f.begin(), f.end());
  }
  test::write_all(fd, burst);
  // A request last: its error answer means everything before was handled.
  test::write_all(fd, unknown_type_message(77));
  REQUIRE(
      test::next_frame(fd, [](const net::frame& f) { return f.kind == net::frame_kind::message; }));
  std::size_t lines = 0;
  for (auto& l : log.items()) lines += l.find("does not know") != std::string::npos;
  INFO("log lines about the unknown type: " << lines);
  CHECK(lines == 1);
  CHECK(a.stats().unknown_types == n + 1);
  ::close(fd);
}

namespace {

/// Sends one-way messages of `count` types from `first` on, then a request
/// of an unknown type, and waits for the request's error answer: then every
/// message before it was handled.
void send_unknown_types(int fd, std::uint64_t first, int count) {
  std::vector<std::byte> batch;
  for (int k = 0; k < count; ++k) {
    const auto f = test::message_frame(0, 0, 0, 0, first + static_cast<std::uint64_t>(k), {});
    batch.insert(batch.end(), f.begin(), f.end());
  }
  test::write_all(fd, batch);
  test::write_all(fd, unknown_type_message(77));
  REQUIRE(
      test::next_frame(fd, [](const net::frame& f) { return f.kind == net::frame_kind::message; }));
}

}  // namespace

// A peer that reconnects (a newer incarnation each time) and sends many
// types must not flood the log: its lines come from its own budget, which
// outlives its connections.
TEST_CASE("unknown types from a peer that reconnects are logged within the peer's own log budget",
          "[net][hostile]") {
  test::recorder<std::string> log;
  actor_system sys{system_config{.workers = 2}};
  auto c = cfg("a");
  c.log = [&](std::string_view l) { log.push(std::string(l)); };
  net::node a(sys, c);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int connections = 12, types = 40;
  for (int conn = 0; conn < connections; ++conn) {
    const int fd = raw_peer(a.port(), "mallory", 10'000 + conn);
    send_unknown_types(fd, 0x5000, types);
    ::close(fd);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t lines = 0;
  for (auto& l : log.items()) lines += l.find("does not know") != std::string::npos;
  INFO(lines << " lines about unknown types in " << secs << " s");
  CHECK(lines >= 1);
  CHECK(lines <= 20 + static_cast<std::size_t>(secs / 10) + 1);  // 20 at once, then one per 10 s
  CHECK(a.stats().unknown_types == static_cast<std::uint64_t>(connections * (types + 1)));
}

TEST_CASE("a peer's unknown types do not hold back the first line of another refusal",
          "[net][hostile]") {
  test::recorder<std::string> log;
  actor_system sys{system_config{.workers = 2}};
  auto c = cfg("a");
  c.log = [&](std::string_view l) { log.push(std::string(l)); };
  net::node a(sys, c);
  const int fd = raw_peer(a.port(), "mallory", 1000);
  send_unknown_types(fd, 0x6000, 30);
  // Another address sends a garbage hello: its line is logged.
  const int g = test::connect_from("127.0.0.2", a.port());
  test::write_all(g, test::frame_of(net::frame_kind::hello, std::vector<std::byte>(8)));
  REQUIRE(test::closed_by_peer(g));
  ::close(g);
  CHECK(test::eventually([&] {
    for (auto& l : log.items()) {
      if (l.find("127.0.0.2") != std::string::npos) return true;
    }
    return false;
  }));
  ::close(fd);
}

// One connection claiming to be node "b" with a far-future incarnation (a
// hostile peer, or b itself once started with its clock ahead) must not
// lock the real b out once it is gone.
TEST_CASE("a far-future incarnation that went away does not lock the name out", "[net][hostile]") {
  test::recorder<std::string> log;
  actor_system sys_a{system_config{.workers = 2}};
  auto ca = cfg("a");
  ca.log = [&](std::string_view l) { log.push(std::string(l)); };
  net::node a(sys_a, ca);
  const int fd = raw_peer(a.port(), "b", ~std::uint64_t{0});
  ::close(fd);
  REQUIRE(test::eventually([&] { return a.stats().node_downs >= 1; }));
  actor_system sys_b{system_config{.workers = 2}};
  net::node b(sys_b, cfg("b"));
  auto r = b.connect("127.0.0.1", a.port(), 5s);
  INFO((r ? std::string("connected") : r.err().to_string()));
  CHECK(r);
  std::size_t refusals = 0;
  for (auto& l : log.items())
    refusals += l.find("older than the one last seen") != std::string::npos;
  INFO("a's refusals of b: " << refusals);
  CHECK(refusals == 0);
}

// a dialled b; b is replaced by a process on another address; a's redials
// go to the old address, which now drops SYNs (a host that moved, a
// firewall; here: a listener with a full accept queue). a's own dial wins a
// simultaneous connect by name, but an attempt stuck in TCP connect must not
// keep the new b's connection out.
TEST_CASE("a dial hanging in TCP connect does not keep the peer's own connection out",
          "[net][hostile]") {
  actor_system sys_a{system_config{.workers = 2}};
  net::node a(sys_a, cfg("a"));  // "a" < "b": a's dial wins simultaneous connects
  std::uint16_t old_port = 0;
  {
    actor_system sys_b1{system_config{.workers = 1}};
    net::node b1(sys_b1, cfg("b"));
    old_port = b1.port();
    REQUIRE(a.connect("127.0.0.1", old_port, 10s));  // a knows where b listens: it redials
  }
  // b's old address now swallows SYNs.
  const int hole = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(hole, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(old_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(hole, 0) == 0);
  const int filler = test::raw_connect(old_port);                         // fills the accept queue
  REQUIRE(test::eventually([&] { return syn_sent_to(old_port) >= 1; }));  // a's redial hangs

  actor_system sys_b2{system_config{.workers = 1}};
  net::node b2(sys_b2, cfg("b"));
  auto r = b2.connect("127.0.0.1", a.port(), 5s);
  INFO((r ? std::string("connected") : r.err().to_string()));
  CHECK(r);
  CHECK(a.await_peer("b", 1s).has_value());
  ::close(filler);
  ::close(hole);
}

// While the first connection is made, messages can fill the queue to the
// bound; a watch made after them must still reach the peer (its proxy
// sends one watch only), or the monitor never fires.
TEST_CASE("a watch queued while connecting behind a full queue still reaches the peer",
          "[net][hostile]") {
  actor_system sys_b{system_config{.workers = 1}};
  net::node b(sys_b, cfg("b"));
  auto target = sys_b.spawn([](actor& self) -> behavior {
    return {[](const std::string&) {},
            [&self](const std::int64_t&) { self.quit(exit_reason::error("asked to")); }};
  });
  std::vector<std::byte> handle;
  {
    net::writer w{handle, b.context()};
    net::wire_encode(w, target);  // exports it, as sending its handle would
  }
  actor_system sys_a{system_config{.workers = 2}};
  auto ca = cfg("a");
  ca.max_frame_size = 4096;
  ca.max_outbound_bytes = 4096;
  net::node a(sys_a, ca);
  // Slow b's I/O a little: its only worker is busy, the backstop serves it.
  sys_b.spawn([](actor&) -> behavior { return {[](int) {}}; });
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto busy = sys_b.spawn([released](actor&) -> behavior {
    return {[released](const bool&) { released.wait(); }};  // keeps b's worker busy
  });
  busy.send(true);

  actor_ref h;
  net::reader r{handle, net::decode_limits{}, a.context()};
  REQUIRE(net::wire_decode(r, h));  // a starts dialling b: the peer is connecting
  // 33 bytes of frame and message header (the receiver's wire id takes 10)
  // + 2 of string length + 4061: exactly the bound. 4061 fills pending_ to
  // the byte; 100 leaves room (the control: passes).
  const std::size_t len = GENERATE(std::size_t{100}, std::size_t{4061});
  INFO("message of " << len << " bytes queued before the monitor");
  REQUIRE(h.send(std::string(len, 'x')) == send_status::ok);
  test::recorder<std::string> downs;
  test::counter watching;
  sys_a.spawn([&, h](actor& self) -> behavior {
    self.monitor(h);  // the watch frame finds pending_ full
    watching.add();
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  REQUIRE(watching.wait_for_at_least(1));
  release.set_value();
  REQUIRE(a.await_peer("b", 10s));
  // The message got through; now the target stops, and a's monitor must fire.
  REQUIRE(h.send(std::int64_t{1}) == send_status::ok);
  CHECK(downs.wait_for_size(1, 5s));
  INFO((downs.items().empty() ? std::string("no down") : downs.items()[0]));
  CHECK(a.stats().peers_up == 1);
}

// A dead service handle (its node is down) sent in a message to a healthy
// node crosses as an empty handle; it must not make the receiver refuse
// the frame and close the connection.
TEST_CASE("a dead service handle inside a message crosses as an empty handle", "[net][hostile]") {
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  net::node a(sys_a, cfg("a"));
  net::node b(sys_b, cfg("b"));
  test::counter got;
  REQUIRE(sys_b.register_name("sink", sys_b.spawn([&](actor&) -> behavior {
    return {[&](const hostile::box&) { got.add(); }};
  })));
  REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
  auto sink = a.lookup("b", "sink", 10s);
  REQUIRE(sink);
  // Node c is known (watched) but down: its service handle is a dead_proxy.
  auto watcher = sys_a.spawn([](actor&) -> behavior { return {[](const net::node_down_msg&) {}}; });
  a.monitor_node("c", watcher);
  const actor_ref dead = a.service("c");
  REQUIRE(dead);
  REQUIRE(sink->send(hostile::box{dead}) == send_status::ok);
  CHECK(got.wait_for_at_least(1, 3s));
  CHECK(b.stats().protocol_errors == 0);
  CHECK(a.stats().node_downs == 0);
}
