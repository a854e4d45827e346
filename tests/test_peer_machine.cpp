// The peer state machine (net/src/peer_machine.hpp) without sockets: single
// transitions, then whole clusters of machines exchanging node_info, error
// frames and closes over simulated connections, in every order a seeded
// scheduler picks: dial and accept racing, a restart while the old
// connection is half-open, a restart during the handshake, fast restarts,
// an old incarnation that is still alive.

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "peer_machine.hpp"
#include "support.hpp"

using namespace libactor::net::detail;
using kind = peer_action::kind;
using namespace std::chrono_literals;

namespace {

// Simulated scenarios are cheap (microseconds each): many more orders than
// the suite's default seed count.
constexpr std::uint64_t sim_seeds = 10 * test::seeds;

peer_machine::settings settings(bool own_dial_wins) {
  return {.own_dial_wins = own_dial_wins, .reconnect_min = 10ms, .reconnect_max = 80ms};
}

bool has(const peer_machine::actions& a, kind k, conn_id c = 0) {
  return std::any_of(a.begin(), a.end(),
                     [&](const peer_action& x) { return x.what == k && (c == 0 || x.conn == c); });
}

// --- a simulated cluster -----------------------------------------------------
//
// Processes hold one machine per peer name. A connection links two
// processes; each end has a FIFO of what the other end sent (node_info,
// an error frame, a close). The scheduler picks, at random from a seed,
// one enabled step: a handshake finishing at a dialler, a delivery, a
// redial timer, or a scripted event (a process starting, dying, dialling).

struct process {
  std::string name;
  std::uint64_t inc = 0;
  bool alive = true;
  std::map<std::string, std::unique_ptr<peer_machine>> peers;
  std::map<std::string, int> promotions, teardowns;
};

enum class msg { node_info, error, fin };

struct connection {
  conn_id id = 0;
  int dialler = 0, acceptor = 0;  // process indices
  bool authed = false;            // the dialler's handshake finished
  bool open[2] = {true, true};    // [0]: dialler's end, [1]: acceptor's end
  std::deque<std::pair<msg, std::uint64_t>> to[2];
};

struct cluster {
  std::vector<process> procs;
  std::map<conn_id, connection> conns;
  std::vector<std::pair<int, std::string>> timers;  // due redials
  conn_id next_conn = 100;                          // not 1: ids differ from indices and counts
  std::mt19937_64 rng;
  std::vector<std::string> trace;

  explicit cluster(std::uint64_t seed) : rng(seed) {}

  int start(const std::string& name, std::uint64_t inc) {
    procs.push_back(process{name, inc});
    return static_cast<int>(procs.size()) - 1;
  }
  peer_machine& machine(int p, const std::string& peer) {
    auto& slot = procs[p].peers[peer];
    if (!slot) slot = std::make_unique<peer_machine>(settings(procs[p].name < peer));
    return *slot;
  }
  int find_live(const std::string& name) {
    for (int i = static_cast<int>(procs.size()) - 1; i >= 0; --i) {
      if (procs[i].name == name && procs[i].alive) return i;
    }
    return -1;
  }
  std::string peer_of(const connection& c, int p) const {
    return procs[c.dialler == p ? c.acceptor : c.dialler].name;
  }
  int end_of(const connection& c, int p) const { return c.dialler == p ? 0 : 1; }

