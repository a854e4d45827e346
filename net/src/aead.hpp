#pragma once
// The authenticated cipher under both record formats (record_layer's sealed
// records, tls_records' TLS 1.3 records): one key of one of two AEADs, with
// the cost of setting the key paid once, not per record.
//
//   - ChaCha20-Poly1305 (RFC 8439): constant time in software on every CPU;
//     a 100-byte record seals and opens in about 1,100 ns on the CPUs the
//     benchmarks ran on.
//   - AES-256-GCM, where the CPU has AES and carry-less multiply
//     instructions (libsodium's condition): the key schedule and the hash
//     key are computed once per key (a 512-byte state), and the same record
//     seals and opens in about 440 ns. Both sides of a connection must
//     have the instructions; the handshakes choose it only then.
//
// AES-GCM takes at most aes_gcm_records_per_key TLS-sized records (2^14
// bytes) under one key (RFC 8446, 5.5: 2^24.5); the record formats move to
// a new key before (tls_records after aes_gcm_rekey_after records,
// record_layer after as many bytes in its larger records).
// ChaCha20-Poly1305's bound is past any sequence number (2^64), which the
// formats check as well.
//
// Nonces are the callers': each format makes them from a sequence number
// that never repeats under one key. seal() works in place (`out` equal to
// `in`); open() must not (AES-GCM zeroes `out` when a tag fails). Tests
// check every size against OpenSSL's EVP ciphers.

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace libactor::net::detail {

enum class aead_kind : std::uint8_t { chacha20_poly1305, aes256_gcm };

[[nodiscard]] const char* to_string(aead_kind k) noexcept;

inline constexpr std::size_t aead_key_size = 32;
inline constexpr std::size_t aead_nonce_size = 12;
inline constexpr std::size_t aead_tag_size = 16;

/// TLS records sealed under one AES-GCM key before a KeyUpdate.
inline constexpr std::uint64_t aes_gcm_rekey_after = std::uint64_t{1} << 24;
/// Records a peer may send under one AES-GCM key at most: floor(2^24.5).
inline constexpr std::uint64_t aes_gcm_records_per_key = 23'726'566;

/// Whether this CPU can seal and open AES-256-GCM here (libsodium has
/// AES-GCM only where the CPU has the instructions).
[[nodiscard]] bool aes_gcm_available() noexcept;

class aead_key {
 public:
  aead_key() = default;
  ~aead_key() { wipe(); }
  aead_key(const aead_key&) = delete;
  aead_key& operator=(const aead_key&) = delete;

  /// Sets the key (and computes AES's schedule). False when the cipher
  /// cannot start (AES-GCM on a CPU without the instructions); the key is
  /// then unset and every seal and open fails.
  [[nodiscard]] bool set(aead_kind kind, std::span<const std::uint8_t, aead_key_size> key) noexcept;
  void wipe() noexcept;
  [[nodiscard]] aead_kind kind() const noexcept { return kind_; }

  /// Encrypts `n` bytes of `in` into `out` and writes the tag; `ad` is
  /// authenticated, not encrypted. False on any failure of the cipher.
  [[nodiscard]] bool seal(unsigned char* out, unsigned char* tag, const unsigned char* in,
                          std::size_t n, std::span<const unsigned char> ad,
                          const std::array<std::uint8_t, aead_nonce_size>& nonce) const noexcept;

  /// Checks the tag over `n` bytes of ciphertext `in` and `ad`, and
  /// decrypts into `out` (not `in`). False, with nothing decrypted kept,
  /// when the tag does not verify or the key is unset.
  [[nodiscard]] bool open(unsigned char* out, const unsigned char* in, std::size_t n,
                          const unsigned char* tag, std::span<const unsigned char> ad,
                          const std::array<std::uint8_t, aead_nonce_size>& nonce) const noexcept;

 private:
  crypto_aead_aes256gcm_state aes_{};              // AES-GCM's precomputed key
  std::array<std::uint8_t, aead_key_size> key_{};  // ChaCha20-Poly1305's key
  aead_kind kind_ = aead_kind::chacha20_poly1305;
  bool set_ = false;
};

}  // namespace libactor::net::detail
