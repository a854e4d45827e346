// Protected frames between two nodes, sealed records (the secret) or TLS
// (certificates), through a relay that sees and changes the bytes on the
// way (someone on the path): a frame injected or replayed after the
// handshake is refused and the connection closed; what actors say cannot be
// read on the wire. The same relay against nodes that send frames in the
// clear is the control: there, both succeed.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libactor/net/node.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net_support.hpp"
#include "support.hpp"
#include "tls_support.hpp"

using namespace libactor;
using namespace std::chrono_literals;

namespace records {
struct say {
  std::string text;
};
LIBACTOR_WIRE_TYPE(say, "test.records.say", text)
}  // namespace records

namespace {

const std::string secret = "records-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2";

/// How frames are protected on the wire.
enum class protection { sealed, tls, clear };

const char* to_string(protection p) {
  switch (p) {
    case protection::sealed:
      return "sealed records";
    case protection::tls:
      return "TLS";
    case protection::clear:
      return "in the clear (the control)";
  }
  return "?";
}

/// Relays one TCP connection to 127.0.0.1:`to`. The stream from the dialler
/// is cut into units, so that bytes can be injected between two units: with
/// TLS, records (5-byte header with a u16 big-endian length); otherwise a
/// u32 little-endian length, then that many bytes (frames before the
/// handshake ends, sealed records after it).
class relay {
 public:
  relay(std::uint16_t to, bool tls) : to_(to), tls_(tls) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~relay() {
    stop_ = true;
    thread_.join();
    ::close(listen_);
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// Queues `unit` to go to the acceptor at the next unit boundary.
  void inject(std::vector<std::byte> unit) {
    std::lock_guard lock(mu_);
    injections_.push_back(std::move(unit));
  }
  /// The last whole unit the dialler sent.
  std::vector<std::byte> last_unit() {
    std::lock_guard lock(mu_);
    return last_unit_;
  }
  /// Everything the dialler sent.
  std::vector<std::byte> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  [[nodiscard]] std::size_t injected() const {
    return injected_.load(
        std::memory_order_relaxed);  // relaxed: a count; nothing is read through it
  }
  /// From now on, drops everything the acceptor sends; with `trickle`, sends
  /// the dialler instead the length of a largest record and then one byte
  /// every 300 ms (a record that never completes).
  void drop_from_acceptor(bool trickle) {
    trickle_ = trickle;
    drop_ = true;
  }

 private:
  void run() {
    int a = -1;
    while (!stop_ && a < 0) {
      pollfd p{listen_, POLLIN, 0};
      if (::poll(&p, 1, 20) == 1) a = ::accept(listen_, nullptr, nullptr);
    }
    if (a < 0) return;
    const int b = test::raw_connect(to_);
    std::vector<std::byte> pending;  // from a, not yet cut into units
    char buf[65536];
    bool header_sent = false;
    auto last_trickle = std::chrono::steady_clock::now();
    while (!stop_) {
      if (drop_ && trickle_) {
        if (!header_sent) {
          if (tls_) {  // application data of 16,401 bytes
            test::write_all(a, {std::byte{0x17}, std::byte{0x03}, std::byte{0x03}, std::byte{0x40},
                                std::byte{0x11}});
          } else {
            test::write_all(a,
                            {std::byte{0x10}, std::byte{0x00}, std::byte{0x01}, std::byte{0x00}});
          }
          header_sent = true;
        } else if (std::chrono::steady_clock::now() - last_trickle > 300ms) {
          test::write_all(a, {std::byte{0}});
          last_trickle = std::chrono::steady_clock::now();
        }
      }
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const auto n = ::read(a, buf, sizeof buf);
        if (n <= 0) break;
        const auto* bytes = reinterpret_cast<const std::byte*>(buf);
        pending.insert(pending.end(), bytes, bytes + n);
        std::lock_guard lock(mu_);
        seen_.insert(seen_.end(), bytes, bytes + n);
        // Forward whole units; inject between them.
        const std::size_t header = tls_ ? 5 : 4;
        while (pending.size() >= header) {
          std::size_t len = 0;
          if (tls_) {
            len = (std::to_integer<std::size_t>(pending[3]) << 8) |
                  std::to_integer<std::size_t>(pending[4]);
          } else {
            for (int i = 0; i < 4; ++i) len |= std::to_integer<std::size_t>(pending[i]) << (8 * i);
          }
          const auto unit = static_cast<std::ptrdiff_t>(header + len);
          if (pending.size() < header + len) break;
          last_unit_.assign(pending.begin(), pending.begin() + unit);
          test::write_all(b, last_unit_);
          pending.erase(pending.begin(), pending.begin() + unit);
          for (auto& u : injections_) test::write_all(b, u);
          injected_.fetch_add(injections_.size(),
                              std::memory_order_relaxed);  // relaxed: see injected()
          injections_.clear();
        }
      }
      if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const auto n = ::read(b, buf, sizeof buf);
        if (n <= 0) break;
        if (!drop_) {
          test::write_all(a, std::vector<std::byte>(reinterpret_cast<std::byte*>(buf),
                                                    reinterpret_cast<std::byte*>(buf) + n));
        }
      }
    }
    ::close(a);
    ::close(b);
  }

