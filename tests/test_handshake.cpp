// Frames and the authenticated handshake, byte by byte: success, wrong
// secret, wrong version, reflection, oversized and garbage input.

#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <libactor/net/handshake.hpp>
#include <libactor/net/secret.hpp>
#include <libactor/net/wire.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "support.hpp"

namespace net = libactor::net;
using role = net::handshake::role;
using state = net::handshake::state;

namespace {

// Cluster secrets of 128 bits (32 hex digits) and more.
const std::string key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const std::string other_key = "ffeeddccbbaa99887766554433221100";

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
    net::handshake a(config("alpha", key), role::acceptor);
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
  net::handshake a(config(std::string(256, 'n'), key), role::initiator);
  net::handshake b(config("beta", key), role::acceptor);
  (void)pump(a, b);
  CHECK(b.current() == state::failed);
  CHECK(b.error().code == net::protocol_errc::malformed_payload);
  CHECK(b.error().text.find("256 bytes") != std::string::npos);
  net::handshake c(config(std::string(255, 'n'), key), role::initiator);
  net::handshake d(config("beta", key), role::acceptor);
  (void)pump(c, d);
  CHECK(d.current() == state::done);
}

TEST_CASE("handshake: same secret authenticates both sides; the secret is never sent",
          "[net][handshake]") {
  for (std::size_t chunk : {1u, 7u, 4096u}) {
    net::handshake a(config("alpha", "s3cret-cluster-key-0123456789-5f1d2a7e9b3c4d60a1b2"),
                     role::initiator);
    net::handshake b(config("beta", "s3cret-cluster-key-0123456789-5f1d2a7e9b3c4d60a1b2"),
                     role::acceptor);
    auto transcript = pump(a, b, chunk);
    REQUIRE(a.current() == state::done);
    REQUIRE(b.current() == state::done);
    CHECK(a.peer_name() == "beta");
    CHECK(b.peer_name() == "alpha");
    CHECK_FALSE(contains(transcript, "s3cret-cluster-key-0123456789-5f1d2a7e9b3c4d60a1b2"));
    CHECK(contains(transcript, "alpha"));  // the check above can find strings
  }
}

TEST_CASE("handshake: a wrong secret fails on both sides with a clear reason", "[net][handshake]") {
  net::handshake a(config("alpha", key), role::initiator);
  net::handshake b(config("beta", other_key), role::acceptor);
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
  net::handshake a(config("alpha", key, 1), role::initiator);
  net::handshake b(config("beta", key, 2), role::acceptor);
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
  net::handshake a(config("alpha", key), role::initiator);
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
    net::handshake a(config("alpha", key), role::acceptor);
    std::vector<std::byte> out;
    net::append_frame(out, net::frame_kind::auth, std::vector<std::byte>(32));
    (void)a.feed(out);
    CHECK(a.current() == state::failed);
    CHECK(a.error().code == net::protocol_errc::unexpected_frame);
  }
  {
    net::handshake a(config("alpha", key), role::acceptor);
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
    net::handshake a(config("alpha", key), role::acceptor);
    std::vector<std::byte> in(rng() % 200);
    for (auto& b : in) b = static_cast<std::byte>(rng());
    (void)a.feed(in);
    REQUIRE(a.current() != state::done);
  }
}

TEST_CASE("handshake: an empty secret or name is refused up front", "[net][handshake]") {
  CHECK_THROWS_AS(net::handshake(config("alpha", ""), role::initiator), std::invalid_argument);
  CHECK_THROWS_AS(net::handshake(config("", key), role::initiator), std::invalid_argument);
}

namespace {

/// The kinds of the frames in `bytes` (whole frames only).
std::vector<net::frame_kind> kinds_in(const std::vector<std::byte>& bytes) {
  net::frame_decoder d(1 << 20);
  d.feed(bytes);
  std::vector<net::frame_kind> out;
  for (;;) {
    auto f = d.next();
    REQUIRE(f);
    if (!f->has_value()) return out;
    out.push_back((**f).kind);
  }
}

bool has_auth(const std::vector<std::byte>& bytes) {
  auto k = kinds_in(bytes);
  return std::find(k.begin(), k.end(), net::frame_kind::auth) != k.end();
}

}  // namespace

