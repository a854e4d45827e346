// Frames and the authenticated handshake, byte by byte: success, wrong
// secret, wrong version, reflection, oversized and garbage input.

#include <catch2/catch.hpp>

#include <libactor/net/handshake.hpp>

#include <algorithm>
#include <random>

#include "support.hpp"

namespace net = libactor::net;
using role = net::handshake::role;
using state = net::handshake::state;

namespace {

net::handshake_config config(std::string name, std::string secret, std::uint16_t version = 1) {
  net::handshake_config c;
  c.node_name = std::move(name);
  c.secret = std::move(secret);
  c.version = version;
  return c;
}

/// Runs two handshakes against each other, delivering `chunk` bytes at a
/// time; returns everything either side sent.
std::vector<std::byte> pump(net::handshake& a, net::handshake& b, std::size_t chunk = 1 << 20) {
  std::vector<std::byte> transcript;
  std::vector<std::byte> to_b = a.start();
  std::vector<std::byte> to_a = b.start();
  for (int rounds = 0; rounds < 10000 && (!to_a.empty() || !to_b.empty()); ++rounds) {
    transcript.insert(transcript.end(), to_a.begin(), to_a.end());
    transcript.insert(transcript.end(), to_b.begin(), to_b.end());
    auto feed = [chunk](net::handshake& h, std::vector<std::byte>& in) {
      std::vector<std::byte> out;
      for (std::size_t i = 0; i < in.size(); i += chunk) {
        const auto n = std::min(chunk, in.size() - i);
        auto o = h.feed(std::span<const std::byte>(in.data() + i, n));
        out.insert(out.end(), o.begin(), o.end());
      }
      in.clear();
      return out;
    };
    auto from_a = feed(a, to_a);
    auto from_b = feed(b, to_b);
    to_b.insert(to_b.end(), from_a.begin(), from_a.end());
    to_a.insert(to_a.end(), from_b.begin(), from_b.end());
  }
  return transcript;
}

bool contains(const std::vector<std::byte>& hay, const std::string& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                        [](std::byte x, char c) { return static_cast<char>(x) == c; });
  return it != hay.end();
}

}  // namespace

TEST_CASE("frames: split from a stream at any chunking; oversize refused before buffering",
          "[net][frame]") {
  std::vector<std::byte> stream;
  const std::vector<std::byte> p1(10, std::byte{7});
  net::append_frame(stream, net::frame_kind::hello, p1);
  net::append_frame(stream, net::frame_kind::auth, {});
  for (std::size_t chunk : {1u, 3u, 100u}) {
    net::frame_decoder d(1024);
    std::vector<net::frame> got;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      d.feed(std::span<const std::byte>(stream.data() + i, std::min(chunk, stream.size() - i)));
      for (;;) {
        auto f = d.next();
        REQUIRE(f);
        if (!f->has_value()) break;
        got.push_back(std::move(**f));
      }
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].kind == net::frame_kind::hello);
    CHECK(got[0].payload == p1);
    CHECK(got[1].kind == net::frame_kind::auth);
    CHECK(got[1].payload.empty());
  }
  // A 4 GiB length: refused as soon as the length is known.
  net::frame_decoder d(1024);
  const std::byte huge[] = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  d.feed(huge);
  auto f = d.next();
  REQUIRE_FALSE(f);
  CHECK(f.err().code == net::protocol_errc::frame_too_large);
  CHECK(d.buffered() == 4);
  net::frame_decoder z(1024);
  const std::byte zero[] = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
  z.feed(zero);
  CHECK(z.next().err().code == net::protocol_errc::empty_frame);
  net::frame_decoder k(1024);
  const std::byte unknown[] = {std::byte{1}, std::byte{0}, std::byte{0}, std::byte{0},
                               std::byte{99}};
  k.feed(unknown);
  // The splitter passes any kind on: checking it is the reader's job (the
  // handshake's, then the session's).
  auto raw = k.next();
  REQUIRE(raw);
  REQUIRE(raw->has_value());
  CHECK(static_cast<int>((*raw)->kind) == 99);
}

TEST_CASE(
    "handshake: a data frame before the handshake finished is unexpected, an unknown kind "
    "is unknown",
    "[net][handshake][hostile]") {
  for (auto [kind, code] : {std::pair{4, net::protocol_errc::unexpected_frame},
                            std::pair{5, net::protocol_errc::unexpected_frame},
                            std::pair{11, net::protocol_errc::unexpected_frame},
                            std::pair{12, net::protocol_errc::unknown_frame_kind},
                            std::pair{99, net::protocol_errc::unknown_frame_kind}}) {
    INFO("kind " << kind);
    net::handshake a(config("alpha", "k"), role::acceptor);
    std::vector<std::byte> out;
    net::append_frame(out, static_cast<net::frame_kind>(kind), std::vector<std::byte>(3));
    auto reply = a.feed(out);
    CHECK(a.current() == state::failed);
    CHECK(a.error().code == code);
    CHECK_FALSE(reply.empty());  // the peer is told why
  }
}

