// Links between nodes, as memory a peer can make a node hold: the budget of
// links per peer and over all peers (node_config::max_links_per_peer,
// max_links_total; net/src/link_budget.hpp), and a linked actor's exit
// ending the link on the proxy's side too, so a stopped actor is not kept.

// GCC 12 reports false -Wrestrict warnings in std::string concatenation
// inlined into the test cases.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace {

net::node_config cfg(std::string name) {
  return test::node_config(std::move(name), "s3cret-links-test-0123456789-9a8b7c6d5e4f3a2b1c");
}

struct link_to {
  actor_ref target;
};
struct unlink_from {
  actor_ref target;
};

/// An actor that links and unlinks on request and records the exit signals
/// it traps as "<tag> <reason>".
behavior linker(actor& self, test::recorder<std::string>& exits, std::string tag) {
  self.trap_exit(true);
  return {[&self](const link_to& l) { self.link(l.target); },
          [&self](const unlink_from& u) { self.unlink(u.target); },
          [&exits, tag](const exit_msg& e) { exits.push(tag + " " + e.reason.to_string()); }};
}

actor_ref spawn_linker(actor_system& sys, test::recorder<std::string>& exits, std::string tag) {
  return sys.spawn([&exits, tag](actor& self) { return linker(self, exits, tag); });
}

behavior echo(actor&) {
  return {[](std::int64_t x) { return x; }};
}

/// linker(), as a class whose destruction is counted; it also answers
/// std::int64_t (an ask to it is handled after what it received before).
struct tracked_linker : actor {
  tracked_linker(std::atomic<int>* d, test::recorder<std::string>* exits, std::string tag)
      : t{d}, exits_(exits), tag_(std::move(tag)) {}
  behavior make_behavior() override {
    trap_exit(true);
    return {[this](const link_to& l) { link(l.target); },
            [this](const exit_msg& e) { exits_->push(tag_ + " " + e.reason.to_string()); },
            [](std::int64_t x) { return x; }};
  }
  test::destruction_counter t;
  test::recorder<std::string>* exits_;
  std::string tag_;
};

/// An echo actor whose destruction is counted.
struct tracked_echo : actor {
  explicit tracked_echo(std::atomic<int>* d) : t{d} {}
  behavior make_behavior() override {
    return {[](std::int64_t x) { return x; }};
  }
  test::destruction_counter t;
};

/// Log lines, kept.
struct log_lines {
  std::mutex mu;
  std::vector<std::string> lines;
  std::size_t count(std::string_view needle) {
    std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](auto& l) { return l.find(needle) != std::string::npos; }));
  }
};

}  // namespace

