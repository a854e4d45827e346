// The session (session.hpp): the data phase of docs/protocol.md.

#include "session.hpp"

#include <cstdio>
#include <optional>

#include "connection.hpp"
#include "frame_builder.hpp"
#include "node_impl.hpp"

namespace libactor::net::detail {

namespace {

// Codecs looked up by type id, cached per connection up to this many: a
// peer cycling through ids cannot grow the cache (the lookup is a hash
// table read, the cache saves its lock).
constexpr std::size_t max_cached_codecs = 1024;
// Unknown type ids logged per connection; later ones are only counted.
constexpr std::size_t max_logged_types = 64;

std::string hex_id(std::uint64_t type) {
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(type));
  return hex;
}

}  // namespace

bool session::fail(protocol_errc code, const std::string& text) {
  conn_.fail(code, text);
  return false;
}

void session::reset() noexcept {
  last_receiver_ = {};
  last_sender_ = {};
  last_sender_proxy_ = nullptr;
}

void session::prune() noexcept {
  if (last_receiver_ && core::actor_access::stopped(core::actor_access::get(last_receiver_))) {
    last_receiver_ = {};
    last_receiver_id_ = 0;
  }
  // A sender proxy nothing else holds: what it holds (the local actors
  // that watch or link it, stopped ones among them) goes with it.
  if (last_sender_ && core::actor_access::use_count(core::actor_access::get(last_sender_)) == 1) {
    last_sender_ = {};
    last_sender_id_ = 0;
    last_sender_proxy_ = nullptr;
  }
}

bool session::on_frame(std::uint8_t kind_byte, std::span<const std::byte> payload) {
  if (kind_byte == 0 || kind_byte > static_cast<std::uint8_t>(last_frame_kind)) {
    return fail(protocol_errc::unknown_frame_kind, "frame kind " + std::to_string(kind_byte));
  }
  const auto kind = static_cast<frame_kind>(kind_byte);
  if (kind == frame_kind::hello || kind == frame_kind::auth) {
    return fail(protocol_errc::unexpected_frame, "a handshake frame after the handshake");
  }
  if (peer_left_) {
    return fail(protocol_errc::unexpected_frame, "a frame after `leaving`");
  }
  if (!promoted_) return before_promotion(kind, payload);
  switch (kind) {
    case frame_kind::message:
      return on_message(payload);
    case frame_kind::watch:
      return on_watch(payload);
    case frame_kind::link:
    case frame_kind::unlink:
      return on_link(kind == frame_kind::link, payload);
    case frame_kind::down:
      return on_down(payload);
    case frame_kind::heartbeat:
    case frame_kind::leaving:
      if (!payload.empty()) {
        return fail(protocol_errc::malformed_payload,
                    std::string(kind == frame_kind::heartbeat ? "heartbeat" : "leaving") +
                        " with a payload of " + std::to_string(payload.size()) + " bytes");
      }
      if (kind == frame_kind::leaving) peer_left_ = true;
      return true;
    case frame_kind::node_info:
      return fail(protocol_errc::unexpected_frame, "a second node_info");
    case frame_kind::error:
      // The peer refuses the connection in use (this process was replaced
      // by a newer incarnation there): not bad input, a reason to log.
      node_.on_refused(conn_.shared_from_this(), read_error_frame(payload));
      return false;
    case frame_kind::hello:
    case frame_kind::auth:
      break;
  }
  return fail(protocol_errc::unexpected_frame, "a handshake frame after the handshake");
}

bool session::before_promotion(frame_kind kind, std::span<const std::byte> payload) {
  // The dialler sends node_info first and waits for the acceptor's answer:
  // node_info (accepted) or error (refused). The acceptor waits for the
  // dialler's node_info. Nothing else may come before.
  if (kind == frame_kind::error && conn_.initiator_ && !info_received_) {
    node_.on_refused(conn_.shared_from_this(), read_error_frame(payload));
    return false;
  }
  if (kind != frame_kind::node_info || info_received_) {
    return fail(protocol_errc::unexpected_frame, info_received_
                                                     ? "a frame before this node answered node_info"
                                                     : "expected node_info after the handshake");
  }
  auto info = read_node_info(payload);
  if (!info) return fail(info.err().code, info.err().text);
  info_received_ = true;
  node_.on_node_info(conn_.shared_from_this(), *info);
  return !conn_.closed();
}

