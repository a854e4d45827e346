// TLS 1.3 application records on their own (net/src/tls_records.hpp): two
// instances with mirrored secrets pass bytes through memory. Every refusal
// is checked for its reason and for the alert the peer gets; OpenSSL's
// records are checked against these in tests/test_tls_channel.cpp.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tls_records.hpp"

using namespace libactor;
using libactor::net::detail::aes_gcm_available;
using libactor::net::detail::max_post_handshake_message;
using libactor::net::detail::max_post_handshake_messages;
using libactor::net::detail::tls_key_limits;
using libactor::net::detail::tls_max_plaintext;
using libactor::net::detail::tls_records;
using libactor::net::detail::tls_suite;
using libactor::net::detail::traffic_secret;

namespace {

using bytes = std::vector<std::byte>;

traffic_secret secret_from(std::mt19937_64& rng) {
  traffic_secret s{};
  for (auto& b : s) b = static_cast<std::uint8_t>(rng());
  return s;
}

bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

bytes of(std::initializer_list<int> v) {
  bytes b;
  for (const int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

/// The suite a seed runs: both, by the seed's parity, where the CPU has
/// AES instructions.
tls_suite suite_of(std::uint64_t seed) {
  return seed % 2 == 0 && aes_gcm_available() ? tls_suite::aes_256_gcm_sha384
                                              : tls_suite::chacha20_poly1305_sha256;
}

/// A dialler and an acceptor with mirrored secrets, from a seed.
struct pair_of {
  explicit pair_of(std::uint64_t seed, tls_key_limits c_limits = {}, tls_key_limits s_limits = {})
      : pair_of(seed, suite_of(seed), c_limits, s_limits) {}
  pair_of(std::uint64_t seed, tls_suite suite, tls_key_limits c_limits = {},
          tls_key_limits s_limits = {})
      : rng(seed),
        c2s(secret_from(rng)),
        s2c(secret_from(rng)),
        c{c2s, s2c, true, suite, c_limits},
        s{s2c, c2s, false, suite, s_limits} {}
  std::mt19937_64 rng;
  traffic_secret c2s, s2c;
  tls_records c;
  tls_records s;
};

/// Feeds `wire` to `to` in pieces of random sizes; the first error, if any.
expected<void, net::protocol_error> feed(tls_records& to, const bytes& wire, bytes& plain,
                                         std::mt19937_64& rng, std::size_t max_piece = 20'000) {
  for (std::size_t at = 0; at < wire.size();) {
    const std::size_t k = std::min<std::size_t>(
        wire.size() - at, std::uniform_int_distribution<std::size_t>(1, max_piece)(rng));
    auto r = to.open(std::span<const std::byte>(wire).subspan(at, k), plain);
    if (!r) return r;
    // One incomplete record at most: 5 + 2^14 + 1 + 16 bytes.
    CHECK(to.held() <= 5 + tls_max_plaintext + 1 + 16);
    at += k;
  }
  return {};
}

/// What the peer receives when `failed` refused something: one alert.
std::string alert_seen_by(tls_records& peer, tls_records& failed) {
  bytes alert, plain;
  failed.take_records(alert);
  auto r = peer.open(alert, plain);
  CHECK(plain.empty());
  return r ? std::string("no alert") : r.err().text;
}

}  // namespace

TEST_CASE("tls records: data both ways, cut into reads of any size, over many seeds",
          "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    for (int i = 0; i < 6; ++i) {
      // Sizes around the record limit, and random ones.
      const std::size_t sizes[] = {1, tls_max_plaintext - 1, tls_max_plaintext,
                                   tls_max_plaintext + 1, 3 * tls_max_plaintext + 7};
      const std::size_t n = i < 5 ? sizes[(seed + static_cast<std::uint64_t>(i)) % 5]
                                  : std::uniform_int_distribution<std::size_t>(1, 70'000)(p.rng);
      const bytes msg = random_bytes(p.rng, n);
      bytes wire, got;
      REQUIRE(p.c.seal(msg, wire));
      // Each record: 5 header bytes, a content type byte, a 16-byte tag.
      const std::size_t records = (n + tls_max_plaintext - 1) / tls_max_plaintext;
      CHECK(wire.size() == n + records * 22);
      REQUIRE(feed(p.s, wire, got, p.rng, seed % 2 == 0 ? 7 : 20'000));
      CHECK(got == msg);
      bytes back, got_back;
      REQUIRE(p.s.seal(msg, back));
      CHECK(back != wire);  // the other direction's key and IV
      REQUIRE(feed(p.c, back, got_back, p.rng));
      CHECK(got_back == msg);
    }
    CHECK(p.c.held() == 0);
    CHECK(p.s.held() == 0);
    CHECK_FALSE(p.c.has_records());
  }
}

TEST_CASE(
    "tls records: a record changed, replayed, reordered, dropped or cut is refused, and the "
    "peer is told",
    "[tls_records]") {
  for (int attack = 0; attack < 6; ++attack) {
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      INFO("attack " << attack << ", seed " << seed);
      pair_of p(seed * 31 + static_cast<std::uint64_t>(attack));
      bytes r1, r2, r3, plain;
      // Records other than the first, so that sequence numbers are not 0.
      for (int i = 0; i < static_cast<int>(seed); ++i) {
        bytes w;
        REQUIRE(p.c.seal(random_bytes(p.rng, 10), w));
        REQUIRE(p.s.open(w, plain));
      }
      plain.clear();
      REQUIRE(p.c.seal(of({1, 2, 3}), r1));
      REQUIRE(p.c.seal(of({4, 5, 6}), r2));
      REQUIRE(p.c.seal(of({7, 8, 9}), r3));
      bytes bad;
      switch (attack) {
        case 0:  // one bit of the ciphertext
          bad = r1;
          bad[5 + p.rng() % (bad.size() - 5)] ^= std::byte{0x10};
          break;
        case 1:  // one bit of the header (associated data), same length
          bad = r1;
          bad[2] ^= std::byte{0x01};
          break;
        case 2:  // the second record first
          bad = r2;
          break;
        case 3:  // the first one twice
          REQUIRE(p.s.open(r1, plain));
          bad = r1;
          break;
        case 4:  // the second one dropped
          REQUIRE(p.s.open(r1, plain));
          bad = r3;
          break;
        case 5: {  // sealed with the other direction's key
          REQUIRE(p.s.seal(of({1, 2, 3}), bad));
          bytes seen;  // by the dialler, whose records from s stay in step
          REQUIRE(p.c.open(bad, seen));
          break;
        }
      }
      const std::size_t before = plain.size();
      auto r = p.s.open(bad, plain);
      REQUIRE_FALSE(r);
      CHECK(r.err().code == net::protocol_errc::tls_failed);
      CHECK(r.err().text.find("does not verify") != std::string::npos);
      CHECK(plain.size() == before);
      CHECK(alert_seen_by(p.c, p.s).find("alert 20 (bad_record_mac)") != std::string::npos);
      // Nothing is accepted after a failure, not even the right record.
      CHECK_FALSE(p.s.open(r2, plain));
      bytes after;
      CHECK_FALSE(p.s.seal(of({1}), after));
    }
  }
}

TEST_CASE("tls records: a header is judged before its body is held", "[tls_records]") {
  struct header_case {
    bytes header;
    std::string reason;
    int alert;
  };
  const std::vector<header_case> cases = {
      {of({22, 3, 3, 0, 40}), "outer type 22", 10},     // a handshake record in the clear
      {of({21, 3, 3, 0, 2}), "outer type 21", 10},      // an alert in the clear
      {of({20, 3, 3, 0, 1}), "outer type 20", 10},      // ChangeCipherSpec
      {of({23, 3, 3, 0x40, 0x12}), "16402 bytes", 22},  // 2^14 + 1 + 16 + 1
      {of({23, 3, 3, 0xff, 0xff}), "65535 bytes", 22},
      {of({23, 3, 3, 0, 16}), "cannot hold a content type", 50},
  };
  for (const auto& hc : cases) {
    INFO(hc.reason);
    pair_of p(static_cast<std::uint64_t>(hc.alert) + std::to_integer<std::uint64_t>(hc.header[4]));
    bytes plain;
    // Byte by byte: nothing is refused before the header is whole, and it
    // is refused the moment it is.
    for (std::size_t i = 0; i + 1 < hc.header.size(); ++i) {
      REQUIRE(p.s.open(std::span<const std::byte>(hc.header).subspan(i, 1), plain));
    }
    CHECK(p.s.held() == 4);
    auto r = p.s.open(std::span<const std::byte>(hc.header).subspan(4), plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find(hc.reason) != std::string::npos);
    CHECK(p.s.held() == 0);
    CHECK(alert_seen_by(p.c, p.s).find("alert " + std::to_string(hc.alert)) != std::string::npos);
  }
  // The largest record allowed is taken (the control), under both suites.
  for (const std::uint64_t seed : {99, 100}) {
    pair_of p(seed);
    bytes wire, got;
    REQUIRE(p.c.seal(bytes(tls_max_plaintext, std::byte{7}), wire));
    CHECK(wire[3] == std::byte{0x40});
    CHECK(wire[4] == std::byte{0x11});
    REQUIRE(p.s.open(wire, got));
    CHECK(got.size() == tls_max_plaintext);
  }
}

TEST_CASE("tls records: KeyUpdates move each direction's key on", "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    bytes old_record, plain;
    REQUIRE(p.c.seal(of({1}), old_record));
    REQUIRE(p.s.open(old_record, plain));
    int sent = 0;
    for (int i = 0; i < max_post_handshake_messages / 2; ++i) {
      const bool request = (seed + static_cast<std::uint64_t>(i)) % 2 == 0;
      REQUIRE(p.c.update_keys(request));
      ++sent;
      const bytes msg = random_bytes(p.rng, 1 + p.rng() % 30'000);
      bytes wire, got;
      REQUIRE(p.c.seal(msg, wire));
      REQUIRE(feed(p.s, wire, got, p.rng));
      CHECK(got == msg);
      // Asked, the acceptor answers before its next data, under its old key.
      CHECK(p.s.has_records() == request);
      bytes back, got_back;
      REQUIRE(p.s.seal(msg, back));
      REQUIRE(feed(p.c, back, got_back, p.rng));
      CHECK(got_back == msg);
    }
    CHECK(p.s.post_handshake_messages() == sent);
    // A record under the first key no longer opens, even with its
    // sequence number due again.
    auto r = p.s.open(old_record, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("does not verify") != std::string::npos);
  }
}

TEST_CASE("tls records: what a peer may send inside records besides data", "[tls_records]") {
  struct inner_case {
    std::string what;
    bool to_dialler;                             // which side receives
    std::vector<std::pair<int, bytes>> records;  // inner type, content
    std::string reason;                          // empty: accepted
    int alert;                                   // -1: none back
  };
  const bytes nst = of({4, 0, 0, 5, 1, 2, 3, 4, 5});
  bytes nst_split_a(nst.begin(), nst.begin() + 3);
  bytes nst_split_b(nst.begin() + 3, nst.end());
  bytes big_claim = of({4, 0, 0x40, 0x00});  // 16 KiB of body, 16 KiB + 4 in all
  const std::vector<inner_case> cases = {
      {"a NewSessionTicket to a dialler", true, {{22, nst}}, "", -1},
      {"a NewSessionTicket split over two records",
       true,
       {{22, nst_split_a}, {22, nst_split_b}},
       "",
       -1},
      {"two NewSessionTickets in one record",
       true,
       {{22,
         [&] {
           bytes b = nst;
           b.insert(b.end(), nst.begin(), nst.end());
           return b;
         }()}},
       "",
       -1},
      {"an empty data record", false, {{23, {}}}, "", -1},
      {"a NewSessionTicket to an acceptor", false, {{22, nst}}, "to an acceptor", 10},
      {"a Finished after the handshake", false, {{22, of({20, 0, 0, 1, 0})}}, "type 20", 10},
      {"a KeyUpdate of two bytes", false, {{22, of({24, 0, 0, 2, 0, 0})}}, "KeyUpdate of 2", 50},
      {"a KeyUpdate asking 2", false, {{22, of({24, 0, 0, 1, 2})}}, "request_update 2", 47},
      {"a KeyUpdate not at its record's end",
       false,
       {{22, of({24, 0, 0, 1, 0, 24, 0, 0, 1, 0})}},
       "does not end its record",
       10},
      {"data in the middle of a handshake message",
       true,
       {{22, nst_split_a}, {23, of({1})}},
       "data inside a post-handshake message",
       10},
      {"a handshake message over the size limit", true, {{22, big_claim}}, "16388 bytes", 10},
      {"an empty handshake record", false, {{22, {}}}, "empty handshake record", 10},
      {"a ChangeCipherSpec inside", false, {{20, of({1})}}, "content type 20", 10},
      {"an unknown content type", false, {{99, of({1, 2})}}, "content type 99", 10},
      {"no content type at all", false, {{0, {}}}, "no content type", 10},
      {"close_notify", false, {{21, of({1, 0})}}, "the peer closed the TLS session", -1},
      {"a fatal alert", false, {{21, of({2, 40})}}, "alert 40 (handshake_failure)", -1},
      {"an alert of three bytes", false, {{21, of({2, 40, 0})}}, "alert of 3 bytes", 50},
  };
  for (const auto& ic : cases) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      INFO(ic.what << ", seed " << seed);
      pair_of p(seed + ic.what.size());
      tls_records& from = ic.to_dialler ? p.s : p.c;
      tls_records& to = ic.to_dialler ? p.c : p.s;
      // Data first, so that the sequence numbers are not 0.
      bytes wire, plain;
      REQUIRE(from.seal(random_bytes(p.rng, 100), wire));
      for (const auto& [type, content] : ic.records) {
        REQUIRE(from.seal_record(static_cast<std::uint8_t>(type), content, wire));
      }
      bytes trailer;
      REQUIRE(from.seal(of({42}), trailer));
      auto r = feed(to, wire, plain, p.rng, seed == 1 ? 3 : 20'000);
      if (ic.reason.empty()) {
        REQUIRE(r);
        REQUIRE(to.open(trailer, plain));
        CHECK(plain.size() == 101);
        CHECK(plain.back() == std::byte{42});
        CHECK_FALSE(to.has_records());
        continue;
      }
      REQUIRE_FALSE(r);
      CHECK(r.err().text.find(ic.reason) != std::string::npos);
      CHECK(plain.size() == 100);  // the data before, nothing of what failed
      if (ic.alert >= 0) {
        CHECK(alert_seen_by(from, to).find("alert " + std::to_string(ic.alert)) !=
              std::string::npos);
      } else {
        CHECK_FALSE(to.has_records());
      }
      CHECK_FALSE(to.open(trailer, plain));
    }
  }
}

TEST_CASE("tls records: a peer may send a few post-handshake messages, not a flood",
          "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    // Tickets and KeyUpdates mixed, the limit exactly, then one more.
    bytes wire, plain;
    for (int i = 0; i < max_post_handshake_messages; ++i) {
      if ((seed + static_cast<std::uint64_t>(i)) % 3 == 0) {
        REQUIRE(p.s.update_keys(false));
        p.s.take_records(wire);
      } else {
        REQUIRE(p.s.seal_record(22, of({4, 0, 0, 2, 9, 9}), wire));
      }
    }
    REQUIRE(feed(p.c, wire, plain, p.rng));
    CHECK(p.c.post_handshake_messages() == max_post_handshake_messages);
    bytes one_more;
    REQUIRE(p.s.seal_record(22, of({4, 0, 0, 2, 9, 9}), one_more));
    REQUIRE(p.s.seal(of({5}), one_more));
    auto r = p.c.open(one_more, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("more than 16 post-handshake messages") != std::string::npos);
    CHECK(p.c.post_handshake_messages() == max_post_handshake_messages + 1);
    CHECK(plain.empty());
  }
  // A handshake message of exactly the size limit is taken, under both
  // suites.
  for (const std::uint64_t seed : {7, 8}) {
    pair_of p(seed);
    bytes body(max_post_handshake_message - 4, std::byte{1});
    bytes msg = of({4, 0, 0x3f, 0xfc});
    msg.insert(msg.end(), body.begin(), body.end());
    bytes wire, plain;
    REQUIRE(msg.size() == max_post_handshake_message);
    REQUIRE(p.s.seal_record(22, std::span<const std::byte>(msg).first(8000), wire));
    REQUIRE(p.s.seal_record(22, std::span<const std::byte>(msg).subspan(8000), wire));
    REQUIRE(p.c.open(wire, plain));
    CHECK(p.c.post_handshake_messages() == 1);
    CHECK(p.c.held() == 0);
  }
}

