// TLS 1.3 application records (tls_records.hpp).

#include "tls_records.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace libactor::net::detail {

namespace {

constexpr std::size_t header_len = 5;
constexpr std::size_t tag_len = 16;
// The whole TLSInnerPlaintext (data, type, padding) is at most 2^14 + 1
// bytes (RFC 8446, 5.4); either AEAD adds the tag and nothing else.
constexpr std::size_t max_inner = tls_max_plaintext + 1;
constexpr std::size_t max_record_len = max_inner + tag_len;

constexpr std::uint8_t type_alert = 21;
constexpr std::uint8_t type_handshake = 22;
constexpr std::uint8_t type_data = 23;

constexpr std::uint8_t msg_new_session_ticket = 4;
constexpr std::uint8_t msg_key_update = 24;

// Alert descriptions (RFC 8446, 6).
constexpr std::uint8_t alert_close_notify = 0;
constexpr std::uint8_t alert_unexpected_message = 10;
constexpr std::uint8_t alert_bad_record_mac = 20;
constexpr std::uint8_t alert_record_overflow = 22;
constexpr std::uint8_t alert_illegal_parameter = 47;
constexpr std::uint8_t alert_decode_error = 50;
constexpr std::uint8_t alert_internal_error = 80;

static_assert(aead_tag_size == tag_len);

const char* alert_name(std::uint8_t d) {
  // RFC 8446, section 6, and the registry's other values a TLS 1.3 peer
  // may send.
  switch (d) {
    case 0:
      return "close_notify";
    case 10:
      return "unexpected_message";
    case 20:
      return "bad_record_mac";
    case 22:
      return "record_overflow";
    case 40:
      return "handshake_failure";
    case 42:
      return "bad_certificate";
    case 43:
      return "unsupported_certificate";
    case 44:
      return "certificate_revoked";
    case 45:
      return "certificate_expired";
    case 46:
      return "certificate_unknown";
    case 47:
      return "illegal_parameter";
    case 48:
      return "unknown_ca";
    case 49:
      return "access_denied";
    case 50:
      return "decode_error";
    case 51:
      return "decrypt_error";
    case 70:
      return "protocol_version";
    case 71:
      return "insufficient_security";
    case 80:
      return "internal_error";
    case 86:
      return "inappropriate_fallback";
    case 90:
      return "user_canceled";
    case 109:
      return "missing_extension";
    case 110:
      return "unsupported_extension";
    case 112:
      return "unrecognized_name";
    case 113:
      return "bad_certificate_status_response";
    case 115:
      return "unknown_psk_identity";
    case 116:
      return "certificate_required";
    case 120:
      return "no_application_protocol";
    default:
      return "unknown";
  }
}

/// Wipes a secret on the way out of its scope, thrown or not.
struct wiped {
  std::span<std::uint8_t> bytes;
  ~wiped() { sodium_memzero(bytes.data(), bytes.size()); }
};

void write_header(unsigned char* h, std::size_t len) {
  h[0] = type_data;  // every protected record looks like data on the wire
  h[1] = 0x03;
  h[2] = 0x03;
  h[3] = static_cast<unsigned char>(len >> 8);
  h[4] = static_cast<unsigned char>(len);
}

}  // namespace

const char* to_string(tls_suite s) noexcept {
  return s == tls_suite::aes_256_gcm_sha384 ? "TLS_AES_256_GCM_SHA384"
                                            : "TLS_CHACHA20_POLY1305_SHA256";
}

std::size_t secret_size(tls_suite s) noexcept {
  return s == tls_suite::aes_256_gcm_sha384 ? 48 : 32;
}

