// Nodes in one process, over real TCP on 127.0.0.1: send, ask, monitor and
// link across nodes; handles inside messages; ordering; remote spawn;
// refusals (wrong secret, unserializable type, full outbound queue); a node
// going away. The multi-process tests are in tests/net/.

#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <memory>

#include <sys/wait.h>
#include <unistd.h>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "net_support.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace app {
struct ping {
  std::int64_t n = 0;
  actor_ref reply_to;
};
LIBACTOR_WIRE_TYPE(ping, "test.ping", n, reply_to)

struct pong {
  std::int64_t n = 0;
};
LIBACTOR_WIRE_TYPE(pong, "test.pong", n)

struct seq {
  std::uint64_t i = 0;
};
LIBACTOR_WIRE_TYPE(seq, "test.seq", i)

struct add_req {
  std::int64_t a = 0;
  std::int64_t b = 0;
};
LIBACTOR_WIRE_TYPE(add_req, "test.add", a, b)

struct crash {
  std::string why;
};
LIBACTOR_WIRE_TYPE(crash, "test.crash", why)

struct local_only {
  int x = 0;
};

struct handle_box {
  actor_ref ref;
};
LIBACTOR_WIRE_TYPE(handle_box, "test.handle_box", ref)
}  // namespace app

namespace {

net::node_config cfg(std::string name,
                     std::string secret = "s3cret-node-test-0123456789-5f1d2a7e9b3c4d60a1b2") {
  return test::node_config(std::move(name), std::move(secret));
}

/// An actor that answers add_req, replies pong to ping.reply_to, and stops on crash.
behavior server(actor& self) {
  return {
      [](const app::add_req& r) { return r.a + r.b; },
      [](const app::ping& p) { p.reply_to.send(app::pong{p.n + 1}); },
      [&self](const app::crash& c) { self.quit(exit_reason::error(c.why)); },
  };
}

struct pair_of_nodes {
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  std::optional<net::node> a;
  std::optional<net::node> b;
  pair_of_nodes() {
    a.emplace(sys_a, cfg("a"));
    b.emplace(sys_b, cfg("b"));
    auto r = a->connect("127.0.0.1", b->port(), 10s);
    REQUIRE(r);
    REQUIRE(*r == "b");
  }
  ~pair_of_nodes() {
    a.reset();
    b.reset();
  }
};

/// TCP connections in state ESTABLISHED whose local port is one of
/// `ports` (the accepting end of a connection to a listening node).
std::size_t established_to(std::initializer_list<std::uint16_t> ports) {
  std::size_t n = 0;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state != "01") continue;
      const auto port =
          static_cast<std::uint16_t>(std::stoul(local.substr(local.find(':') + 1), nullptr, 16));
      for (auto p : ports) n += port == p ? 1 : 0;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("lookup, send and ask across nodes", "[node]") {
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  auto remote = n.a->lookup("b", "server", 10s);
  REQUIRE(remote);
  auto sum = remote->ask<std::int64_t>(app::add_req{40, 2}, 10s).get();
  REQUIRE(sum);
  CHECK(*sum == 42);

  auto missing = n.a->lookup("b", "nobody", 10s);
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == errc::invalid_argument);
  auto unknown = n.a->lookup("zz", "server", 10s);
  REQUIRE_FALSE(unknown);
}

TEST_CASE("await_peer waits for a node that dials in", "[node]") {
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  net::node a(sys_a, cfg("a"));
  net::node b(sys_b, cfg("b"));
  auto none = a.await_peer("b", 50ms);
  REQUIRE_FALSE(none);
  CHECK(none.err().code == errc::timeout);
  REQUIRE(b.connect("127.0.0.1", a.port(), 10s));
  REQUIRE(a.await_peer("b", 10s));
  CHECK(a.stats().peers_up == 1);
}

TEST_CASE("connect keeps trying until its whole timeout has passed", "[node]") {
  // Backoff doubles from reconnect_min to reconnect_max; the attempts must
  // not stop while a step of it would cross the deadline.
  actor_system sys{system_config{.workers = 1}};
  auto c = cfg("a");
  c.reconnect_min = 20ms;
  c.reconnect_max = 1s;
  net::node a(sys, c);
  const std::uint16_t port = test::closed_port();
  for (const auto timeout : {1500ms, 700ms}) {
    INFO("timeout " << timeout.count() << " ms");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = a.connect("127.0.0.1", port, timeout);
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::timeout);
    CHECK(took >= timeout);
  }
}

