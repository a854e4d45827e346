// The node-wide outbound bound's arithmetic (net/src/outbound_total.hpp),
// without sockets: charges in steps, refusals only over the bound and the
// share, and every charge given back.

#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <vector>

#include "outbound_total.hpp"

using libactor::net::detail::outbound_charge;
using libactor::net::detail::outbound_total;

namespace {
constexpr std::size_t step = outbound_total::step;

/// The shared count. relaxed: these tests run on one thread; the count is
/// what the charges wrote, in program order.
std::int64_t steps_of(const std::shared_ptr<outbound_total>& t) {
  return t->steps.load(std::memory_order_relaxed);
}

std::shared_ptr<outbound_total> total_of(std::int64_t bound_steps, std::int64_t share_steps) {
  auto t = std::make_shared<outbound_total>();
  t->bound_steps = bound_steps;
  t->share_steps = share_steps;
  return t;
}
}  // namespace

TEST_CASE("outbound total: the shared count moves only when a queue crosses a whole step",
          "[net][outbound]") {
  auto t = total_of(100, 10);
  outbound_charge c(t);
  CHECK(c.admit(0, step - 1));  // under a step: ask and answer traffic never writes it
  CHECK(steps_of(t) == 0);
  CHECK(c.admit(step - 1, step));
  CHECK(steps_of(t) == 1);
  CHECK(c.admit(step, 2 * step - 1));
  CHECK(steps_of(t) == 1);
  CHECK(c.admit(2 * step - 1, 2 * step));
  CHECK(steps_of(t) == 2);
  c.settle(10);
  CHECK(steps_of(t) == 0);
  CHECK(c.charged() == 0);
}

TEST_CASE(
    "outbound total: over the bound, only a queue that already holds its share is refused, "
    "whatever the message's size",
    "[net][outbound]") {
  auto t = total_of(4, 1);
  outbound_charge big(t), other(t), idle(t);
  CHECK(big.admit(0, 4 * step));               // fills the bound
  CHECK_FALSE(big.admit(4 * step, 5 * step));  // over it, holding its share: refused
  CHECK(steps_of(t) == 4);
  CHECK(other.admit(0, step));  // held nothing: goes, over the bound
  CHECK(steps_of(t) == 5);
  CHECK_FALSE(other.admit(step, 2 * step));  // holds its share now
  CHECK(idle.admit(0, 3 * step));            // a large message toward a peer holding nothing
  CHECK(steps_of(t) == 8);
  big.settle(step);  // the big queue drained
  idle.settle(0);
  CHECK(steps_of(t) == 2);
  CHECK(other.admit(step, 2 * step));
  CHECK(steps_of(t) == 3);
}

TEST_CASE("outbound total: charges come back whatever the order of admits, settles and ends",
          "[net][outbound]") {
  for (std::uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    auto t = total_of(std::uniform_int_distribution<std::int64_t>(1, 40)(rng),
                      std::uniform_int_distribution<std::int64_t>(1, 5)(rng));
    {
      std::vector<std::unique_ptr<outbound_charge>> conns;
      std::vector<std::size_t> queued;
      for (int i = 0; i < 8; ++i) {
        conns.push_back(std::make_unique<outbound_charge>(t));
        queued.push_back(0);
      }
      for (int op = 0; op < 500; ++op) {
        const auto i = std::uniform_int_distribution<std::size_t>(0, conns.size() - 1)(rng);
        const auto bytes = std::uniform_int_distribution<std::size_t>(0, 12 * step)(rng);
        switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
          case 0:
            if (conns[i]->admit(queued[i], queued[i] + bytes)) queued[i] += bytes;
            break;
          case 1:
            conns[i]->settle(bytes);
            queued[i] = bytes;
            break;
          default:
            conns[i] = std::make_unique<outbound_charge>(t);  // the old one ends
            queued[i] = 0;
            break;
        }
        std::int64_t sum = 0;
        for (auto& c : conns) sum += c->charged();
        INFO("seed " << seed << ", op " << op);
        REQUIRE(steps_of(t) == sum);
        REQUIRE(conns[i]->charged() == static_cast<std::int64_t>(queued[i] / step));
      }
    }
    CHECK(steps_of(t) == 0);
  }
}