void hkdf_expand_label(tls_suite suite, const traffic_secret& secret, std::string_view label,
                       std::span<std::uint8_t> out) {
  // HkdfLabel: | length: u16 | label length: u8 | "tls13 " label | context length: u8 (0) |
  // and HKDF-Expand's first block: HMAC(secret, HkdfLabel || 0x01).
  static constexpr std::string_view prefix = "tls13 ";
  const std::size_t hash_len = secret_size(suite);
  if (out.size() > hash_len || prefix.size() + label.size() > 255) {
    throw std::invalid_argument("hkdf_expand_label: output or label too long");
  }
  std::array<unsigned char, 2 + 1 + 255 + 1 + 1> info{};
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(out.size() >> 8);
  info[n++] = static_cast<unsigned char>(out.size());
  info[n++] = static_cast<unsigned char>(prefix.size() + label.size());
  std::memcpy(info.data() + n, prefix.data(), prefix.size());
  n += prefix.size();
  std::memcpy(info.data() + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // empty context
  info[n++] = 1;  // block counter
  std::array<unsigned char, EVP_MAX_MD_SIZE> block{};
  unsigned int len = 0;
  const EVP_MD* md = suite == tls_suite::aes_256_gcm_sha384 ? EVP_sha384() : EVP_sha256();
  const bool ok = HMAC(md, secret.data(), static_cast<int>(hash_len), info.data(), n, block.data(),
                       &len) != nullptr &&
                  len == hash_len;
  if (ok) std::memcpy(out.data(), block.data(), out.size());
  sodium_memzero(block.data(), block.size());
  if (!ok) throw std::runtime_error("hkdf_expand_label: HMAC failed");
}

void tls_records::direction::set(tls_suite suite, const traffic_secret& s) {
  secret = s;
  std::array<std::uint8_t, aead_key_size> k{};
  const wiped on_exit{k};  // on every way out, thrown or not
  hkdf_expand_label(suite, secret, "key", k);
  hkdf_expand_label(suite, secret, "iv", iv);
  if (!key.set(suite == tls_suite::aes_256_gcm_sha384 ? aead_kind::aes256_gcm
                                                      : aead_kind::chacha20_poly1305,
               k)) {
    throw std::runtime_error(std::string(to_string(suite)) + " cannot start on this CPU");
  }
  seq = 0;
}

void tls_records::direction::next(tls_suite suite) {
  traffic_secret s{};
  const wiped on_exit{s};
  hkdf_expand_label(suite, secret, "traffic upd", std::span(s.data(), secret_size(suite)));
  set(suite, s);
}

std::array<std::uint8_t, 12> tls_records::direction::nonce() const noexcept {
  std::array<std::uint8_t, 12> n = iv;
  for (int i = 0; i < 8; ++i) n[11 - i] ^= static_cast<std::uint8_t>(seq >> (8 * i));
  return n;
}

void tls_records::direction::wipe() noexcept {
  sodium_memzero(secret.data(), secret.size());
  key.wipe();
  sodium_memzero(iv.data(), iv.size());
}

tls_records::tls_records(const traffic_secret& write, const traffic_secret& read, bool client,
                         tls_suite suite, tls_key_limits limits)
    : suite_(suite), limits_(limits), client_(client) {
  if (suite_ != tls_suite::aes_256_gcm_sha384) {
    // ChaCha20-Poly1305's bound is past any sequence number.
    limits_.rekey_after = limits_.request_after = limits_.max_per_key = UINT64_MAX;
  }
  try {
    write_.set(suite_, write);
    read_.set(suite_, read);
  } catch (...) {
    write_.wipe();
    read_.wipe();
    throw;
  }
}

bool tls_records::write_key_due() const noexcept {
  return write_.seq >= limits_.rekey_after;
}

tls_records::~tls_records() {
  write_.wipe();
  read_.wipe();
}

protocol_error tls_records::refuse(std::uint8_t alert, std::string text) {
  if (!failed_ && alert != 0) {
    const std::array<std::byte, 2> body{std::byte{2}, std::byte{alert}};  // fatal
    (void)seal_one(type_alert, body, pending_);  // best effort: the connection closes anyway
  }
  write_.wipe();
  read_.wipe();
  failed_ = true;
  partial_.clear();
  handshake_.clear();
  return protocol_error{protocol_errc::tls_failed, "TLS: " + std::move(text)};
}

bool tls_records::seal_record(std::uint8_t type, std::span<const std::byte> content,
                              std::vector<std::byte>& out) {
  return !failed_ && seal_one(type, content, out);
}

bool tls_records::seal_one(std::uint8_t type, std::span<const std::byte> content,
                           std::vector<std::byte>& out) {
  // A nonce must never repeat.
  if (content.size() > tls_max_plaintext || write_.seq == UINT64_MAX) return false;
  const std::size_t n = content.size() + 1;
  const std::size_t at = out.size();
  out.resize(at + header_len + n + tag_len);
  auto* h = reinterpret_cast<unsigned char*>(out.data() + at);
  write_header(h, n + tag_len);
  unsigned char* body = h + header_len;
  if (!content.empty()) std::memcpy(body, content.data(), content.size());
  body[content.size()] = type;
  // In place: both ciphers read each block of the plaintext before they
  // write the ciphertext over it, and the tag is computed on the
  // ciphertext.
  if (!write_.key.seal(body, body + n, body, n, {h, header_len}, write_.nonce())) {
    out.resize(at);
    return false;
  }
  ++write_.seq;
  return true;
}

bool tls_records::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  take_records(out);
  if (failed_) return plain.empty();
  const std::size_t start = out.size();
  for (std::size_t pos = 0; pos < plain.size(); pos += tls_max_plaintext) {
    const std::size_t n = std::min(tls_max_plaintext, plain.size() - pos);
    if (write_key_due()) {
      // AES-GCM's bound: the KeyUpdate goes first, sealed under the old key.
      if (!update_keys(false)) {
        out.resize(start);
        return fail_sealing();
      }
      take_records(out);
    }
    if (!seal_one(type_data, plain.subspan(pos, n), out)) {
      out.resize(start);
      return fail_sealing();
    }
  }
  return true;
}

