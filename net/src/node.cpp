// The node: listening, dialling, the data-phase protocol, remote proxies,
// failure detection and reconnection. The design is in
// docs/architecture.md ("Network layer"); the bytes in docs/protocol.md.

#include <openssl/rand.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "node_impl.hpp"
#include "protocol.hpp"

namespace libactor::net {
namespace detail {

// Built-in message types: what replies and common one-field messages use.
bool register_builtin_messages() {
  std::apply(
      [](auto... t) { (register_message<decltype(t)>(builtin_message_name<decltype(t)>), ...); },
      builtin_message_types{});
  return true;
}

namespace {

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
    throw std::runtime_error("libactor.net: no randomness for the node incarnation");
  }
  return v;
}

// Frames are built in place: 4 length bytes and the kind, then the payload;
// the length is patched in at the end.
void begin_frame(std::vector<std::byte>& out, frame_kind k) {
  out.resize(out.size() + 5);
  out[out.size() - 1] = static_cast<std::byte>(k);
}
void end_frame(std::vector<std::byte>& out, std::size_t start) {
  const auto len = static_cast<std::uint32_t>(out.size() - start - 4);
  for (int i = 0; i < 4; ++i) out[start + i] = static_cast<std::byte>((len >> (8 * i)) & 0xff);
}

thread_local std::vector<std::byte> t_scratch;

constexpr std::size_t flush_bytes = 64 * 1024;
constexpr std::uint32_t handshake_frame_limit = 4096;

std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

// --- remote_proxy ------------------------------------------------------------------

remote_proxy::remote_proxy(actor_system& sys, core::ref_ptr<peer> p, std::uint64_t remote_id,
                           role r)
    : core::proxy(sys), peer_(std::move(p)), remote_id_(remote_id), role_(r) {}

remote_proxy::~remote_proxy() {
  std::lock_guard lock(peer_->mu_);
  switch (role_) {
    case role::actor: {
      auto it = peer_->proxies_.find(remote_id_);
      if (it != peer_->proxies_.end() && it->second == this) peer_->proxies_.erase(it);
      break;
    }
    case role::service:
      if (peer_->service_ == this) peer_->service_ = nullptr;
      break;
    case role::anonymous:
      if (peer_->anonymous_ == this) peer_->anonymous_ = nullptr;
      break;
  }
}

void remote_proxy::kill(const exit_reason& reason) noexcept {
  // release: pairs with the acquire in enqueue(); a send that sees the flag
  // is refused rather than queued to a connection that is gone.
  dead_.store(true, std::memory_order_release);
  terminate(reason);
}

void remote_proxy::on_watched() noexcept {
  if (role_ != role::actor) return;
  // relaxed: only one watch frame per proxy is needed; the peer mutex in
  // send_control orders the frame itself.
  if (watch_sent_.exchange(true, std::memory_order_relaxed)) return;
  std::vector<std::byte> payload;
  writer w{payload};
  w.varint(remote_id_);
  std::lock_guard lock(peer_->mu_);
  if (peer_->node_ != nullptr) peer_->node_->send_control(*peer_, frame_kind::watch, payload);
}

void remote_proxy::on_linked(actor* local) noexcept {
  send_link_frame(frame_kind::link, local);
}

void remote_proxy::on_unlinked(actor* local) noexcept {
  send_link_frame(frame_kind::unlink, local);
}

void remote_proxy::send_link_frame(frame_kind kind, actor* local) noexcept {
  // The remote actor records the link too (with a proxy for `local`), so
  // that `local`'s exit reaches it as a linked actor's, and a link to a
  // node that goes down stops it with node_down.
  if (role_ != role::actor || core::actor_access::is_proxy(local)) return;
  const auto owner = peer_->owner_.lock();
  if (!owner) return;
  try {
    std::vector<std::byte> payload;
    writer w{payload};
    w.varint(remote_id_);
    w.varint(owner->export_local(local));
    std::lock_guard lock(peer_->mu_);
    if (peer_->node_ != nullptr) peer_->node_->send_control(*peer_, kind, payload);
  } catch (...) {
    // Out of memory: the link stays one-sided, as before this frame existed.
  }
}

send_status remote_proxy::refuse_reply(core::message* m, errc code, std::string text,
                                       send_status status) noexcept {
  if (m->kind == core::msg_kind::response) {
    // An answer that cannot cross the network: the asker on the other node
    // gets an error saying why, instead of waiting for its timeout.
    try {
      actor* from = std::exchange(m->sender, nullptr);
      auto* e = core::make_message<error>(core::msg_kind::error_reply, from, m->request_id,
                                          error{code, text});  // releases `from` if it throws
      (void)enqueue(e);
    } catch (...) {
      // No memory for the error: the asker's timeout ends the ask.
    }
  }
  return refuse(m, code, std::move(text), status);
}

void remote_proxy::on_stop_request(const exit_reason& reason) noexcept {
  if (role_ != role::actor) return;
  try {
    enqueue(core::make_message<exit_reason>(core::msg_kind::kill, nullptr, 0, reason));
  } catch (...) {
    // Out of memory building the request: as for a local stop, nothing to report to.
  }
}

send_status remote_proxy::enqueue(core::message* m) noexcept {
  using core::msg_kind;
  // Sends this handler made to local actors go first: the peer may react to
  // this message by messaging them (order across receivers).
  core::flush_local_batch();
  // acquire: pairs with the release in kill().
  if (dead_.load(std::memory_order_acquire)) {
    return refuse(m, errc::node_down, "node " + peer_->name_ + " is unreachable",
                  send_status::dead_letter);
  }
  const msg_kind kind = m->kind;
  if (kind != msg_kind::user && kind != msg_kind::response && kind != msg_kind::error_reply &&
      kind != msg_kind::exit_signal && kind != msg_kind::kill) {
    m->dispose();  // runtime signals that have no meaning for a remote actor
    return send_status::ok;
  }
  if (role_ != role::actor && kind == msg_kind::kill) {
    m->dispose();
    return send_status::ok;
  }
  if (role_ == role::anonymous && (kind == msg_kind::user || kind == msg_kind::exit_signal)) {
    return refuse(
        m, errc::receiver_down,
        "a requester outside any actor on node " + peer_->name_ + " receives only replies",
        send_status::dead_letter);
  }
  // acquire: pairs with the release in register_message().
  const auto* codec =
      static_cast<const message_codec*>(m->type->codec.load(std::memory_order_acquire));
  // Keeps the node alive for the whole send: a node shutting down on
  // another thread is freed when its last owner lets go.
  const std::shared_ptr<node_impl> owner = peer_->owner_.lock();
  if (owner == nullptr) {
    return refuse(m, errc::shutting_down, "the node has shut down", send_status::dead_letter);
  }
  if (codec == nullptr) {
    owner->stats_.not_serializable.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    return refuse_reply(
        m, errc::not_serializable,
        std::string("type ") + core::readable_name(m->type) +
            " has no wire declaration (LIBACTOR_WIRE_TYPE or net::register_message)",
        send_status::not_serializable);
  }
  const bool request = kind == msg_kind::user && m->request_id != 0;
  actor* sender = m->sender;
  const bool sender_is_local = sender != nullptr && !core::actor_access::is_proxy(sender);
  auto& buf = t_scratch;
  buf.clear();
  std::uint64_t key = 0;
  try {
    const std::uint64_t sender_id = sender_is_local ? owner->export_local(sender) : 0;
    begin_frame(buf, frame_kind::message);
    writer w{buf, owner.get()};
    w.fixed(static_cast<std::uint8_t>(kind));
    w.varint(role_ == role::actor ? remote_id_ : 0);
    w.varint(sender_id);
    const std::size_t request_at = buf.size();
    w.fixed(std::uint64_t{0});  // request key or id, patched below
    w.fixed(codec->wire_id);
    codec->encode(w, *m);
    end_frame(buf, 0);
    if (buf.size() > owner->cfg_.max_frame_size + 4) {
      return refuse_reply(m, errc::invalid_argument,
                          "the encoded message (" + std::to_string(buf.size()) +
                              " bytes) exceeds the maximum frame size",
                          send_status::dead_letter);
    }
    std::unique_lock lock(peer_->mu_);
    if (peer_->node_ == nullptr) {
      lock.unlock();
      return refuse(m, errc::shutting_down, "the node has shut down", send_status::dead_letter);
    }
    if (peer_->st_ == peer::state::down) {
      lock.unlock();
      owner->stats_.unreachable.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      return refuse(m, errc::node_down, "node " + peer_->name_ + " is unreachable",
                    send_status::dead_letter);
    }
    std::uint64_t req_field = m->request_id;
    if (request) {
      key = ++peer_->next_key_;
      req_field = key;
    }
    for (int i = 0; i < 8; ++i) {
      buf[request_at + i] = static_cast<std::byte>((req_field >> (8 * i)) & 0xff);
    }
    auto queued = connection::append_result::full;
    std::size_t waiting = 0;  // bytes queued with no write in progress
    const std::size_t bound = owner->cfg_.max_outbound_bytes;
    if (peer_->st_ == peer::state::connecting) {
      if (peer_->pending_.size() + buf.size() <= bound) {
        peer_->pending_.insert(peer_->pending_.end(), buf.begin(), buf.end());
        ++peer_->pending_msgs_;
        queued = connection::append_result::ok;
      }
    } else {
      queued = peer_->primary_->append(buf, true, bound, &waiting);
    }
    if (queued == connection::append_result::closed) {
      // The connection failed a write and is being closed: the node is
      // about to be declared down.
      lock.unlock();
      owner->stats_.unreachable.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      return refuse(m, errc::node_down, "node " + peer_->name_ + " is unreachable",
                    send_status::dead_letter);
    }
    if (queued != connection::append_result::ok) {
      lock.unlock();
      owner->stats_.overloaded.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      return refuse(m, errc::overloaded, "the outbound queue to node " + peer_->name_ + " is full",
                    send_status::overloaded);
    }
    if (request) {
      core::actor_access::add_ref(sender);
      peer_->requests_.emplace(
          key, peer::request{actor_ref{core::ref_ptr<actor>(sender, false)}, m->request_id});
    }
    const bool up = peer_->st_ == peer::state::up;
    lock.unlock();
    owner->stats_.messages_out.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    // A handler's sends leave together when it returns; one that sends a lot
    // writes every flush_bytes, so the wire stays busy meanwhile.
    if (up && (waiting >= flush_bytes || !core::flush_after_handler(peer_.get()))) {
      peer_->flush();
    }
  } catch (const std::exception& e) {
    return refuse_reply(m, errc::invalid_argument, std::string("encoding failed: ") + e.what(),
                        send_status::dead_letter);
  }
  m->dispose();
  return send_status::ok;
}

// --- peer -----------------------------------------------------------------------

void peer::flush() noexcept {
  const auto owner = owner_.lock();  // the connection's node must outlive the flush
  if (!owner) return;
  std::shared_ptr<connection> c;
  {
    std::lock_guard lock(mu_);
    c = primary_;
  }
  if (c) c->flush();
}

// --- connection ------------------------------------------------------------------

connection::connection(node_impl& n, tcp::socket s, bool initiator)
    : node_(n), sock_(std::move(s)), initiator_(initiator), timer_(n.io_) {
  boost::system::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  remote_ = ec ? std::string("(unknown)") : endpoint_text(ep);
  sock_.set_option(tcp::no_delay(true), ec);
}

void connection::start() {
  // Before authentication a peer may send only handshake frames, which are
  // small: an unauthenticated connection cannot make this node buffer more.
  handshake_config hc{node_.cfg_.name, node_.cfg_.secret, protocol_version,
                      std::min<std::uint32_t>(node_.cfg_.max_frame_size, handshake_frame_limit)};
  hs_ = std::make_unique<handshake>(
      hc, initiator_ ? handshake::role::initiator : handshake::role::acceptor);
  started_ = last_recv_ = steady_clock::now();
  rbuf_.resize(64 * 1024);
  auto hello = hs_->start();
  append(hello, false, SIZE_MAX);
  flush();
  read();
  tick();
}

connection::append_result connection::append(std::span<const std::byte> frame, bool is_message,
                                             std::size_t bound, std::size_t* queued) {
  std::lock_guard lock(wmu_);
  if (shut_) return append_result::closed;
  if (out_.size() + inflight_.size() + frame.size() > bound) return append_result::full;
  out_.insert(out_.end(), frame.begin(), frame.end());
  if (is_message) ++out_msgs_;
  if (queued != nullptr) *queued = writing_ ? 0 : out_.size();
  return append_result::ok;
}

void connection::adopt(std::vector<std::byte>& frames, std::uint64_t messages) {
  std::lock_guard lock(wmu_);
  out_.insert(out_.end(), frames.begin(), frames.end());
  out_msgs_ += messages;
  frames.clear();
}

std::uint64_t connection::unsent_messages() {
  std::lock_guard lock(wmu_);
  return out_msgs_;
}

void connection::flush() noexcept {
  std::unique_lock lock(wmu_);
  if (writing_ || shut_ || out_.empty()) return;
  writing_ = true;
  for (int round = 0; round < 2; ++round) {
    inflight_.swap(out_);
    out_msgs_ = 0;
    lock.unlock();
    // The socket's write side is ours while writing_ is set, so this plain
    // non-blocking send cannot race an asynchronous write or a close.
    const ssize_t n = ::send(sock_.native_handle(), inflight_.data(), inflight_.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    node_.stats_.writes.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    lock.lock();
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // The reader sees the same failure and closes the connection.
      inflight_.clear();
      writing_ = false;
      shut_ = true;
      ::shutdown(sock_.native_handle(), SHUT_RDWR);
      return;
    }
    const auto sent = n < 0 ? std::size_t{0} : static_cast<std::size_t>(n);
    if (sent < inflight_.size()) {
      inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(sent));
      // What is left goes out from the I/O thread, before anything queued
      // later (which stays in out_ until then).
      lock.unlock();
      asio::post(node_.io_, [self = shared_from_this()] { self->write_async(); });
      return;
    }
    inflight_.clear();
    if (out_.empty() || shut_) break;
  }
  if (!out_.empty() && !shut_) {
    lock.unlock();
    asio::post(node_.io_, [self = shared_from_this()] {
      std::unique_lock l(self->wmu_);
      self->inflight_.swap(self->out_);
      self->out_msgs_ = 0;
      l.unlock();
      self->write_async();
    });
    return;
  }
  if (shut_) {
    // Posted while writing_ still holds the socket: the node's shutdown
    // waits for writing_ to clear, so its io_context is still there.
    asio::post(node_.io_, [self = shared_from_this()] { self->close("", false); });
  }
  writing_ = false;
}