TEST_CASE("handshake: the acceptor proves nothing until the initiator has proved the secret",
          "[net][handshake][hostile]") {
  // Whoever connects gets a nonce, never a MAC it could test guesses of
  // the secret against offline.
  for (const bool right : {false, true}) {
    INFO((right ? "the right secret" : "a wrong secret"));
    net::handshake acceptor(config("beta", key), role::acceptor);
    net::handshake initiator(config("alpha", right ? key : other_key), role::initiator);
    const auto acceptor_hello = acceptor.start();
    CHECK_FALSE(has_auth(acceptor_hello));
    const auto initiator_hello = initiator.start();
    const auto after_hello = acceptor.feed(initiator_hello);
    CHECK(after_hello.empty());  // no auth (no MAC) for a hello alone
    CHECK(acceptor.current() == state::in_progress);
    const auto initiator_auth = initiator.feed(acceptor_hello);
    REQUIRE(has_auth(initiator_auth));  // the initiator proves first
    const auto answer = acceptor.feed(initiator_auth);
    CHECK(has_auth(answer) == right);
    CHECK(acceptor.current() == (right ? state::done : state::failed));
    (void)initiator.feed(answer);
    CHECK(initiator.current() == (right ? state::done : state::failed));
  }
}

TEST_CASE("handshake: a failing HMAC ends the handshake instead of sending a predictable MAC",
          "[net][handshake][hostile]") {
  struct restore {
    net::detail::hmac_function saved = net::detail::handshake_hmac;
    ~restore() { net::detail::handshake_hmac = saved; }
  } guard;
  // What OpenSSL's HMAC() leaves when it fails: nothing written (zeros here).
  net::detail::handshake_hmac = [](std::span<const std::uint8_t>, std::span<const std::uint8_t>,
                                   std::array<std::uint8_t, 32>& out) noexcept {
    out.fill(0);
    return false;
  };
  {
    // The initiator cannot make its proof: it fails and sends no auth.
    net::handshake acceptor(config("beta", key), role::acceptor);
    net::handshake initiator(config("alpha", key), role::initiator);
    (void)initiator.start();
    const auto out = initiator.feed(acceptor.start());
    CHECK_FALSE(has_auth(out));
    CHECK(initiator.current() == state::failed);
    CHECK(initiator.error().code == net::protocol_errc::auth_failed);
    CHECK(initiator.error().text.find("HMAC failed") != std::string::npos);
  }
  {
    // The acceptor cannot check a proof: an all-zero proof (what a failed
    // HMAC leaves) must not pass.
    net::handshake acceptor(config("beta", key), role::acceptor);
    net::handshake peer(config("alpha", key), role::initiator);
    (void)acceptor.feed(peer.start());
    std::vector<std::byte> zero_auth;
    net::append_frame(zero_auth, net::frame_kind::auth, [] {
      std::vector<std::byte> p;
      net::writer w{p};
      net::wire_encode(w, std::array<std::uint8_t, 32>{});
      return p;
    }());
    const auto out = acceptor.feed(zero_auth);
    CHECK_FALSE(has_auth(out));
    CHECK(acceptor.current() == state::failed);
    CHECK(acceptor.error().code == net::protocol_errc::auth_failed);
  }
}

TEST_CASE("secrets: under 128 bits are refused; generated ones hold 256", "[net][secret]") {
  CHECK(net::secret_bits("0123456789") == Approx(10 * std::log2(10.0)));
  CHECK(net::secret_bits("0123456789abcdef0123456789abcdef") == Approx(128));
  CHECK(net::secret_bits("0123456789ABCDEF0123456789ABCDEF") == Approx(128));
  CHECK(net::secret_bits("0123456789abcdef0123456789abcde") < 128);  // 31 hex digits
  CHECK(net::secret_bits("correcthorsebattery") == Approx(19 * std::log2(26.0)));
  CHECK(net::secret_bits("Correct-Horse_Battery") ==
        Approx(19 * std::log2(26.0) + 2 * std::log2(33.0)));
  CHECK(net::secret_bits("pass word!") == Approx(8 * std::log2(26.0) + 2 * std::log2(33.0)));
  // One odd character adds its own bits, not a larger alphabet for all.
  CHECK(net::secret_bits("password1234567\r") < net::min_secret_bits);
  CHECK(net::secret_bits("password1234567\n") < net::min_secret_bits);
  CHECK(net::secret_bits("gr\xc3\xbc\xc3\x9f"
                         "e-m\xc3\xbcllerin") < net::min_secret_bits);
  CHECK(net::secret_bits("aaaaaaaaaaaaaaaaaaa!") < net::min_secret_bits);
  // The documented blind spot (secret.hpp): a repeated letter passes.
  CHECK(net::secret_bits(std::string(40, 'a')) >= net::min_secret_bits);
  CHECK(net::secret_bits(std::string("\x01\xff", 2)) == Approx(16));
  for (const std::string weak :
       {"k", "s3cret", "password1234", "0123456789abcdef0123456789abcde", "hunter2-hunter2"}) {
    INFO(weak);
    CHECK_THROWS_AS(net::handshake(config("alpha", weak), role::initiator), std::invalid_argument);
  }
  CHECK_NOTHROW(
      net::handshake(config("alpha", "0123456789abcdef0123456789abcdef"), role::initiator));
  const std::string a = net::generate_secret();
  const std::string b = net::generate_secret();
  CHECK(a.size() == 64);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(net::secret_bits(a) == Approx(256));
  CHECK(a != b);
}