  void dial(int p, const std::string& peer) {
    auto acts = machine(p, peer).want_connection(next_conn++);
    run(p, peer, acts);
  }
  /// A user's connect(): an attempt the machine learns of when its
  /// handshake finishes.
  void connect(int p, const std::string& peer) {
    const conn_id id = next_conn++;
    conns.emplace(id, connection{.id = id, .dialler = p, .acceptor = find_live(peer)});
  }
  void run(int p, const std::string& peer, const peer_machine::actions& acts) {
    for (const auto& a : acts) act(p, peer, a);
  }
  void act(int p, const std::string& peer, const peer_action& a) {
    auto& me = procs[p];
    trace.push_back(me.name + "#" + std::to_string(p) + " -> " + peer + ": action " +
                    std::to_string(static_cast<int>(a.what)) + " conn " + std::to_string(a.conn));
    switch (a.what) {
      case kind::dial: {
        const int target = find_live(peer);
        const conn_id id = a.conn;
        connection c{.id = id, .dialler = p, .acceptor = target};
        if (target < 0) {
          // Nobody listens: the attempt fails.
          c.open[1] = false;
          c.to[0].emplace_back(msg::fin, 0);
        }
        conns.emplace(id, c);
        break;
      }
      case kind::send_node_info:
        send(p, a.conn, msg::node_info, me.inc);
        break;
      case kind::refuse:
        send(p, a.conn, msg::error, a.duplicate ? 1 : 0);
        close(p, a.conn);
        break;
      case kind::close:
        close(p, a.conn);
        break;
      case kind::promote:
        ++me.promotions[peer];
        break;
      case kind::teardown:
        ++me.teardowns[peer];
        break;
      case kind::schedule_redial:
        timers.emplace_back(p, peer);
        break;
      case kind::give_up:  // the simulation's machines never give up (max_failed_dials = 0)
        FAIL("a machine gave up: " << me.name << " on " << peer);
        break;
    }
  }
  void send(int p, conn_id id, msg m, std::uint64_t v) {
    auto& c = conns.at(id);
    const int e = end_of(c, p);
    if (!c.open[e]) return;
    c.to[1 - e].emplace_back(m, v);
  }
  void close(int p, conn_id id) {
    auto& c = conns.at(id);
    const int e = end_of(c, p);
    if (!c.open[e]) return;
    c.open[e] = false;
    c.to[1 - e].emplace_back(msg::fin, 0);
    // The node reports every close to the machine (most are no-ops).
    const std::string peer = peer_of(c, p);
    run(p, peer, machine(p, peer).closed(id, "closed", false));
  }
  void kill(int p) {
    procs[p].alive = false;
    for (auto& [id, c] : conns) {
      for (int e = 0; e < 2; ++e) {
        const int owner = e == 0 ? c.dialler : c.acceptor;
        if (owner == p && c.open[e]) {
          c.open[e] = false;
          c.to[1 - e].emplace_back(msg::fin, 0);
        }
      }
    }
  }
  /// A connection whose far end died without a FIN reaching here (half-open).
  void lose_fin(int p, conn_id id) {
    auto& c = conns.at(id);
    auto& q = c.to[end_of(c, p)];
    q.erase(std::remove_if(q.begin(), q.end(), [](auto& x) { return x.first == msg::fin; }),
            q.end());
  }