bool tls_records::fail_sealing() noexcept {
  // Whatever was cut from `out` (a KeyUpdate among it) never reaches the
  // peer: nothing may be sealed after it, and nothing more is opened.
  write_.wipe();
  read_.wipe();
  failed_ = true;
  return false;
}

bool tls_records::update_keys(bool request) {
  if (failed_) return false;
  const std::array<std::byte, 5> msg{std::byte{msg_key_update}, std::byte{0}, std::byte{0},
                                     std::byte{1}, request ? std::byte{1} : std::byte{0}};
  if (!seal_one(type_handshake, msg, pending_)) return false;
  try {
    write_.next(suite_);
  } catch (const std::exception&) {
    // The KeyUpdate is queued; nothing may be sealed under a key the peer
    // no longer reads with, and nothing more is opened either.
    write_.wipe();
    read_.wipe();
    failed_ = true;
    return false;
  }
  if (request) ++awaited_answers_;
  return true;
}

void tls_records::take_records(std::vector<std::byte>& out) {
  answer_queued_ = false;
  if (pending_.empty()) return;
  out.insert(out.end(), pending_.begin(), pending_.end());
  pending_.clear();
}

expected<void, protocol_error> tls_records::open(std::span<const std::byte> in,
                                                 std::vector<std::byte>& plain) {
  if (failed_) {
    return protocol_error{protocol_errc::tls_failed, "TLS: the connection failed already"};
  }
  // The header's checks, before any byte of the body is held.
  auto check_header = [this](const std::byte* h) -> expected<std::size_t, protocol_error> {
    const auto* u = reinterpret_cast<const unsigned char*>(h);
    const std::size_t len = (std::size_t{u[3]} << 8) | u[4];
    if (u[0] != type_data) {
      return refuse(alert_unexpected_message,
                    "a record of outer type " + std::to_string(u[0]) +
                        " after the handshake (only protected records, type 23, may come)");
    }
    if (len > max_record_len) {
      return refuse(alert_record_overflow, "a record of " + std::to_string(len) +
                                               " bytes (at most " + std::to_string(max_record_len) +
                                               ")");
    }
    if (len < tag_len + 1) {
      return refuse(alert_decode_error,
                    "a record of " + std::to_string(len) + " bytes cannot hold a content type");
    }
    return len;
  };
  std::size_t pos = 0;
  if (!partial_.empty()) {
    // Completes the record begun in an earlier call: its header first.
    if (partial_.size() < header_len) {
      const std::size_t take = std::min(header_len - partial_.size(), in.size());
      partial_.insert(partial_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(take));
      pos = take;
      if (partial_.size() < header_len) return {};
    }
    auto len = check_header(partial_.data());
    if (!len) return len.err();
    const std::size_t whole = header_len + *len;
    const std::size_t take = std::min(whole - partial_.size(), in.size() - pos);
    partial_.insert(partial_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                    in.begin() + static_cast<std::ptrdiff_t>(pos + take));
    pos += take;
    if (partial_.size() < whole) return {};
    auto opened = open_record(reinterpret_cast<const unsigned char*>(partial_.data()), *len, plain);
    partial_.clear();
    if (!opened) return opened;
  }
  while (in.size() - pos >= header_len) {
    auto len = check_header(in.data() + pos);
    if (!len) return len.err();
    if (in.size() - pos < header_len + *len) break;
    auto opened = open_record(reinterpret_cast<const unsigned char*>(in.data() + pos), *len, plain);
    if (!opened) return opened;
    pos += header_len + *len;
  }
  partial_.assign(in.begin() + static_cast<std::ptrdiff_t>(pos), in.end());
  return {};
}

