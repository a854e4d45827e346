#pragma once
// The transport: one TCP connection. It runs the handshake, splits the byte
// stream into frames (split_frame, the one frame splitter), hands data-phase
// frames to its session, queues and writes outgoing frames, and checks the
// peer's liveness with the failure detector. Reads, timers and close run on
// the I/O thread; appends and writes come from any thread under `wmu_`.

#include <sys/socket.h>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it

#include <atomic>
#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "libactor/net/handshake.hpp"
#include "outbound_total.hpp"
#include "peer.hpp"
#include "protocol.hpp"
#include "record_layer.hpp"
#include "session.hpp"
#include "tls_channel.hpp"

namespace libactor::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class node_impl;

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(node_impl& n, tcp::socket s, conn_id id, bool initiator);
  void start();

  enum class append_result : std::uint8_t { ok, full, closed };
  /// Queues one encoded frame, unless the queue would exceed `bound` or the
  /// connection is closing. `queued` receives the bytes waiting with no
  /// write in progress.
  append_result append(std::span<const std::byte> frame, bool is_message, std::size_t bound,
                       std::size_t* queued = nullptr);
  /// Queues a control frame (watch, down, link, heartbeat). They are bounded
  /// by max_outbound_bytes like messages; a peer that lets the queue fill
  /// up does not read, and its connection is closed (I/O thread: at once;
  /// other threads: posted).
  void append_control(std::span<const std::byte> frame);
  /// Moves a peer's frames queued while it was connecting to this connection.
  void adopt(std::vector<std::byte>& frames, std::uint64_t messages);
  /// Writes what is queued: directly when no write is in progress, with an
  /// asynchronous continuation for what the kernel does not take at once.
  void flush() noexcept;
  /// Closes (I/O thread only). `log`: `why` is worth a line in the log.
  void close(const std::string& why, bool log);
  /// Closes after a protocol error: counted, and logged once.
  void fail(protocol_errc code, const std::string& text);
  /// Sends an error frame and closes (a refused connection, I/O thread).
  void refuse(protocol_errc code, const std::string& text);
  /// Queues a `leaving` frame, written on close (this node shuts down).
  void say_goodbye();
  /// Messages queued and not yet handed to the kernel.
  std::uint64_t unsent_messages();
  /// The peer machine made this connection the one in use.
  void promoted() noexcept { session_.promoted(); }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] bool is_promoted() const noexcept { return session_.is_promoted(); }
  /// The peer's name once the handshake finished; empty before.
  [[nodiscard]] const std::string& peer_name() const noexcept;
  /// Reading was paused for inbound flow control and may go on (I/O thread).
  void resume_reading();
  ~connection();

  node_impl& node_;
  tcp::socket sock_;
  const conn_id id_;
  const bool initiator_;
  std::string remote_;                    // "host:port", for logs
  core::ref_ptr<peer> peer_;              // set when the handshake finished (I/O thread)
  core::ref_ptr<peer> target_;            // the peer a node's own dial was for
  waiter waiter_;                         // a blocking connect()
  std::optional<tcp::endpoint> dialled_;  // set on connections this node initiated
  /// An accepted connection counted against the caps on unauthenticated
  /// ones, until it authenticates or closes: the address it came from.
  std::string unauthenticated_from_;
  node_info_fields info_;  // the peer's node_info, once received
  // How frames travel, with the cipher (for the log's "is up" line); set
  // once authenticated, before info_.
  std::string protection_;

 private:
  friend class session;
  void read();
  /// read(), unless the messages this connection delivered and that are
  /// still queued exceed node_config::max_inbound_bytes: then reading
  /// pauses until they are handled (inbound_account.hpp).
  void read_on();
  /// Before authentication: reads what the handshake has room for.
  void read_handshake();
  /// With TLS, before authentication: bytes of the TLS handshake and then
  /// of this node's handshake inside it.
  void on_tls_handshake_bytes(std::span<const std::byte> in);
  /// Starts this node's handshake, under `secret`.
  void start_handshake(const std::string& secret);
  void on_handshake_bytes(std::span<const std::byte> in);
  /// Ends a blocking connect() waiting on this connection, if any, with
  /// `why`: invalid_argument when `code` is a refusal that trying again
  /// cannot change (a wrong secret or certificate), node_down otherwise.
  void tell_waiter(protocol_errc code, const std::string& why);
  /// After authentication: `n` more bytes are at rbuf_[rlen_].
  void on_read(std::size_t n);
  void tick();
  void write_async();
  /// Closes the connection if append_control found its queue full (I/O thread).
  bool close_if_stalled();
  /// A hint read without the lock on the read path (the flag only goes from
  /// false to true; close_if_stalled reads it again under the lock).
  [[nodiscard]] bool stalled_unlocked() const noexcept {
    return stalled_hint_.load(std::memory_order_relaxed);  // relaxed: a hint, see above
  }
  void release_socket();
  /// Moves what is queued into `dst` as it goes on the wire: frames queued
  /// after the handshake sealed into records. Caller holds wmu_. False when
  /// sealing failed (the connection must close).
  bool take_outbound(std::vector<std::byte>& dst);
  /// Under wmu_, writing_ set, after take_outbound failed: sends what it
  /// left in inflight_ (a TLS alert) without blocking, then drops it.
  void send_last_words() noexcept;
  /// Something to write: frames queued, or TLS records waiting. Caller
  /// holds wmu_.
  [[nodiscard]] bool has_output() const;
  /// Splits `buf` (its first `len` bytes) into frames for the session and
  /// keeps the rest at its front; false when the connection closed.
  bool dispatch(std::vector<std::byte>& buf, std::size_t& len);
  /// Gives back what a large frame made the read buffers grow to, once it
  /// is handled, and counts what they hold in node_stats::read_buffer_bytes.
  /// Between reads only (no read holds the buffer then).
  void trim_read_buffers() noexcept;

  std::unique_ptr<handshake> hs_;
  session session_;
  bool authenticated_ = false;
  bool first_read_ = true;       // the peer's first bytes are yet to come
  bool flush_on_close_ = false;  // write what is queued before closing
  bool closed_ = false;          // I/O thread's view
  std::vector<std::byte> rbuf_;
  std::size_t rlen_ = 0;
  // Sealed records (protect_frames): the reader opens rbuf_'s records into
  // plain_ (plain_len_ bytes of frames) on the I/O thread.
  std::unique_ptr<record_cipher> opener_;
  std::vector<std::byte> plain_;
  std::size_t plain_len_ = 0;
  // The length of the frame the last dispatch found incomplete (0: none).
  std::size_t frame_need_ = 0;
  // What rbuf_ and plain_ hold, as counted in the node's read_buffers_.
  std::int64_t read_held_ = 0;
  const std::shared_ptr<std::atomic<std::int64_t>> read_buffers_;
  // TLS (node_config::tls): set in start(), before any other thread sees
  // the connection; rbuf_ then holds TLS records and plain_ what they
  // decrypt to, as with sealed records.
  std::unique_ptr<tls_channel> tls_;
  // Inbound flow control (set when authenticated): the connection holds one
  // reference; each message it delivered holds another.
  inbound_account* account_ = nullptr;
  bool read_paused_ = false;  // I/O thread
  asio::steady_timer timer_;
  time_point last_recv_;
  time_point started_;

  // Write side, under wmu_. The socket's write side belongs to whoever set
  // writing_; the socket is closed only when no write is in progress.
  std::mutex wmu_;
  std::vector<std::byte> out_;
  std::size_t out_taken_ = 0;  // with TLS: out_'s first bytes, already sealed
  std::vector<std::byte> inflight_;
  std::uint64_t out_msgs_ = 0;
  // What out_ and inflight_ hold, charged to the node's outbound total
  // (outbound_total.hpp); settled whenever they shrink.
  outbound_charge charge_;
  /// Settles charge_ to what the queue holds now (0 once shut). Caller
  /// holds wmu_.
  void settle_charge() noexcept;
  // Sealing (protect_frames): set when the handshake finished; the first
  // clear_prefix_ bytes of out_ were queued before (handshake frames) and
  // go out as they are.
  std::unique_ptr<record_cipher> sealer_;
  std::size_t clear_prefix_ = 0;
  bool writing_ = false;
  bool shut_ = false;     // no more writes; close when writing_ clears
  bool stalled_ = false;  // a control frame found the queue full: the peer does not read
  std::atomic<bool> stalled_hint_{false};
};

}  // namespace libactor::net::detail