  struct step {
    int type;  // 0 handshake done at the dialler, 1 delivery, 2 timer
    conn_id id;
    int end;
    std::size_t timer;
  };
  std::vector<step> enabled() {
    std::vector<step> out;
    for (auto& [id, c] : conns) {
      if (!c.authed && c.open[0] && c.open[1] && procs[c.dialler].alive)
        out.push_back({0, id, 0, 0});
      for (int e = 0; e < 2; ++e) {
        const int owner = e == 0 ? c.dialler : c.acceptor;
        if (!c.to[e].empty() && owner >= 0 && procs[owner].alive) out.push_back({1, id, e, 0});
      }
    }
    for (std::size_t i = 0; i < timers.size(); ++i) {
      if (procs[timers[i].first].alive) out.push_back({2, 0, 0, i});
    }
    return out;
  }
  bool step_once() {
    auto steps = enabled();
    if (steps.empty()) return false;
    const auto s = steps[rng() % steps.size()];
    if (s.type == 0) {
      auto& c = conns.at(s.id);
      c.authed = true;
      const std::string peer = peer_of(c, c.dialler);
      run(c.dialler, peer, machine(c.dialler, peer).authenticated(s.id, true));
    } else if (s.type == 1) {
      auto& c = conns.at(s.id);
      const int owner = s.end == 0 ? c.dialler : c.acceptor;
      auto [m, v] = c.to[s.end].front();
      c.to[s.end].pop_front();
      if (!c.open[s.end]) return true;
      const std::string peer = peer_of(c, owner);
      if (m == msg::node_info) {
        run(owner, peer, machine(owner, peer).node_info(s.id, s.end == 0, v));
      } else {
        // An error frame or a close: this end closes too.
        if (m == msg::error && v == 1) run(owner, peer, machine(owner, peer).duplicate(s.id));
        c.open[s.end] = false;
        c.to[1 - s.end].emplace_back(msg::fin, 0);
        run(owner, peer, machine(owner, peer).closed(s.id, "peer closed", false));
      }
    } else {
      auto [p, peer] = timers[s.timer];
      timers.erase(timers.begin() + static_cast<std::ptrdiff_t>(s.timer));
      run(p, peer, machine(p, peer).redial_due(next_conn++));
    }
    return true;
  }
  void run_until_quiet(int limit = 2000) {
    for (int i = 0; i < limit; ++i) {
      if (!step_once()) return;
    }
    FAIL("no quiescence within " << limit << " steps");
  }
  /// Both processes use one connection, open at both ends, bound to each
  /// other's incarnations.
  void check_connected(int x, int y) {
    INFO(dump());
    auto& mx = machine(x, procs[y].name);
    auto& my = machine(y, procs[x].name);
    REQUIRE(mx.current() == peer_machine::phase::up);
    REQUIRE(my.current() == peer_machine::phase::up);
    CHECK(mx.primary() == my.primary());
    CHECK(mx.incarnation() == procs[y].inc);
    CHECK(my.incarnation() == procs[x].inc);
    auto& c = conns.at(mx.primary());
    CHECK(c.open[0]);
    CHECK(c.open[1]);
  }
  std::string dump() const {
    std::string s;
    for (auto& t : trace) s += t + "\n";
    return s;
  }
};

}  // namespace

TEST_CASE("peer machine: a dial that gets through is promoted on the acceptor's answer", "[peer]") {
  peer_machine m(settings(true));
  auto a = m.want_connection(7);
  REQUIRE(a == peer_machine::actions{{.what = kind::dial, .conn = 7}});
  CHECK(m.current() == peer_machine::phase::connecting);
  CHECK(m.authenticated(7, true) ==
        peer_machine::actions{{.what = kind::send_node_info, .conn = 7}});
  auto p = m.node_info(7, true, 42);
  REQUIRE(p == peer_machine::actions{{.what = kind::promote, .conn = 7, .incarnation = 42}});
  CHECK(m.current() == peer_machine::phase::up);
  CHECK(m.incarnation() == 42);
}

TEST_CASE("peer machine: losing the connection tears down once and redials with backoff",
          "[peer]") {
  peer_machine m(settings(false));
  (void)m.want_connection(3);
  (void)m.authenticated(3, true);
  (void)m.node_info(3, true, 9);
  auto lost = m.closed(3, "read failed", false);
  REQUIRE(lost.size() == 2);
  CHECK(lost[0].what == kind::teardown);
  CHECK(lost[0].incarnation == 9);
  CHECK(lost[1].what == kind::schedule_redial);
  CHECK(lost[1].delay == 10ms);
  CHECK(m.current() == peer_machine::phase::down);
  // Failed redials say nothing new to watchers; the delay doubles to the cap.
  std::vector<duration> delays;
  for (conn_id c = 4; c < 10; ++c) {
    REQUIRE(m.redial_due(c) == peer_machine::actions{{.what = kind::dial, .conn = c}});
    CHECK(m.current() == peer_machine::phase::down);  // sends are refused while down
    auto f = m.closed(c, "refused", false);
    REQUIRE(f.size() == 1);
    REQUIRE(f[0].what == kind::schedule_redial);
    delays.push_back(f[0].delay);
  }
  CHECK(delays == std::vector<duration>{20ms, 40ms, 80ms, 80ms, 80ms, 80ms});
}

