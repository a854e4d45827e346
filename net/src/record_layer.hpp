#pragma once
// Frame protection after the handshake: the bytes of each direction travel
// in sealed records, so that a frame injected, replayed, reordered, cut or
// changed on the way is refused and the connection closed.
//
//     | length: u32 little-endian | ciphertext | tag: 16 bytes |
//
// `length` counts the ciphertext and the tag; a record holds at most
// max_record_plaintext bytes of the frame stream (frames may span records).
// Each record is sealed with the connection's AEAD (aead.hpp: AES-256-GCM
// when both nodes' CPUs have AES instructions, ChaCha20-Poly1305 otherwise;
// the handshake chooses) under the direction's key (handshake::frame_keys:
// HKDF over the secret and both nonces), with a nonce made of the record's
// sequence number in that direction (4 zero bytes, then the number as u64
// little-endian) and the length bytes as associated data. Nothing about the
// sequence number travels: a record replayed, dropped or moved fails its
// tag, as does any changed byte.
//
// Every rekey_after records (sealed_rekey_after, 2^22, by default) both
// sides move the direction's key on, key' = HMAC-SHA256(key,
// "libactor-frames-rekey"), and the sequence number keeps counting: no
// message travels for it, since both sides count the same records. A
// sealed record holds up to 2^16 bytes, four times a TLS record, so a key
// seals at most 2^22 of them: as many bytes (2^38) as 2^24 TLS records,
// under AES-GCM's bound of 2^24.5 TLS records with the margin RFC 8446
// (5.5) keeps (aead.hpp).
//
// Transport-free, one direction each: the writer seals what it is about to
// send, the reader opens what it received. Every call into the cipher is
// checked; a failure is an error, never a record sent or accepted unchecked.
//
// The ciphers are libsodium's, byte for byte the records OpenSSL's EVP
// ciphers make (a test checks one against the other). Each is a direct call
// per record, where OpenSSL 3's EVP layer takes five calls through its
// provider dispatch: in a ping-pong between two nodes, sealing and opening
// ChaCha20-Poly1305 cost 1,600 and 2,350 cycles per record this way against
// 3,800 and 5,200 through EVP (bench/README.md).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "aead.hpp"
#include "libactor/error.hpp"
#include "libactor/net/frame.hpp"

namespace libactor::net::detail {

inline constexpr std::size_t record_header = 4;
inline constexpr std::size_t record_tag = 16;
inline constexpr std::size_t max_record_plaintext = 64 * 1024;
/// Records under one key (both ciphers), before both sides move it on.
inline constexpr std::uint64_t sealed_rekey_after = std::uint64_t{1} << 22;

using record_key = std::array<std::uint8_t, 32>;

class record_cipher {
 public:
  /// Throws std::runtime_error when the cipher cannot start (AES-GCM on a
  /// CPU without AES instructions).
  record_cipher(const record_key& key, bool sealing, aead_kind kind = aead_kind::chacha20_poly1305,
                std::uint64_t rekey_after = sealed_rekey_after);
  ~record_cipher();
  record_cipher(const record_cipher&) = delete;
  record_cipher& operator=(const record_cipher&) = delete;

  /// Seals `plain` as records appended to `out`. False when the cipher
  /// fails or the sequence is exhausted (nothing usable was appended; the
  /// connection must close). After a failure every later call fails too.
  [[nodiscard]] bool seal(std::span<const std::byte> plain, std::vector<std::byte>& out);

  /// Opens the records in `in` and appends their plaintext to `plain`.
  /// Returns how many bytes of `in` were whole records (the rest waits for
  /// more bytes), or an error: a length over the maximum, a record whose tag
  /// does not verify, an exhausted sequence. `need` receives the bytes the
  /// next record needs in all, once its length is known (0 otherwise).
  /// After an error every later call fails too: nothing opens past a
  /// record that did not.
  [[nodiscard]] expected<std::size_t, protocol_error> open(std::span<const std::byte> in,
                                                           std::vector<std::byte>& plain,
                                                           std::size_t* need = nullptr);

  /// Records sealed or opened so far (the next record's sequence number).
  [[nodiscard]] std::uint64_t sequence() const noexcept { return seq_; }
  [[nodiscard]] aead_kind kind() const noexcept { return cipher_.kind(); }

 private:
  [[nodiscard]] std::array<std::uint8_t, 12> nonce() const noexcept;
  [[nodiscard]] expected<std::size_t, protocol_error> open_records(std::span<const std::byte> in,
                                                                   std::vector<std::byte>& plain,
                                                                   std::size_t* need);
  /// Moves the key on when seq_ starts a new span of rekey_after_ records;
  /// false when that fails (the connection must close).
  [[nodiscard]] bool rekey_if_due() noexcept;
  record_key key_;
  aead_key cipher_;
  bool sealing_;
  bool failed_ = false;  // sticky: a failure ends the direction
  std::uint64_t rekey_after_;
  std::uint64_t seq_ = 0;
  std::uint64_t key_span_ = 0;  // the key seals records of seq_ / rekey_after_ == key_span_
};

}  // namespace libactor::net::detail