TEST_CASE(
    "tls records: answers to this side's own KeyUpdate requests are not the peer's "
    "messages",
    "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    auto exchange = [&](tls_records& asker, tls_records& answerer) {
      REQUIRE(asker.update_keys(true));
      bytes wire, plain;
      REQUIRE(asker.seal(of({1}), wire));
      REQUIRE(answerer.open(wire, plain));
      bytes back, got;
      REQUIRE(answerer.seal(of({2}), back));
      REQUIRE(asker.open(back, got));
      CHECK(got == of({2}));
    };
    // Past the limit in all, from both sides.
    for (int i = 0; i < max_post_handshake_messages; ++i) exchange(p.c, p.s);
    for (int i = 0; i < max_post_handshake_messages; ++i) exchange(p.s, p.c);
    // Each side counted the other's requests only.
    CHECK(p.c.post_handshake_messages() == max_post_handshake_messages);
    CHECK(p.s.post_handshake_messages() == max_post_handshake_messages);
  }
}

TEST_CASE("tls records: many requests waiting get one answer", "[tls_records]") {
  for (const std::uint64_t seed : {13, 14}) {  // both suites
    INFO("seed " << seed);
    pair_of p(seed);
    bytes wire, plain;
    for (int i = 0; i < max_post_handshake_messages; ++i) {
      REQUIRE(p.c.update_keys(true));
      p.c.take_records(wire);
    }
    REQUIRE(p.s.open(wire, plain));
    bytes answers;
    p.s.take_records(answers);
    // One KeyUpdate record: header, the 5-byte message, its type, the tag.
    CHECK(answers.size() == 5 + 5 + 1 + 16);
    bytes got, data;
    REQUIRE(p.c.open(answers, got));
    CHECK(got.empty());
    // Both directions still agree on their keys.
    REQUIRE(p.s.seal(of({9}), data));
    REQUIRE(p.c.open(data, got));
    CHECK(got == of({9}));
  }
}