TEST_CASE("a peer seen up is counted up, also while its replacement is still being logged",
          "[node][restart]") {
  // a's log hook holds the line that reports b's replacement: by then the
  // new connection is in use, and stats() must say so.
  test::counter entered;
  test::counter released;
  actor_system sys_a{system_config{.workers = 2}};
  test::unrelated(sys_a, 2);
  auto ca = cfg("a");
  ca.log = [&](std::string_view line) {
    if (line.find("restarted") == std::string_view::npos) return;
    entered.add();
    (void)released.wait_for_at_least(1);
  };
  net::node a(sys_a, ca);
  actor_system sys_b1{system_config{.workers = 1}};
  net::node b1(sys_b1, cfg("b"));
  REQUIRE(b1.connect("127.0.0.1", a.port(), 10s));
  REQUIRE(a.await_peer("b", 10s));
  CHECK(a.stats().peers_up == 1);

  actor_system sys_b2{system_config{.workers = 1}};
  net::node b2(sys_b2, cfg("b"));
  auto dialled =
      std::async(std::launch::async, [&] { return b2.connect("127.0.0.1", a.port(), 10s); });
  const bool held = entered.wait_for_at_least(1);
  CHECK(held);
  const bool seen_up = static_cast<bool>(a.await_peer("b", 10s));
  const auto counted = a.stats().peers_up;
  released.add();
  REQUIRE(held);
  CHECK(seen_up);
  CHECK(counted == 1);
  CHECK(dialled.get());
  CHECK(a.stats().peers_up == 1);
}

TEST_CASE("a handle inside a message is used for the reply", "[node]") {
  test::recorder<std::int64_t> got;
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  auto remote = *n.a->lookup("b", "server", 10s);
  auto client = n.sys_a.spawn(
      [&](actor&) -> behavior { return {[&](const app::pong& p) { got.push(p.n); }}; });
  REQUIRE(remote.send(app::ping{7, client}) == send_status::ok);
  REQUIRE(got.wait_for_size(1));
  CHECK(got.items()[0] == 8);
}

TEST_CASE("an actor asks a remote actor with co_await and replies to current_sender", "[node]") {
  test::recorder<std::int64_t> got;
  pair_of_nodes n;
  // b's actor answers whoever sent the ping through current_sender().
  auto echo = n.sys_b.spawn([](actor& self) -> behavior {
    return {[&self](const app::pong& p) { self.current_sender().send(app::pong{p.n * 2}); },
            [](const app::add_req& r) { return r.a * r.b; }};
  });
  REQUIRE(n.sys_b.register_name("echo", echo));
  auto remote = *n.a->lookup("b", "echo", 10s);
  auto asker = n.sys_a.spawn([&](actor& self) -> behavior {
    return {[&, remote](app::seq) -> task<void> {
              auto r = co_await self.ask<std::int64_t>(remote, app::add_req{6, 7}, 10s);
              got.push(r ? *r : -1);
              remote.send(app::pong{21});
            },
            [&](const app::pong& p) { got.push(p.n); }};
  });
  asker.send(app::seq{});
  REQUIRE(got.wait_for_size(2));
  CHECK(got.items() == std::vector<std::int64_t>{42, 42});
}

