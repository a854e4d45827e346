#include "libactor/net/handshake.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>
#include <stdexcept>

#include "libactor/net/secret.hpp"
#include "libactor/net/wire.hpp"
#include "protocol.hpp"

namespace libactor::net {
namespace {

constexpr std::string_view magic = "libactor";
constexpr std::string_view auth_label = "libactor-auth-v2";

constexpr std::string_view keys_label = "libactor-frames-v2";

struct hello_msg {
  std::string magic;
  std::uint16_t version = 0;
  std::string node_name;
  std::array<std::uint8_t, 32> nonce{};
  // 0: frames in the clear; 1: sealed records, ChaCha20-Poly1305 only;
  // 2: sealed records, and this side can seal AES-256-GCM as well.
  std::uint8_t protection = 0;
};
LIBACTOR_WIRE_TYPE(hello_msg, "libactor.net.hello", magic, version, node_name, nonce, protection)

struct auth_msg {
  std::array<std::uint8_t, 32> mac{};
};
LIBACTOR_WIRE_TYPE(auth_msg, "libactor.net.auth", mac)

struct error_msg {
  std::uint8_t code = 0;
  std::string text;
};
LIBACTOR_WIRE_TYPE(error_msg, "libactor.net.error", code, text)

template <class T>
void send(std::vector<std::byte>& out, frame_kind kind, const T& msg) {
  std::vector<std::byte> payload;
  encode(msg, payload);
  append_frame(out, kind, payload);
}

bool openssl_hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                  std::array<std::uint8_t, 32>& out) noexcept {
  if (key.size() > static_cast<std::size_t>(INT_MAX)) return false;
  unsigned int len = 0;
  const unsigned char* r = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(),
                                data.size(), out.data(), &len);
  return r != nullptr && len == out.size();
}

}  // namespace

namespace detail {
hmac_function handshake_hmac = &openssl_hmac;
}  // namespace detail

handshake::handshake(handshake_config cfg, role r)
    : cfg_(std::move(cfg)), role_(r), decoder_(cfg_.max_frame_size) {
  if (cfg_.secret.empty()) throw std::invalid_argument("handshake: the cluster secret is empty");
  if (secret_bits(cfg_.secret) < min_secret_bits) {
    throw std::invalid_argument("handshake: the cluster secret can hold at most " +
                                std::to_string(static_cast<int>(secret_bits(cfg_.secret))) +
                                " bits; at least 128 are needed (libactor-node --gen-secret "
                                "makes one)");
  }
  if (cfg_.node_name.empty()) throw std::invalid_argument("handshake: the node name is empty");
  if (RAND_bytes(own_nonce_.data(), static_cast<int>(own_nonce_.size())) != 1) {
    throw std::runtime_error("handshake: the system random generator failed");
  }
}

std::vector<std::byte> handshake::start() {
  std::vector<std::byte> out;
  send(out, frame_kind::hello,
       hello_msg{std::string(magic), cfg_.version, cfg_.node_name, own_nonce_, sealing_byte()});
  return out;
}

std::vector<std::byte> handshake::feed(std::span<const std::byte> in) {
  std::vector<std::byte> out;
  if (state_ != state::in_progress) return out;
  decoder_.feed(in);
  while (state_ == state::in_progress) {
    auto next = decoder_.next();
    if (!next) {
      fail(next.err().code, next.err().text, out, true);
      break;
    }
    if (!next->has_value()) break;
    on_frame(**next, out);
  }
  return out;
}

void handshake::fail(protocol_errc code, std::string text, std::vector<std::byte>& out,
                     bool tell_peer) {
  if (tell_peer) send(out, frame_kind::error, error_msg{static_cast<std::uint8_t>(code), text});
  state_ = state::failed;
  error_ = protocol_error{code, std::move(text)};
}

bool handshake::proof(role r, const nonce& first, const nonce& second, const std::string& a,
                      const std::string& b, mac& out) const {
  std::vector<std::uint8_t> data(auth_label.begin(), auth_label.end());
  data.push_back(static_cast<std::uint8_t>(r));
  data.insert(data.end(), first.begin(), first.end());
  data.insert(data.end(), second.begin(), second.end());
  // Lengths first, so that ("ab", "c") and ("a", "bc") differ.
  for (const std::string* s : {&a, &b}) {
    const auto n = static_cast<std::uint32_t>(s->size());
    for (int i = 0; i < 4; ++i) data.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
    data.insert(data.end(), s->begin(), s->end());
  }
  const auto* key = reinterpret_cast<const std::uint8_t*>(cfg_.secret.data());
  return detail::handshake_hmac(std::span<const std::uint8_t>(key, cfg_.secret.size()), data, out);
}

