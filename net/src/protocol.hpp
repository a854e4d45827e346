#pragma once
// The data-phase payloads of docs/protocol.md that are read from untrusted
// peers, as pure functions, and the wire's own message kinds: the session
// uses them, and so do the fuzz targets.

#include <cstdint>
#include <optional>
#include <string>

#include "libactor/detail/message.hpp"
#include "libactor/net/frame.hpp"
#include "libactor/net/wire.hpp"

namespace libactor::net::detail {

/// The kinds of a `message` frame. The wire's numbers are the protocol's,
/// mapped to the runtime's message kinds at the edge (to_runtime,
/// to_wire): a change of the runtime's enum cannot change the protocol.
enum class wire_kind : std::uint8_t {
  user = 0,         ///< A message, one-way or a request.
  response = 1,     ///< The answer to a request.
  error_reply = 2,  ///< An error answer (payload libactor.error).
  exit_signal = 3,  ///< A linked actor's exit (payload libactor.exit).
  stop = 5,         ///< actor_system::stop on a remote handle (payload libactor.exit_reason).
};

/// The runtime kind a wire kind stands for; nothing for a number the
/// protocol does not define.
inline std::optional<libactor::detail::msg_kind> to_runtime(std::uint8_t k) noexcept {
  using libactor::detail::msg_kind;
  switch (static_cast<wire_kind>(k)) {
    case wire_kind::user:
      return msg_kind::user;
    case wire_kind::response:
      return msg_kind::response;
    case wire_kind::error_reply:
      return msg_kind::error_reply;
    case wire_kind::exit_signal:
      return msg_kind::exit_signal;
    case wire_kind::stop:
      return msg_kind::kill;
  }
  return std::nullopt;
}

/// The wire kind for a runtime kind; nothing for the runtime's own signals
/// (timeouts, down notices, ...) that have no meaning on another node.
inline std::optional<wire_kind> to_wire(libactor::detail::msg_kind k) noexcept {
  using libactor::detail::msg_kind;
  switch (k) {
    case msg_kind::user:
      return wire_kind::user;
    case msg_kind::response:
      return wire_kind::response;
    case msg_kind::error_reply:
      return wire_kind::error_reply;
    case msg_kind::exit_signal:
      return wire_kind::exit_signal;
    case msg_kind::kill:
      return wire_kind::stop;
    default:
      return std::nullopt;
  }
}

/// The fixed part of a `message` frame, before the payload.
struct message_header {
  libactor::detail::msg_kind kind{};
  std::uint64_t receiver = 0;  ///< Actor id on the receiving node; 0: its service actor.
  std::uint64_t sender = 0;    ///< Actor id on the sending node; 0: none.
  std::uint64_t request = 0;   ///< Request key (user), or the key answered (response).
  std::uint64_t type = 0;      ///< Wire type id of the payload.
};

/// Reads a message header; the kinds are those of wire_kind.
inline expected<message_header, protocol_error> read_message_header(reader& r) {
  message_header h;
  std::uint8_t kind = 0;
  if (!r.fixed(kind) || !r.varint(h.receiver) || !r.varint(h.sender) || !r.fixed(h.request) ||
      !r.fixed(h.type)) {
    return protocol_error{protocol_errc::malformed_payload, "message header truncated"};
  }
  const auto k = to_runtime(kind);
  if (!k) {
    return protocol_error{protocol_errc::malformed_payload,
                          "message kind " + std::to_string(static_cast<unsigned>(kind))};
  }
  h.kind = *k;
  return h;
}

/// The fields of a non-empty handle: the actor `id` of incarnation
/// `incarnation` of node `node`, which listens on host:port.
struct handle_fields {
  std::string node;
  std::uint64_t incarnation = 0;
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
  if (tag != 1 || !wire_traits<std::string>::decode(r, f.node) || !r.fixed(f.incarnation) ||
      !wire_traits<std::string>::decode(r, f.host) || !r.fixed(f.port) || !r.varint(f.id) ||
      f.node.empty() || f.node.size() > 255 || f.host.size() > 255 || f.id == 0 ||
      f.incarnation == 0) {
    r.fail(wire_errc::bad_handle);
    return false;
  }
  out = std::move(f);
  return true;
}

/// Writes a non-empty handle.
inline void write_handle(writer& w, const handle_fields& f) {
  w.fixed(std::uint8_t{1});
  wire_traits<std::string>::encode(w, f.node);
  w.fixed(f.incarnation);
  wire_traits<std::string>::encode(w, f.host);
  w.fixed(f.port);
  w.varint(f.id);
}

/// The payload of `node_info`: the sender's incarnation, and the host and
/// port it listens on (they go into the handles it hands out).
struct node_info_fields {
  std::uint64_t incarnation = 0;
  std::string host;
  std::uint16_t port = 0;
};

inline expected<node_info_fields, protocol_error> read_node_info(std::span<const std::byte> p) {
  reader r{p, decode_limits{.max_elements = 1024}};
  node_info_fields f;
  if (!r.fixed(f.incarnation) || !wire_traits<std::string>::decode(r, f.host) || !r.fixed(f.port) ||
      r.remaining() != 0 || f.incarnation == 0 || f.host.size() > 255) {
    return protocol_error{protocol_errc::malformed_payload, "node_info"};
  }
  return f;
}

/// Appends an `error` frame: code and text (the handshake's refusals, and an
/// acceptor's refusal of a connection in place of its node_info).
void append_error_frame(std::vector<std::byte>& out, protocol_errc code, const std::string& text);
/// Reads an `error` frame's payload; an unreadable one is refused_by_peer.
protocol_error read_error_frame(std::span<const std::byte> payload);

/// Registers the built-in message types (idempotent).
bool register_builtin_messages();

}  // namespace libactor::net::detail