bool session::unknown_id(std::uint64_t id) {
  // An actor that stopped a while ago: a late message, not a guess.
  if (node_.exports_.retired(id)) return true;
  for (const std::uint64_t r : recent_unknown_) {
    if (r == id) return true;
  }
  recent_unknown_[recent_next_++ % recent_unknown_.size()] = id;
  if (!unknown_budget_) {
    unknown_budget_.emplace(static_cast<double>(node_.cfg_.max_unknown_ids), 64.0);
  }
  if (unknown_budget_->take(token_bucket::clock::now())) return true;
  return fail(protocol_errc::probing, "the peer addressed more than " +
                                          std::to_string(node_.cfg_.max_unknown_ids) +
                                          " actor ids that node " + node_.cfg_.name +
                                          " never gave it (node_config::max_unknown_ids)");
}

bool session::on_watch(std::span<const std::byte> payload) {
  reader r{payload, decode_limits{}};
  std::uint64_t id = 0;
  if (!r.varint(id) || r.remaining() != 0) return fail(protocol_errc::malformed_payload, "watch");
  if (!node_.add_watch(*conn_.peer_, id)) return unknown_id(id);
  return true;
}

bool session::on_link(bool link, std::span<const std::byte> payload) {
  reader r{payload, decode_limits{}};
  std::uint64_t target = 0;
  std::uint64_t linker = 0;
  if (!r.varint(target) || !r.varint(linker) || r.remaining() != 0 || linker == 0) {
    return fail(protocol_errc::malformed_payload, link ? "link" : "unlink");
  }
  // An id that is not exported (any more) is answered by the `watch`
  // frame that precedes a link: its `down` stops the linker's proxy.
  actor_ref local = node_.find_exported(target);
  if (!local) return unknown_id(target);
  peer& p = *conn_.peer_;
  actor_ref remote{core::ref_ptr<actor>(
      node_.proxy_for(p, linker, conn_.info_.incarnation, remote_proxy::role::actor), false)};
  if (!link) {
    core::unlink_on_behalf(core::actor_access::get(local), core::actor_access::get(remote));
    return true;
  }
  // Linked already (this node's actor linked the peer's): linking twice is
  // one link, whoever asks, and nothing is checked or refused.
  if (core::linked(core::actor_access::get(local), core::actor_access::get(remote))) return true;
  std::string why;
  if (local == node_.service_) {
    // Through a link, an exit signal would stop it: the service stops only
    // with its node.
    why = "the service actor of node " + node_.cfg_.name + " cannot be linked from outside";
    node_.refuse(p, "link", "a link to the service actor");
  } else if (!node_.exports_.find_for_stop(target, &p, conn_.info_.incarnation).allowed) {
    // The linker's exit would stop the target: a link needs the right to
    // stop it.
    why = "node " + p.name_ + " may not stop actor " + hex_id(target) + " on node " +
          node_.cfg_.name + " (it did not spawn it; node::allow_remote_stop allows it)";
    node_.refuse(p, "link",
                 "a link to an actor the peer may not stop (it did not spawn it; "
                 "node::allow_remote_stop allows it)");
  } else if (const auto budget = p.links_.check(); budget == link_budget::verdict::peer_full) {
    why = "node " + node_.cfg_.name + " holds max_links_per_peer (" +
          std::to_string(node_.cfg_.max_links_per_peer) + ") links with node " + p.name_;
    node_.refuse(p, "max_links_per_peer", "a link past max_links_per_peer (" + why + ")");
  } else if (budget == link_budget::verdict::node_full) {
    why = "node " + node_.cfg_.name + " holds max_links_total (" +
          std::to_string(node_.cfg_.max_links_total) + ") links with its peers";
    node_.refuse(p, "max_links_total", "a link past max_links_total (" + why + ")");
  } else if (!core::link_on_behalf(core::actor_access::get(local), core::actor_access::get(remote),
                                   node_.cfg_.max_links_per_actor)) {
    why = "actor " + hex_id(target) + " on node " + node_.cfg_.name + " has max_links_per_actor (" +
          std::to_string(node_.cfg_.max_links_per_actor) + ") links";
    node_.refuse(p, "max_links", "a link past max_links_per_actor (" + why + ")");
  }
  if (!why.empty()) {
    // Refused, and the linker is told: it is not linked, and it must not
    // believe it is. Its node delivers this like the target's exit.
    actor* from = core::actor_access::get(local);
    core::actor_access::add_ref(from);
    core::actor_access::enqueue(
        core::actor_access::get(remote),
        core::make_message<exit_msg>(core::msg_kind::exit_signal, from, 0,
                                     exit_msg{local, exit_reason::error("link refused: " + why)}));
  }
  return true;
}