void handshake::wipe_frame_keys() noexcept {
  OPENSSL_cleanse(keys_.send.data(), keys_.send.size());
  OPENSSL_cleanse(keys_.receive.data(), keys_.receive.size());
}

std::uint8_t handshake::sealing_byte() const noexcept {
  if (!cfg_.protect_frames) return 0;
  return cfg_.aes_gcm ? 2 : 1;
}

bool handshake::send_proof(std::vector<std::byte>& out) {
  auth_msg a;
  if (!proof(role_, peer_nonce_, own_nonce_, cfg_.node_name, peer_name_, a.mac)) {
    fail(protocol_errc::auth_failed, "this node could not compute its proof (HMAC failed)", out,
         true);
    return false;
  }
  send(out, frame_kind::auth, a);
  return true;
}

bool handshake::derive_keys(std::vector<std::byte>& out) {
  const bool init = role_ == role::initiator;
  const nonce& n_init = init ? own_nonce_ : peer_nonce_;
  const nonce& n_acc = init ? peer_nonce_ : own_nonce_;
  const std::string& name_init = init ? cfg_.node_name : peer_name_;
  const std::string& name_acc = init ? peer_name_ : cfg_.node_name;
  std::vector<unsigned char> salt(n_init.begin(), n_init.end());
  salt.insert(salt.end(), n_acc.begin(), n_acc.end());
  std::vector<unsigned char> info(keys_label.begin(), keys_label.end());
  for (const std::string* s : {&name_init, &name_acc}) {
    const auto n = static_cast<std::uint32_t>(s->size());
    for (int i = 0; i < 4; ++i) info.push_back(static_cast<unsigned char>(n >> (8 * i)));
    info.insert(info.end(), s->begin(), s->end());
  }
  // Both hellos' sealing bytes, as each side sent and received them, and
  // the cipher are in the keys: a hello changed on the way (to make the
  // nodes choose a cipher they would not) leaves the two sides with
  // different keys, and the first record fails.
  keys_.aes_gcm = cfg_.aes_gcm && peer_aes_gcm_;
  const std::uint8_t own = sealing_byte();
  info.push_back(init ? own : peer_sealing_);
  info.push_back(init ? peer_sealing_ : own);
  info.push_back(keys_.aes_gcm ? 1 : 0);
  std::array<unsigned char, 64> okm{};
  bool ok = false;
  if (EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr)) {
    if (EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf)) {
      char digest[] = "SHA256";
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, cfg_.secret.data(),
                                            cfg_.secret.size()),
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(), salt.size()),
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
          OSSL_PARAM_construct_end()};
      ok = EVP_KDF_derive(kctx, okm.data(), okm.size(), params) == 1;
      EVP_KDF_CTX_free(kctx);
    }
    EVP_KDF_free(kdf);
  }
  if (!ok) {
    fail(protocol_errc::auth_failed,
         "this node could not derive the connection's keys (HKDF failed)", out, true);
    return false;
  }
  auto first = okm.begin();
  auto second = okm.begin() + 32;
  std::copy(init ? first : second, (init ? first : second) + 32, keys_.send.begin());
  std::copy(init ? second : first, (init ? second : first) + 32, keys_.receive.begin());
  OPENSSL_cleanse(okm.data(), okm.size());
  return true;
}

