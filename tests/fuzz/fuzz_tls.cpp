// libFuzzer target: the TLS channel (net/src/tls_channel.hpp), as a node's
// acceptor runs it. The first byte picks what the rest is:
//   0: bytes from whoever connects, before any handshake;
//   1: bytes from someone on the path after a valid handshake: nothing they
//      make may come out as plaintext;
//   2: plaintext a valid peer sends, cut into reads of fuzzed sizes: it must
//      come out as it went in;
//   3: records a peer holding the keys seals (tls_records, after the
//      handshake): the fuzzer picks each one's inner content type and
//      content (alerts, post-handshake messages, data), under either suite
//      (the first byte's bit 2; under AES-GCM bit 3 makes the limits on
//      records per key small). Data comes out in order, nothing else does,
//      what is held stays bounded, and a peer past the bound is refused.
// Any crash, leak, overflow or UB is a finding, as is a broken invariant
// (__builtin_trap).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "../tls_support.hpp"
#include "tls_channel.hpp"
#include "tls_records.hpp"

namespace {

using libactor::net::detail::tls_channel;
using libactor::net::detail::tls_context;
using libactor::net::detail::tls_records;
using bytes = std::vector<std::byte>;

struct contexts {
  test::test_ca ca;
  tls_context server{ca.issue("b"), "b"};
  tls_context client{ca.issue("a"), "a"};
};

contexts* ctx = nullptr;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

/// A client and a server that finished their handshake.
bool connect(tls_channel& c, tls_channel& s) {
  if (!c.start() || !s.start()) return false;
  for (int round = 0; round < 8; ++round) {
    bytes to_s, to_c, plain;
    c.take_records(to_s);
    if (!s.feed(to_s, plain)) return false;
    s.take_records(to_c);
    if (!c.feed(to_c, plain)) return false;
    if (c.handshake_done() && s.handshake_done()) {
      bytes last;
      c.take_records(last);
      return static_cast<bool>(s.feed(last, plain)) && plain.empty();
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ctx = new contexts;  // for the whole run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0] % 4;
  const std::size_t piece = 1 + data[1];  // bytes per read
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  if (mode == 3) {
    // | type | length: u16 | content | ... ; the last record may be short.
    const libactor::net::detail::traffic_secret k1{1, 2, 3}, k2{4, 5, 6};
    // Both suites: the first byte's next bit chooses.
    using libactor::net::detail::tls_suite;
    const tls_suite suite = (data[0] / 4) % 2 == 1 && libactor::net::detail::aes_gcm_available()
                                ? tls_suite::aes_256_gcm_sha384
                                : tls_suite::chacha20_poly1305_sha256;
    // Under AES-GCM the next bit makes the receiver's limits on records per
    // key small, so that asking for a KeyUpdate and refusing past the bound
    // are reached (the fuzzed peer never moves its key on by itself).
    using libactor::net::detail::tls_key_limits;
    const bool small = suite == tls_suite::aes_256_gcm_sha384 && (data[0] / 8) % 2 == 1;
    const tls_key_limits limits = small ? tls_key_limits{4, 6, 8, 2} : tls_key_limits{};
    tls_records peer{k1, k2, false, suite};
    tls_records self{k2, k1, true, suite, limits};
    bytes wire, sent_data;
    std::vector<std::size_t> data_ends;  // sent_data's size after each record
    bool all_data = true;
    for (std::size_t at = 0; at + 3 <= in.size();) {
      const auto type = std::to_integer<std::uint8_t>(in[at]);
      const std::size_t len = std::min<std::size_t>(
          (std::to_integer<std::size_t>(in[at + 1]) << 8) |
              std::to_integer<std::size_t>(in[at + 2]),
          std::min(in.size() - at - 3, libactor::net::detail::tls_max_plaintext));
      const auto content = in.subspan(at + 3, len);
      check(peer.seal_record(type, content, wire));
      // What the receiver sees: the inner plaintext (content, type) without
      // its trailing zeros, whose last byte is the type. With type 0 the
      // content's own last bytes decide (zeros there are padding).
      std::size_t end = len;
      std::uint8_t seen = type;
      if (type == 0) {
        while (end > 0 && in[at + 3 + end - 1] == std::byte{0}) --end;
        seen = end > 0 ? std::to_integer<std::uint8_t>(in[at + 3 + end - 1]) : 0;
        if (end > 0) --end;
      }
      all_data = all_data && seen == 23;
      if (seen == 23) sent_data.insert(sent_data.end(), content.begin(), content.begin() + end);
      data_ends.push_back(sent_data.size());
      at += 3 + len;
    }
    // Data only, under one key: past max_per_key records the receiver
    // refuses, having delivered the data of the records before.
    const bool over = small && all_data && data_ends.size() > limits.max_per_key;
    if (over) {
      sent_data.resize(data_ends[limits.max_per_key - 1]);
      all_data = false;
    }
    bytes plain;
    bool ok = true;
    for (std::size_t at = 0; ok && at < wire.size(); at += piece) {
      ok = static_cast<bool>(self.open(
          std::span<const std::byte>(wire).subspan(at, std::min(piece, wire.size() - at)), plain));
      check(self.held() <= 5 + 16 * 1024 + 17 + libactor::net::detail::max_post_handshake_message);
    }
    check(ok || !all_data);
    // What came out is the data sent, in order, up to where it stopped.
    check(plain.size() <= sent_data.size() &&
          std::equal(plain.begin(), plain.end(), sent_data.begin()));
    check(!all_data || plain.size() == sent_data.size());
    if (over) check(!ok && plain.size() == sent_data.size());
    // Data only, past request_after records: a KeyUpdate request waits to go.
    if (small && all_data && data_ends.size() >= limits.request_after) check(self.has_records());
    return 0;
  }
  tls_channel s{ctx->server, false};
  if (mode == 0) {
    if (!s.start()) return 0;
    bytes plain;
    for (std::size_t at = 0; at < in.size(); at += piece) {
      if (!s.feed(in.subspan(at, std::min(piece, in.size() - at)), plain)) break;
    }
    check(plain.empty());  // no handshake can finish without the CA's key
    return 0;
  }
  tls_channel c{ctx->client, true};
  check(connect(c, s));
  bytes plain;
  if (mode == 1) {
    for (std::size_t at = 0; at < in.size(); at += piece) {
      if (!s.feed(in.subspan(at, std::min(piece, in.size() - at)), plain)) break;
    }
    check(plain.empty());
    return 0;
  }
  bytes wire;
  check(c.seal(in, wire));
  const std::span<const std::byte> w(wire);
  for (std::size_t at = 0; at < w.size(); at += piece) {
    check(static_cast<bool>(s.feed(w.subspan(at, std::min(piece, w.size() - at)), plain)));
  }
  check(plain.size() == in.size() && std::equal(plain.begin(), plain.end(), in.begin()));
  return 0;
}