// I/O thread; writing_ is set and inflight_ holds the bytes to send.
void connection::write_async() {
  asio::async_write(sock_, asio::buffer(inflight_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->node_.stats_.writes.fetch_add(1, std::memory_order_relaxed);
                      std::unique_lock lock(self->wmu_);
                      self->inflight_.clear();
                      if (ec || self->shut_ || self->out_.empty()) {
                        self->writing_ = false;
                        const bool close_now = ec || self->shut_;
                        lock.unlock();
                        if (close_now) {
                          self->close(ec ? "write failed: " + ec.message() : "", false);
                        }
                        return;
                      }
                      self->inflight_.swap(self->out_);
                      self->out_msgs_ = 0;
                      lock.unlock();
                      self->write_async();
                    });
}

void connection::read() {
  if (closed_) return;
  if (rlen_ == rbuf_.size()) rbuf_.resize(rbuf_.size() * 2);
  sock_.async_read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          if (self->closed_) return;
                          if (ec) {
                            self->close(ec == asio::error::eof ? "the peer closed the connection"
                                                               : "read failed: " + ec.message(),
                                        false);
                            return;
                          }
                          self->on_read(n);
                        });
}

void connection::fail(protocol_errc code, const std::string& text) {
  const protocol_error e{code, text};
  if (authenticated_) {
    node_.stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  } else {
    node_.stats_.handshakes_failed.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  }
  close("bad input: " + e.to_string(), true);
}