bool session::on_down(std::span<const std::byte> payload) {
  reader r{payload, decode_limits{.max_elements = 1u << 16}};
  std::uint64_t id = 0;
  exit_reason reason;
  if (!r.varint(id) || !wire_decode(r, reason) || r.remaining() != 0) {
    return fail(protocol_errc::malformed_payload, "down");
  }
  peer& p = *conn_.peer_;
  core::ref_ptr<remote_proxy> px;
  {
    std::lock_guard lock(p.mu_);
    auto it = p.proxies_.find({id, conn_.info_.incarnation});
    if (it != p.proxies_.end() && core::actor_access::try_add_ref(it->second)) {
      px = core::ref_ptr<remote_proxy>(it->second, false);
      p.proxies_.erase(it);  // a later handle to this id is a fresh, stopped proxy
    }
  }
  if (px) px->kill(reason);
  return true;
}

void session::unknown_type(libactor::detail::msg_kind kind, std::uint64_t request,
                           std::uint64_t type) {
  node_.stats_.unknown_types.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  refuse_message(kind, request, type, errc::not_serializable,
                 "a message of type id " + hex_id(type) + " from node " + conn_.peer_->name_ +
                     ", which node " + node_.cfg_.name +
                     " does not know (not declared with LIBACTOR_WIRE_TYPE or "
                     "net::register_message there)");
}

void session::undecodable(libactor::detail::msg_kind kind, std::uint64_t request,
                          const message_codec& codec, const wire_error& e) {
  node_.stats_.undecodable.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  const bool limit = e.code != wire_errc::bad_value;
  refuse_message(kind, request, codec.wire_id,
                 limit ? errc::invalid_argument : errc::not_serializable,
                 "a message of type " + std::string(codec.wire_name) + " from node " +
                     conn_.peer_->name_ + " that node " + node_.cfg_.name + " cannot decode (" +
                     to_string(e.code) + " at byte " + std::to_string(e.offset) +
                     (limit ? "; node_config::message_limits)" : "; a value out of its range)"));
}

void session::refuse_message(libactor::detail::msg_kind kind, std::uint64_t request,
                             std::uint64_t type, errc code, const std::string& why) {
  using core::msg_kind;
  peer& p = *conn_.peer_;
  // One line per type and connection, within the peer's own log budget
  // (node_impl::log_about, which outlives its connections): a peer on newer
  // code sends the type again and again, and one that reconnects or sends
  // many types must not flood the log, nor spend the budget other
  // refusals are logged from (all are counted in node_stats).
  if (logged_types_.size() < max_logged_types && logged_types_.insert(type).second) {
    node_.log_about(p, "refused " + why + " (logged once per type and connection)");
  }
  if (kind == msg_kind::user && request != 0) {
    // The asker gets an error answer instead of waiting for its timeout.
    try {
      std::vector<std::byte> payload;
      writer w{payload, &node_};
      w.fixed(static_cast<std::uint8_t>(wire_kind::error_reply));
      w.varint(0);
      w.varint(0);
      w.fixed(request);
      w.fixed(type_id_of("libactor.error"));
      wire_encode(w, error{code, "refused " + why});
      std::lock_guard lock(p.mu_);
      if (p.primary_.get() == &conn_) {
        conn_.append(make_frame(frame_kind::message, payload), true, node_.cfg_.max_outbound_bytes);
      }
    } catch (...) {
      // Out of memory: the asker's timeout ends the ask.
    }
    conn_.flush();
  } else if (kind == msg_kind::response || kind == msg_kind::error_reply) {
    // An answer this node cannot read: its asker fails now.
    std::optional<peer::request> req = p.take_request(request);
    if (req) {
      core::actor_access::enqueue(
          core::actor_access::get(req->asker),
          core::make_message<error>(core::msg_kind::error_reply, nullptr, req->id,
                                    error{code, "the answer is " + why}));
    }
  }
  node_.drain_->lost(1);
}