TEST_CASE("messages from one sender arrive complete and in order", "[node]") {
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> out_of_order{false};
  test::counter done;
  pair_of_nodes n;
  const std::uint64_t total = test::scaled(200'000);
  auto sink = n.sys_b.spawn([&](actor&) -> behavior {
    return {[&](const app::seq& s) {
      if (s.i != next.load(std::memory_order_seq_cst))
        out_of_order.store(true, std::memory_order_seq_cst);
      next.store(s.i + 1, std::memory_order_seq_cst);
      if (s.i + 1 == total) done.add();
    }};
  });
  REQUIRE(n.sys_b.register_name("sink", sink));
  auto remote = *n.a->lookup("b", "sink", 10s);
  // From inside an actor (batched per handler) and from outside one.
  auto sender = n.sys_a.spawn([&, remote](actor&) -> behavior {
    return {[&, remote](const app::pong& p) {
      for (std::uint64_t i = 0; i < 1000; ++i)
        remote.send(app::seq{static_cast<std::uint64_t>(p.n) + i});
    }};
  });
  for (std::uint64_t i = 0; i < total; i += 1000)
    sender.send(app::pong{static_cast<std::int64_t>(i)});
  REQUIRE(done.wait_for_at_least(1, 120s));
  CHECK_FALSE(out_of_order.load(std::memory_order_seq_cst));
  // Batched writes: many messages per write system call.
  const auto st = n.a->stats();
  CHECK(st.messages_out >= total);
  CHECK(st.writes * 10 < st.messages_out);
  CHECK(next.load(std::memory_order_seq_cst) == total);
}

namespace app {
struct big_poke {
  std::string padding;  // larger than the write threshold: written at once
  actor_ref reply_to;
};
LIBACTOR_WIRE_TYPE(big_poke, "test.big_poke", padding, reply_to)
struct marker {
  std::int64_t n = 0;
};
LIBACTOR_WIRE_TYPE(marker, "test.marker", n)
}  // namespace app

TEST_CASE("a handler's local sends before a remote send arrive before anything it causes",
          "[node][ordering]") {
  // S sends 1 and 2 to X (the second waits in S's batch), then a large
  // message to Y on the other node, which answers X at once. X must see 1
  // and 2 before Y's answer, even while S's handler is still running.
  pair_of_nodes n;
  auto y = n.sys_b.spawn([](actor&) -> behavior {
    return {[](const app::big_poke& p) { p.reply_to.send(app::marker{-1}); }};
  });
  REQUIRE(n.sys_b.register_name("y", y));
  auto remote_y = *n.a->lookup("b", "y", 10s);
  test::recorder<std::int64_t> at_x;
  std::atomic<bool> answered{false};
  auto x = n.sys_a.spawn([&](actor&) -> behavior {
    return {[&](const app::marker& m) {
      if (m.n == -1) answered.store(true, std::memory_order_seq_cst);
      at_x.push(m.n);
    }};
  });
  struct go {};
  struct warm_up {};
  auto s = n.sys_a.spawn([&, x, remote_y](actor&) -> behavior {
    return {[x, remote_y](warm_up) {
              // Exports S and X first (which sends to this node's service
              // actor, and would flush S's batch as a side effect).
              remote_y.send(app::big_poke{"", x});
            },
            [&, x, remote_y](go) {
              x.send(app::marker{1});
              x.send(app::marker{2});
              remote_y.send(app::big_poke{std::string(100 * 1024, 'p'), x});
              // Keep the handler running until Y's answer reached X (or a while).
              const auto until = std::chrono::steady_clock::now() + 3s;
              while (!answered.load(std::memory_order_seq_cst) &&
                     std::chrono::steady_clock::now() < until) {
                std::this_thread::yield();
              }
            }};
  });
  s.send(warm_up{});
  REQUIRE(at_x.wait_for_size(1));
  answered.store(false, std::memory_order_seq_cst);
  s.send(go{});
  REQUIRE(at_x.wait_for_size(4));
  CHECK(at_x.items() == std::vector<std::int64_t>{-1, 1, 2, -1});
}

TEST_CASE("monitor and link a remote actor", "[node]") {
  test::recorder<std::string> seen;
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  n.b->allow_remote_stop(srv);  // a link lets the linker's exit stop it
  auto remote = *n.a->lookup("b", "server", 10s);
  auto watcher = n.sys_a.spawn([&, remote](actor& self) -> behavior {
    self.monitor(remote);
    return {[&, remote](const down_msg& d) {
      seen.push(std::string(d.source == remote ? "same" : "other") + " " + d.reason.to_string());
    }};
  });
  auto linked = n.sys_a.spawn([&, remote](actor& self) -> behavior {
    self.trap_exit(true);
    self.link(remote);
    return {[&](const exit_msg& e) { seen.push("exit " + e.reason.to_string()); }};
  });
  // The watch must be installed on b before the crash: an ask after the
  // monitor/link round-trips through the same connection.
  REQUIRE(remote.ask<std::int64_t>(app::add_req{1, 1}, 10s).get());
  remote.send(app::crash{"boom"});
  REQUIRE(seen.wait_for_size(2));
  auto items = seen.items();
  std::sort(items.begin(), items.end());
  CHECK(items[0] == "exit error: boom");
  CHECK(items[1] == "same error: boom");
}

TEST_CASE("actor_system::stop on a remote handle stops the remote actor its node allows to",
          "[node]") {
  test::recorder<std::string> seen;
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  n.b->allow_remote_stop(srv);
  auto observer = n.sys_b.spawn([&, srv](actor& self) -> behavior {
    self.monitor(srv);
    return {[&](const down_msg& d) { seen.push(d.reason.to_string()); }};
  });
  (void)observer;
  auto remote = *n.a->lookup("b", "server", 10s);
  n.sys_a.stop(remote, exit_reason::killed("by node a"));
  REQUIRE(seen.wait_for_size(1));
  CHECK(seen.items()[0] == "killed: by node a");
}

TEST_CASE("a linked local actor's failure stops the remote actor", "[node]") {
  test::recorder<std::string> seen;
  pair_of_nodes n;
  auto target = n.sys_b.spawn([](actor&) -> behavior { return {[](const app::seq&) {}}; });
  auto observer = n.sys_b.spawn([&, target](actor& self) -> behavior {
    self.monitor(target);
    return {[&](const down_msg& d) { seen.push(d.reason.to_string()); }};
  });
  (void)observer;
  REQUIRE(n.sys_b.register_name("target", target));
  n.b->allow_remote_stop(target);
  auto remote = *n.a->lookup("b", "target", 10s);
  auto local = n.sys_a.spawn([remote](actor& self) -> behavior {
    self.link(remote);
    return {[&self](const app::crash& c) { self.quit(exit_reason::error(c.why)); }};
  });
  local.send(app::crash{"linked failure"});
  REQUIRE(seen.wait_for_size(1));
  CHECK(seen.items()[0] == "error: linked failure");
}

TEST_CASE("remote links are two-way: recorded on both nodes, undone by unlink", "[node]") {
  test::recorder<std::string> seen;
  pair_of_nodes n;
  // Two targets on b that trap exits and record them.
  std::vector<actor_ref> targets;
  for (int i = 0; i < 2; ++i) {
    auto t = n.sys_b.spawn([&seen, i](actor& self) -> behavior {
      self.trap_exit(true);
      return {[](std::int64_t x) { return x; },
              [&seen, i](const exit_msg& e) {
                seen.push("target " + std::to_string(i) + " " + e.reason.to_string());
              }};
    });
    REQUIRE(n.sys_b.register_name("target" + std::to_string(i), t));
    n.b->allow_remote_stop(t);
    targets.push_back(t);
  }
  auto r0 = *n.a->lookup("b", "target0", 10s);
  auto r1 = *n.a->lookup("b", "target1", 10s);
  struct unlink_it {};
  auto local = n.sys_a.spawn([r0, r1](actor& self) -> behavior {
    self.link(r0);
    self.link(r1);
    return {[&self, r1](unlink_it) { self.unlink(r1); }};
  });
  REQUIRE(local.ask<void>(unlink_it{}, 10s).get());
  // A round trip on the same connection: the link and unlink frames are in.
  REQUIRE(net::ask<std::int64_t>(r1, std::int64_t{1}, 10s).get());
  // Node a goes away: b's side of each remaining link fires with node_down.
  n.a.reset();
  REQUIRE(seen.wait_for_size(1));
  // target1's exit, had there been one, was queued in the same pass: an ask
  // now is handled after it.
  REQUIRE(targets[1].ask<std::int64_t>(std::int64_t{2}, 10s).get());
  auto items = seen.items();
  REQUIRE(items.size() == 1);
  CHECK(items[0].rfind("target 0 node_down", 0) == 0);
}

TEST_CASE("links a peer makes to one actor are bounded; a refused linker is told", "[node]") {
  // Declared before the systems: the linkers record into it until their
  // system has stopped them.
  test::recorder<std::string> exits;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  auto cb = cfg("b");
  cb.max_links_per_actor = 2;
  std::vector<std::string> logged;
  std::mutex log_mu;
  cb.log = [&](std::string_view line) {
    std::lock_guard lock(log_mu);
    logged.emplace_back(line);
  };
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cb);
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto hub = sys_b.spawn([](actor&) -> behavior { return {[](std::int64_t x) { return x; }}; });
  REQUIRE(sys_b.register_name("hub", hub));
  b->allow_remote_stop(hub);  // a link lets the linker's exit stop the hub
  auto remote_hub = *a->lookup("b", "hub", 10s);
  struct link_now {};
  std::vector<actor_ref> linkers;
  for (int i = 0; i < 4; ++i) {
    linkers.push_back(sys_a.spawn([&exits, remote_hub, i](actor& self) -> behavior {
      self.trap_exit(true);
      return {[&self, remote_hub](link_now) { self.link(remote_hub); },
              [&exits, i](const exit_msg& e) {
                exits.push(std::to_string(i) + " " + e.reason.to_string());
              }};
    }));
  }
  // One at a time, so that which ones are refused is known.
  for (auto& l : linkers) {
    REQUIRE(l.ask<void>(link_now{}, 10s).get());
    REQUIRE(net::ask<std::int64_t>(remote_hub, std::int64_t{1}, 10s).get());
  }
  REQUIRE(exits.wait_for_size(2));
  auto items = exits.items();
  std::sort(items.begin(), items.end());
  REQUIRE(items.size() == 2);
  CHECK(items[0].rfind("2 error: link refused: actor ", 0) == 0);
  CHECK(items[1].rfind("3 error: link refused: actor ", 0) == 0);
  CHECK(items[0].find("max_links_per_actor (2)") != std::string::npos);
  {
    std::lock_guard lock(log_mu);
    // Logged once per rule and peer; both refusals are counted.
    CHECK(std::count_if(logged.begin(), logged.end(), [](const std::string& l) {
            return l.find("refused a link past max_links_per_actor") != std::string::npos &&
                   l.find("from node a") != std::string::npos;
          }) == 1);
  }
  CHECK(b->stats().refused == 2);
  // The two links that were accepted are real: the hub's exit reaches both.
  sys_b.stop(hub, exit_reason::error("hub gone"));
  REQUIRE(exits.wait_for_size(4));
  items = exits.items();
  std::sort(items.begin(), items.end());
  REQUIRE(items.size() == 4);
  CHECK(items[0] == "0 error: hub gone");
  CHECK(items[1] == "1 error: hub gone");
  a.reset();
  b.reset();
}