void connection::on_read(std::size_t n) {
  last_recv_ = steady_clock::now();
  if (!authenticated_) {
    auto reply = hs_->feed(std::span<const std::byte>(rbuf_.data() + rlen_, n));
    if (!reply.empty()) {
      append(reply, false, SIZE_MAX);
      flush();
    }
    switch (hs_->current()) {
      case handshake::state::in_progress:
        read();
        return;
      case handshake::state::failed: {
        node_.stats_.handshakes_failed.fetch_add(1,
                                                 std::memory_order_relaxed);  // relaxed: statistics
        const std::string why = "handshake failed: " + hs_->error().to_string();
        if (waiter_ != nullptr) {
          const errc code = hs_->error().code == protocol_errc::refused_by_peer ||
                                    hs_->error().code == protocol_errc::auth_failed ||
                                    hs_->error().code == protocol_errc::version_mismatch
                                ? errc::invalid_argument
                                : errc::node_down;
          waiter_->set_value(error{code, why});
          waiter_.reset();
        }
        // The error frame (if any) is queued; close after it is written.
        close(why, true);
        return;
      }
      case handshake::state::done:
        break;
    }
    authenticated_ = true;
    auto rest = hs_->take_unread();
    rlen_ = 0;
    if (rest.size() > rbuf_.size()) rbuf_.resize(rest.size());
    if (!rest.empty()) std::memcpy(rbuf_.data(), rest.data(), rest.size());
    n = rest.size();
    // node_info: incarnation, advertised host and port.
    std::vector<std::byte> info;
    begin_frame(info, frame_kind::node_info);
    writer w{info};
    w.fixed(node_.incarnation_);
    wire_traits<std::string>::encode(w, node_.cfg_.host);
    w.fixed(node_.port_);
    end_frame(info, 0);
    append(info, false, SIZE_MAX);
    flush();
  }
  rlen_ += n;
  std::size_t pos = 0;
  const std::uint32_t max = node_.cfg_.max_frame_size;
  while (!closed_ && rlen_ - pos >= 4) {
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(rbuf_[pos + i])) << (8 * i);
    }
    if (len == 0) return fail(protocol_errc::empty_frame, "frame length 0");
    if (len > max) {
      return fail(protocol_errc::frame_too_large,
                  "frame of " + std::to_string(len) + " bytes, maximum " + std::to_string(max));
    }
    if (rlen_ - pos - 4 < len) {
      // Room for the whole frame, allocated only now that its length passed
      // the check.
      if (std::size_t{len} + 4 > rbuf_.size()) rbuf_.resize(std::size_t{len} + 4);
      break;
    }
    const auto kind = static_cast<frame_kind>(rbuf_[pos + 4]);
    if (!handle_frame(kind, std::span<const std::byte>(rbuf_.data() + pos + 5, len - 1))) return;
    pos += 4 + std::size_t{len};
  }
  if (closed_) return;
  if (pos > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
    rlen_ -= pos;
  }
  read();
}