TEST_CASE("links a peer holds are bounded over all actors; refused linkers are told",
          "[net][links]") {
  // Declared before the systems: linkers record into it until stopped.
  test::recorder<std::string> exits;
  log_lines logged;
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_a, 3);
  test::unrelated(sys_b, 5);
  auto cb = cfg("b");
  cb.max_links_per_actor = 100;  // not the limit that refuses here
  cb.max_links_per_peer = 5;
  cb.log = [&](std::string_view line) {
    std::lock_guard lock(logged.mu);
    logged.lines.emplace_back(line);
  };
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cb);
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  // Three targets on b; a may stop them (a link lets its exit stop them).
  std::vector<actor_ref> remote_hubs;
  std::vector<actor_ref> hubs;
  for (int h = 0; h < 3; ++h) {
    hubs.push_back(sys_b.spawn(echo));
    b->allow_remote_stop(hubs.back());
    REQUIRE(sys_b.register_name("hub" + std::to_string(h), hubs.back()));
    remote_hubs.push_back(*a->lookup("b", "hub" + std::to_string(h), 10s));
  }
  // Three linkers on a, each linking each hub: nine links asked for, one at
  // a time so that which are refused is known; each is followed by a round
  // trip on the same connection, so the link frame has been handled.
  std::vector<actor_ref> linkers;
  for (int l = 0; l < 3; ++l) {
    linkers.push_back(spawn_linker(sys_a, exits, "L" + std::to_string(l)));
  }
  auto settle = [&] {
    REQUIRE(net::ask<std::int64_t>(remote_hubs[0], std::int64_t{7}, 10s).get());
  };
  for (int l = 0; l < 3; ++l) {
    for (int h = 0; h < 3; ++h) {
      REQUIRE(linkers[l].ask<void>(link_to{remote_hubs[h]}, 10s).get());
      settle();
    }
  }
  // L0 and L1's first two made five links; the four after were refused.
  REQUIRE(exits.wait_for_size(4));
  auto items = exits.items();
  std::sort(items.begin(), items.end());
  REQUIRE(items.size() == 4);
  for (const auto& it : items) {
    CHECK(it.find("error: link refused: node b holds max_links_per_peer (5) links with node a") !=
          std::string::npos);
  }
  CHECK(items[0].rfind("L1 ", 0) == 0);
  CHECK(items[1].rfind("L2 ", 0) == 0);
  CHECK(b->stats().links == 5);
  CHECK(logged.count("refused a link past max_links_per_peer") == 1);  // once per rule and peer
  CHECK(b->stats().refused == 4);

  // Linking twice is one link: at the bound, a link already there is not refused.
  REQUIRE(linkers[0].ask<void>(link_to{remote_hubs[1]}, 10s).get());
  settle();
  CHECK(b->stats().links == 5);
  CHECK(exits.items().size() == 4);

  // An unlink frees its place: L0 unlinks hub 0, and L2 may link it.
  REQUIRE(linkers[0].ask<void>(unlink_from{remote_hubs[0]}, 10s).get());
  settle();
  CHECK(test::eventually([&] { return b->stats().links == 4; }));
  REQUIRE(linkers[2].ask<void>(link_to{remote_hubs[0]}, 10s).get());
  settle();
  CHECK(b->stats().links == 5);
  CHECK(exits.items().size() == 4);

  // A hub that stops ends its links on both sides, and the peer's budget
  // gets them back: hub 1 is linked by L0 and L1.
  sys_b.stop(hubs[1], exit_reason::error("hub 1 gone"));
  REQUIRE(exits.wait_for_size(6));
  CHECK(test::eventually([&] { return b->stats().links == 3; }));
  // The admitted links are real: hub 2's exit reaches L0 (its one link to hub 2).
  sys_b.stop(hubs[2], exit_reason::error("hub 2 gone"));
  REQUIRE(exits.wait_for_size(7));
  items = exits.items();
  CHECK(std::count(items.begin(), items.end(), "L0 error: hub 2 gone") == 1);
  CHECK(std::count(items.begin(), items.end(), "L0 error: hub 1 gone") == 1);
  CHECK(std::count(items.begin(), items.end(), "L1 error: hub 1 gone") == 1);
  CHECK(test::eventually([&] { return b->stats().links == 2; }));
  // The peer going away ends the rest: nothing is left counted.
  a.reset();
  CHECK(test::eventually([&] { return b->stats().links == 0; }));
  b.reset();
}

TEST_CASE("links over all peers are bounded (max_links_total)", "[net][links]") {
  test::recorder<std::string> exits;
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 2}};
  actor_system sys_c{system_config{.workers = 1}};
  auto cb = cfg("b");
  cb.max_links_per_peer = 4;
  cb.max_links_total = 6;
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cb);
  std::optional<net::node> c(std::in_place, sys_c, cfg("c"));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  REQUIRE(c->connect("127.0.0.1", b->port(), 10s));
  // It traps exits: node a going away below must not stop it.
  auto hub = sys_b.spawn([](actor& self) -> behavior {
    self.trap_exit(true);
    return {[](std::int64_t x) { return x; }, [](const exit_msg&) {}};
  });
  b->allow_remote_stop(hub);
  REQUIRE(sys_b.register_name("hub", hub));
  auto hub_from_a = *a->lookup("b", "hub", 10s);
  auto hub_from_c = *c->lookup("b", "hub", 10s);
  // Four linkers on a (its whole budget), then three on c: the third of c's
  // is past the node's total of six.
  auto link_one = [&](actor_system& sys, const actor_ref& target, const std::string& tag) {
    auto l = spawn_linker(sys, exits, tag);
    REQUIRE(l.ask<void>(link_to{target}, 10s).get());
    REQUIRE(net::ask<std::int64_t>(target, std::int64_t{1}, 10s).get());
    return l;
  };
  std::vector<actor_ref> keep;
  for (int i = 0; i < 4; ++i) keep.push_back(link_one(sys_a, hub_from_a, "a" + std::to_string(i)));
  CHECK(b->stats().links == 4);
  for (int i = 0; i < 3; ++i) keep.push_back(link_one(sys_c, hub_from_c, "c" + std::to_string(i)));
  REQUIRE(exits.wait_for_size(1));
  CHECK(exits.items()[0] ==
        "c2 error: link refused: node b holds max_links_total (6) links with its peers");
  CHECK(b->stats().links == 6);
  // Node a leaving gives its four back: c links again.
  a.reset();
  CHECK(test::eventually([&] { return b->stats().links == 2; }));
  keep.push_back(link_one(sys_c, hub_from_c, "c3"));
  CHECK(b->stats().links == 3);
  // a's linkers were told that node went away; c's only of the refusal.
  const auto items = exits.items();
  CHECK(std::count_if(items.begin(), items.end(),
                      [](const std::string& e) { return e.rfind("c", 0) == 0; }) == 1);
  c.reset();
  b.reset();
}

