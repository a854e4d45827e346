#pragma once
/// @file
/// Frames: the unit of the node-to-node byte stream.
///
///     | length: u32 little-endian | kind: u8 | payload: length - 1 bytes |
///
/// `length` counts the kind byte and the payload. The decoder checks it
/// against the configured maximum as soon as the four length bytes have
/// arrived, before it buffers or allocates anything for the payload.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "libactor/error.hpp"

namespace libactor::net {

enum class frame_kind : std::uint8_t {
  hello = 1,  ///< Handshake: magic, protocol version, node name, nonce.
  auth = 2,   ///< Handshake: HMAC proof of the cluster secret.
  error = 3,  ///< The sender refuses the connection; payload says why.
  // After the handshake (docs/protocol.md):
  node_info = 4,  ///< Incarnation, advertised host and port; the first frame after auth.
  message = 5,    ///< One actor message.
  watch = 6,      ///< "Tell me when this actor of yours stops."
  down = 7,       ///< A watched actor stopped; carries its id and exit reason.
  heartbeat = 8,  ///< Keeps an idle connection's liveness check satisfied.
  leaving = 9,    ///< The sender is shutting down; the close that follows is not a failure.
  link = 10,      ///< "My actor linked yours": both ids; the receiver records the link too.
  unlink = 11,    ///< "My actor unlinked yours": both ids.
};
inline constexpr frame_kind last_frame_kind = frame_kind::unlink;

/// Failures of the node-to-node protocol.
enum class protocol_errc : std::uint8_t {
  frame_too_large = 1,  ///< A frame's length exceeds the configured maximum.
  empty_frame,          ///< A frame's length is zero (no kind byte).
  unknown_frame_kind,   ///< A kind byte this version does not know.
  unexpected_frame,     ///< A known frame out of order for the handshake state.
  malformed_payload,    ///< A payload the wire format rejects.
  bad_magic,            ///< The peer does not speak this protocol at all.
  version_mismatch,     ///< The peer speaks another protocol version.
  auth_failed,  ///< The peer's proof of the cluster secret is wrong, or its TLS certificate does
                ///< not name the node it says it is.
  refused_by_peer,       ///< The peer sent an error frame.
  duplicate_connection,  ///< Refused: the acceptor keeps (or is making) another connection with the
                         ///< dialler.
  stale_incarnation,     ///< Refused: the dialler is an incarnation older than one the acceptor has
                         ///< seen.
  probing,               ///< The peer addressed more actor ids that were never exported than
                         ///< node_config::max_unknown_ids allows.
  protection_mismatch,   ///< One side seals frames after the handshake, the other does not.
  too_many_peers,        ///< Refused: the acceptor's peer table is full (node_config::max_peers).
  tls_failed,  ///< TLS: the handshake failed (a certificate that does not verify, no TLS 1.3), a
               ///< record did not authenticate, or the peer ended the TLS session. A TLS peer
               ///< learns it from TLS's own alert; a peer without TLS, from an error frame.
};

[[nodiscard]] constexpr const char* to_string(protocol_errc e) noexcept {
  switch (e) {
    case protocol_errc::frame_too_large:
      return "frame_too_large";
    case protocol_errc::empty_frame:
      return "empty_frame";
    case protocol_errc::unknown_frame_kind:
      return "unknown_frame_kind";
    case protocol_errc::unexpected_frame:
      return "unexpected_frame";
    case protocol_errc::malformed_payload:
      return "malformed_payload";
    case protocol_errc::bad_magic:
      return "bad_magic";
    case protocol_errc::version_mismatch:
      return "version_mismatch";
    case protocol_errc::auth_failed:
      return "auth_failed";
    case protocol_errc::refused_by_peer:
      return "refused_by_peer";
    case protocol_errc::duplicate_connection:
      return "duplicate_connection";
    case protocol_errc::stale_incarnation:
      return "stale_incarnation";
    case protocol_errc::probing:
      return "probing";
    case protocol_errc::protection_mismatch:
      return "protection_mismatch";
    case protocol_errc::too_many_peers:
      return "too_many_peers";
    case protocol_errc::tls_failed:
      return "tls_failed";
  }
  return "unknown";
}

struct protocol_error {
  protocol_errc code{};
  std::string text;
  [[nodiscard]] std::string to_string() const {
    return std::string(net::to_string(code)) + (text.empty() ? "" : ": " + text);
  }
};

struct frame {
  frame_kind kind{};
  std::vector<std::byte> payload;
};

/// Appends one frame to `out`.
inline void append_frame(std::vector<std::byte>& out, frame_kind kind,
                         std::span<const std::byte> payload) {
  const auto length = static_cast<std::uint32_t>(payload.size() + 1);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((length >> (8 * i)) & 0xff));
  out.push_back(static_cast<std::byte>(kind));
  out.insert(out.end(), payload.begin(), payload.end());
}