bool connection::handle_frame(frame_kind kind, std::span<const std::byte> payload) {
  if (!bound_ && kind != frame_kind::node_info) {
    fail(protocol_errc::unexpected_frame, "expected node_info after the handshake");
    return false;
  }
  switch (kind) {
    case frame_kind::node_info: {
      if (bound_) {
        fail(protocol_errc::unexpected_frame, "a second node_info");
        return false;
      }
      reader r{payload, decode_limits{.max_elements = 1024}};
      std::uint64_t inc = 0;
      std::string host;
      std::uint16_t port = 0;
      if (!r.fixed(inc) || !wire_traits<std::string>::decode(r, host) || !r.fixed(port) ||
          r.remaining() != 0) {
        fail(protocol_errc::malformed_payload, "node_info");
        return false;
      }
      if (hs_->peer_name() == node_.cfg_.name) {
        fail(protocol_errc::unexpected_frame, "the peer has this node's own name");
        return false;
      }
      bound_ = true;
      node_.bind(shared_from_this(), hs_->peer_name(), inc, std::move(host), port);
      return !closed_;
    }
    case frame_kind::message:
      return handle_message(payload);
    case frame_kind::watch: {
      reader r{payload, decode_limits{}};
      std::uint64_t id = 0;
      if (!r.varint(id) || r.remaining() != 0) {
        fail(protocol_errc::malformed_payload, "watch");
        return false;
      }
      node_.add_watch(*peer_, id);
      return true;
    }
    case frame_kind::link:
    case frame_kind::unlink: {
      reader r{payload, decode_limits{}};
      std::uint64_t target = 0;
      std::uint64_t linker = 0;
      if (!r.varint(target) || !r.varint(linker) || r.remaining() != 0 || linker == 0) {
        fail(protocol_errc::malformed_payload, kind == frame_kind::link ? "link" : "unlink");
        return false;
      }
      // An id that is not exported (any more) is answered by the `watch`
      // frame that precedes a link: its `down` stops the linker's proxy.
      actor_ref local = node_.find_exported(target);
      if (!local) return true;
      actor_ref remote{
          core::ref_ptr<actor>(node_.proxy_for(*peer_, linker, remote_proxy::role::actor), false)};
      if (kind == frame_kind::link) {
        if (!core::link_on_behalf(core::actor_access::get(local), core::actor_access::get(remote),
                                  node_.cfg_.max_links_per_actor)) {
          // Refused, and the linker is told: it is not linked, and it must
          // not believe it is. Its node delivers this like the target's exit.
          const std::string why = "actor " + std::to_string(target) + " on node " +
                                  node_.cfg_.name + " has max_links_per_actor (" +
                                  std::to_string(node_.cfg_.max_links_per_actor) + ") links";
          node_.log("refused a link from node " + peer_->name_ + ": " + why);
          actor* from = core::actor_access::get(local);
          core::actor_access::add_ref(from);
          core::actor_access::enqueue(
              core::actor_access::get(remote),
              core::make_message<exit_msg>(
                  core::msg_kind::exit_signal, from, 0,
                  exit_msg{local, exit_reason::error("link refused: " + why)}));
        }
      } else {
        core::unlink_on_behalf(core::actor_access::get(local), core::actor_access::get(remote));
      }
      return true;
    }
    case frame_kind::down: {
      reader r{payload, decode_limits{.max_elements = 1u << 16}};
      std::uint64_t id = 0;
      exit_reason reason;
      if (!r.varint(id) || !wire_decode(r, reason) || r.remaining() != 0) {
        fail(protocol_errc::malformed_payload, "down");
        return false;
      }
      core::ref_ptr<remote_proxy> p;
      {
        std::lock_guard lock(peer_->mu_);
        auto it = peer_->proxies_.find(id);
        if (it != peer_->proxies_.end() && core::actor_access::try_add_ref(it->second)) {
          p = core::ref_ptr<remote_proxy>(it->second, false);
          peer_->proxies_.erase(it);  // a later handle to this id is a fresh, stopped proxy
        }
      }
      if (p) p->kill(reason);
      return true;
    }
    case frame_kind::heartbeat:
      return true;
    case frame_kind::leaving:
      peer_left_ = true;
      return true;
    case frame_kind::hello:
    case frame_kind::auth:
    case frame_kind::error:
      fail(protocol_errc::unexpected_frame, "a handshake frame after the handshake");
      return false;
  }
  fail(protocol_errc::unknown_frame_kind,
       "frame kind " + std::to_string(static_cast<unsigned>(kind)));
  return false;
}

bool connection::handle_message(std::span<const std::byte> payload) {
  using core::msg_kind;
  reader r{payload, decode_limits{}, &node_};
  auto header = read_message_header(r);
  if (!header) {
    fail(header.err().code, header.err().text);
    return false;
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
      char hex[24];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(type));
      fail(protocol_errc::malformed_payload,
           std::string("unknown message type id ") + hex +
               " (not declared with LIBACTOR_WIRE_TYPE or net::register_message on this node)");
      return false;
    }
    codecs_.emplace(type, codec);
  }
  actor* from = nullptr;
  if (sender != 0) {
    if (sender != last_sender_id_ ||
        static_cast<remote_proxy*>(core::actor_access::get(last_sender_))->dead()) {
      last_sender_ = actor_ref{
          core::ref_ptr<actor>(node_.proxy_for(*peer_, sender, remote_proxy::role::actor), false)};
      last_sender_id_ = sender;
    }
    from = core::actor_access::get(last_sender_);
    core::actor_access::add_ref(from);
  } else if (kind == msg_kind::user && request != 0) {
    from = node_.proxy_for(*peer_, 0, remote_proxy::role::anonymous);
  }
  core::message* m = nullptr;
  try {
    m = codec->decode(r, kind, from, request);  // takes over `from`, also when it throws
  } catch (const std::exception& e) {
    fail(protocol_errc::malformed_payload, std::string("decoding failed: ") + e.what());
    return false;
  }
  if (m == nullptr) {
    fail(protocol_errc::malformed_payload,
         std::string("payload of ") + std::string(codec->wire_name) + ": " +
             to_string(r.error().code) + " at byte " + std::to_string(r.error().offset));
    return false;
  }
  if (r.remaining() != 0) {
    m->dispose();
    fail(protocol_errc::malformed_payload,
         std::string("trailing bytes after ") + std::string(codec->wire_name));
    return false;
  }
  // The runtime reads these kinds' payloads as a fixed type: anything else
  // from a peer is malformed, not something to reinterpret.
  // An exit_msg is the runtime's notice of a linked actor's exit: as a
  // plain message from a peer it would be a forged notice.
  if (kind != msg_kind::exit_signal && m->type == core::type_of<exit_msg>()) {
    m->dispose();
    fail(protocol_errc::malformed_payload, "an exit_msg that is not an exit signal");
    return false;
  }
  const libactor::detail::type_id required = kind == msg_kind::error_reply ? core::type_of<error>()
                                             : kind == msg_kind::exit_signal
                                                 ? core::type_of<exit_msg>()
                                             : kind == msg_kind::kill ? core::type_of<exit_reason>()
                                                                      : nullptr;
  if (required != nullptr && m->type != required) {
    m->dispose();
    fail(protocol_errc::malformed_payload,
         std::string("message kind ") + std::to_string(static_cast<unsigned>(kind)) +
             " with a payload of " + std::string(codec->wire_name));
    return false;
  }
  node_.stats_.messages_in.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  if (kind == msg_kind::response || kind == msg_kind::error_reply) {
    std::optional<peer::request> req;
    {
      std::lock_guard lock(peer_->mu_);
      auto it = peer_->requests_.find(request);
      if (it != peer_->requests_.end()) {
        req = std::move(it->second);
        peer_->requests_.erase(it);
      }
    }
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
    if (receiver != 0) {
      if (auto target = node_.find_exported(receiver)) node_.sys_.stop(target, reason);
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
                       "actor " + std::to_string(receiver) + " is not on node " + node_.cfg_.name,
                       send_status::dead_letter);
    return true;
  }
  core::actor_access::enqueue(core::actor_access::get(last_receiver_), m);
  return true;
}

void connection::tick() {
  timer_.expires_after(node_.cfg_.heartbeat_interval);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    const auto now = steady_clock::now();
    if (!self->bound_) {
      if (now - self->started_ > self->node_.cfg_.handshake_timeout) {
        self->node_.stats_.handshakes_failed.fetch_add(1, std::memory_order_relaxed);
        self->close("handshake timed out", true);
        return;
      }
    } else {
      if (now - self->last_recv_ > self->node_.cfg_.heartbeat_timeout) {
        self->close("no frame within the heartbeat timeout", true);
        return;
      }
      std::vector<std::byte> hb;
      begin_frame(hb, frame_kind::heartbeat);
      end_frame(hb, 0);
      self->append(hb, false, SIZE_MAX);
      self->flush();
    }
    self->tick();
  });
}