TEST_CASE(
    "peer machine: a peer never reached is given up after max_failed_dials dials; naming it "
    "again does not dial; its own connection revives it",
    "[peer]") {
  auto s = settings(false);
  s.max_failed_dials = 4;
  peer_machine m(s);
  REQUIRE(m.want_connection(11) == peer_machine::actions{{.what = kind::dial, .conn = 11}});
  auto first = m.closed(11, "connection refused", false);
  REQUIRE(first.size() == 2);
  CHECK(first[0].what == kind::teardown);  // handles made while connecting fail now
  CHECK(first[1].what == kind::schedule_redial);
  for (conn_id c = 12; c <= 13; ++c) {
    REQUIRE(m.redial_due(c) == peer_machine::actions{{.what = kind::dial, .conn = c}});
    auto f = m.closed(c, "connection refused", false);
    REQUIRE(f.size() == 1);
    CHECK(f[0].what == kind::schedule_redial);
    CHECK_FALSE(m.given_up());
  }
  REQUIRE(m.redial_due(14) == peer_machine::actions{{.what = kind::dial, .conn = 14}});
  auto last = m.closed(14, "connection refused", false);
  REQUIRE(last.size() == 1);
  CHECK(last[0].what == kind::give_up);
  CHECK(last[0].text == "4");
  CHECK(m.given_up());
  CHECK_FALSE(m.wanted());
  CHECK(m.idle());
  CHECK(m.current() == peer_machine::phase::down);
  // Another handle naming it: no dial.
  CHECK(m.want_connection(15).empty());
  CHECK(m.idle());
  // It connects here: up, and no longer given up.
  auto in = m.node_info(20, false, 77);
  CHECK(has(in, kind::promote, 20));
  CHECK_FALSE(m.given_up());
  CHECK(m.current() == peer_machine::phase::up);
}

TEST_CASE("peer machine: a peer reached once but not pinned is given up after failed redials",
          "[peer]") {
  auto s = settings(false);
  s.max_failed_dials = 3;
  peer_machine m(s);
  (void)m.want_connection(3);
  (void)m.authenticated(3, true);
  REQUIRE(has(m.node_info(3, true, 9), kind::promote, 3));
  (void)m.closed(3, "read failed", false);
  // Two failed redials, then the third gives up.
  for (conn_id c = 4; c <= 5; ++c) {
    REQUIRE(m.redial_due(c) == peer_machine::actions{{.what = kind::dial, .conn = c}});
    CHECK(has(m.closed(c, "refused", false), kind::schedule_redial));
  }
  REQUIRE(m.redial_due(6) == peer_machine::actions{{.what = kind::dial, .conn = 6}});
  auto last = m.closed(6, "refused", false);
  REQUIRE(last.size() == 1);
  CHECK(last[0].what == kind::give_up);
  CHECK(m.given_up());
  // Rearmed (a handle named it after the cool-down): dials again, and the
  // count starts over.
  m.rearm();
  CHECK(m.want_connection(7) == peer_machine::actions{{.what = kind::dial, .conn = 7}});
  CHECK(has(m.closed(7, "refused", false), kind::schedule_redial));
}

