#pragma once
// TLS 1.3 with mutual authentication, as a byte transformation: the
// connection hands the channel what it read from the socket and gets the
// plaintext back; it hands the channel plaintext to send and gets the TLS
// records to write. The channel never touches a socket: OpenSSL runs on two
// memory BIOs (the same engine Asio's ssl::stream drives), so the
// connection keeps its own reads, its direct non-blocking writes and its
// inbound flow control, and tests drive a pair of channels with no socket
// or thread at all (tests/test_tls_channel.cpp).
//
//     socket bytes --feed()--> [rbio] SSL [wbio] --take_records()--> socket
//     frames ----------------------seal()-----------------^
//     frames <-----feed()'s plaintext--
//
// Both sides present a certificate and verify the other's against the
// configured CA; only TLS 1.3 with TLS_AES_256_GCM_SHA384 (where the CPU
// has AES-GCM and node_config::aes_gcm allows it) and
// TLS_CHACHA20_POLY1305_SHA256 is offered or accepted, without session
// tickets or renegotiation. tls_context holds
// what every connection shares (the SSL_CTX, loaded from files once, when
// the node starts).
//
// OpenSSL runs the handshake. Once it is done, the channel reads and writes
// the application records itself (tls_records): the same records, from the
// two traffic secrets OpenSSL hands its key log callback, which the channel
// takes, uses and wipes (they are never logged). OpenSSL's own record layer
// cost each message about 13,500 cycles to seal and open in a ping-pong,
// libsodium's call about 4,000 (bench/README.md). At that point OpenSSL must have nothing of the
// peer's buffered and must have written nothing after its last handshake
// flight, which the channel checks; then the OpenSSL session is freed, with
// the secrets it holds (the peer's certificate and the exported secret are
// kept).
//
// Thread safety: one mutex per channel. The reader (the I/O thread) feeds;
// writers seal under the connection's write lock. Neither an SSL object nor
// tls_records is safe for concurrent use. Records a read causes (the answer
// to a KeyUpdate that asks for one, an alert) go out with the next seal(),
// first, in order.
//
// What a peer can make the channel do is bounded: before the handshake is
// done, max_tls_handshake_bytes; key exchange on X25519 or P-256 only (no
// finite-field groups, whose cost the peer would choose); after it, what
// tls_records bounds (one incomplete record, at most
// max_post_handshake_messages post-handshake messages).
//
// Every OpenSSL return value is checked; a failure is an error the
// connection closes on, never bytes accepted or sent unchecked.

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "libactor/error.hpp"
#include "libactor/net/frame.hpp"
#include "tls_records.hpp"

struct ssl_ctx_st;
struct ssl_st;
struct x509_st;

namespace libactor::net {
struct tls_config;
}

namespace libactor::net::detail {

/// Bytes a peer may send before the TLS handshake is done (its hello, its
/// certificate chain, its Finished): a real handshake is a few KiB.
inline constexpr std::size_t max_tls_handshake_bytes = 16 * 1024;

/// Whether `cert` names `name` exactly, byte for byte: one of its
/// subjectAltName DNS entries, or its common name when it has no
/// subjectAltName at all.
[[nodiscard]] bool certificate_names(x509_st* cert, const std::string& name);

class tls_context {
 public:
  /// Loads the CA, the certificate chain and the key. Throws
  /// std::invalid_argument naming the file and OpenSSL's reason when one
  /// cannot be loaded, the key does not match the certificate, or the
  /// certificate has expired or (with check_peer_name) does not name
  /// `node_name`: peers would refuse it.
  /// `aes_gcm`: offer TLS_AES_256_GCM_SHA384 first where the CPU has AES
  /// instructions (node_config::aes_gcm); ChaCha20-Poly1305 only otherwise.
  tls_context(const tls_config& cfg, const std::string& node_name, bool aes_gcm = true);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctx_; }
  /// The suites this node offers, for errors ("TLS_A and TLS_B").
  [[nodiscard]] const char* offered() const noexcept { return offered_; }