void connection::close(const std::string& why, bool log) {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  const bool was_bound = bound_;
  {
    std::lock_guard lock(wmu_);
    if (!shut_) {
      shut_ = true;
      // Give a queued error frame (failed handshake) or goodbye a chance;
      // nothing else is written after close.
      if (!writing_ && !out_.empty() && (!authenticated_ || flush_on_close_)) {
        [[maybe_unused]] auto n =
            ::send(sock_.native_handle(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      }
    }
    ::shutdown(sock_.native_handle(), SHUT_RDWR);
  }
  if (log && !why.empty()) {
    node_.log("closing connection with " + remote_ +
              (hs_ && !hs_->peer_name().empty() ? " (node " + hs_->peer_name() + ")" : "") + ": " +
              why);
  }
  if (waiter_ != nullptr) {
    waiter_->set_value(error{errc::node_down, why.empty() ? "connection closed" : why});
    waiter_.reset();
  }
  if (was_bound && peer_ && peer_left_) {
    node_.lost(peer_, shared_from_this(), "node " + peer_->name_ + " shut down", true);
  } else if (was_bound && peer_) {
    node_.lost(peer_, shared_from_this(), why);
  } else if (target_) {
    node_.lost(target_, nullptr, why);  // a dial that never got through
  }
  last_receiver_ = {};
  last_sender_ = {};
  release_socket();
}

void connection::say_goodbye() {
  if (!bound_ || closed_) return;
  std::vector<std::byte> bye;
  begin_frame(bye, frame_kind::leaving);
  end_frame(bye, 0);
  append(bye, false, SIZE_MAX);
  std::lock_guard lock(wmu_);
  flush_on_close_ = true;
}

void connection::release_socket() {
  std::unique_lock lock(wmu_);
  if (writing_) {
    // A worker's send holds the descriptor; try again after it returned.
    lock.unlock();
    asio::post(node_.io_, [self = shared_from_this()] { self->release_socket(); });
    return;
  }
  lock.unlock();
  boost::system::error_code ec;
  sock_.close(ec);
  node_.forget(this);
}

// --- node_impl ---------------------------------------------------------------------

namespace {

struct export_notice {
  actor_ref ref;
};

thread_local std::uint64_t t_exported_node = 0;  // incarnation of the node below
thread_local std::uint64_t t_exported_id = 0;    // an actor that node exported

void check_config(const node_config& cfg) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("libactor.net: node_config." + what);
  };
  if (cfg.name.empty() || cfg.name.size() > 255) bad("name must be 1 to 255 bytes");
  if (cfg.secret.empty()) bad("secret must not be empty");
  boost::system::error_code ec;
  asio::ip::make_address(cfg.host, ec);
  if (ec) bad("host must be a numeric IPv4 or IPv6 address, got \"" + cfg.host + "\"");
  if (cfg.max_frame_size < 256) bad("max_frame_size must be at least 256");
  if (cfg.max_outbound_bytes < cfg.max_frame_size) {
    bad("max_outbound_bytes must be at least max_frame_size");
  }
  if (cfg.heartbeat_interval <= duration::zero()) bad("heartbeat_interval must be positive");
  if (cfg.heartbeat_timeout <= cfg.heartbeat_interval) {
    bad("heartbeat_timeout must exceed heartbeat_interval");
  }
  if (cfg.handshake_timeout <= duration::zero()) bad("handshake_timeout must be positive");
  if (cfg.reconnect_min <= duration::zero() || cfg.reconnect_max < cfg.reconnect_min) {
    bad("reconnect_min must be positive and at most reconnect_max");
  }
}

}  // namespace

node_impl::node_impl(actor_system& sys, node_config cfg)
    : sys_(sys),
      cfg_((check_config(cfg), std::move(cfg))),
      incarnation_(random_u64()),
      acceptor_(io_) {
  [[maybe_unused]] static const bool builtins = register_builtin_messages();
  drain_ = core::ref_ptr<drain>(new drain(sys), false);
  if (cfg_.listen) {
    const tcp::endpoint ep(asio::ip::make_address(cfg_.host), cfg_.port);
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::system_error(ec.value(), std::system_category(),
                              "libactor.net: cannot listen on " + endpoint_text(ep));
    }
    port_ = acceptor_.local_endpoint().port();
  }
}

node_impl::~node_impl() = default;

void node_impl::start() {
  auto owner = shared_from_this();
  // The factory holds the node weakly: a function actor keeps its factory
  // as long as the actor object lives, and the node holds the actor
  // (service_). The behavior's handlers hold it strongly, until the service
  // stops.
  service_ = sys_.spawn([weak = std::weak_ptr<node_impl>(owner)](actor& me) -> behavior {
    auto self = weak.lock();
    if (!self) return {};
    return {
        [&me](export_notice& n) { me.monitor(n.ref); },
        [self](down_msg& d) { self->local_down(d.source.id(), d.reason); },
        [self](lookup_request& q) -> actor_ref { return self->sys_.lookup(q.name); },
        [self](spawn_request& q) -> spawn_reply {
          node::factory f;
          {
            std::lock_guard lock(self->fac_mu_);
            auto it = self->factories_.find(q.type);
            if (it != self->factories_.end()) f = it->second;
          }
          if (!f)
            return spawn_reply{{}, "no actor type \"" + q.type + "\" on node " + self->cfg_.name};
          try {
            auto r = f(self->sys_,
                       std::span<const std::byte>(reinterpret_cast<const std::byte*>(q.arg.data()),
                                                  q.arg.size()),
                       self.get());
            if (!r) return spawn_reply{{}, r.err().to_string()};
            return spawn_reply{*r, {}};
          } catch (const std::exception& e) {
            return spawn_reply{{}, std::string("spawning failed: ") + e.what()};
          }
        },
    };
  });
  work_.emplace(io_.get_executor());
  if (cfg_.listen) {
    struct acceptor_loop {
      std::shared_ptr<node_impl> n;
      void operator()() const {
        n->acceptor_.async_accept([n = n](boost::system::error_code ec, tcp::socket s) {
          if (ec) {
            if (ec != asio::error::operation_aborted &&
                !n->stopping_.load(std::memory_order_acquire)) {
              // Out of descriptors, most likely: try again in a while, not
              // at once (that would spin and flood the log).
              n->log("accept failed: " + ec.message() + "; retrying in 100 ms");
              auto t = std::make_shared<asio::steady_timer>(n->io_, std::chrono::milliseconds(100));
              t->async_wait([n, t](boost::system::error_code e) {
                if (!e && !n->stopping_.load(std::memory_order_acquire)) acceptor_loop{n}();
              });
            }
            return;
          }
          n->stats_.accepted.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
          auto c = std::make_shared<connection>(*n, std::move(s), false);
          n->conns_.push_back(c);
          c->start();
          acceptor_loop{n}();
        });
      }
    };
    asio::post(io_, acceptor_loop{owner});
  }
  // The system's workers run the I/O when they are idle (driver.hpp). The
  // system takes one driver: a second node on the same system runs its I/O
  // on a thread of its own.
  driven_ = core::install_driver(sys_, &driver_);
  if (!driven_) thread_ = std::thread([this] { io_.run(); });
}

