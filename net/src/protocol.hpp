#pragma once
// The data-phase payloads of docs/protocol.md that are read from untrusted
// peers, as pure functions: node.cpp uses them, and so does the fuzz target.

#include <cstdint>
#include <optional>
#include <string>

#include "libactor/detail/message.hpp"
#include "libactor/net/frame.hpp"
#include "libactor/net/wire.hpp"

namespace libactor::net::detail {

/// The fixed part of a `message` frame, before the payload.
struct message_header {
  libactor::detail::msg_kind kind{};
  std::uint64_t receiver = 0;  ///< Actor id on the receiving node; 0: its service actor.
  std::uint64_t sender = 0;    ///< Actor id on the sending node; 0: none.
  std::uint64_t request = 0;   ///< Request key (user), or the key answered (response).
  std::uint64_t type = 0;      ///< Wire type id of the payload.
};

/// Reads a message header; the kinds a peer may send are user, response,
/// error_reply, exit_signal and kill (a stop request).
inline expected<message_header, protocol_error> read_message_header(reader& r) {
  using libactor::detail::msg_kind;
  message_header h;
  std::uint8_t kind = 0;
  if (!r.fixed(kind) || !r.varint(h.receiver) || !r.varint(h.sender) || !r.fixed(h.request) ||
      !r.fixed(h.type)) {
    return protocol_error{protocol_errc::malformed_payload, "message header truncated"};
  }
  h.kind = static_cast<msg_kind>(kind);
  if (h.kind != msg_kind::user && h.kind != msg_kind::response && h.kind != msg_kind::error_reply &&
      h.kind != msg_kind::exit_signal && h.kind != msg_kind::kill) {
    return protocol_error{protocol_errc::malformed_payload,
                          "message kind " + std::to_string(static_cast<unsigned>(kind))};
  }
  return h;
}

/// The fields of a non-empty handle.
struct handle_fields {
  std::string node;
  std::string host;
  std::uint16_t port = 0;
  std::uint64_t id = 0;
};

/// Reads a handle: `out` is empty for the empty handle. Fails `r` with
/// bad_handle on a malformed one.
inline bool read_handle(reader& r, std::optional<handle_fields>& out) {
  std::uint8_t tag = 0;
  if (!r.fixed(tag)) return false;
  out.reset();
  if (tag == 0) return true;
  handle_fields f;
  if (tag != 1 || !wire_traits<std::string>::decode(r, f.node) ||
      !wire_traits<std::string>::decode(r, f.host) || !r.fixed(f.port) || !r.varint(f.id) ||
      f.node.empty() || f.node.size() > 255 || f.host.size() > 255 || f.id == 0) {
    r.fail(wire_errc::bad_handle);
    return false;
  }
  out = std::move(f);
  return true;
}

/// Registers the built-in message types (idempotent).
bool register_builtin_messages();

}  // namespace libactor::net::detail