TEST_CASE("peer machine: a pinned peer (node::connect) is redialled without end", "[peer]") {
  auto s = settings(false);
  s.max_failed_dials = 3;
  peer_machine m(s);
  m.pin();
  (void)m.want_connection(3);
  (void)m.authenticated(3, true);
  REQUIRE(has(m.node_info(3, true, 9), kind::promote, 3));
  auto lost = m.closed(3, "read failed", false);
  REQUIRE(lost.size() == 2);
  CHECK(lost[1].what == kind::schedule_redial);
  for (conn_id c = 4; c < 30; ++c) {
    REQUIRE(m.redial_due(c) == peer_machine::actions{{.what = kind::dial, .conn = c}});
    auto f = m.closed(c, "refused", false);
    REQUIRE(f.size() == 1);
    CHECK(f[0].what == kind::schedule_redial);
  }
  CHECK_FALSE(m.given_up());
  CHECK(m.wanted());
}

TEST_CASE(
    "peer machine: an acceptor refuses the incarnation in use and replaces it with a newer one",
    "[peer]") {
  peer_machine m(settings(false));
  REQUIRE(has(m.node_info(5, false, 100), kind::promote, 5));
  auto same = m.node_info(6, false, 100);
  CHECK(same ==
        peer_machine::actions{
            {.what = kind::refuse, .conn = 6, .text = "already connected", .duplicate = true}});
  auto older = m.node_info(7, false, 99);
  REQUIRE(older.size() == 1);
  CHECK(older[0].what == kind::refuse);
  CHECK(m.primary() == 5);
  auto newer = m.node_info(8, false, 101);
  REQUIRE(newer.size() == 4);
  CHECK(newer[0].what == kind::teardown);
  CHECK(newer[0].incarnation == 100);
  CHECK(newer[1] == peer_action{.what = kind::refuse,
                                .conn = 5,
                                .text = "incarnation 100 was replaced by a newer one (101)",
                                .replaced = true});
  CHECK(newer[2] == peer_action{.what = kind::send_node_info, .conn = 8});
  CHECK(newer[3] == peer_action{.what = kind::promote, .conn = 8, .incarnation = 101});
  // The replaced connection's close, reported later, changes nothing.
  CHECK(m.closed(5, "closed", false).empty());
  CHECK(m.primary() == 8);
}

TEST_CASE("peer machine: a dialler with a connection in use closes a redundant one", "[peer]") {
  peer_machine m(settings(true));
  REQUIRE(has(m.node_info(5, false, 100), kind::promote, 5));
  auto a = m.authenticated(6, true);  // a user's connect() to the same peer
  CHECK(a == peer_machine::actions{{.what = kind::close, .conn = 6, .text = "already connected"}});
  CHECK(m.primary() == 5);
}

TEST_CASE("peer machine: simultaneous dials, decided by name at each side", "[peer]") {
  peer_machine first(settings(true));    // "a", dialling "b"
  peer_machine second(settings(false));  // "b", dialling "a"
  (void)first.want_connection(1);
  (void)second.want_connection(2);
  // Both attempts got through their handshakes and sent node_info.
  (void)first.authenticated(1, true);
  (void)second.authenticated(2, true);
  // a's dial (1) wins at both ends.
  auto at_a = first.node_info(2, false, 20);
  CHECK(at_a == peer_machine::actions{{.what = kind::refuse,
                                       .conn = 2,
                                       .text = "simultaneous connect: this node's dial wins",
                                       .duplicate = true}});
  auto at_b = second.node_info(1, false, 10);
  REQUIRE(at_b.size() == 3);
  CHECK(at_b[0] == peer_action{.what = kind::close,
                               .conn = 2,
                               .text = "simultaneous connect: the peer's dial wins"});
  CHECK(at_b[1].what == kind::send_node_info);  // first on the connection, before queued frames
  CHECK(at_b[2].what == kind::promote);
  CHECK(has(first.node_info(1, true, 20), kind::promote, 1));
}

