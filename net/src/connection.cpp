// The transport (connection.hpp): handshake, frame splitting, liveness
// timer, the write queue and close.

#include "connection.hpp"

#include <poll.h>

#include <algorithm>
#include <cstring>

#include "frame_builder.hpp"
#include "node_impl.hpp"

namespace libactor::net::detail {

namespace {

// Handshake frames are small: an unauthenticated peer cannot make this node
// buffer more than this.
constexpr std::uint32_t handshake_frame_limit = 4096;
// What a connection reads into; a buffer that grew past trim_above for a
// large frame goes back to it once the frame is handled.
constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t trim_above = 2 * read_size;
// Room for control frames past node_config::max_outbound_bytes.
constexpr std::size_t control_reserve = std::size_t{1} << 20;
// Plaintext sealed into TLS records per write (about 0.22 ms of
// ChaCha20-Poly1305 on a 2.1 GHz Xeon): what a reader may wait for the
// channel's lock.
constexpr std::size_t tls_seal_slice = 256 * 1024;

/// The connection's inbound account: a release that brings it under half
/// its bound resumes reading on the node's I/O thread.
class connection_account final : public inbound_account {
 public:
  connection_account(std::int64_t bound, std::shared_ptr<node_total> total,
                     std::weak_ptr<node_impl> node, std::weak_ptr<connection> conn)
      : inbound_account(bound, std::move(total)), node_(std::move(node)), conn_(std::move(conn)) {}

