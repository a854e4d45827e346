#pragma once
// TLS 1.3 record protection for application traffic (RFC 8446, section 5),
// after OpenSSL has run the handshake: the same records OpenSSL would read
// and write, made with one libsodium call each instead of OpenSSL's record
// layer (whose EVP dispatch, BIO copies and error queue cost a node's round
// trip about 7 us more: bench/README.md).
//
//     | 23 | 03 03 | length: u16 | AEAD(data || type || zeros) | tag: 16 |
//
// Each direction has a traffic secret (the handshake's
// {client,server}_application_traffic_secret_0, which the channel takes
// from OpenSSL's key log), from which HKDF-Expand-Label derives a 32-byte
// key and a 12-byte IV; a record's nonce is the IV XOR its sequence number
// (big-endian, right-aligned), which starts at 0 with each key and counts
// every record of the direction. The five header bytes are the associated
// data. Nothing about the sequence number travels: a record replayed,
// dropped, reordered or changed fails its tag.
//
// Two suites (tls_context offers and accepts these only; the acceptor's
// order decides):
//   - TLS_AES_256_GCM_SHA384, where the CPU has AES instructions (aead.hpp:
//     about 2.5 times faster per record there): SHA-384 for the key
//     schedule (48-byte secrets), AES-256-GCM for the records;
//   - TLS_CHACHA20_POLY1305_SHA256 otherwise: SHA-256, ChaCha20-Poly1305.
// Under AES-GCM a key seals at most 2^24.5 records (aead.hpp): this side
// moves its write key on (a KeyUpdate) after rekey_after records, asks the
// peer for one once it has read request_after records under one key, and
// refuses a peer that sends more than max_per_key.
//
// What the peer may send inside records besides data (inner content types):
//   - an alert: any ends the connection, close_notify with "the peer
//     closed the TLS session";
//   - post-handshake messages: KeyUpdate (the read key moves on; when the
//     peer asks, this side answers with a KeyUpdate of its own before its
//     next record, one for all the requests before it, and moves its write
//     key on), and, to a dialler only, NewSessionTicket (ignored: nodes
//     resume nothing). At most max_post_handshake_messages on a connection
//     (not counted: the answers to this side's own requests, and a
//     KeyUpdate after at least free_after records under the key it
//     replaces, which costs one HKDF per million records), each at most
//     max_post_handshake_message bytes, never interleaved with data;
//   - nothing else: a ChangeCipherSpec, a handshake message of another
//     type, or an unknown content type ends the connection, as do more
//     than max_empty_records data records with no data in a row.
// Every refusal queues a fatal alert for the peer (take_records()) and
// wipes the keys: nothing is opened or sealed after it.
//
// What the peer makes this side hold: one incomplete record (at most
// 5 + 2^14 + 17 bytes) and one incomplete post-handshake message.
//
// Transport-free and single-threaded: the channel calls it under its lock;
// tests and the fuzzer drive it with bytes alone.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "aead.hpp"
#include "libactor/error.hpp"
#include "libactor/net/frame.hpp"

namespace libactor::net::detail {

/// Plaintext bytes a record carries at most (2^14).
inline constexpr std::size_t tls_max_plaintext = 16 * 1024;
/// A post-handshake message's size at most, its header included.
inline constexpr std::size_t max_post_handshake_message = 16 * 1024;
/// Post-handshake messages (KeyUpdate, NewSessionTicket) a peer may send on
/// one connection. Nodes send none; each costs work.
inline constexpr int max_post_handshake_messages = 16;
/// Data records with no data a peer may send in a row: each costs an open
/// and delivers nothing that inbound flow control would count (OpenSSL's
/// record layer allows as many).
inline constexpr int max_empty_records = 32;

enum class tls_suite : std::uint8_t { chacha20_poly1305_sha256, aes_256_gcm_sha384 };

[[nodiscard]] const char* to_string(tls_suite s) noexcept;
/// The suite's hash length: the length of its traffic secrets (32, 48).
[[nodiscard]] std::size_t secret_size(tls_suite s) noexcept;

/// A traffic secret: its first secret_size(suite) bytes.
using traffic_secret = std::array<std::uint8_t, 48>;

/// HKDF-Expand-Label (RFC 8446, section 7.1) with the suite's hash and an
/// empty context, for outputs of at most one hash block. Throws
/// std::runtime_error when the HMAC fails.
void hkdf_expand_label(tls_suite suite, const traffic_secret& secret, std::string_view label,
                       std::span<std::uint8_t> out);

/// Records per key, for AES-GCM (ChaCha20-Poly1305 needs none of these but
/// free_after). Tests make them small.
struct tls_key_limits {
  std::uint64_t rekey_after = aes_gcm_rekey_after;
  std::uint64_t request_after =
      aes_gcm_rekey_after + (aes_gcm_records_per_key - aes_gcm_rekey_after) / 2;
  std::uint64_t max_per_key = aes_gcm_records_per_key;
  std::uint64_t free_after = std::uint64_t{1} << 20;
};

class tls_records {
 public:
  /// `write` protects what this side sends, `read` what it receives;
  /// `client`: this side dialled (only a dialler takes NewSessionTickets).
  /// Throws std::runtime_error when the suite's cipher cannot start
  /// (AES-GCM on a CPU without AES instructions).
  tls_records(const traffic_secret& write, const traffic_secret& read, bool client,
              tls_suite suite = tls_suite::chacha20_poly1305_sha256, tls_key_limits limits = {});
  ~tls_records();
  tls_records(const tls_records&) = delete;
  tls_records& operator=(const tls_records&) = delete;