void node_impl::shutdown() {
  // acq_rel: later loads that see the flag also see the state before it.
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  // From here this thread runs the I/O (after the workers let go of it).
  if (driven_) core::remove_driver(sys_, &driver_);
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    auto all = conns_;
    for (auto& c : all) c->say_goodbye();
    for (auto& c : all) c->close("this node is shutting down", false);
    for (auto& t : redials_) t->cancel();
    work_.reset();
  });
  if (thread_.joinable()) {
    thread_.join();
  } else {
    io_.run();
  }
  io_.restart();
  io_.poll();  // handlers posted by workers after the loop ended (they only release)
  std::vector<core::ref_ptr<peer>> all;
  {
    std::lock_guard lock(peers_mu_);
    for (auto& [name, p] : peers_) all.push_back(p);
    peers_.clear();
  }
  for (auto& p : all) {
    lost(p, nullptr, "this node shut down");
    std::vector<actor_ref> watchers;
    {
      std::lock_guard lock(p->mu_);
      p->node_ = nullptr;
      // Handles held by users keep the peer; what it holds must not keep
      // them (a node watcher whose behavior holds a proxy is a cycle).
      watchers.swap(p->watchers_);
    }
  }
  // service_ itself stays: sends racing with this shutdown may still read it.
  sys_.stop(service_, exit_reason::normal());
  std::lock_guard lock(exp_mu_);
  exported_.clear();
}

void node_impl::log(const std::string& line) {
  const std::string text = "node " + cfg_.name + ": " + line;
  if (cfg_.log) {
    try {
      cfg_.log(text);
    } catch (...) {
    }
  } else {
    core::runtime_log(sys_, log_level::warning, log_category::network, text);
  }
}

core::ref_ptr<peer> node_impl::find_peer(std::string_view name) {
  std::lock_guard lock(peers_mu_);
  auto it = peers_.find(std::string(name));
  return it == peers_.end() ? core::ref_ptr<peer>{} : it->second;
}

core::ref_ptr<peer> node_impl::get_peer(const std::string& name, const std::string* host,
                                        std::uint16_t port) {
  core::ref_ptr<peer> p;
  std::optional<tcp::endpoint> ep;
  {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(name);
    if (it != peers_.end()) return it->second;
    p = core::ref_ptr<peer>(new peer(this, weak_from_this(), name), false);
    p->backoff_ = cfg_.reconnect_min;
    peers_.emplace(name, p);
    boost::system::error_code ec;
    if (host != nullptr) {
      auto addr = asio::ip::make_address(*host, ec);
      if (!ec && port != 0) ep = tcp::endpoint(addr, port);
    }
    std::lock_guard plock(p->mu_);
    if (ep) {
      p->dial_ = ep;
    } else {
      p->st_ = peer::state::down;  // known by name only: it has to dial us
    }
  }
  if (ep && !stopping_.load(std::memory_order_acquire)) dial(p, *ep, nullptr);
  return p;
}

actor* node_impl::proxy_for(peer& p, std::uint64_t id, remote_proxy::role r) {
  remote_proxy* fresh = nullptr;
  {
    std::lock_guard lock(p.mu_);
    if (p.st_ != peer::state::down && p.node_ != nullptr) {
      remote_proxy** slot = nullptr;
      if (r == remote_proxy::role::actor) {
        auto it = p.proxies_.find(id);
        if (it != p.proxies_.end() && core::actor_access::try_add_ref(it->second))
          return it->second;
        fresh = new remote_proxy(sys_, core::ref_ptr<peer>(&p), id, r);
        p.proxies_[id] = fresh;
      } else {
        slot = r == remote_proxy::role::service ? &p.service_ : &p.anonymous_;
        if (*slot != nullptr && core::actor_access::try_add_ref(*slot)) return *slot;
        fresh = new remote_proxy(sys_, core::ref_ptr<peer>(&p), id, r);
        *slot = fresh;
      }
      return fresh;
    }
  }
  // The node is down: a stopped proxy, kept out of the table so that it is
  // never handed out again once the node is back.
  fresh = new remote_proxy(sys_, core::ref_ptr<peer>(&p), id, r);
  fresh->kill(exit_reason{exit_code::node_down, "node " + p.name_ + " is unreachable"});
  return fresh;
}

std::uint64_t node_impl::export_local(actor* a) {
  const std::uint64_t id = a->id();
  if (t_exported_node == incarnation_ && t_exported_id == id) return id;
  bool fresh = false;
  {
    std::lock_guard lock(exp_mu_);
    auto [it, inserted] = exported_.try_emplace(id);
    if (inserted) {
      it->second.ref = actor_ref{core::ref_ptr<actor>(a)};
      fresh = true;
    }
  }
  // The service monitors what is exported, to drop it (and tell watchers)
  // when it stops.
  if (fresh && service_) service_.send(export_notice{actor_ref{core::ref_ptr<actor>(a)}});
  t_exported_node = incarnation_;
  t_exported_id = id;
  return id;
}

actor_ref node_impl::find_exported(std::uint64_t id) {
  std::lock_guard lock(exp_mu_);
  auto it = exported_.find(id);
  return it == exported_.end() ? actor_ref{} : it->second.ref;
}

void node_impl::encode_handle(writer& w, const actor_ref& h) {
  actor* a = core::actor_access::get(h);
  if (a == nullptr) {
    w.fixed(std::uint8_t{0});
    return;
  }
  if (core::actor_access::is_proxy(a)) {
    auto* rp = dynamic_cast<remote_proxy*>(a);
    if (rp == nullptr || rp->role_ != remote_proxy::role::actor) {
      // Reply sinks and service handles are not addressable from elsewhere.
      w.fixed(std::uint8_t{0});
      return;
    }
    std::string host;
    std::uint16_t port = 0;
    {
      std::lock_guard lock(rp->peer_->mu_);
      host = rp->peer_->adv_host_;
      port = rp->peer_->adv_port_;
    }
    w.fixed(std::uint8_t{1});
    wire_traits<std::string>::encode(w, rp->peer_->name_);
    wire_traits<std::string>::encode(w, host);
    w.fixed(port);
    w.varint(rp->remote_id_);
    return;
  }
  const std::uint64_t id = export_local(a);
  w.fixed(std::uint8_t{1});
  wire_traits<std::string>::encode(w, cfg_.name);
  wire_traits<std::string>::encode(w, cfg_.host);
  w.fixed(port_);
  w.varint(id);
}

bool node_impl::decode_handle(reader& r, actor_ref& h) {
  std::optional<handle_fields> f;
  if (!read_handle(r, f)) return false;
  if (!f) {
    h = {};
    return true;
  }
  if (f->node == cfg_.name) {
    h = find_exported(f->id);  // empty when the actor is gone: sends are dead letters
    return true;
  }
  auto p = get_peer(f->node, &f->host, f->port);
  h = actor_ref{core::ref_ptr<actor>(proxy_for(*p, f->id, remote_proxy::role::actor), false)};
  return true;
}

