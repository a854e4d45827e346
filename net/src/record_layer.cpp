#include "record_layer.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>

namespace libactor::net::detail {

static_assert(aead_key_size == std::tuple_size_v<record_key>);
static_assert(aead_tag_size == record_tag);
static_assert(crypto_auth_hmacsha256_BYTES == std::tuple_size_v<record_key>);

namespace {
constexpr std::string_view rekey_label = "libactor-frames-rekey";
}  // namespace

record_cipher::record_cipher(const record_key& key, bool sealing, aead_kind kind,
                             std::uint64_t rekey_after)
    : key_(key), sealing_(sealing), rekey_after_(rekey_after == 0 ? 1 : rekey_after) {
  if (!cipher_.set(kind, key_)) {
    sodium_memzero(key_.data(), key_.size());
    throw std::runtime_error(std::string("libactor.net: ") + to_string(kind) +
                             " cannot start on this CPU");
  }
}

record_cipher::~record_cipher() {
  sodium_memzero(key_.data(), key_.size());
}

bool record_cipher::rekey_if_due() noexcept {
  if (seq_ / rekey_after_ == key_span_) return true;
  record_key next{};
  const bool ok = crypto_auth_hmacsha256(next.data(),
                                         reinterpret_cast<const unsigned char*>(rekey_label.data()),
                                         rekey_label.size(), key_.data()) == 0 &&
                  cipher_.set(cipher_.kind(), next);
  key_ = next;
  sodium_memzero(next.data(), next.size());
  if (!ok) {
    cipher_.wipe();
    sodium_memzero(key_.data(), key_.size());
    return false;
  }
  ++key_span_;  // the sequence moves by one record at a time: one span at a time
  return true;
}

std::array<std::uint8_t, 12> record_cipher::nonce() const noexcept {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(seq_ >> (8 * i));
  return n;
}

bool record_cipher::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  if (!sealing_ || failed_) return false;
  const std::size_t start = out.size();
  std::size_t pos = 0;
  while (pos < plain.size()) {
    // A nonce must never repeat, and nothing is sealed under a key that
    // failed to move on.
    if (seq_ == UINT64_MAX || !rekey_if_due()) {
      failed_ = true;
      out.resize(start);
      return false;
    }
    const std::size_t n = std::min(max_record_plaintext, plain.size() - pos);
    const auto len = static_cast<std::uint32_t>(n + record_tag);
    const std::size_t at = out.size();
    out.resize(at + record_header + n + record_tag);
    auto* hdr = reinterpret_cast<unsigned char*>(out.data() + at);
    for (int i = 0; i < 4; ++i) hdr[i] = static_cast<unsigned char>(len >> (8 * i));
    const auto iv = nonce();
    if (!cipher_.seal(hdr + record_header, hdr + record_header + n,
                      reinterpret_cast<const unsigned char*>(plain.data() + pos), n,
                      {hdr, record_header}, iv)) {
      failed_ = true;
      out.resize(start);
      return false;
    }
    ++seq_;
    pos += n;
  }
  return true;
}

expected<std::size_t, protocol_error> record_cipher::open(std::span<const std::byte> in,
                                                          std::vector<std::byte>& plain,
                                                          std::size_t* need) {
  if (need != nullptr) *need = 0;
  if (sealing_) return protocol_error{protocol_errc::malformed_payload, "not an opening cipher"};
  if (failed_) {
    return protocol_error{protocol_errc::auth_failed, "the records failed already"};
  }
  auto r = open_records(in, plain, need);
  if (!r) failed_ = true;
  return r;
}

expected<std::size_t, protocol_error> record_cipher::open_records(std::span<const std::byte> in,
                                                                  std::vector<std::byte>& plain,
                                                                  std::size_t* need) {
  std::size_t pos = 0;
  while (in.size() - pos >= record_header) {
    const auto* hdr = reinterpret_cast<const unsigned char*>(in.data() + pos);
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(hdr[i]) << (8 * i);
    if (len < record_tag || len > max_record_plaintext + record_tag) {
      return protocol_error{protocol_errc::frame_too_large,
                            "a sealed record of " + std::to_string(len) + " bytes (" +
                                std::to_string(record_tag) + " to " +
                                std::to_string(max_record_plaintext + record_tag) + " allowed)"};
    }
    if (in.size() - pos < record_header + len) {
      if (need != nullptr) *need = record_header + len;
      break;
    }
    if (seq_ == UINT64_MAX) {
      return protocol_error{protocol_errc::malformed_payload, "record sequence exhausted"};
    }
    if (!rekey_if_due()) {
      return protocol_error{protocol_errc::auth_failed,
                            "this node could not move the record key on (HMAC failed)"};
    }
    const std::size_t n = len - record_tag;
    const std::size_t at = plain.size();
    plain.resize(at + n);
    const auto iv = nonce();
    // On a tag that fails nothing of the plaintext is kept (libsodium
    // zeroes what it decrypted, and it is cut off).
    const bool verified =
        cipher_.open(reinterpret_cast<unsigned char*>(plain.data() + at), hdr + record_header, n,
                     hdr + record_header + n, {hdr, record_header}, iv);
    if (!verified) {
      plain.resize(at);
      return protocol_error{protocol_errc::auth_failed,
                            "record " + std::to_string(seq_) +
                                " does not verify: a frame was changed, injected, replayed, "
                                "reordered or dropped on the way"};
    }
    ++seq_;
    pos += record_header + len;
  }
  return pos;
}

}  // namespace libactor::net::detail
