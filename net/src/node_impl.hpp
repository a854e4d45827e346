#pragma once
// The node's moving parts: peers, connections, proxies and the node itself.
// Threads: one I/O thread runs the io_context (accept, connect, read, timers,
// writes the kernel did not take at once); actor workers encode and queue
// outgoing messages and write them when their handler returns.

#include <sys/socket.h>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "libactor/detail/driver.hpp"
#include "libactor/detail/proxy.hpp"
#include "libactor/net/handshake.hpp"
#include "libactor/net/node.hpp"

namespace libactor::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace core = libactor::detail;

class node_impl;
class peer;
class connection;

/// Stands for an actor on another node. Its enqueue encodes the message and
/// queues the frame on the peer's connection.
class remote_proxy final : public core::proxy {
 public:
  enum class role : std::uint8_t {
    actor,      ///< An actor with an id on the peer.
    service,    ///< The peer's service actor (wire id 0).
    anonymous,  ///< A requester outside any actor on the peer: only replies reach it.
  };
  remote_proxy(actor_system& sys, core::ref_ptr<peer> p, std::uint64_t remote_id, role r);
  ~remote_proxy() override;
  send_status enqueue(core::message* m) noexcept override;

  /// Marks the proxy unreachable, then fires its monitors and links.
  void kill(const exit_reason& reason) noexcept;
  [[nodiscard]] bool dead() const noexcept {
    return dead_.load(std::memory_order_acquire);  // acquire: pairs with kill()
  }

  const core::ref_ptr<peer> peer_;
  const std::uint64_t remote_id_;
  const role role_;

 protected:
  void on_watched() noexcept override;
  void on_linked(actor* local) noexcept override;
  void on_unlinked(actor* local) noexcept override;
  void on_stop_request(const exit_reason& reason) noexcept override;

 private:
  void send_link_frame(frame_kind kind, actor* local) noexcept;
  /// refuse(), and for an answer (a response), an error answer in its place.
  send_status refuse_reply(core::message* m, errc code, std::string text,
                           send_status status) noexcept;

  std::atomic<bool> dead_{false};
  std::atomic<bool> watch_sent_{false};
};

/// A local stand-in used to count and answer messages that reach no actor.
class drain final : public core::proxy {
 public:
  using core::proxy::proxy;
  send_status enqueue(core::message* m) noexcept override {
    return refuse(m, errc::receiver_down, "no such actor on this node", send_status::dead_letter);
  }
  send_status drop(core::message* m, errc code, std::string text, send_status status) noexcept {
    return refuse(m, code, std::move(text), status);
  }
  void lost(std::uint64_t n) noexcept { count_dead_letters(n); }
};

/// One TCP connection: handshake, then frames. Reads and timers run on the
/// I/O thread; writes come from any thread under `wmu_`.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(node_impl& n, tcp::socket s, bool initiator);
  void start();
  enum class append_result : std::uint8_t { ok, full, closed };
  /// Queues one encoded frame, unless the queue would exceed `bound` or the
  /// connection is closing. `queued` receives the bytes waiting with no
  /// write in progress.
  append_result append(std::span<const std::byte> frame, bool is_message, std::size_t bound,
                       std::size_t* queued = nullptr);
  /// Moves a peer's frames queued while it was connecting to this connection.
  void adopt(std::vector<std::byte>& frames, std::uint64_t messages);
  /// Writes what is queued: directly when no write is in progress, with an
  /// asynchronous continuation for what the kernel does not take at once.
  void flush() noexcept;
  /// Closes (I/O thread only); `why` is logged when `log` is set.
  void close(const std::string& why, bool protocol_error);
  /// Queues a `leaving` frame, written on close (this node shuts down).
  void say_goodbye();
  /// Messages queued and not yet handed to the kernel.
  std::uint64_t unsent_messages();

  node_impl& node_;
  tcp::socket sock_;
  const bool initiator_;
  std::string remote_;                                           // "host:port", for logs
  core::ref_ptr<peer> peer_;                                     // set once bound (I/O thread)
  std::shared_ptr<std::promise<expected<std::string>>> waiter_;  // blocking connect()
  std::optional<tcp::endpoint> dialled_;  // set on connections this node initiated
  core::ref_ptr<peer> target_;            // the peer a dial was for, when known

 private:
  void read();
  void on_read(std::size_t n);
  bool handle_frame(frame_kind kind, std::span<const std::byte> payload);
  bool handle_message(std::span<const std::byte> payload);
  void tick();
  void write_async();
  void fail(protocol_errc code, const std::string& text);
  void release_socket();

  std::unique_ptr<handshake> hs_;
  bool authenticated_ = false;
  bool bound_ = false;
  bool peer_left_ = false;       // the peer sent `leaving`
  bool flush_on_close_ = false;  // write what is queued before closing
  bool closed_ = false;          // I/O thread's view
  std::vector<std::byte> rbuf_;
  std::size_t rlen_ = 0;
  asio::steady_timer timer_;
  time_point last_recv_;
  time_point started_;

  // Write side, under wmu_. The socket's write side belongs to whoever set
  // writing_; the socket is closed only when no write is in progress.
  std::mutex wmu_;
  std::vector<std::byte> out_;
  std::vector<std::byte> inflight_;
  std::uint64_t out_msgs_ = 0;
  bool writing_ = false;
  bool shut_ = false;  // no more writes; close when writing_ clears

  // Read-side caches (I/O thread).
  std::uint64_t last_receiver_id_ = 0;
  actor_ref last_receiver_;
  std::uint64_t last_sender_id_ = 0;
  actor_ref last_sender_;
  std::unordered_map<std::uint64_t, const message_codec*> codecs_;
};