  std::uint16_t to_;
  bool tls_;
  std::uint16_t port_ = 0;
  int listen_ = -1;
  // The flags and the count below use the default (sequentially consistent)
  // order on purpose: a test relay, where the simplest correct order beats
  // an argument for a weaker one; none is on a hot path.
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::vector<std::byte>> injections_;
  std::vector<std::byte> last_unit_;
  std::vector<std::byte> seen_;
  std::atomic<std::size_t> injected_{0};
  std::atomic<bool> drop_{false};
  std::atomic<bool> trickle_{false};
};

struct relayed_pair {
  test::test_ca pki;
  test::recorder<std::string> log_b;
  test::recorder<std::string> got;
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  std::optional<net::node> a;
  std::optional<net::node> b;
  std::optional<relay> r;
  actor_ref remote;
  std::uint64_t listener_id = 0;  // its wire id on b

  explicit relayed_pair(protection mode, bool a_aes = true, bool b_aes = true) {
    test::unrelated(sys_a, 2);
    auto ca = test::node_config("a", secret);
    auto cb = test::node_config("b", secret);
    ca.aes_gcm = a_aes;
    cb.aes_gcm = b_aes;
    ca.protect_frames = cb.protect_frames = mode == protection::sealed;
    if (mode == protection::tls) {
      ca.tls = pki.issue("a");
      cb.tls = pki.issue("b");
    }
    ca.reconnect_min = 10s;  // no redial through the relay during a test
    ca.reconnect_max = 10s;
    cb.log = [this](std::string_view l) { log_b.push(std::string(l)); };
    b.emplace(sys_b, cb);
    a.emplace(sys_a, ca);
    auto listener = sys_b.spawn([this](actor&) -> behavior {
      return {[this](const records::say& s) {
        got.push(s.text);
        return s.text.size();
      }};
    });
    REQUIRE(sys_b.register_name("listener", listener));
    listener_id = test::wire_id(*b, listener);
    r.emplace(b->port(), mode == protection::tls);
    REQUIRE(a->connect("127.0.0.1", r->port(), 10s));
    auto h = a->lookup("b", "listener", 10s);
    REQUIRE(h);
    remote = *h;
  }
  ~relayed_pair() {
    a.reset();
    b.reset();
  }
};

}  // namespace

constexpr protection all_modes[] = {protection::sealed, protection::tls, protection::clear};