expected<void, protocol_error> tls_records::open_record(const unsigned char* record,
                                                        std::size_t len,
                                                        std::vector<std::byte>& plain) {
  if (read_.seq == UINT64_MAX) return refuse(0, "record sequence exhausted");
  if (read_.seq >= limits_.max_per_key) {
    return refuse(alert_unexpected_message, "the peer sent more than " +
                                                std::to_string(limits_.max_per_key) +
                                                " records under one " + to_string(suite_) +
                                                " key (AES-GCM's bound; a KeyUpdate was due)");
  }
  const unsigned char* body = record + header_len;
  const std::size_t n = len - tag_len;
  const std::size_t at = plain.size();
  plain.resize(at + n);
  auto* inner = reinterpret_cast<unsigned char*>(plain.data() + at);
  // Nothing of a record whose tag fails is kept (it is cut off below).
  if (!read_.key.open(inner, body, n, body + n, {record, header_len}, read_.nonce())) {
    plain.resize(at);
    return refuse(alert_bad_record_mac,
                  "record " + std::to_string(read_.seq) +
                      " does not verify: it was changed, injected, replayed, reordered or "
                      "dropped on the way");
  }
  ++read_.seq;
  if (read_.seq >= limits_.request_after && !update_requested_) {
    // The peer has not moved its key on: it is asked to (with the next
    // record this side sends), before it reaches max_per_key.
    update_requested_ = true;
    if (!update_keys(true)) {
      plain.resize(at);
      return refuse(0, "cannot ask the peer for a KeyUpdate (the write key cannot move on)");
    }
  }
  // The content type is the last byte that is not padding.
  std::size_t end = n;
  while (end > 0 && inner[end - 1] == 0) --end;
  if (end == 0) {
    plain.resize(at);
    return refuse(alert_unexpected_message, "a record with no content type");
  }
  const std::uint8_t type = inner[end - 1];
  const std::size_t content = end - 1;
  switch (type) {
    case type_data:
      if (!handshake_.empty()) {
        plain.resize(at);
        return refuse(alert_unexpected_message, "data inside a post-handshake message");
      }
      plain.resize(at + content);
      empty_in_a_row_ = content == 0 ? empty_in_a_row_ + 1 : 0;
      if (empty_in_a_row_ > max_empty_records) {
        return refuse(alert_unexpected_message, "more than " + std::to_string(max_empty_records) +
                                                    " records with no data in a row");
      }
      return {};
    case type_alert: {
      if (content != 2) {
        plain.resize(at);
        return refuse(alert_decode_error, "an alert of " + std::to_string(content) + " bytes");
      }
      const std::uint8_t desc = inner[1];
      peer_alert_ = desc;
      plain.resize(at);
      if (desc == alert_close_notify) return refuse(0, "the peer closed the TLS session");
      return refuse(0, std::string("the peer sent alert ") + std::to_string(desc) + " (" +
                           alert_name(desc) + ")");
    }
    case type_handshake: {
      if (content == 0) {
        plain.resize(at);
        return refuse(alert_unexpected_message, "an empty handshake record");
      }
      // Held apart from `plain` (which is cut back) until whole.
      handshake_.insert(handshake_.end(), plain.begin() + static_cast<std::ptrdiff_t>(at),
                        plain.begin() + static_cast<std::ptrdiff_t>(at + content));
      plain.resize(at);
      return on_handshake_messages();
    }
    default:
      plain.resize(at);
      return refuse(alert_unexpected_message,
                    "a record of content type " + std::to_string(type) + " after the handshake");
  }
}