TEST_CASE("handshake: AES-256-GCM only when both hellos say their side can seal it",
          "[net][handshake]") {
  for (const bool a_aes : {true, false}) {
    for (const bool b_aes : {true, false}) {
      INFO("initiator " << a_aes << ", acceptor " << b_aes);
      auto ca = config("alpha", key, net::protocol_version);
      auto cb = config("beta", key, net::protocol_version);
      ca.aes_gcm = a_aes;
      cb.aes_gcm = b_aes;
      net::handshake a(ca, role::initiator);
      net::handshake b(cb, role::acceptor);
      (void)pump(a, b, 5);
      REQUIRE(a.current() == state::done);
      REQUIRE(b.current() == state::done);
      CHECK(a.frame_keys().aes_gcm == (a_aes && b_aes));
      CHECK(b.frame_keys().aes_gcm == (a_aes && b_aes));
      CHECK(a.frame_keys().send == b.frame_keys().receive);
      CHECK(a.frame_keys().receive == b.frame_keys().send);
      CHECK(a.frame_keys().send != a.frame_keys().receive);
    }
  }
}

TEST_CASE("handshake: a hello changed on the way to choose another cipher leaves no common key",
          "[net][handshake][hostile]") {
  // The proofs do not cover the sealing byte, the keys do: a hello whose
  // "can seal AES-GCM" was taken out on the way (one side's, the other's,
  // or both, which would make both choose ChaCha20-Poly1305 unseen) leaves
  // the two sides with different keys, so the first record fails.
  for (const int changed : {1, 2, 3}) {  // bit 0: the initiator's hello; bit 1: the acceptor's
    INFO("changed " << changed);
    auto ca = config("alpha", key, net::protocol_version);
    auto cb = config("beta", key, net::protocol_version);
    ca.aes_gcm = cb.aes_gcm = true;
    net::handshake a(ca, role::initiator);
    net::handshake b(cb, role::acceptor);
    auto hello_a = a.start();
    auto hello_b = b.start();
    REQUIRE(std::to_integer<int>(hello_a.back()) == 2);  // the sealing byte ends the hello
    REQUIRE(std::to_integer<int>(hello_b.back()) == 2);
    if ((changed & 1) != 0) hello_a.back() = std::byte{1};
    if ((changed & 2) != 0) hello_b.back() = std::byte{1};
    std::vector<std::byte> to_a = b.feed(hello_a);
    to_a.insert(to_a.begin(), hello_b.begin(), hello_b.end());
    std::vector<std::byte> to_b = a.feed(to_a);
    for (int round = 0; round < 10 && !to_b.empty(); ++round) {
      to_a = b.feed(to_b);
      to_b = a.feed(to_a);
    }
    REQUIRE(a.current() == state::done);
    REQUIRE(b.current() == state::done);
    CHECK(a.frame_keys().aes_gcm == ((changed & 2) == 0));
    CHECK(b.frame_keys().aes_gcm == ((changed & 1) == 0));
    CHECK(a.frame_keys().send != b.frame_keys().receive);
    CHECK(a.frame_keys().receive != b.frame_keys().send);
  }
  // The control: nothing changed, the same keys.
  auto ca = config("alpha", key, net::protocol_version);
  auto cb = config("beta", key, net::protocol_version);
  ca.aes_gcm = cb.aes_gcm = true;
  net::handshake a(ca, role::initiator);
  net::handshake b(cb, role::acceptor);
  (void)pump(a, b, 3);
  REQUIRE(a.current() == state::done);
  CHECK(a.frame_keys().send == b.frame_keys().receive);
}

