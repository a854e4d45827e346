// What a peer that holds the cluster secret may do, and what it may not
// (docs/protocol.md, "What a peer may do"): address only actors whose
// handles reached it (wire ids are random, and guessing them closes the
// connection), stop only what it spawned or what the owner allows, send
// exit signals only as the actor that exits, never stop the service actor.
// Each refusal is counted and logged once per rule and peer.

// GCC 12 reports a false -Wrestrict in std::string concatenation here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <optional>
#include <string>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace authz {
struct note {
  std::string text;
};
LIBACTOR_WIRE_TYPE(note, "test.authz.note", text)

/// Answers a note with its text: an ask that gets its answer shows the
/// actor still runs.
struct worker final : actor {
  behavior make_behavior() override {
    return {[](const note& n) { return n.text; }};
  }
};
}  // namespace authz

namespace {

const std::string secret = "authz-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2";
constexpr std::uint64_t mallory_inc = 4242;
constexpr std::uint64_t mallory_actor = 5;  // the raw peer's own actor id

/// Raw peers write frames in the clear: the nodes here do too (sealed
/// records have tests of their own).
net::node_config cfg(std::string name) {
  auto c = test::node_config(std::move(name), secret);
  c.protect_frames = false;
  return c;
}

using test::encoded;
using test::message_frame;

/// A stop request (kind 5) for `receiver`.
std::vector<std::byte> stop_frame(std::uint64_t receiver) {
  return message_frame(5, receiver, 0, 0, net::type_id_of("libactor.exit_reason"),
                       encoded(exit_reason::killed("by mallory")));
}

/// An exit signal (kind 3) from the raw peer's actor to `receiver`, whose
/// payload names `source` (encoded bytes of a handle) as the actor that exits.
std::vector<std::byte> exit_frame(std::uint64_t receiver, const std::vector<std::byte>& source) {
  std::vector<std::byte> body = source;
  auto reason = encoded(exit_reason::error("forged"));
  body.insert(body.end(), reason.begin(), reason.end());
  return message_frame(3, receiver, mallory_actor, 0, net::type_id_of("libactor.exit"), body);
}

/// The raw peer's own actor as a handle (what its node would encode).
std::vector<std::byte> mallory_handle() {
  std::vector<std::byte> h;
  net::writer w{h};
  w.fixed(std::uint8_t{1});
  net::wire_encode(w, std::string("mallory"));
  w.fixed(mallory_inc);
  net::wire_encode(w, std::string("127.0.0.1"));
  w.fixed(std::uint16_t{1});
  w.varint(mallory_actor);
  return h;
}

std::vector<std::byte> link_frame(std::uint64_t target, std::uint64_t linker) {
  std::vector<std::byte> p;
  net::writer w{p};
  w.varint(target);
  w.varint(linker);
  return test::frame_of(net::frame_kind::link, p);
}

/// Node "a" whose log lines a test reads, with a raw peer "mallory" that
/// holds the secret.
struct target_node {
  test::recorder<std::string> log;
  actor_system sys{system_config{.workers = 2}};
  std::optional<net::node> node;
  int fd = -1;

  explicit target_node(std::size_t max_unknown_ids = net::node_config{}.max_unknown_ids) {
    test::unrelated(sys, 3);
    auto c = cfg("a");
    c.max_unknown_ids = max_unknown_ids;
    c.log = [this](std::string_view line) { log.push(std::string(line)); };
    node.emplace(sys, c);
    fd = test::raw_peer(node->port(), "mallory", mallory_inc, secret);
  }
  ~target_node() {
    if (fd >= 0) ::close(fd);
    node.reset();
  }
  std::size_t lines_with(const std::string& what) const {
    std::size_t n = 0;
    for (auto& l : log.items()) n += l.find(what) != std::string::npos ? 1 : 0;
    return n;
  }
  /// Asks the service over the raw connection to look up `name`; returns
  /// the answer's sender field (the service's wire id) and the handle.
  std::uint64_t service_wire_id(std::uint64_t key) {
    test::write_all(fd, message_frame(0, 0, 0, key, net::type_id_of("libactor.lookup"),
                                      encoded(net::lookup_request{"nobody"})));
    auto answer = test::next_frame(
        fd, [](const net::frame& f) { return f.kind == net::frame_kind::message; });
    REQUIRE(answer);
    net::reader r{answer->payload, net::decode_limits{}};
    std::uint8_t kind = 0;
    std::uint64_t receiver = 0, sender = 0, request = 0;
    REQUIRE(r.fixed(kind));
    REQUIRE(r.varint(receiver));
    REQUIRE(r.varint(sender));
    REQUIRE(r.fixed(request));
    CHECK(kind == 1);  // response
    CHECK(request == key);
    REQUIRE(sender != 0);
    return sender;
  }
};

/// What `h` answers to a note, or the error that came instead.
std::string answer_of(const actor_ref& h, const std::string& text) {
  auto r = h.ask<std::string>(authz::note{text}, 10s).get();
  return r ? *r : r.err().to_string();
}

/// A second, well-behaved node "b" connected to `a`: it checks that a's
/// service still serves (lookups answered).
bool service_serves(net::node& a) {
  actor_system sys_b{system_config{.workers = 1}};
  net::node b(sys_b, cfg("b"));
  REQUIRE(b.connect("127.0.0.1", a.port(), 10s));
  auto r = b.lookup("a", "registered", 10s);
  return r && static_cast<bool>(*r);
}

}  // namespace