/// One frame found at the start of a buffer, pointing into it.
struct frame_view {
  std::uint8_t kind = 0;  ///< As received: checking it is the reader's job.
  std::span<const std::byte> payload;
  std::size_t size = 0;  ///< Bytes the frame takes in the buffer (4 + length).
};

/// The frame splitter: the one place that reads frame lengths. Looks at the
/// start of `buf`: a complete frame, nothing when more bytes are needed
/// (then `*need`, if given, receives the bytes the frame will take, known
/// once its length arrived and passed the check), or an error (the
/// connection must be closed). A length over `max` is refused as soon as
/// its four bytes are there, before anything is buffered for the payload.
[[nodiscard]] inline expected<std::optional<frame_view>, protocol_error> split_frame(
    std::span<const std::byte> buf, std::uint32_t max, std::size_t* need = nullptr) {
  if (buf.size() < 4) return std::optional<frame_view>{};
  std::uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    length |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(buf[i])) << (8 * i);
  }
  if (length == 0) return protocol_error{protocol_errc::empty_frame, "frame length 0"};
  if (length > max) {
    return protocol_error{
        protocol_errc::frame_too_large,
        "frame of " + std::to_string(length) + " bytes, maximum " + std::to_string(max)};
  }
  if (buf.size() - 4 < length) {
    if (need != nullptr) *need = std::size_t{length} + 4;
    return std::optional<frame_view>{};
  }
  return std::optional<frame_view>{frame_view{static_cast<std::uint8_t>(buf[4]),
                                              buf.subspan(5, length - 1), std::size_t{length} + 4}};
}

/// Splits a byte stream into frames, incrementally (split_frame over a
/// buffer it owns). The handshake reads its frames with it.
class frame_decoder {
 public:
  explicit frame_decoder(std::uint32_t max_frame_size) noexcept : max_(max_frame_size) {}

  /// Appends received bytes. Feeding at most room() bytes at a time keeps
  /// what is held within one frame of the maximum size.
  void feed(std::span<const std::byte> in) {
    if (in.empty()) return;
    if (buf_.capacity() == 0) buf_.reserve(std::min<std::size_t>(std::size_t{max_} + 4, 4096));
    // resize and copy rather than a range insert: GCC 12 at -O3 reports the
    // insert's move of the old contents as an overflow (-Wstringop-overflow).
    const std::size_t at = buf_.size();
    buf_.resize(at + in.size());
    std::memcpy(buf_.data() + at, in.data(), in.size());
  }

  /// The next complete frame, nothing if more bytes are needed, or an error
  /// (after which the connection must be closed). The kind is not checked.
  [[nodiscard]] expected<std::optional<frame>, protocol_error> next() {
    auto v = split_frame(std::span<const std::byte>(buf_).subspan(pos_), max_);
    if (!v) return v.err();
    if (!v->has_value()) {
      // Only part of a frame is left: move it to the front, so that the
      // buffer holds no more than the frame being received.
      if (pos_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
        pos_ = 0;
      }
      return std::optional<frame>{};
    }
    const frame_view& f = **v;
    frame out{static_cast<frame_kind>(f.kind),
              std::vector<std::byte>(f.payload.begin(), f.payload.end())};
    pos_ += f.size;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    return std::optional<frame>{std::move(out)};
  }

  /// Removes and returns the bytes not yet returned as frames.
  [[nodiscard]] std::vector<std::byte> take_rest() {
    std::vector<std::byte> rest(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
    buf_.clear();
    pos_ = 0;
    return rest;
  }

  /// Bytes held and not yet returned as frames (at most max + 4 per frame).
  [[nodiscard]] std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  /// Bytes the decoder takes before it holds a whole frame of the maximum
  /// size (at least 1 after next() returned nothing).
  [[nodiscard]] std::size_t room() const noexcept {
    const std::size_t full = std::size_t{max_} + 4;
    return buffered() >= full ? 1 : full - buffered();
  }

 private:
  std::uint32_t max_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0;
};

}  // namespace libactor::net
