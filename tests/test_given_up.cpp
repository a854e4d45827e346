// The addresses a node gave up dialling, with virtual time.

#include <catch2/catch.hpp>

#include <string>

#include "given_up.hpp"

using libactor::net::detail::given_up_addresses;
using namespace std::chrono_literals;

TEST_CASE("given-up addresses are remembered for the period, then forgotten", "[net][limits]") {
  given_up_addresses g(8, 60s);
  const given_up_addresses::clock::time_point t0{std::chrono::hours(1)};
  CHECK_FALSE(g.recent("10.0.0.1:7000", t0));
  g.remember("10.0.0.1:7000", t0);
  CHECK(g.recent("10.0.0.1:7000", t0));
  CHECK(g.recent("10.0.0.1:7000", t0 + 59s));
  CHECK_FALSE(g.recent("10.0.0.1:7001", t0 + 1s));  // another port is another address
  CHECK_FALSE(g.recent("10.0.0.1:7000", t0 + 60s));
  // Renewed: counts from the renewal.
  g.remember("10.0.0.2:7000", t0);
  g.remember("10.0.0.2:7000", t0 + 30s);
  CHECK(g.recent("10.0.0.2:7000", t0 + 80s));
  CHECK_FALSE(g.recent("10.0.0.2:7000", t0 + 90s));
}

TEST_CASE("given-up addresses keep the newest ones within their capacity", "[net][limits]") {
  given_up_addresses g(3, 60s);
  const given_up_addresses::clock::time_point t0{std::chrono::hours(1)};
  for (int i = 0; i < 5; ++i) g.remember("h:" + std::to_string(i), t0 + std::chrono::seconds(i));
  CHECK_FALSE(g.recent("h:0", t0 + 5s));
  CHECK_FALSE(g.recent("h:1", t0 + 5s));
  for (int i = 2; i < 5; ++i) CHECK(g.recent("h:" + std::to_string(i), t0 + 5s));
}