void node_impl::dial(core::ref_ptr<peer> p, tcp::endpoint ep, waiter w) {
  stats_.dialled.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  auto sock = std::make_shared<tcp::socket>(io_);
  asio::post(io_, [this, self = shared_from_this(), p, ep, w, sock] {
    if (stopping_.load(std::memory_order_acquire)) {
      if (w) w->set_value(error{errc::shutting_down, "the node is shutting down"});
      return;
    }
    sock->async_connect(ep, [this, self, p, ep, w, sock](boost::system::error_code ec) {
      if (ec) {
        const std::string why = "connecting to " + endpoint_text(ep) + " failed: " + ec.message();
        if (w) w->set_value(error{errc::node_down, why});
        if (p) lost(p, nullptr, why);
        return;
      }
      auto c = std::make_shared<connection>(*this, std::move(*sock), true);
      c->waiter_ = w;
      c->dialled_ = ep;
      c->target_ = p;
      conns_.push_back(c);
      c->start();
    });
  });
}

void node_impl::bind(const std::shared_ptr<connection>& c, const std::string& name,
                     std::uint64_t inc, std::string host, std::uint16_t port) {
  auto p = get_peer(name, nullptr, 0);
  c->peer_ = p;
  c->target_ = {};
  std::shared_ptr<connection> old;
  {
    std::lock_guard lock(p->mu_);
    if (p->primary_ && p->incarnation_ == inc) {
      // A second connection to a live peer (both dialled at once): it stays
      // open for reading; sends keep using the first, which keeps their order.
      if (c->waiter_) {
        c->waiter_->set_value(name);
        c->waiter_.reset();
      }
      if (c->dialled_ && !p->dial_) p->dial_ = c->dialled_;
      return;
    }
    old = p->primary_;
  }
  if (old) old->close("node " + name + " restarted (new incarnation)", true);
  std::vector<actor_ref> watchers;
  {
    std::lock_guard lock(p->mu_);
    p->primary_ = c;
    p->incarnation_ = inc;
    p->adv_host_ = std::move(host);
    p->adv_port_ = port;
    p->st_ = peer::state::up;
    p->backoff_ = cfg_.reconnect_min;
    if (c->dialled_) p->dial_ = c->dialled_;
    c->adopt(p->pending_, p->pending_msgs_);
    p->pending_msgs_ = 0;
    watchers = p->watchers_;
  }
  stats_.peers_up.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  {
    std::lock_guard lock(peers_mu_);  // pairs with the wait in node::await_peer
  }
  peer_up_.notify_all();
  c->flush();
  if (c->waiter_) {
    c->waiter_->set_value(name);
    c->waiter_.reset();
  }
  for (auto& w : watchers) w.send(node_up_msg{name});
}

void node_impl::lost(const core::ref_ptr<peer>& p, const std::shared_ptr<connection>& c,
                     const std::string& why, bool graceful) {
  std::vector<core::ref_ptr<remote_proxy>> proxies;
  std::vector<peer::request> requests;
  std::vector<actor_ref> watchers;
  std::uint64_t unsent = 0;
  {
    std::lock_guard lock(p->mu_);
    if (c ? p->primary_ != c : p->st_ == peer::state::up) return;
    if (p->st_ == peer::state::down) {
      // Already down (a redial failed): only the next attempt is due.
    } else {
      p->st_ = peer::state::down;
      p->primary_.reset();
      for (auto& [id, px] : p->proxies_) {
        if (core::actor_access::try_add_ref(px)) proxies.emplace_back(px, false);
      }
      p->proxies_.clear();
      for (remote_proxy** slot : {&p->service_, &p->anonymous_}) {
        if (*slot != nullptr && core::actor_access::try_add_ref(*slot))
          proxies.emplace_back(*slot, false);
        *slot = nullptr;
      }
      for (auto& [key, req] : p->requests_) requests.push_back(std::move(req));
      p->requests_.clear();
      unsent = p->pending_msgs_ + (c ? c->unsent_messages() : 0);
      p->pending_.clear();
      p->pending_msgs_ = 0;
      watchers = p->watchers_;
      if (c) stats_.peers_up.fetch_sub(1, std::memory_order_relaxed);  // relaxed: statistics
      stats_.node_downs.fetch_add(1, std::memory_order_relaxed);       // relaxed: statistics
      watchers.emplace_back();  // marks "tear down" below, even with no watcher
    }
  }
  if (!watchers.empty()) {
    watchers.pop_back();
    // Everything that stood for the peer learns it is gone, outside the lock.
    const exit_reason reason{exit_code::node_down, "node " + p->name_ + " unreachable: " + why};
    if (unsent != 0) {
      drain_->lost(unsent);
      stats_.unreachable.fetch_add(unsent, std::memory_order_relaxed);  // relaxed: statistics
    }
    for (auto& px : proxies) px->kill(reason);
    proxies.clear();
    for (auto& rq : requests) {
      core::actor_access::enqueue(
          core::actor_access::get(rq.asker),
          core::make_message<error>(core::msg_kind::error_reply, nullptr, rq.id,
                                    error{errc::node_down, reason.text()}));
    }
    for (auto& w : watchers) w.send(node_down_msg{p->name_, why});
    if (!stopping_.load(std::memory_order_acquire) && !graceful)
      log("node " + p->name_ + " is down: " + why);
    // Other connections to the peer (both dialled at once) go too: what
    // arrives on them would name actors of a peer this node counts as down.
    if (c) {
      auto others = conns_;
      for (auto& o : others) {
        if (o != c && o->peer_.get() == p.get()) o->close("the connection in use was lost", false);
      }
    }
  }
  schedule_redial(p);
}

void node_impl::schedule_redial(const core::ref_ptr<peer>& p) {
  duration delay{};
  tcp::endpoint ep;
  {
    std::lock_guard lock(p->mu_);
    if (!p->dial_ || p->redial_scheduled_ || stopping_.load(std::memory_order_acquire) ||
        p->st_ == peer::state::up) {
      return;
    }
    p->redial_scheduled_ = true;
    delay = p->backoff_;
    p->backoff_ = std::min(p->backoff_ * 2, cfg_.reconnect_max);
    ep = *p->dial_;
  }
  auto t = std::make_shared<asio::steady_timer>(io_, delay);
  asio::post(io_, [this, t] {
    if (stopping_.load(std::memory_order_acquire)) {
      t->cancel();
    } else {
      redials_.push_back(t);
    }
  });
  t->async_wait([this, self = shared_from_this(), p, ep, t](boost::system::error_code ec) {
    std::erase(redials_, t);
    {
      std::lock_guard lock(p->mu_);
      p->redial_scheduled_ = false;
      if (ec || stopping_.load(std::memory_order_acquire) || p->st_ == peer::state::up) return;
    }
    dial(p, ep, nullptr);
  });
}

void node_impl::send_control(peer& p, frame_kind kind, const std::vector<std::byte>& payload) {
  // Caller holds p.mu_.
  std::vector<std::byte> f;
  begin_frame(f, kind);
  f.insert(f.end(), payload.begin(), payload.end());
  end_frame(f, 0);
  if (p.st_ == peer::state::up && p.primary_) {
    p.primary_->append(f, false, SIZE_MAX);
    p.primary_->flush();
  } else if (p.st_ == peer::state::connecting) {
    p.pending_.insert(p.pending_.end(), f.begin(), f.end());
  }
}