  /// Opens the records in `in` and appends the data they carry to `plain`.
  /// An incomplete record at the end waits for the next call. An error: a
  /// record that does not verify or breaks the rules above, or an alert
  /// from the peer; nothing of the failing record reaches `plain`, and the
  /// instance refuses everything after.
  [[nodiscard]] expected<void, protocol_error> open(std::span<const std::byte> in,
                                                    std::vector<std::byte>& plain);

  /// Appends the records waiting (an answer to the peer's KeyUpdate, an
  /// alert) and then `plain` as data records. After a failure only the
  /// waiting records (the alert) are appended, and the result is whether
  /// `plain` was empty. False when `plain` cannot be sealed (after a
  /// failure, or the sequence is exhausted): the connection must close;
  /// what was appended (the waiting records) may still be sent.
  [[nodiscard]] bool seal(std::span<const std::byte> plain, std::vector<std::byte>& out);

  /// Seals one record of inner content `type` (21 alert, 22 handshake, 23
  /// data) holding `content` (at most tls_max_plaintext bytes); false after
  /// a failure. Tests use it to send what a node never would.
  [[nodiscard]] bool seal_record(std::uint8_t type, std::span<const std::byte> content,
                                 std::vector<std::byte>& out);

  /// Queues a KeyUpdate (asking the peer for one back when `request`) and
  /// moves the write key on: the next seal() sends it first. False after a
  /// failure.
  [[nodiscard]] bool update_keys(bool request);

  /// Appends the records waiting to be sent.
  void take_records(std::vector<std::byte>& out);
  [[nodiscard]] bool has_records() const noexcept { return !pending_.empty(); }

  [[nodiscard]] int post_handshake_messages() const noexcept { return post_handshake_; }
  [[nodiscard]] tls_suite suite() const noexcept { return suite_; }
  /// Records sealed and opened under the current keys.
  [[nodiscard]] std::uint64_t write_sequence() const noexcept { return write_.seq; }
  [[nodiscard]] std::uint64_t read_sequence() const noexcept { return read_.seq; }
  /// The alert the peer sent (its description), or -1.
  [[nodiscard]] int peer_alert() const noexcept { return peer_alert_; }
  /// Bytes held for an incomplete record or post-handshake message.
  [[nodiscard]] std::size_t held() const noexcept { return partial_.size() + handshake_.size(); }

 private:
  struct direction {
    traffic_secret secret{};
    aead_key key;
    std::array<std::uint8_t, 12> iv{};
    std::uint64_t seq = 0;
    void set(tls_suite suite, const traffic_secret& s);
    void next(tls_suite suite);  // the secret after a KeyUpdate
    [[nodiscard]] std::array<std::uint8_t, 12> nonce() const noexcept;
    void wipe() noexcept;
  };
  /// A seal that failed half way: ends the instance; returns false.
  [[nodiscard]] bool fail_sealing() noexcept;
  /// Whether the write key is due to move on (AES-GCM).
  [[nodiscard]] bool write_key_due() const noexcept;

  [[nodiscard]] bool seal_one(std::uint8_t type, std::span<const std::byte> content,
                              std::vector<std::byte>& out);
  [[nodiscard]] expected<void, protocol_error> open_record(const unsigned char* record,
                                                           std::size_t len,
                                                           std::vector<std::byte>& plain);
  /// Acts on the whole messages in handshake_ and drops them.
  [[nodiscard]] expected<void, protocol_error> on_handshake_messages();
  /// Records the failure, queues the fatal alert `alert` (0: none) and
  /// returns the error to report.
  [[nodiscard]] protocol_error refuse(std::uint8_t alert, std::string text);

  direction write_;
  direction read_;
  tls_suite suite_;
  tls_key_limits limits_;
  bool client_;
  bool update_requested_ = false;  // this side asked for one under the current read key
  bool failed_ = false;
  int post_handshake_ = 0;
  int peer_alert_ = -1;
  int empty_in_a_row_ = 0;            // data records with no data, since the last with some
  int awaited_answers_ = 0;           // KeyUpdates this side requested, not yet answered
  bool answer_queued_ = false;        // a KeyUpdate answer waits in pending_
  std::vector<std::byte> partial_;    // an incomplete record
  std::vector<std::byte> handshake_;  // an incomplete post-handshake message
  std::vector<std::byte> pending_;    // sealed records waiting to be sent
};

}  // namespace libactor::net::detail