TEST_CASE(
    "tls records: after a KeyUpdate a record under the old key is refused, at the due "
    "sequence number too",
    "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    bytes plain;
    for (std::uint64_t i = 0; i < seed; ++i) {
      bytes w;
      REQUIRE(p.c.seal(of({1}), w));
      REQUIRE(p.s.open(w, plain));
    }
    REQUIRE(p.c.update_keys(false));
    bytes ku;
    p.c.take_records(ku);
    REQUIRE(p.s.open(ku, plain));
    // The new key's first record is number 0: a writer on the old key at
    // its number 0 (one that kept the key and only reset the number would
    // get through).
    tls_records fresh{p.c2s, p.s2c, true, suite_of(seed)};
    bytes old;
    REQUIRE(fresh.seal(of({6, 6, 6}), old));
    plain.clear();
    auto r = p.s.open(old, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("does not verify") != std::string::npos);
    CHECK(plain.empty());
  }
}

TEST_CASE("tls records: nothing is sealed or opened after a failure, through any entry point",
          "[tls_records]") {
  for (const std::uint64_t seed : {17, 18}) {  // both suites
    INFO("seed " << seed);
    pair_of p(seed);
    bytes junk = of({23, 3, 3, 0, 17});
    junk.resize(5 + 17, std::byte{0});
    bytes plain;
    REQUIRE_FALSE(p.s.open(junk, plain));
    bytes alert;
    p.s.take_records(alert);
    CHECK(alert.size() == 5 + 2 + 1 + 16);
    bytes out;
    CHECK_FALSE(p.s.seal(of({1}), out));
    CHECK(out.empty());
    CHECK(p.s.seal({}, out));  // only waiting records, and none wait
    CHECK(out.empty());
    CHECK_FALSE(p.s.update_keys(false));
    CHECK_FALSE(p.s.seal_record(23, of({1, 2, 3}), out));
    CHECK(out.empty());
    bytes good;
    REQUIRE(p.c.seal(of({1}), good));
    CHECK_FALSE(p.s.open(good, plain));
  }
}