void node_impl::add_watch(peer& p, std::uint64_t id) {
  if (id == 0) return;  // the service stops only with the node
  bool known = false;
  {
    std::lock_guard lock(exp_mu_);
    auto it = exported_.find(id);
    if (it != exported_.end()) {
      known = true;
      auto& ws = it->second.watchers;
      bool have = false;
      for (auto& w : ws) have = have || w.get() == &p;
      if (!have) ws.emplace_back(&p);
    }
  }
  if (!known) {
    std::vector<std::byte> payload;
    writer w{payload};
    w.varint(id);
    wire_encode(w, exit_reason::error("no such actor on node " + cfg_.name));
    std::lock_guard lock(p.mu_);
    send_control(p, frame_kind::down, payload);
  }
}

void node_impl::local_down(std::uint64_t id, const exit_reason& reason) {
  std::vector<core::ref_ptr<peer>> watchers;
  {
    std::lock_guard lock(exp_mu_);
    auto it = exported_.find(id);
    if (it == exported_.end()) return;
    watchers = std::move(it->second.watchers);
    exported_.erase(it);
  }
  if (watchers.empty()) return;
  std::vector<std::byte> payload;
  writer w{payload};
  w.varint(id);
  wire_encode(w, reason);
  for (auto& p : watchers) {
    std::lock_guard lock(p->mu_);
    if (p->node_ != nullptr) send_control(*p, frame_kind::down, payload);
  }
}

void node_impl::forget(connection* c) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == c) {
      conns_.erase(it);
      return;
    }
  }
}

}  // namespace detail

// --- node ---------------------------------------------------------------------------

node::node(actor_system& sys, node_config cfg)
    : impl_((sys.deterministic() ? throw std::invalid_argument(
                                       "libactor.net: a node needs an actor system with worker "
                                       "threads, not one in deterministic mode")
                                 : void(),
             std::make_shared<detail::node_impl>(sys, std::move(cfg)))) {
  impl_->start();
  libactor::detail::attach_layer(sys);
}

node::~node() {
  impl_->shutdown();
  libactor::detail::detach_layer(impl_->sys_);
}

const std::string& node::name() const noexcept {
  return impl_->cfg_.name;
}

std::uint16_t node::port() const noexcept {
  return impl_->port_;
}

handle_context* node::context() const noexcept {
  return impl_.get();
}

expected<std::string> node::connect(const std::string& host, std::uint16_t port, duration timeout) {
  boost::system::error_code ec;
  auto addr = detail::asio::ip::make_address(host, ec);
  if (ec) return error{errc::invalid_argument, "not a numeric IP address: " + host};
  const detail::tcp::endpoint ep(addr, port);
  const auto deadline = steady_clock::now() + timeout;
  duration backoff = impl_->cfg_.reconnect_min;
  error last{errc::timeout, "no attempt"};
  while (true) {
    auto w = std::make_shared<std::promise<expected<std::string>>>();
    auto f = w->get_future();
    impl_->dial({}, ep, w);
    if (f.wait_until(deadline) != std::future_status::ready) {
      return error{errc::timeout, "no handshake with " + host + ":" + std::to_string(port) +
                                      " before the timeout (last: " + last.to_string() + ")"};
    }
    auto r = f.get();
    if (r) return r;
    last = r.err();
    if (last.code == errc::invalid_argument || last.code == errc::shutting_down) return last;
    if (steady_clock::now() + backoff >= deadline) {
      return error{errc::timeout, "could not connect to " + host + ":" + std::to_string(port) +
                                      " before the timeout: " + last.to_string()};
    }
    std::this_thread::sleep_for(backoff);  // retry delay, not synchronization
    backoff = std::min(backoff * 2, impl_->cfg_.reconnect_max);
  }
}

expected<void> node::await_peer(std::string_view peer, duration timeout) {
  auto& n = *impl_;
  const std::string name(peer);
  auto is_up = [&] {
    auto it = n.peers_.find(name);
    if (it == n.peers_.end()) return false;
    std::lock_guard plock(it->second->mu_);
    return it->second->st_ == detail::peer::state::up;
  };
  std::unique_lock lock(n.peers_mu_);
  if (!n.peer_up_.wait_for(lock, timeout, is_up)) {
    return error{errc::timeout, "node " + name + " did not connect within the timeout"};
  }
  return {};
}

actor_ref node::service(std::string_view peer) {
  auto p = impl_->find_peer(peer);
  if (!p) return {};
  return actor_ref{detail::core::ref_ptr<actor>(
      impl_->proxy_for(*p, 0, detail::remote_proxy::role::service), false)};
}

expected<actor_ref> node::lookup(std::string_view peer, std::string_view actor_name,
                                 duration timeout) {
  auto svc = service(peer);
  if (!svc) return error{errc::invalid_argument, "unknown node " + std::string(peer)};
  auto r = svc.ask<actor_ref>(lookup_request{std::string(actor_name)}, timeout).get();
  if (!r) return r.err();
  if (!*r) {
    return error{errc::invalid_argument,
                 "no actor named \"" + std::string(actor_name) + "\" on node " + std::string(peer)};
  }
  return *r;
}

expected<actor_ref> node::spawn_encoded(std::string_view peer, std::string_view type_name,
                                        std::vector<std::byte> arg, duration timeout) {
  auto svc = service(peer);
  if (!svc) return error{errc::invalid_argument, "unknown node " + std::string(peer)};
  spawn_request q{std::string(type_name), {}};
  q.arg.resize(arg.size());
  if (!arg.empty()) std::memcpy(q.arg.data(), arg.data(), arg.size());
  auto r = svc.ask<spawn_reply>(std::move(q), timeout).get();
  if (!r) return r.err();
  if (!r->error.empty()) return error{errc::invalid_argument, r->error};
  return r->ref;
}

void node::add_factory(std::string type_name, factory f) {
  std::lock_guard lock(impl_->fac_mu_);
  impl_->factories_[std::move(type_name)] = std::move(f);
}

void node::monitor_node(std::string_view peer, const actor_ref& watcher) {
  auto p = impl_->get_peer(std::string(peer), nullptr, 0);
  bool down = false;
  {
    std::lock_guard lock(p->mu_);
    p->watchers_.push_back(watcher);
    down = p->st_ == detail::peer::state::down;
  }
  if (down) watcher.send(node_down_msg{std::string(peer), "not connected"});
}

node_stats node::stats() const noexcept {
  auto& s = impl_->stats_;
  auto ld = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);  // relaxed: statistics
  };
  return node_stats{ld(s.accepted),        ld(s.dialled),     ld(s.handshakes_failed),
                    ld(s.protocol_errors), ld(s.peers_up),    ld(s.node_downs),
                    ld(s.messages_out),    ld(s.messages_in), ld(s.writes),
                    ld(s.unreachable),     ld(s.overloaded),  ld(s.not_serializable)};
}

}  // namespace libactor::net