 private:
  void resume() noexcept override {
    // The node first: while it lives, so does its io_context.
    auto node = node_.lock();
    if (!node) return;
    auto conn = conn_.lock();
    if (!conn) return;
    try {
      asio::post(node->io_, [conn] { conn->resume_reading(); });
    } catch (...) {
      // Out of memory: the next heartbeat tick resumes (connection::tick).
    }
  }
  const std::weak_ptr<node_impl> node_;
  const std::weak_ptr<connection> conn_;
};

}  // namespace

connection::~connection() {
  if (account_ != nullptr) account_->drop();
  read_buffers_->fetch_sub(read_held_, std::memory_order_relaxed);  // relaxed: a gauge
}

connection::connection(node_impl& n, tcp::socket s, conn_id id, bool initiator)
    : node_(n),
      sock_(std::move(s)),
      id_(id),
      initiator_(initiator),
      session_(n, *this),
      read_buffers_(n.read_buffers_),
      timer_(n.io_),
      charge_(n.outbound_total_) {
  boost::system::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  remote_ = ec ? std::string("(unknown)") : endpoint_text(ep);
  sock_.set_option(tcp::no_delay(true), ec);
}

const std::string& connection::peer_name() const noexcept {
  static const std::string none;
  return hs_ && authenticated_ ? hs_->peer_name() : none;
}

void connection::start() {
  started_ = last_recv_ = steady_clock::now();
  if (node_.tls_) {
    // TLS first; this node's handshake starts inside it once it is done.
    try {
      tls_ = std::make_unique<tls_channel>(*node_.tls_, initiator_);
    } catch (const std::exception& e) {
      return close(e.what(), true);
    }
    if (auto r = tls_->start(); !r) return fail(r.err().code, r.err().text);
    flush();  // the client's hello
  } else {
    try {
      start_handshake(node_.cfg_.secret);
    } catch (const std::exception& e) {
      return close(std::string("cannot start the handshake: ") + e.what(), true);
    }
  }
  read();
  tick();
}

void connection::start_handshake(const std::string& secret) {
  // With TLS, frames are not sealed again: TLS protects them.
  handshake_config hc{node_.cfg_.name,
                      node_.cfg_.protect_frames && !tls_,
                      node_.cfg_.aes_gcm && aes_gcm_available(),
                      secret,
                      protocol_version,
                      std::min<std::uint32_t>(node_.cfg_.max_frame_size, handshake_frame_limit),
                      {}};
  if (tls_ && node_.cfg_.tls.check_peer_name) {
    hc.accept_name = [tls = tls_.get()](const std::string& name) {
      return tls->peer_certificate_names(name);
    };
  }
  hs_ = std::make_unique<handshake>(
      hc, initiator_ ? handshake::role::initiator : handshake::role::acceptor);
  // No read buffer until authenticated: the handshake holds what arrives,
  // at most one frame of handshake_frame_limit (read_handshake).
  auto hello = hs_->start();
  append(hello, false, SIZE_MAX);
  flush();
}

connection::append_result connection::append(std::span<const std::byte> frame, bool is_message,
                                             std::size_t bound, std::size_t* queued) {
  std::lock_guard lock(wmu_);
  if (shut_) return append_result::closed;
  const std::size_t before = out_.size() - out_taken_ + inflight_.size();
  const std::size_t after = before + frame.size();
  if (after > bound) return append_result::full;
  // Messages obey the node-wide total too; the protocol's own frames
  // (handshake, node_info, control) are charged whatever it holds.
  if (is_message) {
    if (!charge_.admit(before, after)) return append_result::full;
  } else {
    charge_.settle(after);
  }
  out_.insert(out_.end(), frame.begin(), frame.end());
  if (is_message) ++out_msgs_;
  if (queued != nullptr) *queued = writing_ ? 0 : out_.size() - out_taken_;
  return append_result::ok;
}

void connection::adopt(std::vector<std::byte>& frames, std::uint64_t messages) {
  std::lock_guard lock(wmu_);
  out_.insert(out_.end(), frames.begin(), frames.end());
  out_msgs_ += messages;
  frames.clear();
  settle_charge();
}

void connection::settle_charge() noexcept {
  charge_.settle(shut_ ? 0 : out_.size() - out_taken_ + inflight_.size());
}

std::uint64_t connection::unsent_messages() {
  std::lock_guard lock(wmu_);
  return out_msgs_;
}

bool connection::has_output() const {
  return out_.size() > out_taken_ || (tls_ && tls_->has_records());
}

void connection::flush() noexcept {
  std::unique_lock lock(wmu_);
  if (writing_ || shut_ || !has_output()) return;
  writing_ = true;
  for (int round = 0; round < 2; ++round) {
    if (!take_outbound(inflight_)) {
      send_last_words();
      writing_ = false;
      shut_ = true;
      settle_charge();
      ::shutdown(sock_.native_handle(), SHUT_RDWR);
      return;
    }
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
      settle_charge();
      ::shutdown(sock_.native_handle(), SHUT_RDWR);
      return;
    }
    const auto sent = n < 0 ? std::size_t{0} : static_cast<std::size_t>(n);
    if (sent < inflight_.size()) {
      inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(sent));
      settle_charge();
      // What is left goes out from the I/O thread, before anything queued
      // later (which stays in out_ until then).
      lock.unlock();
      asio::post(node_.io_, [self = shared_from_this()] { self->write_async(); });
      return;
    }
    inflight_.clear();
    settle_charge();
    if (!has_output() || shut_) break;
  }
  if (has_output() && !shut_) {
    lock.unlock();
    asio::post(node_.io_, [self = shared_from_this()] {
      std::unique_lock l(self->wmu_);
      if (!self->take_outbound(self->inflight_)) {
        self->send_last_words();
        self->writing_ = false;
        l.unlock();
        self->close("sealing a record failed", true);
        return;
      }
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

bool connection::take_outbound(std::vector<std::byte>& dst) {
  if (tls_) {
    dst.clear();
    if (!tls_->handshake_done()) {
      // Nothing is queued but a refusal's error frame, which cannot go
      // out: the TLS records (an alert) do.
      tls_->take_records(dst);
      out_.clear();
      out_msgs_ = 0;
      return true;
    }
    // One slice at a time: sealing holds the channel's lock, which the
    // reader (the I/O thread, for every connection) needs too. Between
    // slices the writer sends, and the reader gets its turn.
    const std::size_t n = std::min(out_.size() - out_taken_, tls_seal_slice);
    // False: the channel failed (its alert may be in dst: the caller sends
    // it before it closes) or cannot seal.
    const bool ok = tls_->seal(std::span<const std::byte>(out_).subspan(out_taken_, n), dst);
    out_taken_ += n;
    if (out_taken_ == out_.size()) {
      out_.clear();
      out_taken_ = 0;
      out_msgs_ = 0;  // the messages are all on their way (not before: unsent_messages)
    } else if (out_taken_ >= out_.size() / 2) {
      // The sealed front goes once it is half the queue: the queue never
      // holds more than twice what is unsent, and each byte moves at most
      // once per halving (amortized constant).
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_taken_));
      out_taken_ = 0;
    }
    return ok;
  }
  out_msgs_ = 0;
  if (!sealer_) {
    dst.swap(out_);
    return true;
  }
  dst.clear();
  const std::size_t clear = std::min(clear_prefix_, out_.size());
  dst.insert(dst.end(), out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(clear));
  const bool ok = sealer_->seal(std::span<const std::byte>(out_).subspan(clear), dst);
  out_.clear();
  clear_prefix_ = 0;
  if (!ok) dst.clear();
  return ok;
}

void connection::send_last_words() noexcept {
  // What take_outbound left after a failure: at most the TLS channel's
  // records (its fatal alert), never a frame. One non-blocking try: the
  // connection closes either way.
  if (!inflight_.empty()) {
    (void)::send(sock_.native_handle(), inflight_.data(), inflight_.size(),
                 MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  inflight_.clear();
}

// I/O thread; writing_ is set and inflight_ holds the bytes to send.
void connection::write_async() {
  asio::async_write(sock_, asio::buffer(inflight_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->node_.stats_.writes.fetch_add(1, std::memory_order_relaxed);
                      std::unique_lock lock(self->wmu_);
                      self->inflight_.clear();
                      self->settle_charge();
                      if (ec || self->shut_ || !self->has_output()) {
                        self->writing_ = false;
                        const bool close_now = ec || self->shut_;
                        lock.unlock();
                        if (close_now) {
                          self->close(ec ? "write failed: " + ec.message() : "", false);
                        }
                        return;
                      }
                      if (!self->take_outbound(self->inflight_)) {
                        self->send_last_words();
                        self->writing_ = false;
                        lock.unlock();
                        self->close("sealing a record failed", true);
                        return;
                      }
                      lock.unlock();
                      self->write_async();
                    });
}

void connection::read() {
  if (closed_) return;
  if (!authenticated_) {
    // Nothing is allocated for reading until bytes arrive, and then no more
    // than the handshake takes: an unauthenticated peer costs this
    // connection's state and at most one handshake frame.
    sock_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       if (self->closed_) return;
                       if (ec) return self->close("read failed: " + ec.message(), false);
                       self->read_handshake();
                     });
    return;
  }
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

void connection::read_on() {
  if (account_ != nullptr) {
    if (account_->over_own() && account_->pause()) {
      read_paused_ = true;
      // release: pairs with stats()' acquire, so that whoever sees the pause
      // sees the messages delivered before it (tests read messages_in then).
      node_.stats_.read_pauses.fetch_add(1, std::memory_order_release);
      return;
    }
    const bool total = account_->over_total();
    account_->set_total_paused(total);
    if (total) {
      // Over the node's total: the tick resumes (inbound_account.hpp).
      read_paused_ = true;
      // release: pairs with stats()' acquire, so that whoever sees the pause
      // sees the messages delivered before it (tests read messages_in then).
      node_.stats_.read_pauses.fetch_add(1, std::memory_order_release);
      return;
    }
  }
  read();
}

void connection::resume_reading() {
  if (closed_ || !read_paused_) return;
  read_paused_ = false;
  // The peer's frames waited in the kernel while this node did not read:
  // its silence was this node's doing.
  last_recv_ = steady_clock::now();
  on_read(0);  // the frames left in the buffer first, then the socket
}

void connection::append_control(std::span<const std::byte> frame) {
  // Control frames have room past the messages' bound: a queue full of
  // messages (a burst toward a peer that reads) is back-pressure on the
  // senders, not a sign that the peer stopped reading.
  if (append(frame, false, node_.cfg_.max_outbound_bytes + control_reserve) !=
      append_result::full) {
    return;
  }
  // The peer does not read: its queue holds max_outbound_bytes and the
  // control frames' reserve already. The
  // I/O thread closes the connection at its next frame, read or timer tick;
  // the post covers an idle connection.
  bool first = false;
  {
    std::lock_guard lock(wmu_);
    first = !stalled_;
    stalled_ = true;
  }
  stalled_hint_.store(true, std::memory_order_relaxed);  // relaxed: a hint, see stalled_unlocked
  if (first) {
    asio::post(node_.io_, [self = shared_from_this()] { self->close_if_stalled(); });
  }
}

bool connection::close_if_stalled() {
  {
    std::lock_guard lock(wmu_);
    if (!stalled_) return false;
  }
  close("the peer does not read: its outbound queue is full (max_outbound_bytes)", true);
  return true;
}

void connection::tell_waiter(protocol_errc code, const std::string& why) {
  if (waiter_ == nullptr) return;
  // Refusals that trying again cannot change end a blocking connect() at
  // once; anything else may be transient, and connect() tries again.
  const bool final = code == protocol_errc::refused_by_peer || code == protocol_errc::auth_failed ||
                     code == protocol_errc::version_mismatch ||
                     code == protocol_errc::protection_mismatch ||
                     code == protocol_errc::tls_failed;
  waiter_->set_value(error{final ? errc::invalid_argument : errc::node_down, why});
  waiter_.reset();
}

void connection::fail(protocol_errc code, const std::string& text) {
  const protocol_error e{code, text};
  if (!authenticated_) tell_waiter(code, "handshake failed: " + e.to_string());
  if (authenticated_) {
    node_.stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  } else {
    node_.stats_.handshakes_failed.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  }
  close("bad input: " + e.to_string(), true);
}

void connection::refuse(protocol_errc code, const std::string& text) {
  std::vector<std::byte> f;
  append_error_frame(f, code, text);
  append(f, false, SIZE_MAX);
  {
    std::lock_guard lock(wmu_);
    flush_on_close_ = true;
  }
  close(text, false);
}

void connection::read_handshake() {
  std::array<std::byte, handshake_frame_limit + 4> buf;  // on the stack: held only now
  boost::system::error_code ec;
  const std::size_t n = sock_.read_some(
      asio::buffer(buf.data(), hs_ ? std::min(buf.size(), hs_->room()) : buf.size()), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return read();
  if (ec) {
    return close(
        ec == asio::error::eof ? "the peer closed the connection" : "read failed: " + ec.message(),
        false);
  }
  const std::span<const std::byte> in(buf.data(), n);
  if (std::exchange(first_read_, false) && n >= 2) {
    // A node with TLS and one without: say so, rather than what the bytes
    // of one look like to the other. No hello frame is long enough to
    // begin like a TLS record (0x14 to 0x17, then 0x03).
    const auto b0 = std::to_integer<unsigned>(in[0]);
    const bool looks_tls = b0 >= 0x14 && b0 <= 0x17 && in[1] == std::byte{0x03};
    if (tls_ && !looks_tls) {
      if (!initiator_) {
        // A dialler without TLS reads frames in the clear: one tells it
        // why, so that its connect() ends now rather than trying again. (A
        // dialler that finds no TLS where it dialled says nothing to it.)
        std::vector<std::byte> f;
        append_error_frame(f, protocol_errc::tls_failed,
                           "the acceptor speaks TLS only (node_config::tls)");
        [[maybe_unused]] auto sent =
            ::send(sock_.native_handle(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      return fail(protocol_errc::tls_failed,
                  "the peer does not speak TLS (node_config::tls is set on this node only)");
    }
    if (!tls_ && looks_tls) {
      return fail(protocol_errc::tls_failed,
                  "the peer speaks TLS (node_config::tls is set on the peer, not on this node)");
    }
  }
  if (tls_) return on_tls_handshake_bytes(in);
  on_handshake_bytes(in);
}

void connection::on_tls_handshake_bytes(std::span<const std::byte> in) {
  std::vector<std::byte> plain;  // no more than `in`: at most one read's worth
  auto fed = tls_->feed(in, plain);
  if (!fed) {
    flush();  // TLS's alert, if it has one
    return fail(fed.err().code, fed.err().text);
  }
  if (!hs_) {
    if (!tls_->handshake_done()) {
      flush();
      return read();
    }
    // Certificates verified both ways. Without a secret of its own the
    // node's handshake runs under one exported from the TLS session: both
    // sides have it, and no one else.
    std::string secret = node_.cfg_.secret;
    if (secret.empty()) {
      auto exported = tls_->exported_secret();
      if (!exported) return fail(exported.err().code, exported.err().text);
      secret = std::move(*exported);
    }
    try {
      start_handshake(secret);
    } catch (const std::exception& e) {
      return close(std::string("cannot start the handshake: ") + e.what(), true);
    }
  } else {
    flush();
  }
  if (plain.empty()) return read();
  on_handshake_bytes(plain);
}

void connection::on_handshake_bytes(std::span<const std::byte> in) {
  last_recv_ = steady_clock::now();
  auto reply = hs_->feed(in);
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
      tell_waiter(hs_->error().code, why);
      // The error frame (if any) is queued; close after it is written.
      close(why, true);
      return;
    }
    case handshake::state::done:
      break;
  }
  authenticated_ = true;
  if (tls_) {
    const auto suite = tls_->suite();
    protection_ = std::string("over TLS 1.3 (") + (suite ? to_string(*suite) : "?") + ")";
  } else if (!node_.cfg_.protect_frames) {
    protection_ = "in the clear";
  }
  account_ = new connection_account(as_bound(node_.cfg_.max_inbound_bytes), node_.inbound_total_,
                                    node_.weak_from_this(), weak_from_this());
  if (node_.cfg_.protect_frames && !tls_) {
    // From here on both directions are sealed; what is queued now (the
    // acceptor's auth) still goes out as it is.
    try {
      const auto& keys = hs_->frame_keys();
      const auto kind = keys.aes_gcm ? aead_kind::aes256_gcm : aead_kind::chacha20_poly1305;
      opener_ = std::make_unique<record_cipher>(keys.receive, false, kind);
      auto sealer = std::make_unique<record_cipher>(keys.send, true, kind);
      hs_->wipe_frame_keys();
      protection_ = std::string("frames sealed (") + to_string(kind) + ")";
      std::lock_guard lock(wmu_);
      clear_prefix_ = out_.size();
      sealer_ = std::move(sealer);
    } catch (const std::exception& e) {
      return close(std::string("no cipher for the connection: ") + e.what(), true);
    }
  }
  auto rest = hs_->take_unread();
  rlen_ = 0;
  rbuf_.resize(std::max(read_size, rest.size()));
  if (tls_) {
    // What followed the handshake came out of TLS already: frames.
    plain_ = std::move(rest);
    plain_len_ = plain_.size();
    rest.clear();
  } else if (!rest.empty()) {
    std::memcpy(rbuf_.data(), rest.data(), rest.size());
  }
  if (hs_->peer_name() == node_.cfg_.name) {
    return fail(protocol_errc::unexpected_frame, "the peer has this node's own name");
  }
  node_.on_authenticated(shared_from_this());
  if (closed_) return;
  on_read(rest.size());
}

void connection::on_read(std::size_t n) {
  // Bytes show the peer alive, except on a sealed connection: there only a
  // record that verifies does (below), or someone on the path could hold
  // the heartbeat timeout off with bytes of a record that never completes.
  if (!opener_ && !tls_) last_recv_ = steady_clock::now();
  rlen_ += n;
  if (tls_) {
    // As with sealed records, only bytes that authenticate show the peer
    // alive. Everything read goes into TLS at once: what it keeps is one
    // incomplete record.
    plain_.resize(plain_len_);
    auto fed = tls_->feed(std::span<const std::byte>(rbuf_.data(), rlen_), plain_);
    rlen_ = 0;
    if (!fed) {
      flush();
      return fail(fed.err().code, fed.err().text);
    }
    if (plain_.size() > plain_len_) last_recv_ = steady_clock::now();
    plain_len_ = plain_.size();
    if (!dispatch(plain_, plain_len_)) return;
  } else if (!opener_) {
    if (!dispatch(rbuf_, rlen_)) return;
  } else {
    std::size_t need = 0;
    plain_.resize(plain_len_);
    auto opened = opener_->open(std::span<const std::byte>(rbuf_.data(), rlen_), plain_, &need);
    if (!opened) return fail(opened.err().code, opened.err().text);
    if (*opened > 0) {
      last_recv_ = steady_clock::now();
      std::memmove(rbuf_.data(), rbuf_.data() + *opened, rlen_ - *opened);
      rlen_ -= *opened;
    }
    // Room for the whole next record, allocated only now that its length
    // passed the check.
    if (need > rbuf_.size()) {
      rbuf_.reserve(need);  // exactly: a resize alone may double the capacity
      rbuf_.resize(need);
    }
    plain_len_ = plain_.size();
    if (!dispatch(plain_, plain_len_)) return;
  }
  trim_read_buffers();
  read_on();
}

void connection::trim_read_buffers() noexcept {
  // A buffer that grew past trim_above for a large frame goes back to
  // read_size once what it holds, and the frame it waits for, fit in that
  // (or to what that frame needs, when the buffer holds more than twice
  // it): a connection holds its largest frame while receiving it, not for
  // its life. Below trim_above nothing moves, so records of the sealed
  // layer (64 KiB and their overhead) and a stream of mid-sized frames do
  // not reallocate on every read.
  // A frame still being received keeps what it needs: a smaller one after
  // a large one (the two in one sealed record, say) does not keep the
  // large one's room while it trickles in.
  const std::size_t want = std::max(read_size, frame_need_);
  const std::size_t above = std::max(trim_above, 2 * want);
  try {
    if (rbuf_.capacity() > above && rlen_ <= want) {
      std::vector<std::byte> fresh;
      fresh.reserve(want);
      fresh.resize(want);
      std::memcpy(fresh.data(), rbuf_.data(), rlen_);
      rbuf_.swap(fresh);
    }
    if (plain_.capacity() > above && plain_len_ <= want) {
      std::vector<std::byte> fresh;
      fresh.reserve(want);
      fresh.assign(plain_.begin(), plain_.begin() + static_cast<std::ptrdiff_t>(plain_len_));
      plain_.swap(fresh);
    }
  } catch (const std::bad_alloc&) {
    // No memory for the smaller buffer: the larger one stays.
  }
  const auto held = static_cast<std::int64_t>(rbuf_.capacity() + plain_.capacity());
  if (held != read_held_) {
    read_buffers_->fetch_add(held - read_held_, std::memory_order_relaxed);  // relaxed: a gauge
    read_held_ = held;
  }
}

bool connection::dispatch(std::vector<std::byte>& buf, std::size_t& len) {
  std::size_t pos = 0;
  frame_need_ = 0;
  while (!closed_) {
    // Until the peer's node_info (a few hundred bytes) has come, frames are
    // handshake-sized: a peer that authenticated and stops there makes
    // this node buffer no more than one that did not.
    const std::uint32_t max = session_.info_received()
                                  ? node_.cfg_.max_frame_size
                                  : std::min(node_.cfg_.max_frame_size, handshake_frame_limit);
    std::size_t need = 0;
    auto f = split_frame(std::span<const std::byte>(buf.data() + pos, len - pos), max, &need);
    if (!f) {
      fail(f.err().code, f.err().text);
      return false;
    }
    if (!f->has_value()) {
      // Room for the whole frame, allocated only now that its length
      // passed the check (the sealed path appends to buf as it opens).
      frame_need_ = need;
      if (&buf == &rbuf_ && need > buf.size()) {
        buf.reserve(need);  // exactly: a resize alone may double the capacity
        buf.resize(need);
      }
      break;
    }
    if (!session_.on_frame((*f)->kind, (*f)->payload)) return false;
    pos += (*f)->size;
    if (stalled_unlocked() && close_if_stalled()) return false;
    // Over the inbound bound: the frames after this one wait in the buffer
    // (read_on pauses; resume_reading dispatches them first), so what one
    // read brought in cannot take the charge far past the bound.
    if (account_ != nullptr && account_->over()) break;
  }
  if (closed_) return false;
  if (pos > 0) {
    std::memmove(buf.data(), buf.data() + pos, len - pos);
    len -= pos;
  }
  return true;
}

void connection::tick() {
  timer_.expires_after(node_.cfg_.heartbeat_interval);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->close_if_stalled()) return;
    self->session_.prune();
    const auto& cfg = self->node_.cfg_;
    if (self->read_paused_) {
      // Not reading (inbound flow control): silence proves nothing, but a
      // peer that closed or reset the connection is gone all the same. A
      // resume lost to an allocation failure is retried here.
      pollfd pf{self->sock_.native_handle(), POLLRDHUP, 0};
      if (::poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLERR | POLLHUP)) != 0) {
        self->close("the peer closed the connection (while this node was not reading it)", false);
        return;
      }
      self->last_recv_ = steady_clock::now();
      if (!self->account_->over() && !self->account_->pause()) self->resume_reading();
    }
    const auto v =
        check_liveness(steady_clock::now(), self->started_, self->last_recv_, self->is_promoted(),
                       cfg.handshake_timeout, cfg.heartbeat_timeout);
    if (v.close_reason != nullptr) {
      if (!self->is_promoted()) {
        self->node_.stats_.handshakes_failed.fetch_add(1, std::memory_order_relaxed);
      }
      self->close(v.close_reason, true);
      return;
    }
    if (v.send_heartbeat) {
      self->append_control(make_frame(frame_kind::heartbeat));
      self->flush();
    }
    self->tick();
  });
}