TEST_CASE("tls records: a few empty records in a row, not a stream of them", "[tls_records]") {
  using libactor::net::detail::max_empty_records;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed);
    bytes wire, plain;
    // The limit in a row, then data, then the limit again: the count
    // starts over after data.
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < max_empty_records; ++i) REQUIRE(p.c.seal_record(23, {}, wire));
      REQUIRE(p.c.seal(of({static_cast<int>(seed)}), wire));
    }
    REQUIRE(feed(p.s, wire, plain, p.rng));
    CHECK(plain.size() == 2);
    // One past it.
    bytes flood;
    for (int i = 0; i <= max_empty_records; ++i) REQUIRE(p.c.seal_record(23, {}, flood));
    REQUIRE(p.c.seal(of({1}), flood));
    plain.clear();
    auto r = p.s.open(flood, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("more than 32 records with no data in a row") != std::string::npos);
    CHECK(plain.empty());
  }
}

TEST_CASE("tls records: under AES-GCM the writer moves its key on before the bound, for good",
          "[tls_records]") {
  if (!aes_gcm_available()) {
    WARN("no AES instructions on this CPU: skipped");
    return;
  }
  // Small limits: a KeyUpdate every 5 records, many more of them than the
  // 16 post-handshake messages a peer may send early in a key.
  const tls_key_limits small{5, 8, 10, 3};
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    pair_of p(seed, tls_suite::aes_256_gcm_sha384, small, small);
    CHECK(p.c.suite() == tls_suite::aes_256_gcm_sha384);
    int records = 0;
    const int data_records = 150 + static_cast<int>(seed);
    for (int i = 0; i < data_records; ++i) {
      const bytes msg = random_bytes(p.rng, 1 + p.rng() % 300);
      bytes wire, got;
      REQUIRE(p.c.seal(msg, wire));
      CHECK(p.c.write_sequence() <= 5);
      // Count the records: a KeyUpdate is one more before the data.
      for (std::size_t at = 0; at < wire.size();) {
        at += 5 + ((std::to_integer<std::size_t>(wire[at + 3]) << 8) |
                   std::to_integer<std::size_t>(wire[at + 4]));
        ++records;
      }
      REQUIRE(feed(p.s, wire, got, p.rng, 1 + p.rng() % 400));
      CHECK(got == msg);
      CHECK(p.s.read_sequence() <= 5);
      // The reader never needs to ask: the writer moved on first.
      CHECK_FALSE(p.s.has_records());
    }
    // Every fifth data record (after the first five) came behind a KeyUpdate.
    CHECK(records == data_records + (data_records - 1) / 5);
    // KeyUpdates after at least free_after records are not counted.
    CHECK(p.s.post_handshake_messages() == 0);
  }
}