TEST_CASE("protected frames: the log says how a peer's connection is protected, and the cipher",
          "[net][records]") {
  // AES-256-GCM where both nodes allow it (and the CPU has AES
  // instructions), ChaCha20-Poly1305 where either turned it off.
  // What the CPU has, asked of libsodium directly.
  REQUIRE(sodium_init() >= 0);
  const bool cpu = crypto_aead_aes256gcm_is_available() == 1;
  // Run again as on a CPU without AES instructions (tests/CMakeLists.txt);
  // the run checks that it took.
  if (std::getenv("LIBACTOR_TEST_NO_AES") != nullptr) REQUIRE_FALSE(cpu);
  for (const auto mode : all_modes) {
    for (const int aes : {0, 1, 2, 3}) {  // bit 0: a allows it; bit 1: b does
      if (mode == protection::clear && aes != 3) continue;
      INFO(to_string(mode) << ", aes_gcm " << aes);
      relayed_pair p(mode, (aes & 1) != 0, (aes & 2) != 0);
      REQUIRE(p.remote.ask<std::size_t>(records::say{"hello"}, 10s).get());
      const bool gcm = cpu && aes == 3;
      const std::string want =
          mode == protection::tls
              ? std::string("over TLS 1.3 (") +
                    (gcm ? "TLS_AES_256_GCM_SHA384" : "TLS_CHACHA20_POLY1305_SHA256") + ")"
          : mode == protection::sealed
              ? std::string("frames sealed (") + (gcm ? "AES-256-GCM" : "ChaCha20-Poly1305") + ")"
              : std::string("in the clear");
      CHECK(test::eventually([&] {
        for (auto& l : p.log_b.items()) {
          if (l.find("node a is up: ") != std::string::npos && l.ends_with(", " + want))
            return true;
        }
        return false;
      }));
    }
  }
}

TEST_CASE("protected frames: what actors say is not readable on the path", "[net][records]") {
  for (const auto mode : all_modes) {
    INFO(to_string(mode));
    relayed_pair p(mode);
    const std::string text = "TOP-SECRET-PAYLOAD-4417";
    REQUIRE(p.remote.ask<std::size_t>(records::say{text}, 10s).get().value() == text.size());
    const auto seen = p.r->seen();
    const bool visible =
        std::search(seen.begin(), seen.end(), text.begin(), text.end(),
                    [](std::byte x, char c) { return static_cast<char>(x) == c; }) != seen.end();
    CHECK(visible == (mode == protection::clear));
  }
}

TEST_CASE("protected frames: a frame injected after the handshake closes the connection",
          "[net][records]") {
  for (const auto mode : all_modes) {
    INFO(to_string(mode));
    relayed_pair p(mode);
    // A well-formed `message` frame in the clear, as an attacker on the
    // path would write it: a one-way `say` to the listener.
    std::vector<std::byte> msg;
    net::writer w{msg};
    w.fixed(std::uint8_t{0});
    w.varint(p.listener_id);
    w.varint(0);
    w.fixed(std::uint64_t{0});
    w.fixed(net::wire_id_v<records::say>);
    net::wire_encode(w, records::say{"injected"});
    p.r->inject(test::frame_of(net::frame_kind::message, msg));
    // It goes right after the next unit from a, the ask's.
    auto r = p.remote.ask<std::size_t>(records::say{"after"}, 5s).get();
    REQUIRE(p.r->injected() == 1);
    if (mode != protection::clear) {
      REQUIRE(test::eventually([&] { return p.b->stats().protocol_errors == 1; }));
      // Closed at the injected bytes: they reached no actor.
      for (auto& g : p.got.items()) CHECK(g != "injected");
      const std::string says = mode == protection::tls ? "tls_failed" : "does not verify";
      REQUIRE(test::eventually([&] {
        for (auto& l : p.log_b.items()) {
          if (l.find(says) != std::string::npos) return true;
        }
        return false;
      }));
    } else {
      CHECK(r);
      REQUIRE(p.got.wait_for_size(2));
      const auto got = p.got.items();
      CHECK(std::count(got.begin(), got.end(), "injected") == 1);  // it got through
      CHECK(p.b->stats().protocol_errors == 0);
    }
  }
}

