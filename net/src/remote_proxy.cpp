// Handles to actors of other nodes (remote_proxy.hpp): encoding a message
// onto the peer's connection, watch and link frames, stop requests; dead
// handles; the drain.

#include "remote_proxy.hpp"

#include "connection.hpp"
#include "frame_builder.hpp"
#include "node_impl.hpp"
#include "peer.hpp"

namespace libactor::net::detail {

namespace {
thread_local std::vector<std::byte> t_scratch;
// A handler's sends leave together when it returns; one that sends a lot
// writes every flush_bytes, so the wire stays busy meanwhile.
constexpr std::size_t flush_bytes = 64 * 1024;
}  // namespace

remote_proxy::remote_proxy(actor_system& sys, core::ref_ptr<peer> p, std::uint64_t remote_id,
                           std::uint64_t incarnation, role r)
    : core::proxy(sys),
      peer_(std::move(p)),
      remote_id_(remote_id),
      incarnation_(incarnation),
      role_(r) {}

remote_proxy::~remote_proxy() {
  // Links still held go with the proxy (no on_links_changed for them).
  if (const auto n = links_held(); n != 0) peer_->links_.changed(-static_cast<std::ptrdiff_t>(n));
  std::lock_guard lock(peer_->mu_);
  peer_->held_.erase(this);
  switch (role_) {
    case role::actor: {
      auto it = peer_->proxies_.find({remote_id_, incarnation_});
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
  // relaxed: kill() runs on the I/O thread only, one caller at a time.
  if (dead_.load(std::memory_order_relaxed)) return;
  try {
    why_ = reason.text();
  } catch (...) {
    // No memory for the text: sends say the node is unreachable instead.
  }
  dead_.store(true, std::memory_order_seq_cst);  // seq_cst: against held_ in on_watched()
  terminate(reason);
  // Last: it may be this proxy's last reference (callers hold their own,
  // so it is not released under a peer's mutex).
  if (held_.exchange(false, std::memory_order_seq_cst)) let_go();
}

void remote_proxy::let_go() noexcept {
  {
    std::lock_guard lock(peer_->mu_);
    // Unless on_watched() took a new hold meanwhile (registered already).
    if (!held_.load(std::memory_order_seq_cst)) peer_->held_.erase(this);
  }
  core::actor_access::release(this);  // after the lock: the destructor takes it
}

void remote_proxy::release_if_unwatched() noexcept {
  if (sweep_monitors() != 0 || !held_.exchange(false, std::memory_order_seq_cst)) return;
  // A watcher that monitored meanwhile either is counted here, and the hold
  // stays (this reference is it), or its on_watched() sees held_ clear and
  // takes a hold of its own.
  if (sweep_monitors() != 0 && !held_.exchange(true, std::memory_order_seq_cst)) return;
  let_go();
}

void remote_proxy::on_watched() noexcept {
  if (role_ != role::actor) return;
  // seq_cst, with kill(): either kill() sees the hold and releases it, or
  // this sees dead_ and gives the hold back itself.
  if (!held_.exchange(true, std::memory_order_seq_cst)) {
    core::actor_access::add_ref(this);
    {
      std::lock_guard lock(peer_->mu_);
      try {
        peer_->held_.insert(this);
      } catch (...) {
        // No memory to register it: held until killed, as before the sweep.
      }
    }
    // The caller holds a reference: let_go() does not release the last.
    if (dead_.load(std::memory_order_seq_cst) && held_.exchange(false, std::memory_order_seq_cst)) {
      let_go();
    }
  }
  // relaxed: only one watch frame per proxy is needed; the peer mutex in
  // send_control orders the frame itself.
  if (watch_sent_.exchange(true, std::memory_order_relaxed)) return;
  std::vector<std::byte> payload;
  writer w{payload};
  w.varint(remote_id_);
  std::lock_guard lock(peer_->mu_);
  if (peer_->node_ != nullptr) {
    peer_->node_->send_control(*peer_, frame_kind::watch, payload, incarnation_);
  }
}

void remote_proxy::on_linked(actor* local) noexcept {
  send_link_frame(frame_kind::link, local);
}

void remote_proxy::on_unlinked(actor* local) noexcept {
  send_link_frame(frame_kind::unlink, local);
}

void remote_proxy::on_links_changed(std::ptrdiff_t delta) noexcept {
  peer_->links_.changed(delta);
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
    if (peer_->node_ != nullptr) peer_->node_->send_control(*peer_, kind, payload, incarnation_);
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
    return refuse(m, errc::node_down,
                  why_.empty() ? "node " + peer_->name_ + " is unreachable" : why_,
                  send_status::dead_letter);
  }
  const msg_kind kind = m->kind;
  if (kind == msg_kind::exit_signal && m->type == core::type_of<exit_msg>()) {
    // A linked local actor's exit, on its way to the actor linked to it:
    // the link ends (as in a local actor that receives the signal). Only
    // an exit: a refused link's notice (session.cpp) comes from an actor
    // that runs on, and may be linked to it already.
    actor* source = core::actor_access::get(core::payload<exit_msg>(*m).source);
    if (core::actor_access::stopped(source)) drop_link(source);
  }
  const auto wkind = to_wire(kind);
  if (!wkind) {
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
    w.fixed(static_cast<std::uint8_t>(*wkind));
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
    const auto phase = peer_->machine_.current();
    if (phase == peer_machine::phase::down) {
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
    if (phase == peer_machine::phase::connecting) {
      if (incarnation_ != 0 && peer_->pending_inc_ != 0 && peer_->pending_inc_ != incarnation_) {
        // Handles of two incarnations while the first connection is made:
        // at most one of them is the process that answers.
        lock.unlock();
        return refuse(m, errc::node_down,
                      "node " + peer_->name_ + " is being connected to for another incarnation",
                      send_status::dead_letter);
      }
      // Bounded per peer, and with the connections' queues by the node's
      // total (outbound_total.hpp): a peer being connected holds this
      // node's messages as a connected one's queue does.
      const std::size_t before = peer_->pending_.size() + peer_->pending_control_bytes_;
      if (peer_->pending_.size() + buf.size() <= bound &&
          peer_->pending_charge_.admit(before, before + buf.size())) {
        peer_->pending_.insert(peer_->pending_.end(), buf.begin(), buf.end());
        ++peer_->pending_msgs_;
        if (incarnation_ != 0) peer_->pending_inc_ = incarnation_;
        queued = connection::append_result::ok;
      }
    } else if (incarnation_ != 0 && incarnation_ != peer_->machine_.incarnation()) {
      // Up, but with another process than this proxy's (it is about to be
      // stopped by the promotion that replaced it).
      lock.unlock();
      return refuse(m, errc::node_down,
                    "node " + peer_->name_ + " restarted: the actor's process is gone",
                    send_status::dead_letter);
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
      // An ask's key lives until the ask times out; a forwarded request's
      // (no ask here) for forwarded_request_timeout: no key outlives both.
      auto expires = core::ask_deadline();
      if (expires == std::chrono::steady_clock::time_point::min()) {
        expires = core::deadline_after(std::chrono::steady_clock::now(),
                                       owner->cfg_.forwarded_request_timeout);
      }
      core::actor_access::add_ref(sender);
      peer_->requests_.emplace(key, peer::request{actor_ref{core::ref_ptr<actor>(sender, false)},
                                                  m->request_id, expires});
    }
    const bool up = phase == peer_machine::phase::up;
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

dead_proxy::dead_proxy(actor_system& sys, handle_fields f, errc code, const exit_reason& why)
    : core::proxy(sys), fields_(std::move(f)), code_(code), text_(why.text()) {
  terminate(why);
}

}  // namespace libactor::net::detail