TEST_CASE("remote spawn of a registered actor type", "[node]") {
  struct adder : actor {
    explicit adder(std::int64_t base) : base_(base) {}
    behavior make_behavior() override {
      return {[this](const app::add_req& r) { return base_ + r.a + r.b; }};
    }
    std::int64_t base_;
  };
  pair_of_nodes n;
  n.b->register_actor_type<adder, std::int64_t>("adder");
  auto spawned = n.a->spawn_remote("b", "adder", std::int64_t{100}, 10s);
  REQUIRE(spawned);
  auto r = spawned->ask<std::int64_t>(app::add_req{1, 2}, 10s).get();
  REQUIRE(r);
  CHECK(*r == 103);
  auto bad = n.a->spawn_remote("b", "no-such-type", 10s);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().text.find("no-such-type") != std::string::npos);
}

// The compile-time check of net::send and net::ask.
static_assert(net::remote_message<app::ping>);
static_assert(net::remote_message<std::string>);
static_assert(net::remote_message<std::int64_t>);
static_assert(!net::remote_message<app::local_only>);
static_assert(!net::remote_message<std::vector<int>>);  // encodable, but needs register_message
// That net::send and net::ask refuse the others, with a message that names
// LIBACTOR_WIRE_TYPE, is checked by tests/compile_fail/undeclared_*.cpp.