TEST_CASE("a stopped actor linked by a peer's actor is not kept by the link", "[net][links]") {
  test::recorder<std::string> exits;
  std::atomic<int> destroyed{0};
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_b, 11);
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cfg("b"));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto keeper = sys_b.spawn(echo);
  b->allow_remote_stop(keeper);
  REQUIRE(sys_b.register_name("keeper", keeper));
  std::optional<actor_ref> v{sys_b.spawn<tracked_echo>(&destroyed)};
  b->allow_remote_stop(*v);
  REQUIRE(sys_b.register_name("victim", *v));
  auto remote_keeper = *a->lookup("b", "keeper", 10s);
  auto remote_victim = *a->lookup("b", "victim", 10s);
  // One long-lived linker on a links both: on b, one proxy stands for it,
  // kept by the keeper's link.
  auto l = spawn_linker(sys_a, exits, "L");
  REQUIRE(l.ask<void>(link_to{remote_keeper}, 10s).get());
  REQUIRE(l.ask<void>(link_to{remote_victim}, 10s).get());
  REQUIRE(net::ask<std::int64_t>(remote_victim, std::int64_t{1}, 10s).get());
  CHECK(b->stats().links == 2);
  sys_b.stop(*v, exit_reason::error("victim done"));
  REQUIRE(exits.wait_for_size(1));
  CHECK(exits.items()[0] == "L error: victim done");
  // No handle to it is left here (the registry let go when it stopped);
  // only the link could keep it.
  v.reset();
  remote_victim = actor_ref{};
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  CHECK(b->stats().links == 1);
  // The keeper's link still works.
  sys_b.stop(keeper, exit_reason::error("keeper done"));
  REQUIRE(exits.wait_for_size(2));
  CHECK(exits.items()[1] == "L error: keeper done");
  CHECK(test::eventually([&] { return b->stats().links == 0; }));
  a.reset();
  b.reset();
}

TEST_CASE("a remote linker's exit ends the link on the target's node; the target is not kept",
          "[net][links]") {
  test::recorder<std::string> exits;
  std::atomic<int> destroyed{0};
  std::atomic<int> linker_destroyed{0};
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_b, 7);
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cfg("b"));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  std::optional<actor_ref> target{sys_b.spawn<tracked_echo>(&destroyed)};
  b->allow_remote_stop(*target);
  REQUIRE(sys_b.register_name("target", *target));
  auto remote_target = *a->lookup("b", "target", 10s);
  auto l = sys_a.spawn<tracked_linker>(&linker_destroyed, &exits, "L");
  REQUIRE(l.ask<void>(link_to{remote_target}, 10s).get());
  REQUIRE(net::ask<std::int64_t>(remote_target, std::int64_t{1}, 10s).get());
  CHECK(b->stats().links == 1);
  CHECK(a->stats().links == 1);
  // The linker stops normally: the target runs on, and the link is gone
  // on both nodes, in the target's set and in the linker's proxy.
  sys_a.stop(l, exit_reason::normal());
  CHECK(test::eventually([&] { return a->stats().links == 0; }, 10s));
  CHECK(test::eventually([&] { return b->stats().links == 0; }, 10s));
  REQUIRE(net::ask<std::int64_t>(remote_target, std::int64_t{2}, 10s).get());
  // Once the target stops, nothing keeps it (the linker's proxy is still
  // the connection's last sender).
  sys_b.stop(*target, exit_reason::error("target done"));
  target.reset();
  remote_target = actor_ref{};
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == 1; }, 10s));
  a.reset();
  b.reset();
}