TEST_CASE(
    "peer machine: simulated pairs dialling each other converge on one connection, "
    "with no teardown",
    "[peer][sim]") {
  test::for_seeds(
      [](std::uint64_t seed) {
        cluster cl(seed);
        const int a = cl.start("a", 1'000 + seed);
        const int b = cl.start("b", 2'000 + seed);
        // Unrelated traffic first: a third process and connections to it.
        const int c = cl.start("c", 3'000 + seed);
        cl.dial(c, "a");
        cl.dial(a, "b");
        cl.dial(b, "a");
        if (seed % 3 == 0) cl.connect(b, "a");  // a user's connect() of the same pair
        if (seed % 5 == 0) cl.connect(a, "b");
        cl.run_until_quiet();
        cl.check_connected(a, b);
        cl.check_connected(a, c);
        CHECK(cl.procs[a].teardowns["b"] == 0);
        CHECK(cl.procs[b].teardowns["a"] == 0);
        CHECK(cl.procs[a].promotions["b"] == 1);
        CHECK(cl.procs[b].promotions["a"] == 1);
      },
      sim_seeds);
}

TEST_CASE(
    "peer machine: a restart while the old connection is half-open replaces the old "
    "incarnation, and the old process stays out",
    "[peer][sim]") {
  test::for_seeds(
      [](std::uint64_t seed) {
        cluster cl(seed);
        const int a = cl.start("a", 500);
        const int b1 = cl.start("b", 1'000);
        cl.dial(b1, "a");
        cl.run_until_quiet();
        cl.check_connected(a, b1);
        const conn_id old = cl.machine(a, "b").primary();
        // b restarts. With an odd seed the old process is gone (its FIN lost:
        // the connection is half-open at a); with an even one it is still alive
        // and keeps redialling.
        if (seed % 2 == 1) {
          cl.kill(b1);
          cl.lose_fin(a, old);
        }
        const int b2 = cl.start("b", 2'000 + seed);
        cl.dial(b2, "a");
        // A live old process redials for ever: let it try for a while, then
        // end it and let the rest settle.
        for (int i = 0; i < 300; ++i) cl.step_once();
        cl.kill(b1);
        cl.run_until_quiet();
        cl.check_connected(a, b2);
        CHECK(cl.procs[a].teardowns["b"] == 1);  // the old incarnation, once
        if (seed % 2 == 0) {
          // The old process lost its connection and was refused ever since.
          CHECK(cl.machine(b1, "a").current() != peer_machine::phase::up);
          CHECK(cl.procs[b1].promotions["a"] == 1);
        }
      },
      sim_seeds);
}

TEST_CASE(
    "peer machine: a restart during the handshake and fast restarts end on the newest "
    "incarnation",
    "[peer][sim]") {
  test::for_seeds(
      [](std::uint64_t seed) {
        cluster cl(seed);
        const int a = cl.start("a", 10);
        int b = cl.start("b", 100);
        cl.dial(a, "b");
        // A few steps: the handshake may be anywhere when b dies.
        for (std::uint64_t i = 0; i < seed % 5; ++i) cl.step_once();
        const int restarts = 1 + static_cast<int>(seed % 3);
        for (int r = 0; r < restarts; ++r) {
          cl.kill(b);
          b = cl.start("b", 200 + 100 * static_cast<std::uint64_t>(r));
          if ((seed >> r) & 1) cl.dial(b, "a");  // the new process dials too, or only a redials
          for (std::uint64_t i = 0; i < (seed >> 3) % 4; ++i) cl.step_once();
        }
        cl.run_until_quiet();
        cl.check_connected(a, b);
      },
      sim_seeds);
}

TEST_CASE("peer machine: a stopped machine closes everything and never redials", "[peer]") {
  peer_machine m(settings(false));
  (void)m.want_connection(1);
  (void)m.authenticated(1, true);
  (void)m.node_info(1, true, 7);
  auto s = m.stop();
  CHECK(has(s, kind::close, 1));
  CHECK(has(s, kind::teardown));
  CHECK(m.closed(1, "closed", false).empty());
  CHECK(m.want_connection(2).empty());
  CHECK(m.redial_due(3).empty());
  CHECK(has(m.node_info(4, false, 8), kind::close, 4));
}

TEST_CASE(
    "peer machine: a forgotten peer closes its dial, tears down exactly once in every phase, and "
    "never dials again",
    "[peer]") {
  const std::string why = "forgotten to make room";
  auto teardowns = [](const peer_machine::actions& a) {
    return std::count_if(a.begin(), a.end(), [](auto& x) { return x.what == kind::teardown; });
  };
  SECTION("while its first dial is in flight") {
    peer_machine m(settings(false));
    (void)m.want_connection(5);
    auto f = m.forget(why);
    CHECK(has(f, kind::close, 5));
    REQUIRE(teardowns(f) == 1);
    CHECK(std::find_if(f.begin(), f.end(), [&](auto& x) {
            return x.what == kind::teardown && x.text == why && !x.graceful && x.forgotten &&
                   !x.again;
          }) != f.end());
    CHECK(m.current() == peer_machine::phase::down);
    CHECK_FALSE(m.wanted());
    CHECK(m.closed(5, "closed", false).empty());  // the close re-enters: nothing new
  }
  SECTION("already declared down, with a redial pending") {
    peer_machine m(settings(false));
    (void)m.want_connection(5);
    auto lost = m.closed(5, "refused", false);
    REQUIRE(has(lost, kind::teardown));
    REQUIRE(has(lost, kind::schedule_redial));
    auto f = m.forget(why);
    REQUIRE(f.size() == 1);
    CHECK(f[0].what == kind::teardown);  // its proxies end with `why` ...
    CHECK(f[0].again);                   // ... but it is not a second loss
    CHECK(m.redial_due(6).empty());
  }
  SECTION("named but never dialled") {
    peer_machine m(settings(false));
    auto f = m.forget(why);
    CHECK(f == peer_machine::actions{
                   {.what = kind::teardown, .text = why, .forgotten = true, .again = true}});
  }
  SECTION("awaiting the peer's own connection") {
    peer_machine m(settings(false));
    (void)m.want_connection(5);
    (void)m.authenticated(5, true);
    (void)m.duplicate(5);
    REQUIRE(m.current() == peer_machine::phase::connecting);
    auto f = m.forget(why);
    CHECK(teardowns(f) == 1);
    CHECK(m.current() == peer_machine::phase::down);
    // A connection that still comes is closed saying why.
    CHECK(m.node_info(8, false, 3) ==
          peer_machine::actions{{.what = kind::close, .conn = 8, .text = why}});
  }
}

TEST_CASE("peer machine: an acceptor whose own dial has not reached the peer lets the peer in",
          "[peer]") {
  peer_machine a(settings(true));  // this node's dial would win by name
  // A redial to the peer's old address, stuck in TCP connect.
  REQUIRE(has(a.want_connection(1), kind::dial, 1));
  // The peer (a new process elsewhere) dials in: it is let in, and the
  // stuck attempt is closed.
  auto r = a.node_info(2, false, 100);
  CHECK(has(r, kind::close, 1));
  CHECK(has(r, kind::promote, 2));
  // Once this node's attempt has sent node_info, its dial wins instead.
  peer_machine b(settings(true));
  (void)b.want_connection(1);
  (void)b.authenticated(1, true);
  CHECK(has(b.node_info(2, false, 100), kind::refuse, 2));
}

TEST_CASE("peer machine: a far-future incarnation that went away does not lock the name out",
          "[peer]") {
  peer_machine m(settings(false));
  REQUIRE(has(m.node_info(1, false, ~std::uint64_t{0}), kind::promote, 1));  // an impostor
  (void)m.closed(1, "gone", false);
  CHECK(has(m.node_info(2, false, 1'000'000), kind::promote, 2));  // the real node
  // While a newer one is in use, an older one stays out.
  CHECK(has(m.node_info(3, false, 999'999), kind::refuse, 3));
}