TEST_CASE("net::send and net::ask: statically checked remote messages", "[node]") {
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  auto remote = *n.a->lookup("b", "server", 10s);
  auto sum = net::ask<std::int64_t>(remote, app::add_req{1, 2}, 10s).get();
  REQUIRE(sum);
  CHECK(*sum == 3);
  CHECK(net::send(remote, app::add_req{4, 5}) == send_status::ok);
}

TEST_CASE("a type without a wire declaration is refused at the sender", "[node]") {
  pair_of_nodes n;
  auto srv = n.sys_b.spawn(server);
  REQUIRE(n.sys_b.register_name("server", srv));
  auto remote = *n.a->lookup("b", "server", 10s);
  const auto before = n.sys_a.stats().dead_letters;
  CHECK(remote.send(app::local_only{1}) == send_status::not_serializable);
  CHECK(n.sys_a.stats().dead_letters == before + 1);
  CHECK(n.a->stats().not_serializable == 1);
  auto r = remote.ask<int>(app::local_only{2}, 10s).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::not_serializable);
  // The connection is unaffected.
  CHECK(remote.ask<std::int64_t>(app::add_req{2, 3}, 10s).get().value() == 5);
}

TEST_CASE("an answer that cannot cross the network reaches the asker as an error, not a timeout",
          "[node]") {
  std::vector<std::string> logged;
  std::mutex log_mu;
  libactor::system_config sb;
  sb.workers = 2;
  sb.logger = [&](const libactor::log_record& r) {
    std::lock_guard lock(log_mu);
    logged.emplace_back(r.text);
  };
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{sb};
  auto cb = cfg("b");
  cb.max_frame_size = 4096;
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cb);
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto odd = sys_b.spawn([](actor&) -> behavior {
    return {
        [](std::int64_t n) -> std::string { return std::string(static_cast<std::size_t>(n), 'x'); },
        [](const std::string&) { return app::local_only{7}; }};
  });
  REQUIRE(sys_b.register_name("odd", odd));
  auto remote = *a->lookup("b", "odd", 10s);
  const auto t0 = std::chrono::steady_clock::now();
  // The reply type has no wire declaration on b.
  auto r1 = remote.ask<int>(std::string("give me something local"), 30s).get();
  REQUIRE_FALSE(r1);
  CHECK(r1.err().code == errc::not_serializable);
  CHECK(r1.err().text.find("local_only") != std::string::npos);
  // The reply is larger than b's frames.
  auto r2 = net::ask<std::string>(remote, std::int64_t{10'000}, 30s).get();
  REQUIRE_FALSE(r2);
  CHECK(r2.err().code == errc::invalid_argument);
  CHECK(r2.err().text.find("exceeds the maximum frame size") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 20s);  // answered, not timed out
  // b logged why, naming the refusal rather than a stopped actor.
  {
    std::lock_guard lock(log_mu);
    CHECK(std::any_of(logged.begin(), logged.end(), [](const std::string& l) {
      return l.find("not delivered: not_serializable") != std::string::npos;
    }));
    CHECK(std::none_of(logged.begin(), logged.end(), [](const std::string& l) {
      return l.find("which has stopped") != std::string::npos;
    }));
  }
  a.reset();
  b.reset();
}

TEST_CASE("destroying an actor system before its node stops the process with a clear message",
          "[node]") {
  int err[2];
  REQUIRE(::pipe(err) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child dies by the runtime's abort, not through the test
    // framework's fatal-signal handler (which reports and exits on its own
    // terms, and under ThreadSanitizer not always by the signal).
    ::signal(SIGABRT, SIG_DFL);
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    {
      auto sys = std::make_unique<actor_system>(system_config{.workers = 1});
      net::node n(*sys, cfg("solo"));
      sys.reset();  // the wrong order
    }
    ::_exit(0);
  }
  ::close(err[1]);
  std::string text;
  char buf[512];
  for (ssize_t k; (k = ::read(err[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(k));
  ::close(err[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(text.find("destroy the node first") != std::string::npos);
}

TEST_CASE("a message larger than the maximum frame is refused at the sender", "[node]") {
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  auto ca = cfg("a");
  ca.max_frame_size = 4096;
  ca.max_outbound_bytes = 1 << 20;
  net::node a(sys_a, ca);
  net::node b(sys_b, cfg("b"));
  auto srv = sys_b.spawn(
      [](actor&) -> behavior { return {[](const std::string& s) { return s.size(); }}; });
  REQUIRE(sys_b.register_name("len", srv));
  REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
  auto remote = *a.lookup("b", "len", 10s);
  const auto before = sys_a.stats().dead_letters;
  CHECK(remote.send(std::string(10'000, 'x')) == send_status::dead_letter);
  CHECK(sys_a.stats().dead_letters == before + 1);
  auto r = remote.ask<std::uint64_t>(std::string(10'000, 'x'), 10s).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::invalid_argument);
  CHECK(r.err().text.find("maximum frame size") != std::string::npos);
  // Below the limit it goes through.
  CHECK(remote.ask<std::uint64_t>(std::string(1000, 'x'), 10s).get().value() == 1000);
}

TEST_CASE("a node refuses a secret under 128 bits, and says how to make one", "[node]") {
  actor_system sys{system_config{.workers = 1}};
  for (const std::string weak :
       {"s3cret", "0123456789abcdef0123456789abcde", "Tr0ub4dor&3", "password1234567\r"}) {
    INFO(weak);
    try {
      net::node n(sys, cfg("a", weak));
      FAIL("a weak secret was accepted");
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      CHECK(what.find("at least 128 are needed") != std::string::npos);
      CHECK(what.find("--gen-secret") != std::string::npos);
    }
  }
  net::node strong(sys, cfg("a", net::generate_secret()));
  CHECK(strong.port() != 0);
}

TEST_CASE("a wrong secret is refused on both sides with a clear error", "[node]") {
  test::recorder<std::string> logs_b;
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  auto cb = cfg("b", "0123456789abcdef0123456789abcdef");
  cb.log = [&](std::string_view l) { logs_b.push(std::string(l)); };
  net::node b(sys_b, cb);
  net::node a(sys_a, cfg("a", "fedcba9876543210fedcba9876543210"));
  auto r = a.connect("127.0.0.1", b.port(), 10s);
  REQUIRE_FALSE(r);
  INFO(r.err().to_string());
  CHECK(r.err().text.find("auth") != std::string::npos);
  REQUIRE(logs_b.wait_for_size(1));
  CHECK(logs_b.items()[0].find("auth_failed") != std::string::npos);
  CHECK(b.stats().handshakes_failed >= 1);
  CHECK(a.stats().handshakes_failed >= 1);
}

TEST_CASE("a node going away fires monitors, fails asks and counts dead letters", "[node]") {
  test::recorder<std::string> seen;
  actor_system sys_a{system_config{.workers = 2}};
  net::node a(sys_a, cfg("a"));
  actor_ref remote;
  {
    actor_system sys_b{system_config{.workers = 2}};
    net::node b(sys_b, cfg("b"));
    // An actor that never answers: the ask below is pending when b goes.
    auto mute = sys_b.spawn([](actor&) -> behavior {
      return {[](app::add_req) -> task<std::int64_t> {
        co_await std::suspend_always{};
        co_return 0;
      }};
    });
    REQUIRE(sys_b.register_name("mute", mute));
    REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
    remote = *a.lookup("b", "mute", 10s);
    auto watcher = sys_a.spawn([&, remote](actor& self) -> behavior {
      self.monitor(remote);
      return {[&](const down_msg& d) { seen.push(d.reason.to_string()); },
              [&, remote](app::seq) -> task<void> {
                auto r = co_await self.ask<std::int64_t>(remote, app::add_req{1, 2}, 60s);
                seen.push(r ? "answered" : std::string("ask: ") + r.err().to_string());
              }};
    });
    auto node_watcher = sys_a.spawn([&](actor&) -> behavior {
      return {[&](const net::node_down_msg& d) { seen.push("node " + d.node); },
              [](const net::node_up_msg&) {}};
    });
    a.monitor_node("b", node_watcher);
    watcher.send(app::seq{});
    // The ask is on its way when b's node and system go away.
    REQUIRE(remote.ask<std::int64_t>(app::add_req{0, 0}, 200ms).get().err().code == errc::timeout);
  }
  REQUIRE(seen.wait_for_size(3));
  auto items = seen.items();
  std::sort(items.begin(), items.end());
  CHECK(items[0].rfind("ask: node_down", 0) == 0);
  CHECK(items[1] == "node b");
  CHECK(items[2].rfind("node_down: node b unreachable", 0) == 0);
  const auto before = sys_a.stats().dead_letters;
  CHECK(remote.send(app::seq{1}) == send_status::dead_letter);
  CHECK(sys_a.stats().dead_letters == before + 1);
  auto r = remote.ask<std::int64_t>(app::add_req{1, 1}, 10s).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::node_down);
}

TEST_CASE("a dialled peer that comes back is reconnected", "[node]") {
  test::recorder<std::string> events;
  actor_system sys_a{system_config{.workers = 2}};
  net::node a(sys_a, cfg("a"));
  std::uint16_t port = 0;
  auto node_watcher = sys_a.spawn([&](actor&) -> behavior {
    return {[&](const net::node_down_msg& d) { events.push("down " + d.node); },
            [&](const net::node_up_msg& u) { events.push("up " + u.node); }};
  });
  a.monitor_node("b", node_watcher);  // b unknown yet: reported down at once
  REQUIRE(events.wait_for_size(1));
  {
    actor_system sys_b{system_config{.workers = 1}};
    net::node b(sys_b, cfg("b"));
    port = b.port();
    REQUIRE(a.connect("127.0.0.1", port, 10s));
    REQUIRE(events.wait_for_size(2));
  }
  REQUIRE(events.wait_for_size(3));
  // Same port again: the redial loop finds it.
  actor_system sys_b{system_config{.workers = 1}};
  auto cb = cfg("b");
  cb.port = port;
  net::node b(sys_b, cb);
  auto srv = sys_b.spawn(server);
  REQUIRE(sys_b.register_name("server", srv));
  REQUIRE(events.wait_for_size(4));
  CHECK(events.items() == std::vector<std::string>{"down b", "up b", "down b", "up b"});
  auto remote = a.lookup("b", "server", 10s);
  REQUIRE(remote);
  CHECK(remote->ask<std::int64_t>(app::add_req{20, 22}, 10s).get().value() == 42);
}

TEST_CASE("a node restarted while its old process still runs replaces it; the old one stays out",
          "[node][restart]") {
  test::recorder<std::string> old_log;
  test::recorder<std::string> downs;
  actor_system sys_a{system_config{.workers = 2}};
  test::unrelated(sys_a, 3);
  net::node a(sys_a, cfg("a"));
  actor_system sys_b1{system_config{.workers = 1}};
  auto c1 = cfg("b");
  c1.log = [&](std::string_view line) { old_log.push(std::string(line)); };
  std::optional<net::node> b1;
  b1.emplace(sys_b1, c1);
  REQUIRE(sys_b1.register_name("server", sys_b1.spawn(server)));
  // b dials a, so the old process redials after it loses the connection.
  REQUIRE(b1->connect("127.0.0.1", a.port(), 10s));
  auto old = a.lookup("b", "server", 10s);
  REQUIRE(old);
  sys_a.spawn([&, old](actor& self) -> behavior {
    self.monitor(*old);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  REQUIRE(old->ask<std::int64_t>(app::add_req{1, 1}, 10s).get().value() == 2);

  // A new process named b starts and connects while the old one runs on.
  actor_system sys_b2{system_config{.workers = 1}};
  net::node b2(sys_b2, cfg("b"));
  REQUIRE(sys_b2.register_name("server", sys_b2.spawn(server)));
  REQUIRE(sys_b2.register_name("second", sys_b2.spawn(server)));
  REQUIRE(b2.connect("127.0.0.1", a.port(), 10s));

  // The old incarnation's actors are gone for a, with a reason that says so.
  REQUIRE(downs.wait_for_size(1));
  CHECK(downs.items()[0].find("restarted") != std::string::npos);
  CHECK(old->send(app::seq{1}) == send_status::dead_letter);
  // Lookups reach the new process ("second" exists only there).
  auto fresh = a.lookup("b", "second", 10s);
  REQUIRE(fresh);
  CHECK(fresh->ask<std::int64_t>(app::add_req{2, 3}, 10s).get().value() == 5);
  // The old process keeps redialling and is refused each time; a stays on
  // the new one.
  auto refusals = [&] {
    std::size_t n = 0;
    for (auto& l : old_log.items()) n += l.find("stale_incarnation") != std::string::npos;
    return n;
  };
  // It learns why at once (the old connection was refused, not just closed),
  // logs it once, and its redials keep being refused without more lines.
  REQUIRE(test::eventually([&] { return refusals() >= 1; }));
  const auto dials = b1->stats().dialled;
  REQUIRE(test::eventually([&] { return b1->stats().dialled >= dials + 2; }));
  CHECK(refusals() == 1);
  bool told_why = false;
  for (auto& l : old_log.items()) {
    told_why = told_why || l.find("this process was replaced") != std::string::npos;
  }
  CHECK(told_why);
  CHECK(a.stats().peers_up == 1);
  auto again = a.lookup("b", "second", 10s);
  REQUIRE(again);
  CHECK(again->ask<std::int64_t>(app::add_req{4, 5}, 10s).get().value() == 9);
  CHECK(b2.stats().node_downs == 0);
  b1.reset();
}

TEST_CASE(
    "a handle to an actor of a restarted node stays dead, also after crossing the network "
    "again",
    "[node][restart]") {
  test::recorder<std::string> seen;  // what the new process's actor received
  test::recorder<std::string> downs;
  actor_system sys_a{system_config{.workers = 2}};
  test::unrelated(sys_a, 5);
  net::node a(sys_a, cfg("a"));
  auto recording = [&](actor&) -> behavior {
    return {[&](const app::seq& q) { seen.push("seq " + std::to_string(q.i)); },
            [&](const app::add_req& r) {
              seen.push("add");
              return r.a + r.b;
            }};
  };
  auto echo = [](actor&) -> behavior { return {[](const app::handle_box& h) { return h; }}; };
  actor_ref old_target;
  std::uint64_t old_id = 0;
  {
    actor_system sys_b{system_config{.workers = 1}};
    net::node b(sys_b, cfg("b"));
    REQUIRE(sys_b.register_name("echo", sys_b.spawn(echo)));
    auto t = sys_b.spawn(recording);
    old_id = t.id();
    REQUIRE(sys_b.register_name("target", t));
    REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
    old_target = *a.lookup("b", "target", 10s);
  }
  // b restarts; its actors get the same ids as before.
  actor_system sys_b{system_config{.workers = 1}};
  net::node b(sys_b, cfg("b"));
  REQUIRE(sys_b.register_name("echo", sys_b.spawn(echo)));
  auto t2 = sys_b.spawn(recording);
  REQUIRE(t2.id() == old_id);  // the collision that would bring the handle back to life
  REQUIRE(sys_b.register_name("target", t2));
  REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
  // The new actor is exported (its handle left b), as any actor a peer uses.
  auto current = a.lookup("b", "target", 10s);
  REQUIRE(current);
  auto echo2 = a.lookup("b", "echo", 10s);
  REQUIRE(echo2);
  // a sends the old handle to b, which sends it back.
  auto back = echo2->ask<app::handle_box>(app::handle_box{old_target}, 10s).get();
  REQUIRE(back);
  REQUIRE(back->ref);
  const actor_ref returned = back->ref;
  CHECK(returned.send(app::seq{1}) == send_status::dead_letter);
  auto r = returned.ask<std::int64_t>(app::add_req{1, 2}, 10s).get();
  REQUIRE_FALSE(r);
  sys_a.spawn([&, returned](actor& self) -> behavior {
    self.monitor(returned);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  REQUIRE(downs.wait_for_size(1));
  // b itself, given the old handle, does not deliver to its new actor either.
  auto at_b = echo2->ask<app::handle_box>(app::handle_box{old_target}, 10s).get();
  REQUIRE(at_b);
  // The new actor got only what was sent through a handle of its own.
  REQUIRE(current->send(app::seq{99}) == send_status::ok);
  REQUIRE(seen.wait_for_size(1));
  CHECK(seen.items() == std::vector<std::string>{"seq 99"});
}

TEST_CASE("two nodes dialling each other at once end with one connection, and no node down",
          "[node]") {
  const int rounds = static_cast<int>(test::scaled(8)) + 2;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    actor_system sys_a{system_config{.workers = 2}};
    actor_system sys_b{system_config{.workers = 2}};
    net::node a(sys_a, cfg("a"));
    net::node b(sys_b, cfg("b"));
    REQUIRE(sys_a.register_name("srv", sys_a.spawn(server)));
    REQUIRE(sys_b.register_name("srv", sys_b.spawn(server)));
    expected<std::string> from_b = error{errc::timeout, "not run"};
    std::thread other([&] { from_b = b.connect("127.0.0.1", a.port(), 10s); });
    auto from_a = a.connect("127.0.0.1", b.port(), 10s);
    other.join();
    REQUIRE(from_a);
    REQUIRE(from_b);
    CHECK(*from_a == "b");
    CHECK(*from_b == "a");
    REQUIRE(test::eventually([&] { return established_to({a.port(), b.port()}) == 1; }));
    CHECK(a.stats().node_downs == 0);
    CHECK(b.stats().node_downs == 0);
    CHECK(a.stats().peers_up == 1);
    CHECK(b.stats().peers_up == 1);
    CHECK(a.lookup("b", "srv", 10s)
              .value()
              .ask<std::int64_t>(app::add_req{1, 2}, 10s)
              .get()
              .value() == 3);
    CHECK(b.lookup("a", "srv", 10s)
              .value()
              .ask<std::int64_t>(app::add_req{3, 4}, 10s)
              .get()
              .value() == 7);
  }
}

TEST_CASE("a handler that runs for seconds does not get its node declared down",
          "[node][liveness]") {
  // One worker: nothing else can run meanwhile, but heartbeats must flow.
  // Sixteen: the other workers keep serving, and reads must reach them.
  for (const unsigned workers : {1u, 16u}) {
    INFO(workers << " workers");
    test::recorder<std::string> slow_done;
    actor_system sys_a{system_config{.workers = 2}};
    actor_system sys_b{system_config{.workers = workers}};
    net::node a(sys_a, cfg("a"));
    net::node b(sys_b, cfg("b"));
    const auto timeout = cfg("b").heartbeat_timeout;
    auto slow = sys_b.spawn([&, timeout](actor&) -> behavior {
      return {[&, timeout](const app::seq&) {
        // Twice the heartbeat timeout inside one handler (the scenario, not a wait).
        std::this_thread::sleep_for(2 * timeout);
        slow_done.push("done");
      }};
    });
    REQUIRE(sys_b.register_name("slow", slow));
    REQUIRE(sys_b.register_name("fast", sys_b.spawn(server)));
    REQUIRE(a.connect("127.0.0.1", b.port(), 10s));
    auto slow_ref = *a.lookup("b", "slow", 10s);
    auto fast_ref = *a.lookup("b", "fast", 10s);
    // The message is read by the worker waiting in b's I/O driver, which then
    // runs the long handler.
    REQUIRE(slow_ref.send(app::seq{1}) == send_status::ok);
    std::int64_t answered = 0;
    if (workers > 1) {
      while (slow_done.items().empty()) {
        auto r = fast_ref.ask<std::int64_t>(app::add_req{answered, 1}, 10s).get();
        REQUIRE(r);
        REQUIRE(*r == answered + 1);
        ++answered;
      }
      CHECK(answered > 1);
    }
    REQUIRE(slow_done.wait_for_size(1));
    CHECK(fast_ref.ask<std::int64_t>(app::add_req{answered, 2}, 10s).get().value() == answered + 2);
    CHECK(a.stats().node_downs == 0);
    CHECK(b.stats().node_downs == 0);
    CHECK(slow_ref.send(app::seq{2}) == send_status::ok);  // the handle stayed alive
  }
}
