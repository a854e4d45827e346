#pragma once
/// @file
/// The connection handshake: protocol version check and mutual
/// authentication by the cluster secret, without ever sending the secret.
///
/// Both sides send `hello` {magic, version, node name, 32-byte random nonce,
/// sealing} at once. On the peer's hello, a side checks magic and version (refusing
/// with an `error` frame that says both versions). Then the side that opened
/// the connection (the initiator) proves first, with `auth`:
///
///     HMAC-SHA256(secret, "libactor-auth-v2" | role | peer nonce | own nonce
///                         | own name | peer name)
///
/// The acceptor checks it against the same construction from the
/// initiator's point of view, in constant time, and only then sends its own
/// `auth`, which the initiator checks. So a node answers whoever connects
/// to it with a nonce, never with a MAC: anyone may connect, and must not
/// get material to test guesses of the secret against offline. (A node that
/// dials gives its MAC to whatever answers at that address: secrets must
/// be strong, secret.hpp, and docs/protocol.md states the threat model.)
/// The role byte means a side's own proof reflected back never verifies;
/// fresh nonces on both sides mean a recorded exchange never verifies
/// again. HMAC and the random nonces come from OpenSSL's libcrypto; a
/// failure of either ends the handshake.
///
/// The class is transport-free: feed it received bytes, send what it returns.
/// It is used by one connection on one thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "libactor/net/export.hpp"
#include "libactor/net/frame.hpp"

namespace libactor::net {

inline constexpr std::uint16_t protocol_version = 4;

struct handshake_config {
  std::string node_name;
  /// Seal the frames after the handshake (both sides must agree; see
  /// frame_keys). False only on a network whose path is trusted.
  bool protect_frames = true;
  /// This side can and may seal AES-256-GCM: the frames are sealed with it
  /// when both sides can, with ChaCha20-Poly1305 otherwise. The node sets
  /// it to node_config::aes_gcm and whether libsodium has AES-GCM on this
  /// CPU.
  bool aes_gcm = false;
  std::string secret;  ///< The cluster secret; at least min_secret_bits (secret.hpp).
  std::uint16_t version = protocol_version;
  std::uint32_t max_frame_size = 1u << 20;
  /// When set: called with the name in the peer's hello; false fails the
  /// handshake with auth_failed, told to the peer, before either side has
  /// proved anything (a TLS connection checks that the peer's certificate
  /// names it, tls_config::check_peer_name).
  std::function<bool(const std::string&)> accept_name;
};

class LIBACTOR_NET_EXPORT handshake {
 public:
  enum class role : std::uint8_t { initiator = 1, acceptor = 2 };
  enum class state : std::uint8_t { in_progress, done, failed };

  /// Throws std::invalid_argument for an empty node name or a secret weaker
  /// than min_secret_bits; std::runtime_error when no random nonce can be made.
  handshake(handshake_config cfg, role r);

  /// The bytes to send first (this side's hello).
  [[nodiscard]] std::vector<std::byte> start();

  /// Consumes received bytes; returns bytes to send now (possibly an error
  /// frame just before failing).
  [[nodiscard]] std::vector<std::byte> feed(std::span<const std::byte> in);

  [[nodiscard]] state current() const noexcept { return state_; }
  /// Set once state is `failed`.
  [[nodiscard]] const protocol_error& error() const noexcept { return error_; }
  /// Once done: the bytes received after the handshake's last frame, which
  /// belong to the frames that follow it. Removes them.
  [[nodiscard]] std::vector<std::byte> take_unread() { return decoder_.take_rest(); }
  /// Bytes to read before feeding more: feeding no more than this keeps the
  /// handshake's buffer within one frame of its maximum size.
  [[nodiscard]] std::size_t room() const noexcept { return decoder_.room(); }
  /// Set once the peer's hello arrived.
  [[nodiscard]] const std::string& peer_name() const noexcept { return peer_name_; }

  /// Once done with protect_frames: this connection's keys, one per
  /// direction: HKDF-SHA256 over the secret, with the initiator's then the
  /// acceptor's nonce as salt and "libactor-frames-v2", both names, both
  /// hellos' sealing bytes (the initiator's first) and the cipher (one
  /// byte: 1 AES-256-GCM, 0 ChaCha20-Poly1305) as info; 64 bytes, the first
  /// 32 for what the initiator sends. The cipher is AES-256-GCM when both
  /// hellos said their side can seal it.
  struct keys {
    std::array<std::uint8_t, 32> send{};
    std::array<std::uint8_t, 32> receive{};
    bool aes_gcm = false;
  };
  [[nodiscard]] const keys& frame_keys() const noexcept { return keys_; }
  /// Wipes frame_keys() once the records hold them (they move on from them).
  void wipe_frame_keys() noexcept;

 private:
  using mac = std::array<std::uint8_t, 32>;
  using nonce = std::array<std::uint8_t, 32>;

  void on_frame(const frame& f, std::vector<std::byte>& out);
  void fail(protocol_errc code, std::string text, std::vector<std::byte>& out, bool tell_peer);
  /// False when the MAC could not be computed.
  [[nodiscard]] bool proof(role r, const nonce& first, const nonce& second, const std::string& a,
                           const std::string& b, mac& out) const;
  /// Sends this side's auth; false (and failed) when it cannot be computed.
  bool send_proof(std::vector<std::byte>& out);
  /// This side's hello sealing byte: 0 clear, 1 ChaCha20-Poly1305 only, 2
  /// AES-256-GCM too.
  [[nodiscard]] std::uint8_t sealing_byte() const noexcept;
  /// Derives keys_; false (and failed) when OpenSSL fails.
  bool derive_keys(std::vector<std::byte>& out);

  handshake_config cfg_;
  role role_;
  state state_ = state::in_progress;
  protocol_error error_{};
  frame_decoder decoder_;
  nonce own_nonce_{};
  nonce peer_nonce_{};
  std::string peer_name_;
  bool hello_received_ = false;
  bool peer_aes_gcm_ = false;
  std::uint8_t peer_sealing_ = 0;  // the sealing byte of the peer's hello
  keys keys_{};
};

namespace detail {

/// @internal HMAC-SHA256 as the handshake computes it; false when OpenSSL
/// fails. Tests replace it, before any handshake runs, to check that a
/// failure ends the handshake (a MAC left at zero would be predictable).
using hmac_function = bool (*)(std::span<const std::uint8_t> key,
                               std::span<const std::uint8_t> data,
                               std::array<std::uint8_t, 32>& out) noexcept;
LIBACTOR_NET_EXPORT extern hmac_function handshake_hmac;

}  // namespace detail

}  // namespace libactor::net
