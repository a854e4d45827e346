// The refusal log and its token bucket, driven with virtual time: each rule
// is logged once per peer, lines within the rate limit, and what the limit
// held back is reported with the next line.

#include <catch2/catch.hpp>

#include <string>

#include "refusals.hpp"
#include "token_bucket.hpp"

using libactor::net::detail::refusals;
using libactor::net::detail::token_bucket;
using namespace std::chrono_literals;

TEST_CASE("a token bucket allows a burst, then its rate", "[net][refusals]") {
  token_bucket b(3, 2);  // 3 at once, then 2 per second
  const auto t0 = token_bucket::clock::time_point{} + 1000s;
  CHECK(b.take(t0));
  CHECK(b.take(t0));
  CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  CHECK_FALSE(b.take(t0 + 400ms));  // 0.8 of a token
  CHECK(b.take(t0 + 500ms));        // 1.0
  CHECK_FALSE(b.take(t0 + 500ms));
  // A long pause refills to the burst, not beyond.
  const auto t1 = t0 + 1h;
  CHECK(b.take(t1));
  CHECK(b.take(t1));
  CHECK(b.take(t1));
  CHECK_FALSE(b.take(t1));
  // Time that goes backwards (another thread's older reading) adds nothing.
  CHECK_FALSE(b.take(t1 - 10s));
}

TEST_CASE("a refusal is logged once per rule and peer, within a rate limit", "[net][refusals]") {
  refusals r;
  auto t = token_bucket::clock::time_point{} + 77s;
  auto first = r.record("mallory", "stop", "a stop request", t);
  REQUIRE(first);
  CHECK(*first == "refused a stop request from node mallory (logged once per rule and peer)");
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(r.record("mallory", "stop", "a stop request", t));
  CHECK(r.record("mallory", "exit", "an exit signal", t));  // another rule
  CHECK(r.record("eve", "stop", "a stop request", t));      // another peer
  CHECK(r.count() == 1003);

  // A peer that changes its name for every frame meets the rate limit.
  std::size_t lines = 0;
  for (int i = 0; i < 500; ++i) {
    lines += r.record("name" + std::to_string(i), "stop", "a stop request", t) ? 1 : 0;
  }
  CHECK(lines == static_cast<std::size_t>(refusals::burst) - 3);
  // Later, the next line says how many were not logged.
  t += 1s;
  auto later = r.record("late", "stop", "a stop request", t);
  REQUIRE(later);
  const std::size_t held = 500 - lines;
  CHECK(later->find("; " + std::to_string(held) + " other refusals were not logged (rate limit)") !=
        std::string::npos);
  CHECK(r.count() == 1003 + 500 + 1);
}

TEST_CASE("refusals: past max_keys the least recently refused key is forgotten, not the new ones",
          "[net][refusals]") {
  refusals r;
  auto t = token_bucket::clock::time_point{} + 100s;
  for (std::size_t i = 0; i < refusals::max_keys; ++i) {
    t += 1s;
    REQUIRE(r.record("filler" + std::to_string(i), "stop", "a stop request", t));
  }
  t += 60s;  // the rate limit's bucket is full again
  // A peer that keeps repeating a refusal is logged once; every other
  // peer's first refusal still gets its line.
  std::size_t mallory = 0;
  std::size_t others = 0;
  for (int s = 0; s < 60; ++s) {
    t += 1s;
    mallory += r.record("mallory", "stop", "a stop request", t) ? 1 : 0;
    t += 1s;
    others += r.record("eve" + std::to_string(s), "exit", "an exit signal", t) ? 1 : 0;
  }
  CHECK(mallory == 1);
  CHECK(others == 60);
  // The oldest filler was forgotten: it is logged again.
  t += 60s;
  CHECK(r.record("filler0", "stop", "a stop request", t));
}