TEST_CASE("handshake: a sealing byte past 2 is refused", "[net][handshake][hostile]") {
  for (const int sealing : {3, 7, 255}) {
    INFO("sealing " << sealing);
    auto ca = config("alpha", key, net::protocol_version);
    net::handshake a(ca, role::initiator);
    net::handshake b(config("beta", key, net::protocol_version), role::acceptor);
    auto hello = a.start();
    hello.back() = static_cast<std::byte>(sealing);
    (void)b.start();
    auto reply = b.feed(hello);
    CHECK(b.current() == state::failed);
    CHECK(b.error().code == net::protocol_errc::malformed_payload);
    CHECK(b.error().text.find("sealing " + std::to_string(sealing)) != std::string::npos);
    CHECK_FALSE(reply.empty());
  }
}

TEST_CASE("handshake: the frame keys are HKDF over the secret, both nonces, names and ciphers",
          "[net][handshake]") {
  // Computed here from docs/protocol.md's layout ("Keys"), independently of
  // the handshake: what one node derives, a node built from the document
  // derives too.
  for (const int aes :
       {0, 1, 2, 3}) {  // bit 0: the initiator may seal AES-GCM; bit 1: the acceptor
    INFO("aes " << aes);
    auto ca = config("alpha", key, net::protocol_version);
    auto cb = config("beta-node", key, net::protocol_version);
    ca.aes_gcm = (aes & 1) != 0;
    cb.aes_gcm = (aes & 2) != 0;
    net::handshake a(ca, role::initiator);
    net::handshake b(cb, role::acceptor);
    const auto hello_a = a.start();
    const auto hello_b = b.start();
    std::vector<std::byte> to_b = hello_a, to_a = hello_b;
    for (int round = 0; round < 10 && (!to_a.empty() || !to_b.empty()); ++round) {
      auto from_b = b.feed(to_b);
      auto from_a = a.feed(to_a);
      to_a = std::move(from_b);
      to_b = std::move(from_a);
    }
    REQUIRE(a.current() == state::done);
    REQUIRE(b.current() == state::done);
    // A hello ends with the 32-byte nonce and the sealing byte.
    std::vector<unsigned char> salt;
    for (const auto* h : {&hello_a, &hello_b}) {
      for (std::size_t i = h->size() - 33; i < h->size() - 1; ++i) {
        salt.push_back(std::to_integer<unsigned char>((*h)[i]));
      }
    }
    const std::string label = "libactor-frames-v2";
    std::vector<unsigned char> info(label.begin(), label.end());
    for (const std::string name : {"alpha", "beta-node"}) {
      for (int i = 0; i < 4; ++i)
        info.push_back(static_cast<unsigned char>(name.size() >> (8 * i)));
      info.insert(info.end(), name.begin(), name.end());
    }
    info.push_back(std::to_integer<unsigned char>(hello_a.back()));
    info.push_back(std::to_integer<unsigned char>(hello_b.back()));
    CHECK(std::to_integer<int>(hello_a.back()) == 1 + (aes & 1));
    CHECK(std::to_integer<int>(hello_b.back()) == 1 + ((aes & 2) >> 1));
    info.push_back(aes == 3 ? 1 : 0);
    std::array<unsigned char, 64> okm{};
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    REQUIRE(kdf != nullptr);
    EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
    REQUIRE(kctx != nullptr);
    char digest[] = "SHA256";
    std::string secret = key;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret.data(), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(), salt.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end()};
    REQUIRE(EVP_KDF_derive(kctx, okm.data(), okm.size(), params) == 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    CHECK(a.frame_keys().aes_gcm == (aes == 3));
    CHECK(std::equal(okm.begin(), okm.begin() + 32, a.frame_keys().send.begin()));
    CHECK(std::equal(okm.begin() + 32, okm.end(), a.frame_keys().receive.begin()));
    CHECK(b.frame_keys().send == a.frame_keys().receive);
    // Wiped once the records hold them.
    a.wipe_frame_keys();
    CHECK(a.frame_keys().send == std::array<std::uint8_t, 32>{});
    CHECK(a.frame_keys().receive == std::array<std::uint8_t, 32>{});
  }
}
