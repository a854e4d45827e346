#include "record_layer.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace libactor::net::detail {

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == std::tuple_size_v<record_key>);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == record_tag);

record_cipher::record_cipher(const record_key& key, bool sealing) : key_(key), sealing_(sealing) {
  // Once per process, from any thread (it is idempotent and thread-safe):
  // picks the implementations this CPU runs fastest.
  if (sodium_init() < 0) throw std::runtime_error("libactor.net: libsodium cannot start");
}

record_cipher::~record_cipher() {
  sodium_memzero(key_.data(), key_.size());
}

std::array<std::uint8_t, 12> record_cipher::nonce() const noexcept {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(seq_ >> (8 * i));
  return n;
}

bool record_cipher::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  if (!sealing_) return false;
  const std::size_t start = out.size();
  std::size_t pos = 0;
  while (pos < plain.size()) {
    if (seq_ == UINT64_MAX) return false;  // a nonce must never repeat
    const std::size_t n = std::min(max_record_plaintext, plain.size() - pos);
    const auto len = static_cast<std::uint32_t>(n + record_tag);
    const std::size_t at = out.size();
    out.resize(at + record_header + n + record_tag);
    auto* hdr = reinterpret_cast<unsigned char*>(out.data() + at);
    for (int i = 0; i < 4; ++i) hdr[i] = static_cast<unsigned char>(len >> (8 * i));
    const auto iv = nonce();
    unsigned long long taglen = 0;
    const bool ok = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                        hdr + record_header, hdr + record_header + n, &taglen,
                        reinterpret_cast<const unsigned char*>(plain.data() + pos), n, hdr,
                        record_header, nullptr, iv.data(), key_.data()) == 0 &&
                    taglen == record_tag;
    if (!ok) {
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
    const std::size_t n = len - record_tag;
    const std::size_t at = plain.size();
    plain.resize(at + n);
    const auto iv = nonce();
    // The tag is checked before anything is decrypted; on failure nothing
    // of the plaintext is kept (libsodium zeroes it, and it is cut off).
    const bool verified =
        crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            reinterpret_cast<unsigned char*>(plain.data() + at), nullptr, hdr + record_header, n,
            hdr + record_header + n, hdr, record_header, iv.data(), key_.data()) == 0;
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