TEST_CASE("links the peer refused are not counted, and their stopped linkers are not kept",
          "[net][links]") {
  test::recorder<std::string> exits;
  std::atomic<int> destroyed{0};
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  test::unrelated(sys_a, 5);
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cfg("b"));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  // Node a may not stop it: node b refuses every link to it.
  auto target = sys_b.spawn(echo);
  REQUIRE(sys_b.register_name("target", target));
  // The application keeps the handle (a cache of looked-up services).
  auto remote_target = *a->lookup("b", "target", 10s);
  constexpr int n = 20;
  for (int i = 0; i < n; ++i) {
    auto l = sys_a.spawn<tracked_linker>(&destroyed, &exits, "L" + std::to_string(i));
    REQUIRE(l.ask<void>(link_to{remote_target}, 10s).get());
    REQUIRE(exits.wait_for_size(static_cast<std::size_t>(i + 1)));
    sys_a.stop(l, exit_reason::normal());
  }
  for (const auto& e : exits.items()) CHECK(e.find("link refused") != std::string::npos);
  CHECK(b->stats().links == 0);
  CHECK(test::eventually([&] { return a->stats().links == 0; }, 10s));
  CHECK(test::eventually([&] { return destroyed.load(std::memory_order_acquire) == n; }, 10s));
  a.reset();
  b.reset();
}

TEST_CASE("a link back over a link already there is one link: not refused, exits still arrive",
          "[net][links]") {
  test::recorder<std::string> exits;
  test::recorder<std::string> remote_exits;
  std::atomic<int> destroyed{0};
  std::atomic<int> r_destroyed{0};
  actor_system sys_a{system_config{.workers = 2}};
  actor_system sys_b{system_config{.workers = 2}};
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cfg("b"));
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto r = sys_b.spawn<tracked_linker>(&r_destroyed, &remote_exits, "R");
  b->allow_remote_stop(r);  // a's link to it is admitted
  REQUIRE(sys_b.register_name("r", r));
  auto l = sys_a.spawn<tracked_linker>(&destroyed, &exits, "L");
  REQUIRE(sys_a.register_name("l", l));
  auto remote_r = *a->lookup("b", "r", 10s);
  REQUIRE(l.ask<void>(link_to{remote_r}, 10s).get());
  REQUIRE(net::ask<std::int64_t>(remote_r, std::int64_t{1}, 10s).get());
  CHECK(a->stats().links == 1);
  CHECK(b->stats().links == 1);
  // R links L back. Node b may not stop L (a did not allow it), but the
  // link is there already: nothing to refuse.
  auto remote_l = *b->lookup("a", "l", 10s);
  REQUIRE(r.ask<void>(link_to{remote_l}, 10s).get());
  // The link frame went before this ask's answer, and a refusal would reach
  // R before R handles the second ask.
  REQUIRE(net::ask<std::int64_t>(remote_l, std::int64_t{2}, 10s).get());
  REQUIRE(r.ask<std::int64_t>(std::int64_t{3}, 10s).get());
  CHECK(remote_exits.items().empty());
  CHECK(a->stats().refused == 0);
  CHECK(a->stats().links == 1);
  CHECK(b->stats().links == 1);
  // R's exit reaches L through the one link.
  sys_b.stop(r, exit_reason::error("R gone"));
  REQUIRE(exits.wait_for_size(1));
  CHECK(exits.items()[0] == "L error: R gone");
  CHECK(test::eventually([&] { return a->stats().links == 0 && b->stats().links == 0; }));
  a.reset();
  b.reset();
}

TEST_CASE("max_links_per_peer and max_links_total at SIZE_MAX mean no bound", "[net][links]") {
  test::recorder<std::string> exits;
  std::atomic<int> destroyed{0};
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  auto cb = cfg("b");
  cb.max_links_per_peer = SIZE_MAX;
  cb.max_links_total = SIZE_MAX;
  cb.max_inbound_bytes_total = SIZE_MAX;
  cb.max_peers = SIZE_MAX;
  std::optional<net::node> a(std::in_place, sys_a, cfg("a"));
  std::optional<net::node> b(std::in_place, sys_b, cb);
  REQUIRE(a->connect("127.0.0.1", b->port(), 10s));
  auto target = sys_b.spawn(echo);
  b->allow_remote_stop(target);
  REQUIRE(sys_b.register_name("target", target));
  auto remote_target = *a->lookup("b", "target", 10s);
  auto l = sys_a.spawn<tracked_linker>(&destroyed, &exits, "L");
  REQUIRE(l.ask<void>(link_to{remote_target}, 10s).get());
  // A round trip after the link frame: a refusal was sent before its
  // answer, and L handles it before this ask to L.
  REQUIRE(net::ask<std::int64_t>(remote_target, std::int64_t{2}, 10s).get());
  REQUIRE(l.ask<std::int64_t>(std::int64_t{3}, 10s).get());
  CHECK(exits.items().empty());
  CHECK(b->stats().links == 1);
  CHECK(b->stats().refused == 0);
  a.reset();
  b.reset();
}
