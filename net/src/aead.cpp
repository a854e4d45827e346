// One key of one AEAD (aead.hpp).

#include "aead.hpp"

#include <cstring>

namespace libactor::net::detail {

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == aead_key_size);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == aead_nonce_size);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == aead_tag_size);
static_assert(crypto_aead_aes256gcm_KEYBYTES == aead_key_size);
static_assert(crypto_aead_aes256gcm_NPUBBYTES == aead_nonce_size);
static_assert(crypto_aead_aes256gcm_ABYTES == aead_tag_size);

const char* to_string(aead_kind k) noexcept {
  return k == aead_kind::aes256_gcm ? "AES-256-GCM" : "ChaCha20-Poly1305";
}

bool aes_gcm_available() noexcept {
  // sodium_init() picks the implementations and detects the CPU's
  // instructions once per process; it is idempotent and thread-safe.
  return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;
}

bool aead_key::set(aead_kind kind, std::span<const std::uint8_t, aead_key_size> key) noexcept {
  wipe();
  if (sodium_init() < 0) return false;
  if (kind == aead_kind::aes256_gcm) {
    // Without the instructions libsodium has no AES-GCM at all (it refuses
    // rather than running a slow, table-based AES).
    if (crypto_aead_aes256gcm_is_available() != 1 ||
        crypto_aead_aes256gcm_beforenm(&aes_, key.data()) != 0) {
      wipe();
      return false;
    }
  } else {
    std::memcpy(key_.data(), key.data(), key_.size());
  }
  kind_ = kind;
  set_ = true;
  return true;
}

void aead_key::wipe() noexcept {
  sodium_memzero(&aes_, sizeof aes_);
  sodium_memzero(key_.data(), key_.size());
  set_ = false;
}

bool aead_key::seal(unsigned char* out, unsigned char* tag, const unsigned char* in, std::size_t n,
                    std::span<const unsigned char> ad,
                    const std::array<std::uint8_t, aead_nonce_size>& nonce) const noexcept {
  if (!set_) return false;
  // An empty message may come without buffers; libsodium's arguments are
  // declared non-null whatever the length.
  unsigned char none[1] = {0};
  if (n == 0) out = none;
  if (n == 0) in = none;
  unsigned long long taglen = 0;
  const int r =
      kind_ == aead_kind::aes256_gcm
          ? crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, &taglen, in, n, ad.data(),
                                                           ad.size(), nullptr, nonce.data(), &aes_)
          : crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                out, tag, &taglen, in, n, ad.data(), ad.size(), nullptr, nonce.data(), key_.data());
  return r == 0 && taglen == aead_tag_size;
}

bool aead_key::open(unsigned char* out, const unsigned char* in, std::size_t n,
                    const unsigned char* tag, std::span<const unsigned char> ad,
                    const std::array<std::uint8_t, aead_nonce_size>& nonce) const noexcept {
  if (!set_) return false;
  unsigned char none[1] = {0};
  if (n == 0) out = none;
  if (n == 0) in = none;
  // ChaCha20-Poly1305 checks the tag before it decrypts; AES-GCM decrypts
  // as it hashes, and zeroes `out` when the tag fails. Either way nothing
  // decrypted survives a tag that fails, as long as `out` is not `in`.
  const int r =
      kind_ == aead_kind::aes256_gcm
          ? crypto_aead_aes256gcm_decrypt_detached_afternm(out, nullptr, in, n, tag, ad.data(),
                                                           ad.size(), nonce.data(), &aes_)
          : crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                out, nullptr, in, n, tag, ad.data(), ad.size(), nonce.data(), key_.data());
  return r == 0;
}

}  // namespace libactor::net::detail