TEST_CASE(
    "tls records: under AES-GCM a peer that does not move its key on is asked to, and refused "
    "past the bound",
    "[tls_records]") {
  if (!aes_gcm_available()) {
    WARN("no AES instructions on this CPU: skipped");
    return;
  }
  const tls_key_limits never{UINT64_MAX, UINT64_MAX, UINT64_MAX, 3};  // a peer that never rekeys
  // free_after past every record here: the answer below is not counted
  // because it answers, not because it came late in its key.
  const tls_key_limits small{1000, 8, 10, 1u << 20};
  for (const bool answered : {false, true}) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      INFO("answered " << answered << ", seed " << seed);
      pair_of p(seed + (answered ? 100 : 0), tls_suite::aes_256_gcm_sha384, never, small);
      // Some records the other way first, so that sequence numbers differ.
      for (std::uint64_t i = 0; i < seed; ++i) {
        bytes w, got;
        REQUIRE(p.s.seal(of({1, 2}), w));
        REQUIRE(p.c.open(w, got));
      }
      bytes plain;
      for (int i = 1; i <= 9; ++i) {
        bytes w;
        REQUIRE(p.c.seal(of({i}), w));
        REQUIRE(p.s.open(w, plain));
        // After request_after records the reader's request waits for its
        // next seal.
        CHECK(p.s.has_records() == (i >= 8));
      }
      CHECK(plain.size() == 9);
      if (answered) {
        // The acceptor sends something: the request goes with it, and the
        // dialler answers with a KeyUpdate (its 10th record under the key)
        // before its next data, under the new key.
        bytes w, got;
        REQUIRE(p.s.seal(of({42}), w));
        REQUIRE(p.c.open(w, got));
        CHECK(got == of({42}));
        CHECK(p.c.has_records());
        for (int i = 10; i <= 18; ++i) {
          bytes more;
          REQUIRE(p.c.seal(of({i}), more));
          REQUIRE(p.s.open(more, plain));
          // Under the new key the reader asks again once it is due.
          CHECK(p.s.has_records() == (i >= 17));
        }
        CHECK(plain.size() == 18);
        CHECK(p.s.read_sequence() == 9);
        // The answer to the acceptor's own request is not the peer's doing.
        CHECK(p.s.post_handshake_messages() == 0);
      } else {
        // The 10th record is the last the key may carry; the 11th is refused.
        bytes tenth, eleventh;
        REQUIRE(p.c.seal(of({10}), tenth));
        REQUIRE(p.s.open(tenth, plain));
        REQUIRE(p.c.seal(of({11}), eleventh));
        auto r = p.s.open(eleventh, plain);
        REQUIRE_FALSE(r);
        CHECK(r.err().text.find("more than 10 records under one TLS_AES_256_GCM_SHA384 key") !=
              std::string::npos);
        CHECK(plain.size() == 10);
        CHECK(alert_seen_by(p.c, p.s).find("unexpected_message") != std::string::npos);
      }
    }
  }
}

