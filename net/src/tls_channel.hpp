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
// configured CA; only TLS 1.3 is offered or accepted, without session
// tickets or renegotiation. tls_context holds what every connection shares
// (the SSL_CTX, loaded from files once, when the node starts).
//
// Thread safety: one mutex per channel. The reader (the I/O thread) feeds;
// writers seal under the connection's write lock. An SSL object is not safe
// for concurrent use, and a read may produce records of its own (a
// KeyUpdate answer, an alert): they wait in wbio, and the next
// take_records() or seal() sends them first, in order.
//
// Every OpenSSL return value is checked; a failure is an error the
// connection closes on, never bytes accepted or sent unchecked.

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "libactor/error.hpp"
#include "libactor/net/frame.hpp"

struct ssl_ctx_st;
struct ssl_st;

namespace libactor::net {
struct tls_config;
}

namespace libactor::net::detail {

class tls_context {
 public:
  /// Loads the CA, the certificate chain and the key. Throws
  /// std::invalid_argument naming the file and OpenSSL's reason when one
  /// cannot be loaded, the key does not match the certificate, or the
  /// certificate has expired or (with check_peer_name) does not name
  /// `node_name`: peers would refuse it.
  tls_context(const tls_config& cfg, const std::string& node_name);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctx_; }

 private:
  ssl_ctx_st* ctx_;
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

  /// Once the handshake is done: whether the peer's certificate names
  /// `name` (a subjectAltName DNS entry, or the common name when it has
  /// none).
  [[nodiscard]] bool peer_certificate_names(const std::string& name) const;

  /// Once the handshake is done: 32 bytes exported from the session
  /// (RFC 8446, section 7.5), as 64 hex digits. Both sides compute the same
  /// value and nobody else can; it serves as the handshake's secret when
  /// the node has none of its own.
  [[nodiscard]] expected<std::string, protocol_error> exported_secret() const;

 private:
  [[nodiscard]] protocol_error failure(const char* what, int ret) const;
  void drain(std::vector<std::byte>& out);

  mutable std::mutex mu_;
  ssl_st* ssl_;
  bool done_ = false;
};

}  // namespace libactor::net::detail