 private:
  ssl_ctx_st* ctx_;
  const char* offered_ = "";
};

class tls_channel {
 public:
  /// Throws std::runtime_error when OpenSSL cannot make the connection's
  /// state (out of memory).
  tls_channel(const tls_context& ctx, bool client);
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  /// Starts the handshake (the client's hello waits in take_records()).
  [[nodiscard]] expected<void, protocol_error> start();

  /// Takes bytes read from the socket: advances the handshake, then
  /// appends what they decrypt to. An error: the handshake failed (the
  /// peer's certificate did not verify, the peer does not speak TLS 1.3),
  /// a record did not authenticate, or the peer closed the TLS session.
  /// Records to send may wait afterwards (handshake messages, an alert).
  [[nodiscard]] expected<void, protocol_error> feed(std::span<const std::byte> in,
                                                    std::vector<std::byte>& plain);

  /// Encrypts `plain` and appends, to `out`, every record waiting (first)
  /// and the new ones. Only once the handshake is done. False when OpenSSL
  /// fails (the connection must close); nothing usable was appended then.
  [[nodiscard]] bool seal(std::span<const std::byte> plain, std::vector<std::byte>& out);

  /// Appends the records waiting to be sent (handshake, alerts).
  void take_records(std::vector<std::byte>& out);
  /// Whether records wait to be sent.
  [[nodiscard]] bool has_records() const;

  [[nodiscard]] bool handshake_done() const;
  /// Post-handshake messages received so far (max_post_handshake_messages).
  [[nodiscard]] int post_handshake_messages() const;

  /// Once the handshake is done: queues a KeyUpdate (asking the peer for one
  /// back when `request`); the next seal() sends it. False after a failure.
  [[nodiscard]] bool update_keys(bool request);

  /// Once the handshake is done: whether the peer's certificate names
  /// `name` (certificate_names).
  [[nodiscard]] bool peer_certificate_names(const std::string& name) const;

  /// Once the handshake is done: 32 bytes exported from the session
  /// (RFC 8446, section 7.5), as 64 hex digits. Both sides compute the same
  /// value and nobody else can; it serves as the handshake's secret when
  /// the node has none of its own. Once: the channel wipes its copy.
  [[nodiscard]] expected<std::string, protocol_error> exported_secret();

  /// Once the handshake is done: the suite the records use.
  [[nodiscard]] std::optional<tls_suite> suite() const;

 private:
  friend class tls_context;  // installs on_key_log
  [[nodiscard]] protocol_error failure(const char* what, int ret) const;
  void drain(std::vector<std::byte>& out);
  /// The handshake is done: from here on tls_records reads and writes.
  [[nodiscard]] expected<void, protocol_error> take_over(std::vector<std::byte>& plain);
  static void on_key_log(const ssl_st* ssl, const char* line);
  /// `r`, with what the peer's alert (if any) says about this node's
  /// configuration.
  [[nodiscard]] expected<void, protocol_error> explained(expected<void, protocol_error> r) const;

  mutable std::mutex mu_;
  ssl_st* ssl_;
  const char* offered_;  // the context's suites, for errors
  bool done_ = false;
  std::size_t handshake_bytes_ = 0;  // fed before done_
  // The first record header and handshake message header the peer sent.
  std::array<unsigned char, 9> first_header_{};
  std::size_t first_header_len_ = 0;
  // The application traffic secrets, from the key log until take_over().
  traffic_secret client_secret_{};
  traffic_secret server_secret_{};
  std::size_t client_secret_size_ = 0;  // 0 until the key log gave it
  std::size_t server_secret_size_ = 0;
  bool client_;
  // Once done_: OpenSSL's session is freed (ssl_ null); what is kept of it.
  std::array<unsigned char, 32> exported_{};
  bool have_exported_ = false;
  x509_st* peer_ = nullptr;  // the peer's certificate (a reference)
  std::unique_ptr<tls_records> records_;
  std::vector<std::byte> tail_;  // OpenSSL's last records, not yet taken
};

}  // namespace libactor::net::detail