TEST_CASE("tls records: KeyUpdates early in a key are counted, under either suite",
          "[tls_records]") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    // free_after: 1000 records, so every KeyUpdate below is early.
    const tls_key_limits limits{1u << 20, 1u << 21, 1u << 22, 1000};
    pair_of p(seed, limits, limits);
    bytes wire, plain;
    for (int i = 0; i < max_post_handshake_messages; ++i) {
      REQUIRE(p.c.update_keys(false));
      REQUIRE(p.c.seal(random_bytes(p.rng, 1 + p.rng() % 50), wire));
    }
    REQUIRE(feed(p.s, wire, plain, p.rng));
    CHECK(p.s.post_handshake_messages() == max_post_handshake_messages);
    bytes one_more;
    REQUIRE(p.c.update_keys(false));
    REQUIRE(p.c.seal(of({1}), one_more));
    auto r = p.s.open(one_more, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("more than 16 post-handshake messages") != std::string::npos);
  }
}

TEST_CASE("tls records: ChaCha20-Poly1305 needs no KeyUpdate, whatever the limits say",
          "[tls_records]") {
  // Run again as on a CPU without AES instructions (tests/CMakeLists.txt);
  // the run checks that it took.
  if (std::getenv("LIBACTOR_TEST_NO_AES") != nullptr) REQUIRE_FALSE(aes_gcm_available());
  const tls_key_limits small{5, 8, 10, 3};
  pair_of p(3, tls_suite::chacha20_poly1305_sha256, small, small);
  for (int i = 0; i < 40; ++i) {
    bytes w, got;
    REQUIRE(p.c.seal(of({i}), w));
    CHECK(w.size() == 5 + 1 + 1 + 16);  // one record: no KeyUpdate before it
    REQUIRE(p.s.open(w, got));
    CHECK_FALSE(p.s.has_records());
  }
  CHECK(p.c.write_sequence() == 40);
  CHECK(p.s.read_sequence() == 40);
}