TEST_CASE("protected frames: a record replayed on the path closes the connection",
          "[net][records]") {
  for (const auto mode : all_modes) {
    INFO(to_string(mode));
    relayed_pair p(mode);
    REQUIRE(p.remote.ask<std::size_t>(records::say{"once"}, 10s).get());
    REQUIRE(p.got.wait_for_size(1));
    // The unit that carried the last message (or a heartbeat after it) again.
    p.r->inject(p.r->last_unit());
    auto r = p.remote.ask<std::size_t>(records::say{"twice?"}, 5s).get();
    REQUIRE(p.r->injected() == 1);
    if (mode != protection::clear) {
      REQUIRE(test::eventually([&] { return p.b->stats().protocol_errors == 1; }));
      const auto got = p.got.items();
      CHECK(std::count(got.begin(), got.end(), "once") == 1);
    } else {
      CHECK(r);
      CHECK(p.b->stats().protocol_errors == 0);
    }
  }
}

TEST_CASE("tls: a record longer than TLS allows is refused at its header; the connection closes",
          "[net][records]") {
  relayed_pair p(protection::tls);
  REQUIRE(p.remote.ask<std::size_t>(records::say{"before"}, 10s).get());
  // Application data of 16,641 bytes: one more than TLS 1.3 allows a record
  // under any suite (16 KiB of plaintext, 256 of expansion), and 240 more
  // than ChaCha20-Poly1305's records can hold. Only 16 of them follow: a node
  // that waited for the rest would close only at the heartbeat timeout, and
  // for that, not for the record's length (the log says which).
  std::vector<std::byte> record{std::byte{0x17}, std::byte{0x03}, std::byte{0x03}, std::byte{0x41},
                                std::byte{0x01}};
  record.resize(record.size() + 16, std::byte{0x5a});
  p.r->inject(record);
  // The next record from a goes first, then the injected one.
  (void)p.remote.ask<std::size_t>(records::say{"after"}, 5s).get();
  REQUIRE(p.r->injected() == 1);
  REQUIRE(test::eventually([&] { return p.b->stats().protocol_errors == 1; }));
  CHECK(test::eventually([&] {
    for (auto& l : p.log_b.items()) {
      if (l.find("tls_failed") != std::string::npos &&
          l.find("a record of 16641 bytes (at most 16401)") != std::string::npos)
        return true;
    }
    return false;
  }));
  const auto got = p.got.items();
  CHECK(std::count(got.begin(), got.end(), "before") == 1);
}

TEST_CASE("sealed frames: nodes that disagree about sealing are refused with a clear error",
          "[net][records]") {
  actor_system sys_a{system_config{.workers = 1}};
  actor_system sys_b{system_config{.workers = 1}};
  auto ca = test::node_config("a", secret);
  ca.protect_frames = false;
  net::node b(sys_b, test::node_config("b", secret));
  net::node a(sys_a, ca);
  auto r = a.connect("127.0.0.1", b.port(), 10s);
  REQUIRE_FALSE(r);
  CHECK(r.err().text.find("protect_frames") != std::string::npos);
  // Both sides check the other's hello; a's connect() can end on b's hello
  // before b has read a's, so b's count is awaited.
  CHECK(test::eventually([&] { return b.stats().handshakes_failed >= 1; }));
}

TEST_CASE(
    "protected frames: a peer whose records stop arriving is declared down, also when the path "
    "trickles the start of a record that never completes",
    "[net][records]") {
  // Only a verified record shows the peer is alive: bytes that never form
  // one must not hold the heartbeat timeout off.
  for (const auto mode : {protection::sealed, protection::tls}) {
    for (const bool trickle : {false, true}) {
      INFO(to_string(mode) << ", "
                           << (trickle ? "a forged record header, one byte every 300 ms"
                                       : "nothing (the control)"));
      relayed_pair p(mode);
      p.r->drop_from_acceptor(trickle);
      // test::node_config: heartbeat_timeout 1.5 s.
      CHECK(test::eventually([&] { return p.a->stats().node_downs >= 1; }, 10s));
      CHECK(p.a->stats().peers_up == 0);
    }
  }
}