/// Another node, known by name, with or without a live connection.
class peer final : public core::flushable {
 public:
  peer(node_impl* n, std::weak_ptr<node_impl> owner, std::string name)
      : node_(n), owner_(std::move(owner)), name_(std::move(name)) {}
  void flush() noexcept override;

  enum class state : std::uint8_t { connecting, up, down };

  std::mutex mu_;
  node_impl* node_;                       // null after the node shut down (read under mu_)
  const std::weak_ptr<node_impl> owner_;  // for use outside mu_
  const std::string name_;
  state st_ = state::connecting;
  std::shared_ptr<connection> primary_;
  std::uint64_t incarnation_ = 0;
  std::string adv_host_;
  std::uint16_t adv_port_ = 0;
  std::optional<tcp::endpoint> dial_;  // redial target after a loss
  duration backoff_{};
  bool redial_scheduled_ = false;
  std::vector<std::byte> pending_;  // frames queued while connecting
  std::uint64_t pending_msgs_ = 0;
  std::unordered_map<std::uint64_t, remote_proxy*> proxies_;  // not owned
  remote_proxy* service_ = nullptr;
  remote_proxy* anonymous_ = nullptr;
  struct request {
    actor_ref asker;
    std::uint64_t id;
  };
  std::uint64_t next_key_ = 0;
  std::unordered_map<std::uint64_t, request> requests_;
  std::vector<actor_ref> watchers_;  // node monitors
};

/// The node's io_context as the actor system's I/O driver: idle workers
/// wait in epoll, and a message read runs its actor on the same thread.
class asio_driver final : public core::io_driver {
 public:
  explicit asio_driver(asio::io_context& io) : io_(io) {}
  void park() noexcept override {
    try {
      if (io_.run_one() != 0) io_.poll();
    } catch (...) {
    }
  }
  void poll() noexcept override {
    try {
      io_.poll();
    } catch (...) {
    }
  }
  void unpark() noexcept override {
    try {
      asio::post(io_, [] {});
    } catch (...) {
    }
  }

 private:
  asio::io_context& io_;
};

class node_impl final : public handle_context, public std::enable_shared_from_this<node_impl> {
 public:
  node_impl(actor_system& sys, node_config cfg);
  ~node_impl();
  void start();
  void shutdown();

  void encode_handle(writer& w, const actor_ref& h) override;
  bool decode_handle(reader& r, actor_ref& h) override;

  void log(const std::string& line);
  /// The peer named `name`, created (and dialled, when an address is given
  /// and no connection exists) on first use.
  core::ref_ptr<peer> get_peer(const std::string& name, const std::string* host,
                               std::uint16_t port);
  core::ref_ptr<peer> find_peer(std::string_view name);
  /// A proxy (owned reference) for actor `id` of `p`.
  actor* proxy_for(peer& p, std::uint64_t id, remote_proxy::role r);
  /// Exports a local actor: peers may now address it by id.
  std::uint64_t export_local(actor* a);
  actor_ref find_exported(std::uint64_t id);

  using waiter = std::shared_ptr<std::promise<expected<std::string>>>;
  void dial(core::ref_ptr<peer> p, tcp::endpoint ep, waiter w);
  void bind(const std::shared_ptr<connection>& c, const std::string& name, std::uint64_t inc,
            std::string host, std::uint16_t port);
  /// The connection `c` of `p` ended; if it was the primary, `p` is down.
  /// `graceful`: the peer said it was leaving; nothing is logged.
  void lost(const core::ref_ptr<peer>& p, const std::shared_ptr<connection>& c,
            const std::string& why, bool graceful = false);
  void schedule_redial(const core::ref_ptr<peer>& p);
  void add_watch(peer& p, std::uint64_t id);
  void local_down(std::uint64_t id, const exit_reason& reason);
  void send_control(peer& p, frame_kind kind, const std::vector<std::byte>& payload);
  void forget(connection* c);

  actor_system& sys_;
  const node_config cfg_;
  const std::uint64_t incarnation_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  asio_driver driver_{io_};
  bool driven_ = false;  // the system's workers run io_; otherwise thread_ does
  std::thread thread_;
  std::vector<std::shared_ptr<asio::steady_timer>> redials_;  // pending (I/O side)
  core::ref_ptr<drain> drain_;
  actor_ref service_;
  // Set once by shutdown(). acquire loads: a handler that sees it also sees
  // what shutdown did before (it only decides whether to start new work, so
  // a stale false just starts work that shutdown's close then ends).
  std::atomic<bool> stopping_{false};

  std::mutex peers_mu_;
  std::unordered_map<std::string, core::ref_ptr<peer>> peers_;
  std::condition_variable peer_up_;                 // with peers_mu_: a peer came up (await_peer)
  std::vector<std::shared_ptr<connection>> conns_;  // I/O thread only

  struct exported {
    actor_ref ref;
    std::vector<core::ref_ptr<peer>> watchers;
  };
  std::mutex exp_mu_;
  std::unordered_map<std::uint64_t, exported> exported_;

  std::mutex fac_mu_;
  std::unordered_map<std::string, node::factory> factories_;

  struct counters {
    std::atomic<std::uint64_t> accepted{0}, dialled{0}, handshakes_failed{0}, protocol_errors{0},
        peers_up{0}, node_downs{0}, messages_out{0}, messages_in{0}, writes{0}, unreachable{0},
        overloaded{0}, not_serializable{0};
  } stats_;
};

}  // namespace libactor::net::detail
