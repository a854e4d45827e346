#pragma once
// The session: what a connection's frames mean once the handshake is done.
// node_info and its answer (which the peer machine decides), then messages,
// watches, downs, links, heartbeats and goodbyes, each checked against
// docs/protocol.md before it acts. A frame that breaks the protocol ends the
// connection through connection::fail; a message this node cannot decode
// (a type it does not know) is refused on its own, and the connection stays.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "libactor/actor.hpp"
#include "libactor/net/frame.hpp"
#include "libactor/net/wire.hpp"
#include "token_bucket.hpp"

namespace libactor::net::detail {

class connection;
class node_impl;
class remote_proxy;

class session {
 public:
  /// The peer's node_info arrived: frames of node_config::max_frame_size
  /// may follow (before it, only handshake-sized ones).
  [[nodiscard]] bool info_received() const noexcept { return info_received_; }
  session(node_impl& n, connection& c) : node_(n), conn_(c) {}
  /// Handles one frame; false when the connection was closed by it.
  bool on_frame(std::uint8_t kind, std::span<const std::byte> payload);
  void promoted() noexcept { promoted_ = true; }
  [[nodiscard]] bool is_promoted() const noexcept { return promoted_; }
  [[nodiscard]] bool peer_left() const noexcept { return peer_left_; }
  /// Drops the handles the read side caches (the connection closed).
  void reset() noexcept;
  /// Drops a cached receiver that has stopped (at the connection's ticks):
  /// the cache must not keep a stopped actor's memory until the peer
  /// addresses another one.
  void prune() noexcept;

 private:
  bool before_promotion(frame_kind kind, std::span<const std::byte> payload);
  /// Closes the connection for a protocol error; returns false.
  bool fail(protocol_errc code, const std::string& text);
  bool on_message(std::span<const std::byte> payload);
  bool on_watch(std::span<const std::byte> payload);
  bool on_link(bool link, std::span<const std::byte> payload);
  bool on_down(std::span<const std::byte> payload);
  /// A message of a type this node does not know: the connection stays; a
  /// request gets an error answer, an answer fails its ask here.
  void unknown_type(libactor::detail::msg_kind kind, std::uint64_t request, std::uint64_t type);
  /// A message whose payload is over node_config::message_limits, or holds
  /// a value out of its type's range: refused like an unknown type.
  void undecodable(libactor::detail::msg_kind kind, std::uint64_t request,
                   const message_codec& codec, const wire_error& e);
  /// Refuses one message: logs `why` once per `type` and connection; a
  /// request is answered with an error of `code`, an answer fails its ask.
  void refuse_message(libactor::detail::msg_kind kind, std::uint64_t request, std::uint64_t type,
                      errc code, const std::string& why);
  /// The peer addressed wire id `id`, which is not exported here: counted
  /// against node_config::max_unknown_ids. False when the connection was
  /// closed as probing.
  bool unknown_id(std::uint64_t id);

  node_impl& node_;
  connection& conn_;
  bool promoted_ = false;
  bool info_received_ = false;
  bool peer_left_ = false;  // the peer sent `leaving`: nothing more is served

  // Read-side caches (I/O thread).
  std::uint64_t last_receiver_id_ = 0;
  actor_ref last_receiver_;
  std::uint64_t last_sender_id_ = 0;
  actor_ref last_sender_;
  remote_proxy* last_sender_proxy_ = nullptr;  // last_sender_, when it is a live-born proxy
  std::unordered_map<std::uint64_t, const message_codec*> codecs_;
  std::unordered_set<std::uint64_t> logged_types_;  // unknown types already logged
  // Unknown ids addressed (unknown_id): the last few, so that repeats of
  // one count once, and the budget for new ones (made at promotion).
  std::array<std::uint64_t, 16> recent_unknown_{};
  std::size_t recent_next_ = 0;
  std::optional<token_bucket> unknown_budget_;
};

}  // namespace libactor::net::detail
