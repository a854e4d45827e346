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

TEST_CASE("a host on which several ports were given up is given up on every port",
          "[net][limits]") {
  given_up_addresses g(64, 60s, 4);
  const given_up_addresses::clock::time_point t0{std::chrono::hours(1)};
  for (int p = 0; p < 3; ++p) g.remember("10.0.0.9:" + std::to_string(7000 + p), t0);
  // Three ports: only those are given up.
  CHECK_FALSE(g.recent("10.0.0.9:9999", t0 + 1s));
  CHECK(g.recent("10.0.0.9:7001", t0 + 1s));
  g.remember("10.0.0.9:7003", t0 + 10s);
  // The fourth: every port of the host, for as long as four are recent.
  CHECK(g.recent("10.0.0.9:9999", t0 + 11s));
  CHECK(g.recent("[::1]:7000", t0 + 11s) == false);   // another host
  CHECK_FALSE(g.recent("10.0.0.90:7000", t0 + 11s));  // a host whose name starts the same
  CHECK(g.recent("10.0.0.9:1", t0 + 59s));
  CHECK_FALSE(g.recent("10.0.0.9:9999", t0 + 61s));  // three of the four expired
  CHECK(g.recent("10.0.0.9:7003", t0 + 61s));
  // IPv6 hosts are told apart by their brackets.
  for (int p = 0; p < 4; ++p) g.remember("[fd00::1]:" + std::to_string(8000 + p), t0 + 100s);
  CHECK(g.recent("[fd00::1]:1", t0 + 101s));
  CHECK_FALSE(g.recent("[fd00::2]:1", t0 + 101s));
}