TEST_CASE("handshake: a node name over 255 bytes in hello is refused",
          "[net][handshake][hostile]") {
  net::handshake a(config(std::string(256, 'n'), "k"), role::initiator);
  net::handshake b(config("beta", "k"), role::acceptor);
  (void)pump(a, b);
  CHECK(b.current() == state::failed);
  CHECK(b.error().code == net::protocol_errc::malformed_payload);
  CHECK(b.error().text.find("256 bytes") != std::string::npos);
  net::handshake c(config(std::string(255, 'n'), "k"), role::initiator);
  net::handshake d(config("beta", "k"), role::acceptor);
  (void)pump(c, d);
  CHECK(d.current() == state::done);
}

TEST_CASE("handshake: same secret authenticates both sides; the secret is never sent",
          "[net][handshake]") {
  for (std::size_t chunk : {1u, 7u, 4096u}) {
    net::handshake a(config("alpha", "s3cret-cluster-key"), role::initiator);
    net::handshake b(config("beta", "s3cret-cluster-key"), role::acceptor);
    auto transcript = pump(a, b, chunk);
    REQUIRE(a.current() == state::done);
    REQUIRE(b.current() == state::done);
    CHECK(a.peer_name() == "beta");
    CHECK(b.peer_name() == "alpha");
    CHECK_FALSE(contains(transcript, "s3cret-cluster-key"));
    CHECK(contains(transcript, "alpha"));  // the check above can find strings
  }
}

TEST_CASE("handshake: a wrong secret fails on both sides with a clear reason", "[net][handshake]") {
  net::handshake a(config("alpha", "right"), role::initiator);
  net::handshake b(config("beta", "wrong"), role::acceptor);
  pump(a, b);
  REQUIRE(a.current() == state::failed);
  REQUIRE(b.current() == state::failed);
  // Each side either detected the bad proof itself or was told by the peer.
  for (auto* h : {&a, &b}) {
    const auto code = h->error().code;
    CHECK((code == net::protocol_errc::auth_failed || code == net::protocol_errc::refused_by_peer));
    CHECK(h->error().text.find("secret") != std::string::npos);
  }
}

TEST_CASE("handshake: an incompatible version is refused on both sides", "[net][handshake]") {
  net::handshake a(config("alpha", "k", 1), role::initiator);
  net::handshake b(config("beta", "k", 2), role::acceptor);
  pump(a, b);
  REQUIRE(a.current() == state::failed);
  REQUIRE(b.current() == state::failed);
  for (auto* h : {&a, &b}) {
    CHECK(h->error().text.find("version") != std::string::npos);
    CHECK(h->error().text.find('1') != std::string::npos);
    CHECK(h->error().text.find('2') != std::string::npos);
  }
}

TEST_CASE("handshake: a node's own proof reflected back does not verify", "[net][handshake]") {
  // A fake peer echoes the initiator's hello and auth frames back to it.
  net::handshake a(config("alpha", "k"), role::initiator);
  auto hello = a.start();
  auto auth = a.feed(hello);  // alpha accepts its own hello as the peer's ...
  REQUIRE(a.current() == state::in_progress);
  (void)a.feed(auth);  // ... but its own proof, reflected, must fail
  CHECK(a.current() == state::failed);
  CHECK(a.error().code == net::protocol_errc::auth_failed);
}

TEST_CASE("handshake: garbage, wrong magic and out-of-order frames fail cleanly",
          "[net][handshake][hostile]") {
  {
    net::handshake a(config("alpha", "k"), role::acceptor);
    std::vector<std::byte> out;
    net::append_frame(out, net::frame_kind::auth, std::vector<std::byte>(32));
    (void)a.feed(out);
    CHECK(a.current() == state::failed);
    CHECK(a.error().code == net::protocol_errc::unexpected_frame);
  }
  {
    net::handshake a(config("alpha", "k"), role::acceptor);
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    std::vector<std::byte> in;
    for (char c : http) in.push_back(static_cast<std::byte>(c));
    auto reply = a.feed(in);
    CHECK(a.current() == state::failed);
    CHECK(a.error().code == net::protocol_errc::frame_too_large);
    CHECK_FALSE(reply.empty());  // the peer is told why
  }
  std::mt19937_64 rng(7);
  const std::size_t rounds = test::scaled(2000);
  for (std::size_t i = 0; i < rounds; ++i) {
    net::handshake a(config("alpha", "k"), role::acceptor);
    std::vector<std::byte> in(rng() % 200);
    for (auto& b : in) b = static_cast<std::byte>(rng());
    (void)a.feed(in);
    REQUIRE(a.current() != state::done);
  }
}

TEST_CASE("handshake: an empty secret or name is refused up front", "[net][handshake]") {
  CHECK_THROWS_AS(net::handshake(config("alpha", ""), role::initiator), std::invalid_argument);
  CHECK_THROWS_AS(net::handshake(config("", "k"), role::initiator), std::invalid_argument);
}