void connection::close(const std::string& why, bool log) {
  if (closed_) return;
  closed_ = true;
  node_.admitted(*this);
  timer_.cancel();
  {
    std::lock_guard lock(wmu_);
    if (!shut_) {
      shut_ = true;
      // Give a queued error frame (failed handshake, refused connection) or
      // goodbye a chance; nothing else is written after close.
      if (!writing_ && has_output() && (!authenticated_ || flush_on_close_)) {
        // All of it (TLS seals one slice per take), as far as the kernel
        // takes it without waiting.
        std::vector<std::byte> last;
        std::vector<std::byte> slice;
        while (has_output() && take_outbound(slice) && !slice.empty()) {
          last.insert(last.end(), slice.begin(), slice.end());
        }
        [[maybe_unused]] auto n =
            ::send(sock_.native_handle(), last.data(), last.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      }
    }
    settle_charge();  // shut: nothing of it counts toward the node's total now
    ::shutdown(sock_.native_handle(), SHUT_RDWR);
  }
  std::string line;
  if (log && !why.empty()) {
    const std::string& name = hs_ ? hs_->peer_name() : std::string();
    line = "closing connection with " + remote_ + (name.empty() ? "" : " (node " + name + ")") +
           ": " + why;
    if (!authenticated_) {
      // Whoever can connect can fail handshakes: one line per address and
      // kind of failure ("handshake failed: auth_failed"), within the
      // node's log rate limit, not one per connection.
      const std::string addr = remote_.substr(0, remote_.rfind(':'));
      const auto first = why.find(':');
      const std::string kind =
          first == std::string::npos ? why : why.substr(0, why.find(':', first + 1));
      line = node_.refusals_
                 .once(addr, kind, line + " (logged once per address and kind)",
                       steady_clock::now(), false)
                 .value_or(std::string());
    }
  }
  if (waiter_ != nullptr) {
    waiter_->set_value(error{errc::node_down, why.empty() ? "connection closed" : why});
    waiter_.reset();
  }
  const bool graceful = session_.peer_left();
  node_.on_closed(shared_from_this(), graceful ? "node " + peer_name() + " shut down" : why,
                  graceful, line);
  session_.reset();
  release_socket();
}

void connection::say_goodbye() {
  if (!is_promoted() || closed_) return;
  append(make_frame(frame_kind::leaving), false, SIZE_MAX);
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

}  // namespace libactor::net::detail