TEST_CASE("a peer cannot stop the service actor: the node keeps serving every peer",
          "[net][authz]") {
  target_node t;
  t.sys.register_name("registered", t.sys.spawn<authz::worker>());
  const std::uint64_t service = t.service_wire_id(71);
  for (int i = 0; i < 50; ++i) {
    test::write_all(t.fd, stop_frame(service));
    test::write_all(t.fd, stop_frame(0));
  }
  CHECK(test::eventually([&] { return t.node->stats().refused == 100; }));
  CHECK(service_serves(*t.node));
  // The raw connection is still served as well.
  CHECK(t.service_wire_id(72) == service);
  CHECK(t.lines_with("refused a stop request for the service actor from node mallory") == 1);
}

TEST_CASE("a peer cannot link the service actor and stop it through the link", "[net][authz]") {
  target_node t;
  t.sys.register_name("registered", t.sys.spawn<authz::worker>());
  const std::uint64_t service = t.service_wire_id(9);
  test::write_all(t.fd, link_frame(service, mallory_actor));
  // The linker is told the link was refused: an exit signal to it.
  auto told = test::next_frame(t.fd, [](const net::frame& f) {
    return f.kind == net::frame_kind::message && !f.payload.empty() && f.payload[0] == std::byte{3};
  });
  CHECK(told);
  test::write_all(t.fd, exit_frame(service, mallory_handle()));
  CHECK(test::eventually([&] { return t.node->stats().refused >= 1; }));
  CHECK(service_serves(*t.node));
  CHECK(t.lines_with("refused a link to the service actor from node mallory") == 1);
}

TEST_CASE("an exit signal that names another actor as its source is refused", "[net][authz]") {
  target_node t;
  // `victim` is linked to `partner`, a local actor; the peer knows both.
  auto partner = t.sys.spawn<authz::worker>();
  test::counter linked;
  auto victim = t.sys.spawn([&](actor& self) -> behavior {
    self.link(partner);
    linked.add();
    return {[](const authz::note& n) { return n.text; }};
  });
  REQUIRE(linked.wait_for_at_least(1));
  const std::uint64_t victim_id = test::wire_id(*t.node, victim);
  std::vector<std::byte> partner_handle;
  {
    net::writer w{partner_handle, t.node->context()};
    net::wire_encode(w, partner);
  }
  test::write_all(t.fd, exit_frame(victim_id, partner_handle));
  // A round trip on the same connection: the exit signal was handled (and,
  // had it been let through, queued to the victim) before this answer.
  (void)t.service_wire_id(3);
  CHECK(answer_of(victim, "alive") == "alive");
  CHECK(t.node->stats().refused == 1);
  CHECK(t.lines_with("an exit signal whose source is not the actor that sent it") == 1);
  // The partner's own exit still reaches the victim through the link.
  t.sys.stop(partner, exit_reason::error("partner failed"));
  test::recorder<std::string> downs;
  t.sys.spawn([&](actor& self) -> behavior {
    self.monitor(victim);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0] == "error: partner failed");
}

