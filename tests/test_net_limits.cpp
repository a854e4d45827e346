// Bounded resources on a node (docs/protocol.md, "Limits"): each limit is
// pushed past here, and what is over it is refused with a clear error while
// the node keeps serving.

#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>

#include <algorithm>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
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