expected<void, protocol_error> tls_records::on_handshake_messages() {
  std::size_t pos = 0;
  while (handshake_.size() - pos >= 1) {
    const auto* m = reinterpret_cast<const unsigned char*>(handshake_.data() + pos);
    // The type first: nothing of a message this side refuses is held.
    if (m[0] == msg_new_session_ticket && !client_) {
      return refuse(alert_unexpected_message, "a NewSessionTicket to an acceptor");
    }
    if (m[0] != msg_new_session_ticket && m[0] != msg_key_update) {
      return refuse(alert_unexpected_message,
                    "a handshake message of type " + std::to_string(m[0]) + " after the handshake");
    }
    if (handshake_.size() - pos < 4) break;
    const std::size_t len = (std::size_t{m[1]} << 16) | (std::size_t{m[2]} << 8) | m[3];
    if (4 + len > max_post_handshake_message) {
      return refuse(alert_unexpected_message, "a post-handshake message of " +
                                                  std::to_string(4 + len) + " bytes (at most " +
                                                  std::to_string(max_post_handshake_message) + ")");
    }
    if (handshake_.size() - pos < 4 + len) break;
    // The answer to a KeyUpdate this side asked for is not the peer's doing,
    // and a KeyUpdate after many records costs little.
    const bool answer = m[0] == msg_key_update && len == 1 && m[4] == 0 && awaited_answers_ > 0;
    const bool earned = m[0] == msg_key_update && read_.seq >= limits_.free_after;
    if (answer) {
      --awaited_answers_;
    } else if (!earned && ++post_handshake_ > max_post_handshake_messages) {
      return refuse(alert_unexpected_message,
                    "the peer sent more than " + std::to_string(max_post_handshake_messages) +
                        " post-handshake messages (KeyUpdate, NewSessionTicket: each costs this "
                        "node work; nodes send none)");
    }
    switch (m[0]) {
      case msg_new_session_ticket:  // to a dialler (above): nothing is resumed, it is dropped
        break;
      case msg_key_update: {
        if (len != 1) {
          return refuse(alert_decode_error, "a KeyUpdate of " + std::to_string(len) + " bytes");
        }
        if (m[4] > 1) {
          return refuse(alert_illegal_parameter,
                        "a KeyUpdate with request_update " + std::to_string(m[4]));
        }
        // A key change ends its record (RFC 8446, 5.1).
        if (handshake_.size() != pos + 5) {
          return refuse(alert_unexpected_message, "a KeyUpdate that does not end its record");
        }
        try {
          read_.next(suite_);
        } catch (const std::exception& e) {
          return refuse(alert_internal_error,
                        std::string("cannot follow the peer's KeyUpdate: ") + e.what());
        }
        update_requested_ = false;
        // One answer, before this side's next record, serves every request
        // that came before it.
        if (m[4] == 1 && !answer_queued_) {
          if (!update_keys(false)) {
            return refuse(0, "cannot answer the peer's KeyUpdate (the write key cannot move on)");
          }
          answer_queued_ = true;
        }
        break;
      }
    }
    pos += 4 + len;
  }
  handshake_.erase(handshake_.begin(), handshake_.begin() + static_cast<std::ptrdiff_t>(pos));
  return {};
}

}  // namespace libactor::net::detail