TEST_CASE("a peer stops only the actors it spawned, or those the owner allows any peer to stop",
          "[net][authz]") {
  target_node t;
  t.node->register_actor_type<authz::worker>("worker");
  auto shared = t.sys.spawn<authz::worker>();
  REQUIRE(t.sys.register_name("shared", shared));
  actor_system sys_b{system_config{.workers = 1}};
  test::unrelated(sys_b, 1);
  net::node b(sys_b, cfg("b"));
  REQUIRE(b.connect("127.0.0.1", t.node->port(), 10s));
  auto looked_up = b.lookup("a", "shared", 10s);
  REQUIRE(looked_up);
  auto spawned = b.spawn_remote("a", "worker", 10s);
  REQUIRE(spawned);
  REQUIRE(*spawned);

  // Not spawned by b: refused. The ask after it on the same connection is
  // answered, so the stop request was handled and did nothing.
  sys_b.stop(*looked_up, exit_reason::killed("by b"));
  CHECK(answer_of(*looked_up, "still here") == "still here");
  CHECK(t.node->stats().refused == 1);
  CHECK(t.lines_with("refused a stop request for an actor the peer did not spawn") == 1);

  // Spawned by b: b may stop it.
  test::recorder<std::string> downs;
  sys_b.spawn([&, h = *spawned](actor& self) -> behavior {
    self.monitor(h);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  sys_b.stop(*spawned, exit_reason::killed("by its spawner"));
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0] == "killed: by its spawner");

  // Allowed by the owner: any peer that holds a handle may stop it.
  t.node->allow_remote_stop(shared);
  sys_b.spawn([&, h = *looked_up](actor& self) -> behavior {
    self.monitor(h);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  sys_b.stop(*looked_up, exit_reason::killed("allowed now"));
  REQUIRE(downs.wait_for_size(2));
  CHECK(downs.items()[1] == "killed: allowed now");
  CHECK(t.node->stats().refused == 1);
  // A handle of another system is not this node's to allow.
  actor_system other{system_config{.workers = 1}};
  CHECK_THROWS_AS(t.node->allow_remote_stop(other.spawn<authz::worker>()), std::invalid_argument);
}

TEST_CASE("wire ids are random; a peer that guesses them is closed as probing", "[net][authz]") {
  constexpr std::size_t budget = 64;
  target_node t(budget);
  test::counter delivered;
  auto catcher = t.sys.spawn(
      [&](actor&) -> behavior { return {[&](const authz::note&) { delivered.add(); }}; });
  const std::uint64_t id = test::wire_id(*t.node, catcher);
  CHECK(id != catcher.id());
  CHECK(id >> 63 == 1);  // ten bytes as LEB128, like every wire id
  auto other = t.sys.spawn<authz::worker>();
  CHECK(test::wire_id(*t.node, other) != id);
  CHECK(test::wire_id(*t.node, catcher) == id);  // stable while exported

  // One id the peer keeps sending to (an actor that stopped, say) counts
  // once: thousands of messages to it do not close the connection.
  std::vector<std::byte> burst;
  for (int i = 0; i < 5000; ++i) {
    auto f = message_frame(0, id ^ 1, mallory_actor, 0, net::wire_id_v<authz::note>,
                           encoded(authz::note{"stale"}));
    burst.insert(burst.end(), f.begin(), f.end());
  }
  test::write_all(t.fd, burst);
  (void)t.service_wire_id(11);  // answered: the connection stays
  CHECK(t.node->stats().protocol_errors == 0);
  // The real id works.
  test::write_all(t.fd, message_frame(0, id, mallory_actor, 0, net::wire_id_v<authz::note>,
                                      encoded(authz::note{"hello"})));
  REQUIRE(delivered.wait_for_at_least(1));

  // Counting up from small numbers (actor ids) reaches nothing, and closes
  // the connection once the budget of unknown ids is spent.
  std::vector<std::byte> guesses;
  for (std::uint64_t g = 1; g <= 4 * budget; ++g) {
    auto f = message_frame(0, g, mallory_actor, 0, net::wire_id_v<authz::note>,
                           encoded(authz::note{"guess"}));
    guesses.insert(guesses.end(), f.begin(), f.end());
  }
  test::write_all(t.fd, guesses);
  CHECK(test::closed_by_peer(t.fd));
  REQUIRE(test::eventually([&] { return t.node->stats().protocol_errors == 1; }));
  CHECK(test::eventually(
      [&] { return t.lines_with("probing: the peer addressed more than 64 actor ids") == 1; }));
  CHECK(delivered.value() == 1);
}

TEST_CASE("a peer cannot stop an actor it did not spawn through a link and an exit signal",
          "[net][authz]") {
  target_node t;
  auto victim = t.sys.spawn<authz::worker>();
  const std::uint64_t victim_id = test::wire_id(*t.node, victim);
  // The peer links the victim under its own actor, then exits "as" it: a
  // link carries that right only where a stop request would.
  test::write_all(t.fd, link_frame(victim_id, mallory_actor));
  auto told = test::next_frame(t.fd, [](const net::frame& f) {
    return f.kind == net::frame_kind::message && !f.payload.empty() && f.payload[0] == std::byte{3};
  });
  CHECK(told);  // the linker hears its link was refused
  test::write_all(t.fd, exit_frame(victim_id, mallory_handle()));
  (void)t.service_wire_id(21);  // both frames were handled before this answer
  CHECK(answer_of(victim, "alive") == "alive");
  CHECK(t.node->stats().refused == 1);
  CHECK(t.lines_with("refused a link to an actor the peer may not stop") == 1);
}

TEST_CASE("a handle to the service inside a message does not reach local code", "[net][authz]") {
  // A local actor that links every handle it is sent (a "join" pattern)
  // gets the service's handle from a peer, then fails: the service must
  // not go with it.
  target_node t;
  t.sys.register_name("registered", t.sys.spawn<authz::worker>());
  test::recorder<std::string> got;
  auto joiner = t.sys.spawn([&](actor& self) -> behavior {
    return {[&](const actor_ref& h) {
              if (h) self.link(h);
              got.push(h ? "a handle" : "an empty handle");
            },
            [&self](const authz::note&) { self.quit(exit_reason::error("joiner failed")); }};
  });
  const std::uint64_t joiner_id = test::wire_id(*t.node, joiner);
  const std::uint64_t service = t.service_wire_id(7);
  std::vector<std::byte> service_handle;
  {
    // The service's handle as a's own: its name, incarnation and wire id.
    std::vector<std::byte> mine;
    net::writer w{mine, t.node->context()};
    net::wire_encode(w, joiner);
    net::reader r{mine, net::decode_limits{}};
    std::uint8_t tag = 0;
    std::string node;
    std::uint64_t inc = 0;
    REQUIRE(r.fixed(tag));
    REQUIRE(net::wire_decode(r, node));
    REQUIRE(r.fixed(inc));
    net::writer h{service_handle};
    h.fixed(std::uint8_t{1});
    net::wire_encode(h, node);
    h.fixed(inc);
    net::wire_encode(h, std::string("127.0.0.1"));
    h.fixed(t.node->port());
    h.varint(service);
  }
  test::write_all(t.fd, message_frame(0, joiner_id, mallory_actor, 0,
                                      net::type_id_of("libactor.actor_ref"), service_handle));
  REQUIRE(got.wait_for_size(1));
  CHECK(got.items()[0] == "an empty handle");
  test::recorder<std::string> downs;
  t.sys.spawn([&](actor& self) -> behavior {
    self.monitor(joiner);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  test::write_all(t.fd, message_frame(0, joiner_id, mallory_actor, 0, net::wire_id_v<authz::note>,
                                      encoded(authz::note{"fail"})));
  REQUIRE(downs.wait_for_size(1));
  CHECK(service_serves(*t.node));
}

TEST_CASE("stop rights belong to the spawning process, not to whoever takes its name later",
          "[net][authz]") {
  target_node t;
  t.node->register_actor_type<authz::worker>("worker");
  actor_system sys_b{system_config{.workers = 1}};
  net::node b(sys_b, cfg("b"));
  REQUIRE(b.connect("127.0.0.1", t.node->port(), 10s));
  auto spawned = b.spawn_remote("a", "worker", 10s);
  REQUIRE(spawned);
  // a's own handle to the spawned actor, and its wire id.
  std::vector<std::byte> bytes;
  {
    net::writer w{bytes, b.context()};
    net::wire_encode(w, *spawned);
  }
  actor_ref local;
  {
    net::reader r{bytes, net::decode_limits{}, t.node->context()};
    REQUIRE(net::wire_decode(r, local));
  }
  REQUIRE(local);
  const std::uint64_t wire = test::wire_id(*t.node, local);
  // Kept when its spawner's process goes (as it does below): otherwise it
  // would stop with that process, whatever the newer one asks.
  t.node->detach(local);
  // Another process connects as "b" with a newer incarnation: it replaces
  // b's connection, but it did not spawn the actor.
  const int fd = test::raw_peer(t.node->port(), "b", ~std::uint64_t{0} >> 1, secret);
  test::write_all(fd, stop_frame(wire));
  std::vector<std::byte> lookup;
  {
    net::writer w{lookup};
    net::wire_encode(w, net::lookup_request{"nobody"});
  }
  test::write_all(fd, message_frame(0, 0, 0, 5, net::type_id_of("libactor.lookup"), lookup));
  REQUIRE(test::next_frame(fd, [](const net::frame& f) {
    return f.kind == net::frame_kind::message;
  }));  // the stop request was handled before this answer
  CHECK(answer_of(local, "alive") == "alive");
  CHECK(t.node->stats().refused == 1);
  ::close(fd);
}

TEST_CASE("a peer that keeps sending to many actors that stopped is not taken for a prober",
          "[net][authz]") {
  constexpr int n = 40;  // more than the ring of recent unknown ids
  target_node t(8);      // and a budget far below n
  std::vector<actor_ref> locals;
  for (int i = 0; i < n; ++i) {
    locals.push_back(t.sys.spawn<authz::worker>());
    REQUIRE(t.sys.register_name("w" + std::to_string(i), locals.back()));
  }
  actor_system sys_b{system_config{.workers = 1}};
  auto cb = cfg("b");
  net::node b(sys_b, cb);
  REQUIRE(b.connect("127.0.0.1", t.node->port(), 10s));
  std::vector<actor_ref> remote;
  for (int i = 0; i < n; ++i) {
    auto r = b.lookup("a", "w" + std::to_string(i), 10s);
    REQUIRE(r);
    remote.push_back(*r);
  }
  test::counter stopped;
  t.sys.spawn([&](actor& self) -> behavior {
    for (auto& l : locals) self.monitor(l);
    return {[&](const down_msg&) { stopped.add(); }};
  });
  for (auto& l : locals) t.sys.stop(l, exit_reason::normal());
  REQUIRE(stopped.wait_for_at_least(n));
  // A lookup through the service: its notices of the stops came first.
  REQUIRE(b.lookup("a", "nobody", 10s).has_value() == false);
  for (int round = 0; round < 50; ++round) {
    for (auto& h : remote) CHECK(net::send(h, authz::note{"late"}) == send_status::ok);
  }
  // On the same connection, after all of them.
  REQUIRE(b.lookup("a", "nobody", 10s).err().code == errc::invalid_argument);
  CHECK(t.node->stats().protocol_errors == 0);
  CHECK(b.stats().node_downs == 0);
  CHECK(t.lines_with("probing") == 0);
}

TEST_CASE("a peer's name cannot reorder or hide log text; well-formed UTF-8 stays as it is",
          "[net][authz]") {
  target_node t;
  // U+00E9 (kept), U+202E RIGHT-TO-LEFT OVERRIDE, U+0085 NEXT LINE (a C1
  // control), U+2028 LINE SEPARATOR, a byte that is not UTF-8, and an
  // overlong encoding of '/'.
  const std::string name =
      "n\xc3\xa9ud\xe2\x80\xae"
      "evil\xc2\x85x\xe2\x80\xa8y\xffz\xc0\xaf";
  const int fd = test::raw_peer(t.node->port(), name, mallory_inc, secret);
  test::write_all(fd, stop_frame(0));
  REQUIRE(test::eventually([&] { return t.node->stats().refused == 1; }));
  REQUIRE(test::eventually([&] {
    return t.lines_with("n\xc3\xa9ud\\u{202e}evil\\u{0085}x\\u{2028}y\\xffz\\xc0\\xaf") >= 1;
  }));
  for (auto& l : t.log.items()) {
    CHECK(l.find("\xe2\x80\xae") == std::string::npos);
    CHECK(l.find("\xc2\x85") == std::string::npos);
    CHECK(l.find('\xff') == std::string::npos);
  }
  ::close(fd);
}

TEST_CASE("a peer's name cannot forge log lines", "[net][authz]") {
  target_node t;
  const int fd = test::raw_peer(t.node->port(), "x\nnode a: node b is up", mallory_inc, secret);
  test::write_all(fd, stop_frame(0));
  REQUIRE(test::eventually([&] { return t.node->stats().refused == 1; }));
  REQUIRE(test::eventually([&] { return t.lines_with("x\\x0anode a: node b is up") >= 1; }));
  for (auto& l : t.log.items()) CHECK(l.find('\n') == std::string::npos);
  ::close(fd);
}