void handshake::on_frame(const frame& f, std::vector<std::byte>& out) {
  switch (f.kind) {
    case frame_kind::error: {
      // The peer's reason, with its code: "auth_failed: ..." says more to
      // this side's operator than "refused".
      auto e = decode<error_msg>(f.payload);
      fail(protocol_errc::refused_by_peer,
           e ? std::string(to_string(static_cast<protocol_errc>(e->code))) + ": " + e->text
             : std::string("(unreadable reason)"),
           out, false);
      return;
    }
    case frame_kind::hello: {
      if (hello_received_) {
        fail(protocol_errc::unexpected_frame, "a second hello", out, true);
        return;
      }
      auto h = decode<hello_msg>(f.payload);
      if (!h) {
        fail(protocol_errc::malformed_payload,
             std::string("hello: ") + to_string(h.err().code) + " at byte " +
                 std::to_string(h.err().offset),
             out, true);
        return;
      }
      if (h->magic != magic) {
        fail(protocol_errc::bad_magic, "the peer is not a libactor node", out, true);
        return;
      }
      if (h->version != cfg_.version) {
        fail(protocol_errc::version_mismatch,
             "peer speaks protocol version " + std::to_string(h->version) + ", this node " +
                 std::to_string(cfg_.version) +
                 " (every node of a cluster must speak the same version: upgrade them "
                 "together)",
             out, true);
        return;
      }
      if (h->node_name.empty() || h->node_name.size() > 255) {
        fail(protocol_errc::malformed_payload,
             "hello: a node name of " + std::to_string(h->node_name.size()) +
                 " bytes (1 to 255 allowed)",
             out, true);
        return;
      }
      if (h->protection > 2) {
        fail(protocol_errc::malformed_payload,
             "hello: sealing " + std::to_string(h->protection) + " (0 to 2 allowed)", out, true);
        return;
      }
      if ((h->protection != 0) != cfg_.protect_frames) {
        fail(protocol_errc::protection_mismatch,
             std::string("the peer ") + (h->protection != 0 ? "seals" : "does not seal") +
                 " frames after the handshake, this node " +
                 (cfg_.protect_frames ? "does" : "does not") +
                 " (node_config::protect_frames must be the same on every node)",
             out, true);
        return;
      }
      if (cfg_.accept_name && !cfg_.accept_name(h->node_name)) {
        fail(protocol_errc::auth_failed,
             std::string("the ") + (role_ == role::acceptor ? "dialler" : "acceptor") +
                 "'s TLS certificate does not name the node its hello names "
                 "(tls_config::check_peer_name)",
             out, true);
        return;
      }
      hello_received_ = true;
      peer_name_ = h->node_name;
      peer_nonce_ = h->nonce;
      peer_aes_gcm_ = h->protection == 2;
      peer_sealing_ = h->protection;
      // The initiator proves first; the acceptor proves once it has checked
      // the initiator's proof (no MAC for whoever just connects).
      if (role_ == role::initiator) (void)send_proof(out);
      return;
    }
    case frame_kind::auth: {
      if (!hello_received_) {
        fail(protocol_errc::unexpected_frame, "auth before hello", out, true);
        return;
      }
      auto a = decode<auth_msg>(f.payload);
      if (!a) {
        fail(protocol_errc::malformed_payload, "auth: " + std::string(to_string(a.err().code)), out,
             true);
        return;
      }
      const role peer_role = role_ == role::initiator ? role::acceptor : role::initiator;
      mac expected{};
      if (!proof(peer_role, own_nonce_, peer_nonce_, peer_name_, cfg_.node_name, expected)) {
        fail(protocol_errc::auth_failed,
             "this node could not compute the peer's expected proof (HMAC failed)", out, true);
        return;
      }
      if (CRYPTO_memcmp(expected.data(), a->mac.data(), expected.size()) != 0) {
        fail(protocol_errc::auth_failed,
             "the proof of the cluster secret does not match: the two nodes have different "
             "secrets (or, with TLS, only one of them has a secret)",
             out, true);
        return;
      }
      if (role_ == role::acceptor && !send_proof(out)) return;
      if (cfg_.protect_frames && !derive_keys(out)) return;
      state_ = state::done;
      return;
    }
    default:
      break;
  }
  const auto k = static_cast<unsigned>(f.kind);
  if (k >= static_cast<unsigned>(frame_kind::node_info) &&
      k <= static_cast<unsigned>(last_frame_kind)) {
    fail(protocol_errc::unexpected_frame,
         "data frame (kind " + std::to_string(k) + ") before the handshake finished", out, true);
    return;
  }
  fail(protocol_errc::unknown_frame_kind, "frame kind " + std::to_string(k), out, true);
}

namespace detail {

void append_error_frame(std::vector<std::byte>& out, protocol_errc code, const std::string& text) {
  send(out, frame_kind::error, error_msg{static_cast<std::uint8_t>(code), text});
}

protocol_error read_error_frame(std::span<const std::byte> payload) {
  auto e = decode<error_msg>(payload);
  if (!e) return {protocol_errc::refused_by_peer, "(unreadable reason)"};
  return {static_cast<protocol_errc>(e->code), e->text};
}

}  // namespace detail

}  // namespace libactor::net
