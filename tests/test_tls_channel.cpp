// The TLS channel on its own: two channels (or a channel and a bare OpenSSL
// peer) pass bytes through memory, with no socket and no thread. The
// handshake, data both ways, and what happens to bytes changed, replayed or
// dropped on the way, to a peer without a certificate, with one from
// another CA, or an expired one.

#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <malloc.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tls_channel.hpp"
#include "tls_support.hpp"

using namespace libactor;
using libactor::net::detail::tls_channel;
using libactor::net::detail::tls_context;
using libactor::net::detail::tls_suite;

namespace {

using bytes = std::vector<std::byte>;

bytes text_bytes(const std::string& s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

std::string as_text(const bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// Runs the handshake between `c` and `s` to the end or to a failure;
/// returns whether both finished.
bool handshake(tls_channel& c, tls_channel& s, std::string* error = nullptr) {
  REQUIRE(c.start());
  REQUIRE(s.start());
  for (int round = 0; round < 10; ++round) {
    bytes to_s, to_c, plain;
    c.take_records(to_s);
    if (auto r = s.feed(to_s, plain); !r) {
      if (error != nullptr) *error = r.err().to_string();
      return false;
    }
    s.take_records(to_c);
    if (auto r = c.feed(to_c, plain); !r) {
      if (error != nullptr) *error = r.err().to_string();
      return false;
    }
    REQUIRE(plain.empty());
    if (c.handshake_done() && s.handshake_done()) {
      // The client's last flight (its certificate and Finished) is out.
      bytes last;
      c.take_records(last);
      if (auto r = s.feed(last, plain); !r) {
        if (error != nullptr) *error = r.err().to_string();
        return false;
      }
      return true;
    }
  }
  return false;
}

/// A bare OpenSSL peer on memory buffers, its context set up by the test:
/// a peer that does what tls_channel never would, and the reference the
/// channel's records must match.
class raw_peer {
 public:
  explicit raw_peer(const std::function<void(SSL_CTX*)>& setup, bool server = false)
      : ctx_(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method())) {
    REQUIRE(ctx_ != nullptr);
    setup(ctx_);
    ssl_ = SSL_new(ctx_);
    REQUIRE(ssl_ != nullptr);
    BIO* rb = BIO_new(BIO_s_mem());
    BIO* wb = BIO_new(BIO_s_mem());
    REQUIRE((rb != nullptr && wb != nullptr));
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl_, rb, wb);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }
  ~raw_peer() {
    ERR_clear_error();
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  /// Advances the handshake; returns the records it has to send.
  bytes step() {
    SSL_do_handshake(ssl_);
    ERR_clear_error();
    return take();
  }
  /// Queues a KeyUpdate (step() or write() then sends it).
  bool key_update(bool request = false) {
    return SSL_key_update(ssl_,
                          request ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) == 1;
  }
  void receive(const bytes& in) {
    if (!in.empty()) BIO_write(SSL_get_rbio(ssl_), in.data(), static_cast<int>(in.size()));
  }
  /// Seals `plain` (with whatever is queued before it); the records.
  bytes write(const bytes& plain) {
    std::size_t n = 0;
    REQUIRE(SSL_write_ex(ssl_, plain.data(), plain.size(), &n) == 1);
    REQUIRE(n == plain.size());
    return take();
  }
  /// Everything received that decrypts, or an error: `ok` false.
  bytes read(bool* ok = nullptr) {
    bytes out;
    if (ok != nullptr) *ok = true;
    for (;;) {
      std::array<std::byte, 4096> chunk;
      std::size_t n = 0;
      if (SSL_read_ex(ssl_, chunk.data(), chunk.size(), &n) == 1) {
        out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        continue;
      }
      if (SSL_get_error(ssl_, 0) != SSL_ERROR_WANT_READ && ok != nullptr) *ok = false;
      ERR_clear_error();
      return out;
    }
  }
  /// close_notify.
  bytes shutdown() {
    SSL_shutdown(ssl_);
    ERR_clear_error();
    return take();
  }
  [[nodiscard]] SSL* native() const { return ssl_; }

 private:
  bytes take() {
    bytes out(BIO_ctrl_pending(SSL_get_wbio(ssl_)));
    if (!out.empty()) BIO_read(SSL_get_wbio(ssl_), out.data(), static_cast<int>(out.size()));
    return out;
  }
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
};

/// Sets up a raw peer's context with `files` and the CA.
void use_files(SSL_CTX* c, const net::tls_config& files) {
  REQUIRE(SSL_CTX_use_certificate_chain_file(c, files.certificate_file.c_str()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(c, files.private_key_file.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_CTX_load_verify_locations(c, files.ca_file.c_str(), nullptr) == 1);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

/// Runs the handshake between a channel and a raw peer; true when both are
/// done and the channel holds nothing of it.
bool handshake_with(tls_channel& ch, raw_peer& peer, bool channel_dials) {
  REQUIRE(ch.start());
  for (int round = 0; round < 10; ++round) {
    bytes to_peer, plain;
    ch.take_records(to_peer);
    peer.receive(to_peer);
    const bytes to_ch = peer.step();
    if (auto r = ch.feed(to_ch, plain); !r) {
      FAIL_CHECK(r.err().text);
      return false;
    }
    REQUIRE(plain.empty());
    if (ch.handshake_done() && SSL_is_init_finished(peer.native()) == 1) {
      bytes last;
      ch.take_records(last);
      peer.receive(last);
      // The acceptor's tickets, if any, after the dialler's Finished.
      if (!channel_dials) return true;
      const bytes tickets = peer.step();
      return static_cast<bool>(ch.feed(tickets, plain)) && plain.empty();
    }
  }
  return false;
}

/// Runs the handshake until the dialler is done and the acceptor waits for
/// the dialler's last flight (still in the dialler's records).
void until_dialler_done(tls_channel& c, tls_channel& s) {
  REQUIRE(c.start());
  REQUIRE(s.start());
  bytes to_s, to_c, plain;
  c.take_records(to_s);
  REQUIRE(s.feed(to_s, plain));
  s.take_records(to_c);
  REQUIRE(c.feed(to_c, plain));
  REQUIRE(c.handshake_done());
  REQUIRE_FALSE(s.handshake_done());
  REQUIRE(plain.empty());
}

/// Feeds `wire` to `to` in two reads, cut at `cut`; both must succeed.
void feed_in_two(tls_channel& to, const bytes& wire, std::size_t cut, bytes& plain) {
  for (const auto part : {std::span<const std::byte>(wire).first(cut),
                          std::span<const std::byte>(wire).subspan(cut)}) {
    auto r = to.feed(part, plain);
    INFO((r ? std::string() : r.err().text));
    REQUIRE(r);
  }
}

struct pair_of {
  test::test_ca ca;
  tls_context client_ctx{ca.issue("a"), "a"};
  tls_context server_ctx{ca.issue("b"), "b"};
  tls_channel c{client_ctx, true};
  tls_channel s{server_ctx, false};
};

}  // namespace

TEST_CASE("tls channel: a handshake with certificates of one CA, then data both ways", "[tls]") {
  pair_of p;
  std::string error;
  REQUIRE(handshake(p.c, p.s, &error));
  INFO(error);
  CHECK(p.s.peer_certificate_names("a"));
  CHECK(p.c.peer_certificate_names("b"));
  CHECK_FALSE(p.s.peer_certificate_names("b"));
  CHECK_FALSE(p.c.peer_certificate_names("a"));
  CHECK_FALSE(p.s.peer_certificate_names(""));

  // Both sides export the same secret, and another connection another one.
  auto ec = p.c.exported_secret();
  auto es = p.s.exported_secret();
  REQUIRE(ec);
  REQUIRE(es);
  CHECK(*ec == *es);
  CHECK(ec->size() == 64);
  pair_of q;
  REQUIRE(handshake(q.c, q.s));
  CHECK(*q.c.exported_secret() != *ec);

  // Sizes across record boundaries (16 KiB), from many seeds.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20; ++i) {
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 100'000)(rng);
    bytes msg(n);
    for (auto& b : msg) b = static_cast<std::byte>(rng());
    bytes wire, got;
    REQUIRE(p.c.seal(msg, wire));
    CHECK(wire.size() > msg.size());
    // Fed in random pieces, as reads would cut it.
    std::size_t at = 0;
    while (at < wire.size()) {
      const std::size_t k = std::min<std::size_t>(
          wire.size() - at, std::uniform_int_distribution<std::size_t>(1, 9000)(rng));
      REQUIRE(p.s.feed(std::span<const std::byte>(wire).subspan(at, k), got));
      at += k;
    }
    CHECK(got == msg);
    bytes back, got_back;
    REQUIRE(p.s.seal(msg, back));
    REQUIRE(p.c.feed(back, got_back));
    CHECK(got_back == msg);
  }
  CHECK_FALSE(p.s.has_records());
}

TEST_CASE("tls channel: nothing is sealed before the handshake is done", "[tls]") {
  pair_of p;
  bytes out;
  CHECK_FALSE(p.c.seal(text_bytes("early"), out));
  CHECK(out.empty());
}

TEST_CASE("tls channel: a record changed, replayed, dropped or injected on the way is refused",
          "[tls]") {
  for (int attack = 0; attack < 4; ++attack) {
    INFO("attack " << attack);
    pair_of p;
    REQUIRE(handshake(p.c, p.s));
    bytes first, second, plain;
    REQUIRE(p.c.seal(text_bytes("first message"), first));
    REQUIRE(p.c.seal(text_bytes("second message"), second));
    REQUIRE(p.s.feed(first, plain));  // the control: the first one is fine
    CHECK(as_text(plain) == "first message");
    plain.clear();
    bytes bad;
    switch (attack) {
      case 0:  // one bit of the ciphertext
        bad = second;
        bad[bad.size() / 2] ^= std::byte{0x01};
        break;
      case 1:  // the first record again
        bad = first;
        break;
      case 2: {  // the second record is dropped; a third comes instead
        REQUIRE(p.c.seal(text_bytes("third message"), bad));
        break;
      }
      case 3:  // a record forged in the clear, as application data
        bad.assign(5 + 0x14, std::byte{0x41});
        bad[0] = std::byte{0x17};  // application data, TLS 1.2 on the wire, 20 bytes
        bad[1] = std::byte{0x03};
        bad[2] = std::byte{0x03};
        bad[3] = std::byte{0x00};
        bad[4] = std::byte{0x14};
        break;
    }
    auto r = p.s.feed(bad, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == net::protocol_errc::tls_failed);
    CHECK(plain.empty());
  }
}

TEST_CASE("tls channel: a peer with another CA's certificate, an expired one or none is refused",
          "[tls]") {
  test::test_ca ca;
  test::test_ca other("another CA");
  tls_context server_ctx{ca.issue("b"), "b"};
  SECTION("another CA's certificate, either side") {
    for (const bool client_foreign : {true, false}) {
      INFO((client_foreign ? "client" : "server") << " holds the other CA's certificate");
      auto foreign = other.issue(client_foreign ? "a" : "b");
      foreign.ca_file = ca.ca_file();  // it trusts the right CA; it is not trusted
      tls_context fctx{foreign, client_foreign ? "a" : "b"};
      tls_context cctx{ca.issue("a"), "a"};
      tls_channel c{client_foreign ? fctx : cctx, true};
      tls_channel s{client_foreign ? server_ctx : fctx, false};
      std::string error;
      REQUIRE_FALSE(handshake(c, s, &error));
      CHECK(error.find("tls_failed") != std::string::npos);
      CHECK(error.find("certificate") != std::string::npos);
    }
  }
  SECTION("an expired certificate") {
    // A node refuses to start with one (below), so a bare client presents it.
    auto expired = ca.issue("a", {.not_before_s = -7200, .not_after_s = -3600});
    raw_peer client([&](SSL_CTX* c) {
      REQUIRE(SSL_CTX_use_certificate_chain_file(c, expired.certificate_file.c_str()) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(c, expired.private_key_file.c_str(), SSL_FILETYPE_PEM) ==
              1);
    });
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    std::string error;
    for (int round = 0; round < 10 && error.empty(); ++round) {
      bytes plain;
      if (auto r = s.feed(client.step(), plain); !r) error = r.err().to_string();
      bytes to_c;
      s.take_records(to_c);
      client.receive(to_c);
    }
    INFO(error);
    CHECK(error.find("certificate has expired") != std::string::npos);
    CHECK_FALSE(s.handshake_done());
  }
  SECTION("no certificate at all") {
    // A client that trusts the CA and presents nothing.
    raw_peer client([&](SSL_CTX* c) {
      REQUIRE(SSL_CTX_load_verify_locations(c, ca.ca_file().c_str(), nullptr) == 1);
    });
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    bool refused = false;
    std::string error;
    for (int round = 0; round < 10 && !refused; ++round) {
      bytes plain;
      if (auto r = s.feed(client.step(), plain); !r) {
        refused = true;
        error = r.err().to_string();
      }
      bytes to_c;
      s.take_records(to_c);
      client.receive(to_c);
    }
    CHECK(refused);
    CHECK(error.find("certificate") != std::string::npos);
    CHECK_FALSE(s.handshake_done());
  }
  SECTION("a peer that does not speak TLS") {
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    bytes plain;
    auto r = s.feed(text_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == net::protocol_errc::tls_failed);
  }
}

TEST_CASE("tls channel: only TLS 1.3 is spoken", "[tls]") {
  test::test_ca ca;
  tls_context server_ctx{ca.issue("b"), "b"};
  auto files = ca.issue("a");
  raw_peer client([&](SSL_CTX* c) {
    REQUIRE(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION) == 1);
    REQUIRE(SSL_CTX_use_certificate_chain_file(c, files.certificate_file.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(c, files.private_key_file.c_str(), SSL_FILETYPE_PEM) == 1);
  });
  const bytes hello = client.step();
  REQUIRE(!hello.empty());
  tls_channel s{server_ctx, false};
  REQUIRE(s.start());
  bytes plain;
  auto r = s.feed(hello, plain);
  REQUIRE_FALSE(r);
  INFO(r.err().text);
  CHECK(r.err().text.find("unsupported protocol") != std::string::npos);
}

TEST_CASE("tls context: files that cannot be loaded are named in a clear error", "[tls]") {
  test::test_ca ca;
  auto good = ca.issue("a");
  auto other = ca.issue("b");
  auto expect_error = [](net::tls_config cfg, const std::string& part) {
    try {
      tls_context ctx{cfg, "a"};
      FAIL("no error for " << part);
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
  };
  auto missing = good;
  missing.ca_file = ca.dir().string() + "/nowhere.pem";
  expect_error(missing, "cannot load ca_file " + missing.ca_file);
  missing = good;
  missing.certificate_file = ca.dir().string() + "/nowhere.crt";
  expect_error(missing, "cannot load certificate_file");
  missing = good;
  missing.private_key_file = good.certificate_file;  // a certificate is no key
  expect_error(missing, "cannot load private_key_file");
  auto mismatched = good;
  mismatched.private_key_file = other.private_key_file;
  expect_error(mismatched, "is not the key of");
  try {
    tls_context ctx{good, "b"};
    FAIL("a certificate for a accepted for node b");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("does not name this node, b") != std::string::npos);
  }
  auto lenient = good;
  lenient.check_peer_name = false;
  tls_context other_name{lenient, "b"};  // not checked: the peers do not check either
  auto expired = ca.issue("a", {.not_before_s = -7200, .not_after_s = -3600});
  expect_error(expired, "has expired (not after ");
  auto early = ca.issue("a", {.not_before_s = 3600, .not_after_s = 7200});
  expect_error(early, "is not valid yet (not before ");
  // What the certificate does name, when it is not this node.
  auto elsewhere = ca.issue("a", {.common_name = "a", .dns_name = "localhost"});
  expect_error(elsewhere, "it names \"localhost\"");
  // A key under a passphrase: said so, never prompted for.
  {
    FILE* in = std::fopen(good.private_key_file.c_str(), "r");
    REQUIRE(in != nullptr);
    EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
    std::fclose(in);
    REQUIRE(key != nullptr);
    auto locked = good;
    locked.private_key_file = ca.dir().string() + "/locked.key";
    FILE* out = std::fopen(locked.private_key_file.c_str(), "w");
    REQUIRE(out != nullptr);
    static const char pass[] = "correct horse";
    REQUIRE(PEM_write_PrivateKey(out, key, EVP_aes_256_cbc(),
                                 reinterpret_cast<const unsigned char*>(pass),
                                 static_cast<int>(sizeof(pass) - 1), nullptr, nullptr) == 1);
    std::fclose(out);
    EVP_PKEY_free(key);
    expect_error(locked, "is encrypted: a node cannot ask for a passphrase");
  }
  tls_context fine{good, "a"};  // the control
  CHECK(fine.native() != nullptr);
}

TEST_CASE("tls channel: a certificate names a node byte for byte", "[tls]") {
  test::test_ca ca;
  tls_context sctx{ca.issue("server"), "server"};
  struct named {
    std::string cert_name;
    std::string claimed;
    bool accepted;
  };
  for (const auto& n : std::vector<named>{
           {"node-a", "node-a", true},                     // the control
           {"node-a", "NODE-A", false},                    // no case folding
           {"evil.example", ".example", false},            // no "any subdomain of"
           {"node-a", std::string("node-a\0", 7), false},  // no trailing NUL dropped
           {"node-a", "node-", false},
           {"*.example", "x.example", false},  // no wildcards
           {"node-a", "", false},
       }) {
    INFO("certificate " << n.cert_name << ", claimed " << n.claimed.size() << " bytes");
    auto files = ca.issue(n.cert_name);
    files.check_peer_name = false;  // the client's own check is not what is tested
    tls_context cctx{files, n.cert_name};
    tls_channel c{cctx, true};
    tls_channel s{sctx, false};
    REQUIRE(handshake(c, s));
    CHECK(s.peer_certificate_names(n.claimed) == n.accepted);
  }
  // The common name, when there is no DNS entry: also exact.
  tls_context cn_only{ca.issue("Worker", {.dns_name = ""}), "Worker"};
  tls_channel c{cn_only, true};
  tls_channel s{sctx, false};
  REQUIRE(handshake(c, s));
  CHECK(s.peer_certificate_names("Worker"));
  CHECK_FALSE(s.peer_certificate_names("worker"));
}

TEST_CASE("tls channel: what an outsider's handshake can cost is bounded", "[tls]") {
  test::test_ca ca;
  tls_context server_ctx{ca.issue("b"), "b"};
  SECTION("key exchange on elliptic curves only") {
    // Finite-field groups cost the acceptor up to 175 ms per ClientHello.
    for (const char* group : {"ffdhe2048", "ffdhe8192"}) {
      INFO(group);
      raw_peer client([&](SSL_CTX* c) {
        REQUIRE(SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) == 1);
        REQUIRE(SSL_CTX_set1_groups_list(c, group) == 1);
      });
      tls_channel s{server_ctx, false};
      REQUIRE(s.start());
      bytes plain;
      auto r = s.feed(client.step(), plain);
      REQUIRE_FALSE(r);
      CHECK(r.err().text.find("no suitable key share") != std::string::npos);
    }
    raw_peer control([&](SSL_CTX* c) { REQUIRE(SSL_CTX_set1_groups_list(c, "X25519") == 1); });
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    bytes plain;
    REQUIRE(s.feed(control.step(), plain));
    CHECK(s.has_records());  // answered
  }
  SECTION("bytes before the handshake is done") {
    // A ClientHello header claiming 131,000 bytes (OpenSSL takes up to
    // 131,396): refused at its 9th byte, before OpenSSL sizes a buffer.
    const std::size_t claimed = 131000;
    const bytes header = {std::byte{0x16},
                          std::byte{0x03},
                          std::byte{0x01},
                          std::byte{0x40},
                          std::byte{0x00},
                          std::byte{0x01},
                          static_cast<std::byte>((claimed >> 16) & 0xff),
                          static_cast<std::byte>((claimed >> 8) & 0xff),
                          static_cast<std::byte>(claimed & 0xff)};
    for (const std::size_t split : {std::size_t{9}, std::size_t{4}, std::size_t{1}}) {
      INFO("the header in pieces of " << split);
      tls_channel s{server_ctx, false};
      REQUIRE(s.start());
      bytes plain;
      expected<void, net::protocol_error> r{};
      std::size_t fed = 0;
      for (std::size_t at = 0; at < header.size() && r; at += split) {
        const auto piece =
            std::span<const std::byte>(header).subspan(at, std::min(split, header.size() - at));
        r = s.feed(piece, plain);
        fed += piece.size();
      }
      REQUIRE_FALSE(r);
      CHECK(fed == header.size());
      CHECK(r.err().text.find("claims 131000 bytes") != std::string::npos);
    }
    // The control: a real ClientHello's header passes.
    raw_peer control([&](SSL_CTX* c) { REQUIRE(SSL_CTX_set1_groups_list(c, "X25519") == 1); });
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    bytes plain;
    CHECK(s.feed(control.step(), plain));
  }
}

TEST_CASE("tls channel: a peer may send a few KeyUpdates, not a flood", "[tls]") {
  test::test_ca ca;
  tls_context server_ctx{ca.issue("b"), "b"};
  auto files = ca.issue("a");
  for (const int sent : {net::detail::max_post_handshake_messages,
                         net::detail::max_post_handshake_messages + 1, 5000}) {
    INFO(sent << " KeyUpdates");
    raw_peer client([&](SSL_CTX* c) {
      REQUIRE(SSL_CTX_use_certificate_chain_file(c, files.certificate_file.c_str()) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(c, files.private_key_file.c_str(), SSL_FILETYPE_PEM) ==
              1);
    });
    tls_channel s{server_ctx, false};
    REQUIRE(s.start());
    for (int round = 0; round < 10 && !s.handshake_done(); ++round) {
      bytes plain;
      REQUIRE(s.feed(client.step(), plain));
      bytes to_c;
      s.take_records(to_c);
      client.receive(to_c);
    }
    REQUIRE(s.handshake_done());
    bytes rest = client.step();  // the client's Finished
    bytes plain;
    REQUIRE(s.feed(rest, plain));
    bytes flood;
    for (int i = 0; i < sent; ++i) {
      REQUIRE(client.key_update());
      const bytes k = client.step();
      flood.insert(flood.end(), k.begin(), k.end());
    }
    auto r = s.feed(flood, plain);  // all of them in one read
    if (sent <= net::detail::max_post_handshake_messages) {
      CHECK(r);
    } else {
      REQUIRE_FALSE(r);
      CHECK(r.err().text.find("KeyUpdate") != std::string::npos);
      // Counted one record at a time: no more were processed than it
      // takes to pass the limit.
      CHECK(s.post_handshake_messages() == net::detail::max_post_handshake_messages + 1);
    }
  }
}

TEST_CASE("tls channel: a dialler takes a few NewSessionTickets, not a flood", "[tls]") {
  // Nodes send no tickets; an acceptor holding a certificate of the CA
  // could send thousands, each costing the dialler work.
  test::test_ca ca;
  tls_context client_ctx{ca.issue("a"), "a"};
  auto files = ca.issue("b");
  for (const int tickets : {8, 3000}) {
    INFO(tickets << " tickets");
    SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
    REQUIRE(sctx != nullptr);
    REQUIRE(SSL_CTX_use_certificate_chain_file(sctx, files.certificate_file.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(sctx, files.private_key_file.c_str(), SSL_FILETYPE_PEM) ==
            1);
    REQUIRE(SSL_CTX_load_verify_locations(sctx, ca.ca_file().c_str(), nullptr) == 1);
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    REQUIRE(SSL_CTX_set_num_tickets(sctx, static_cast<std::size_t>(tickets)) == 1);
    SSL* ssl = SSL_new(sctx);
    BIO* rb = BIO_new(BIO_s_mem());
    BIO* wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb);
    SSL_set_accept_state(ssl);
    tls_channel c{client_ctx, true};
    REQUIRE(c.start());
    expected<void, net::protocol_error> r{};
    for (int round = 0; round < 10 && r; ++round) {
      bytes to_s;
      c.take_records(to_s);
      if (!to_s.empty()) BIO_write(rb, to_s.data(), static_cast<int>(to_s.size()));
      SSL_do_handshake(ssl);
      ERR_clear_error();
      bytes to_c(BIO_ctrl_pending(wb));
      if (!to_c.empty()) BIO_read(wb, to_c.data(), static_cast<int>(to_c.size()));
      bytes plain;
      r = c.feed(to_c, plain);
      if (SSL_is_init_finished(ssl) == 1 && to_c.empty()) break;
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(sctx);
    if (tickets <= net::detail::max_post_handshake_messages) {
      CHECK(r);
      CHECK(c.handshake_done());
      CHECK(c.post_handshake_messages() == tickets);
    } else {
      REQUIRE_FALSE(r);
      CHECK(r.err().text.find("NewSessionTicket") != std::string::npos);
    }
  }
}

TEST_CASE("tls channel: a certificate with a subjectAltName is not named by its common name",
          "[tls]") {
  // A CA that names holders by URI and lets them choose the common name:
  // the common name names no one (RFC 6125, 6.4.4).
  test::test_ca ca;
  auto uri_only = ca.issue(
      "victim",
      {.common_name = "victim", .dns_name = "", .other_san = "URI:spiffe://cluster/mallory"});
  auto cn_only = ca.issue("victim", {.common_name = "victim", .dns_name = ""});
  for (const auto& [files, named] : {std::pair{uri_only, false}, std::pair{cn_only, true}}) {
    FILE* f = std::fopen(files.certificate_file.c_str(), "r");
    REQUIRE(f != nullptr);
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    REQUIRE(cert != nullptr);
    CHECK(net::detail::certificate_names(cert, "victim") == named);
    X509_free(cert);
  }
}

TEST_CASE(
    "tls channel: records match OpenSSL's both ways, through KeyUpdates, padding and "
    "close_notify",
    "[tls]") {
  test::test_ca ca;
  const auto ours = ca.issue("a");
  const auto theirs = ca.issue("b");
  tls_context ctx{ours, "a"};
  std::vector<tls_suite> suites{tls_suite::chacha20_poly1305_sha256};
  if (net::detail::aes_gcm_available()) suites.push_back(tls_suite::aes_256_gcm_sha384);
  for (const tls_suite suite : suites) {
    for (const bool dials : {true, false}) {
      for (const int padding : {0, 64}) {
        for (std::uint64_t seed = 1; seed <= 3; ++seed) {
          INFO(to_string(suite) << ", dials " << dials << ", padding " << padding << ", seed "
                                << seed);
          std::mt19937_64 rng(seed * 977 + (dials ? 1 : 0) + static_cast<std::uint64_t>(padding) +
                              static_cast<std::uint64_t>(suite) * 5);
          raw_peer peer(
              [&](SSL_CTX* c) {
                use_files(c, theirs);
                // The peer offers (or, as the acceptor, takes) this suite only.
                REQUIRE(SSL_CTX_set_ciphersuites(c, to_string(suite)) == 1);
                // OpenSSL pads each record's plaintext to a multiple of 64.
                if (padding > 0) REQUIRE(SSL_CTX_set_block_padding(c, padding) == 1);
              },
              /*server=*/dials);
          tls_channel ch{ctx, dials};
          REQUIRE(handshake_with(ch, peer, dials));
          REQUIRE(ch.suite() == suite);
          auto random_bytes = [&rng] {
            bytes b(std::uniform_int_distribution<std::size_t>(1, 40'000)(rng));
            for (auto& x : b) x = static_cast<std::byte>(rng());
            return b;
          };
          int peer_updates = 0;
          for (int round = 0; round < 12; ++round) {
            INFO("round " << round);
            // The peer asks for a KeyUpdate back at rounds 1 and 9.
            if (round % 4 == 1) {
              REQUIRE(peer.key_update(round != 5));
              ++peer_updates;
            }
            const bytes msg = random_bytes();
            const bytes wire = peer.write(msg);
            bytes got;
            for (std::size_t at = 0; at < wire.size();) {
              const std::size_t k = std::min<std::size_t>(
                  wire.size() - at, std::uniform_int_distribution<std::size_t>(1, 20'000)(rng));
              REQUIRE(ch.feed(std::span<const std::byte>(wire).subspan(at, k), got));
              at += k;
            }
            CHECK(got == msg);
            // Asked for one, the channel's KeyUpdate waits for its next seal.
            CHECK(ch.has_records() == (round == 1 || round == 9));
            if (round % 4 == 3) {
              REQUIRE(ch.update_keys(round != 11));
            }
            const bytes back = random_bytes();
            bytes sealed;
            REQUIRE(ch.seal(back, sealed));
            CHECK_FALSE(ch.has_records());
            peer.receive(sealed);
            bool ok = false;
            CHECK(peer.read(&ok) == back);
            CHECK(ok);
          }
          // NewSessionTickets: OpenSSL's acceptor sends two by default. The
          // answers to the channel's own requests are not counted.
          CHECK(ch.post_handshake_messages() == peer_updates + (dials ? 2 : 0));
          bytes plain;
          auto r = ch.feed(peer.shutdown(), plain);
          REQUIRE_FALSE(r);
          CHECK(r.err().text.find("closed the TLS session") != std::string::npos);
          CHECK(plain.empty());
        }
      }
    }
  }
}

TEST_CASE("tls channel: data right behind the dialler's Finished is not lost", "[tls]") {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    pair_of p;
    until_dialler_done(p.c, p.s);
    bytes plain;
    // The dialler's Finished and its first records, in one read.
    std::mt19937_64 rng(seed);
    bytes msg(std::uniform_int_distribution<std::size_t>(1, 50'000)(rng));
    for (auto& b : msg) b = static_cast<std::byte>(rng());
    bytes wire;
    REQUIRE(p.c.seal(msg, wire));
    // Cut where the rng says, so that the handshake's last bytes and a
    // record's first ones share a read (or not).
    const std::size_t cut = std::uniform_int_distribution<std::size_t>(1, wire.size())(rng);
    feed_in_two(p.s, wire, cut, plain);
    CHECK(p.s.handshake_done());
    CHECK(plain == msg);
  }
}

TEST_CASE("tls channel: a peer offering only suites this node does not is refused, and told why",
          "[tls]") {
  test::test_ca ca;
  const auto files = ca.issue("a");
  const bool cpu = net::detail::aes_gcm_available();
  struct offer {
    const char* suites;
    bool aes_gcm;      // this node's node_config::aes_gcm
    const char* says;  // what this node's error says it offers
  };
  // AES-128 never; AES-256-GCM not from a node that turned it off (nor on
  // a CPU without AES instructions).
  const char* both = "this node offers TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256";
  const char* no_cpu =
      "this node offers TLS_CHACHA20_POLY1305_SHA256 only (no AES-GCM on this CPU)";
  const char* off =
      "this node offers TLS_CHACHA20_POLY1305_SHA256 only (node_config::aes_gcm is off)";
  std::vector<offer> offers{
      {"TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256", true, cpu ? both : no_cpu},
      {"TLS_AES_256_GCM_SHA384", false, off}};
  if (!cpu) offers.push_back({"TLS_AES_256_GCM_SHA384", true, no_cpu});
  for (const offer& o : offers) {
    INFO(o.suites << ", aes_gcm " << o.aes_gcm);
    tls_context ctx{ca.issue("b"), "b", o.aes_gcm};
    {
      // This node accepts: OpenSSL finds no suite in common.
      raw_peer client([&](SSL_CTX* c) {
        use_files(c, files);
        REQUIRE(SSL_CTX_set_ciphersuites(c, o.suites) == 1);
      });
      tls_channel s{ctx, false};
      REQUIRE(s.start());
      bytes plain;
      auto r = s.feed(client.step(), plain);
      REQUIRE_FALSE(r);
      INFO(r.err().text);
      CHECK(r.err().text.find("no shared cipher") != std::string::npos);
      CHECK(r.err().text.find(o.says) != std::string::npos);
      CHECK_FALSE(s.suite());
    }
    {
      // This node dials: the acceptor's handshake_failure alert says only
      // that nothing was in common, and the error says what this node
      // offered.
      raw_peer server(
          [&](SSL_CTX* c) {
            use_files(c, files);
            REQUIRE(SSL_CTX_set_ciphersuites(c, o.suites) == 1);
          },
          /*server=*/true);
      tls_channel d{ctx, true};
      REQUIRE(d.start());
      bytes hello, plain;
      d.take_records(hello);
      server.receive(hello);
      auto r = d.feed(server.step(), plain);
      REQUIRE_FALSE(r);
      INFO(r.err().text);
      CHECK(r.err().text.find("handshake failure") != std::string::npos);
      CHECK(r.err().text.find("no suite or key exchange group in common? " + std::string(o.says) +
                              ", on X25519 or P-256)") != std::string::npos);
    }
  }
}

TEST_CASE("tls channel: AES-256-GCM when both sides allow it, ChaCha20-Poly1305 otherwise",
          "[tls]") {
  test::test_ca ca;
  const auto a = ca.issue("a");
  const auto b = ca.issue("b");
  const bool cpu = net::detail::aes_gcm_available();
  // Run again as on a CPU without AES instructions (tests/CMakeLists.txt);
  // the run checks that it took.
  if (std::getenv("LIBACTOR_TEST_NO_AES") != nullptr) REQUIRE_FALSE(cpu);
  if (!cpu) WARN("no AES instructions on this CPU: every pair must choose ChaCha20-Poly1305");
  for (const bool dialler_aes : {true, false}) {
    for (const bool acceptor_aes : {true, false}) {
      INFO("dialler aes_gcm " << dialler_aes << ", acceptor aes_gcm " << acceptor_aes);
      tls_context cctx{a, "a", dialler_aes};
      tls_context sctx{b, "b", acceptor_aes};
      tls_channel c{cctx, true};
      tls_channel s{sctx, false};
      REQUIRE(handshake(c, s));
      const tls_suite want = cpu && dialler_aes && acceptor_aes
                                 ? tls_suite::aes_256_gcm_sha384
                                 : tls_suite::chacha20_poly1305_sha256;
      CHECK(c.suite() == want);
      CHECK(s.suite() == want);
      const bytes msg = text_bytes("under " + std::string(to_string(want)));
      bytes wire, got;
      REQUIRE(c.seal(msg, wire));
      REQUIRE(s.feed(wire, got));
      CHECK(got == msg);
    }
  }
}

TEST_CASE("tls channel: what an established channel holds", "[tls]") {
  // Once the handshake is done OpenSSL reads and writes no more records:
  // its record buffers are freed at the handover, and what stays is the
  // session (certificates, secrets for the exporter) and tls_records.
  test::test_ca ca;
  tls_context client_ctx{ca.issue("a"), "a"};
  tls_context server_ctx{ca.issue("b"), "b"};
  auto make = [&] {
    auto c = std::make_unique<tls_channel>(client_ctx, true);
    auto s = std::make_unique<tls_channel>(server_ctx, false);
    REQUIRE(handshake(*c, *s));
    // A message each way, as on a connection that has carried traffic.
    bytes wire, plain;
    REQUIRE(c->seal(bytes(3000, std::byte{1}), wire));
    REQUIRE(s->feed(wire, plain));
    wire.clear();
    REQUIRE(s->seal(bytes(3000, std::byte{2}), wire));
    REQUIRE(c->feed(wire, plain));
    return std::pair{std::move(c), std::move(s)};
  };
  (void)make();  // warm-up: OpenSSL's tables, the test CA's files
  std::vector<std::pair<std::unique_ptr<tls_channel>, std::unique_ptr<tls_channel>>> held;
  const auto before = ::mallinfo2().uordblks;
  for (int i = 0; i < 16; ++i) held.push_back(make());
  const auto after = ::mallinfo2().uordblks;
  const double per = static_cast<double>(after - before) / (2.0 * static_cast<double>(held.size()));
  INFO("heap per established TLS channel: " << per << " bytes");
  // docs/protocol.md ("TLS", Memory) states this bound.
  CHECK(per < 16 * 1024);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(per > 0);  // sanitizers allocate outside malloc's own accounting
#endif
}

TEST_CASE(
    "tls channel: an acceptor whose OpenSSL writes past the handshake refuses rather than "
    "reuse a nonce",
    "[tls]") {
  // Tickets would go out under the acceptor's application key with the
  // sequence numbers tls_records starts from; node contexts send none, and
  // the channel checks.
  for (const std::size_t tickets : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
    INFO(tickets << " tickets");
    test::test_ca ca;
    tls_context client_ctx{ca.issue("a"), "a"};
    tls_context server_ctx{ca.issue("b"), "b"};
    REQUIRE(SSL_CTX_set_num_tickets(server_ctx.native(), tickets) == 1);
    tls_channel c{client_ctx, true};
    tls_channel s{server_ctx, false};
    std::string error;
    const bool ok = handshake(c, s, &error);
    if (tickets == 0) {
      CHECK(ok);
    } else {
      CHECK_FALSE(ok);
      CHECK(error.find("OpenSSL wrote records past the handshake") != std::string::npos);
    }
  }
}

TEST_CASE("tls channel: start() once the handshake is done is refused, and changes nothing",
          "[tls]") {
  // Calling it again must not take the handshake over a second time (from
  // secrets already wiped): the records stay what they were.
  pair_of p;
  REQUIRE(handshake(p.c, p.s));
  for (tls_channel* ch : {&p.c, &p.s}) {
    auto again = ch->start();
    REQUIRE_FALSE(again);
    CHECK(again.err().text.find("start() after the handshake") != std::string::npos);
  }
  const bytes msg = text_bytes("what only b may read");
  bytes wire, got;
  REQUIRE(p.c.seal(msg, wire));
  // Under all-zero secrets (what a second take-over would have used) the
  // record does not open.
  const net::detail::traffic_secret zero{};
  REQUIRE(p.s.suite());
  net::detail::tls_records eve{zero, zero, false, *p.s.suite()};
  bytes stolen;
  CHECK_FALSE(eve.open(wire, stolen));
  CHECK(stolen.empty());
  REQUIRE(p.s.feed(wire, got));
  CHECK(got == msg);
}

TEST_CASE("tls channel: the dialler's Finished and data, cut at the flight's end or not at all",
          "[tls]") {
  for (const int where : {0, 1, 2, 3}) {
    INFO("cut " << where);
    pair_of p;
    until_dialler_done(p.c, p.s);
    bytes plain;
    bytes flight;
    p.c.take_records(flight);
    REQUIRE_FALSE(flight.empty());
    // Past the handshake bound in one read.
    bytes msg(3 * net::detail::max_tls_handshake_bytes + 123);
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::byte>(i * 7);
    bytes wire = flight;
    REQUIRE(p.c.seal(msg, wire));
    const std::size_t cut = where == 0   ? wire.size()
                            : where == 1 ? flight.size()
                            : where == 2 ? flight.size() - 1
                                         : flight.size() + 1;
    feed_in_two(p.s, wire, cut, plain);
    CHECK(p.s.handshake_done());
    CHECK(plain == msg);
  }
}

TEST_CASE("tls channel: after a failure the alert still comes out of seal(), frames do not",
          "[tls]") {
  for (int i = 0; i < 4; ++i) {
    INFO("bit " << i);
    pair_of p;
    REQUIRE(handshake(p.c, p.s));
    bytes bad, plain;
    REQUIRE(p.c.seal(text_bytes("x"), bad));
    bad[bad.size() - 1 - static_cast<std::size_t>(i)] ^= std::byte{1};
    REQUIRE_FALSE(p.s.feed(bad, plain));
    CHECK(p.s.has_records());
    // Frames queued behind the failure: not sealed, but the alert goes.
    bytes out;
    CHECK_FALSE(p.s.seal(text_bytes("queued frames"), out));
    // The alert record alone: header, level and description, type, tag.
    REQUIRE(out.size() == 5 + 2 + 1 + 16);
    auto r = p.c.feed(out, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().text.find("alert 20 (bad_record_mac)") != std::string::npos);
    CHECK(plain.empty());
    CHECK_FALSE(p.s.has_records());
  }
}

TEST_CASE("tls channel: a dialler whose certificate is refused is told why", "[tls]") {
  // In TLS 1.3 the dialler has finished its side when the acceptor checks
  // its certificate: the refusal reaches it as an alert, after the
  // handshake, in the records.
  test::test_ca ca;
  test::test_ca other("another CA");
  tls_context server_ctx{ca.issue("b"), "b"};
  auto foreign = other.issue("a");
  foreign.ca_file = ca.ca_file();  // it trusts the right CA; it is not trusted
  tls_context client_ctx{foreign, "a"};
  tls_channel c{client_ctx, true};
  tls_channel s{server_ctx, false};
  REQUIRE(c.start());
  REQUIRE(s.start());
  std::string dialler_error, acceptor_error;
  for (int round = 0; round < 10 && dialler_error.empty(); ++round) {
    bytes to_s, to_c, plain;
    c.take_records(to_s);
    if (auto r = s.feed(to_s, plain); !r && acceptor_error.empty()) {
      acceptor_error = r.err().to_string();
    }
    s.take_records(to_c);
    if (auto r = c.feed(to_c, plain); !r) dialler_error = r.err().to_string();
    CHECK(plain.empty());
  }
  INFO("dialler: " << dialler_error);
  INFO("acceptor: " << acceptor_error);
  CHECK(c.handshake_done());
  CHECK_FALSE(s.handshake_done());
  CHECK(dialler_error.find("alert 48 (unknown_ca)") != std::string::npos);
  CHECK(dialler_error.find("the peer refused this node's certificate") != std::string::npos);
  // The acceptor says what it saw and where to look.
  CHECK(acceptor_error.find("the peer's certificate does not verify: unable to get local issuer") !=
        std::string::npos);
  CHECK(acceptor_error.find("is tls.ca_file the CA") != std::string::npos);
}