bool session::on_message(std::span<const std::byte> payload) {
  using core::msg_kind;
  peer& p = *conn_.peer_;
  reader r{payload, node_.cfg_.message_limits, &node_};
  auto header = read_message_header(r);
  if (!header) {
    return fail(header.err().code, header.err().text);
  }
  const msg_kind kind = header->kind;
  const std::uint64_t receiver = header->receiver;
  const std::uint64_t sender = header->sender;
  const std::uint64_t request = header->request;
  const std::uint64_t type = header->type;
  const message_codec* codec = nullptr;
  if (auto it = codecs_.find(type); it != codecs_.end()) {
    codec = it->second;
  } else {
    codec = find_codec(type);
    if (codec == nullptr) {
      if (kind == msg_kind::user || kind == msg_kind::response || kind == msg_kind::error_reply) {
        // The peer runs code with a type this node does not have (a rolling
        // upgrade): this message is refused, the connection stays.
        unknown_type(kind, request, type);
        return true;
      }
      // Exit signals and stop requests have fixed built-in payloads.
      return fail(protocol_errc::malformed_payload,
                  "message kind " + std::to_string(static_cast<unsigned>(kind)) +
                      " with an unknown type id " + hex_id(type));
    }
    if (codecs_.size() < max_cached_codecs) codecs_.emplace(type, codec);
  }
  actor* from = nullptr;
  // A proxy made for the sender counts toward the message's charge.
  std::uint32_t sender_bytes = 0;
  if (sender != 0) {
    if (sender != last_sender_id_ || last_sender_proxy_ == nullptr || last_sender_proxy_->dead()) {
      sender_bytes = sizeof(remote_proxy);
      actor* a = node_.proxy_for(p, sender, conn_.info_.incarnation, remote_proxy::role::actor);
      last_sender_ = actor_ref{core::ref_ptr<actor>(a, false)};
      last_sender_proxy_ = dynamic_cast<remote_proxy*>(a);
      last_sender_id_ = sender;
    }
    from = core::actor_access::get(last_sender_);
    core::actor_access::add_ref(from);
  } else if (kind == msg_kind::user && (request != 0 || receiver == 0)) {
    // A request needs somewhere to send its answer; a message to the
    // service, the peer it came from (a spawn is the spawner's, counted and
    // stopped with it, also when no answer is wanted).
    from = node_.proxy_for(p, 0, 0, remote_proxy::role::anonymous);
    sender_bytes = sizeof(remote_proxy);
  }
  core::message* m = nullptr;
  try {
    // Charged to the connection until handled: the encoded size, what the
    // value holds in containers, and its block (make_accounted_message).
    m = codec->decode(r, kind, from, request, conn_.account_,
                      static_cast<std::uint32_t>(payload.size()) + sender_bytes);
    // (takes over `from`, also when it throws)
  } catch (const std::exception& e) {
    return fail(protocol_errc::malformed_payload, std::string("decoding failed: ") + e.what());
  }
  const bool refusable =
      kind == msg_kind::user || kind == msg_kind::response || kind == msg_kind::error_reply;
  if (m == nullptr && refusable) {
    // Exit signals and stop requests are not refused one by one: an exit
    // signal that disappeared would leave a link that never fires, so such
    // a frame closes the connection (below), which fires it as node_down.
    switch (r.error().code) {
      case wire_errc::too_many_elements:
      case wire_errc::over_budget:
      case wire_errc::too_deep:
      case wire_errc::bad_value:
        // Over this node's limits, or a value from newer code (an enum
        // value this build lacks): refused on its own, like an unknown type.
        undecodable(kind, request, *codec, r.error());
        return true;
      default:
        break;
    }
  }
  if (m == nullptr) {
    return fail(protocol_errc::malformed_payload,
                std::string("payload of ") + std::string(codec->wire_name) + ": " +
                    to_string(r.error().code) + " at byte " + std::to_string(r.error().offset));
  }
  if (r.remaining() != 0) {
    m->dispose();
    return fail(protocol_errc::malformed_payload,
                std::string("trailing bytes after ") + std::string(codec->wire_name));
  }
  // The runtime reads these kinds' payloads as a fixed type: anything else
  // from a peer is malformed, not something to reinterpret.
  // An exit_msg is the runtime's notice of a linked actor's exit: as a
  // plain message from a peer it would be a forged notice.
  if (kind != msg_kind::exit_signal && m->type == core::type_of<exit_msg>()) {
    m->dispose();
    return fail(protocol_errc::malformed_payload, "an exit_msg that is not an exit signal");
  }
  const libactor::detail::type_id required = kind == msg_kind::error_reply ? core::type_of<error>()
                                             : kind == msg_kind::exit_signal
                                                 ? core::type_of<exit_msg>()
                                             : kind == msg_kind::kill ? core::type_of<exit_reason>()
                                                                      : nullptr;
  if (required != nullptr && m->type != required) {
    m->dispose();
    return fail(protocol_errc::malformed_payload,
                std::string("message kind ") + std::to_string(static_cast<unsigned>(kind)) +
                    " with a payload of " + std::string(codec->wire_name));
  }
  if (kind == msg_kind::exit_signal &&
      (from == nullptr ||
       core::actor_access::get(core::payload<exit_msg>(*m).source) != m->sender)) {
    // An exit signal stands for the exit of the peer's actor that sends it;
    // the receiver acts on it only if linked to that actor. One that names
    // another source (an actor of this node, or of a third node, that the
    // receiver is linked to) is forged.
    m->dispose();
    node_.refuse(p, "exit", "an exit signal whose source is not the actor that sent it");
    return true;
  }
  node_.stats_.messages_in.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  if (kind == msg_kind::response || kind == msg_kind::error_reply) {
    std::optional<peer::request> req = p.take_request(request);
    if (!req) {
      m->request_id = 0;
      node_.drain_->drop(m, errc::receiver_down, "", send_status::dead_letter);
      return true;
    }
    m->request_id = req->id;
    core::actor_access::enqueue(core::actor_access::get(req->asker), m);
    return true;
  }
  if (kind == msg_kind::kill) {
    // A stop request: the payload is the exit reason (checked above).
    const exit_reason reason = core::payload<exit_reason>(*m);
    m->dispose();
    auto target = receiver == 0
                      ? export_table::stop_target{node_.service_, false}
                      : node_.exports_.find_for_stop(receiver, &p, conn_.info_.incarnation);
    if (!target.ref) return unknown_id(receiver);
    if (target.ref == node_.service_) {
      node_.refuse(p, "stop", "a stop request for the service actor");
    } else if (!target.allowed) {
      node_.refuse(p, "stop",
                   "a stop request for an actor the peer did not spawn (node::allow_remote_stop "
                   "lets any peer stop it)");
    } else {
      node_.sys_.stop(target.ref, reason);
    }
    return true;
  }
  if (receiver == 0) {
    if (kind == msg_kind::user) {
      core::actor_access::enqueue(core::actor_access::get(node_.service_), m);
    } else {
      m->dispose();
    }
    return true;
  }
  if (receiver != last_receiver_id_) {
    last_receiver_ = node_.find_exported(receiver);
    last_receiver_id_ = receiver;
  }
  if (!last_receiver_) {
    last_receiver_id_ = 0;
    node_.drain_->drop(m, errc::receiver_down,
                       "actor " + hex_id(receiver) + " is not on node " + node_.cfg_.name,
                       send_status::dead_letter);
    return unknown_id(receiver);
  }
  core::actor_access::enqueue(core::actor_access::get(last_receiver_), m);
  return true;
}

}  // namespace libactor::net::detail
