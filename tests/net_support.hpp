#pragma once
// Test helpers for the network layer: node configurations for tests, and a
// raw TCP peer's tools (connect, write, read frames with a deadline).

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libactor/net/frame.hpp>
#include <libactor/net/handshake.hpp>
#include <libactor/net/node.hpp>
#include <libactor/net/wire.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace test {

/// A port on 127.0.0.1 where nothing listens (bound, then closed): a dial
/// there is refused at once.
inline std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A socket listening on `ip`:(a free port) with `backlog`; the port is
/// stored in `port`.
inline int listen_on(const char* ip, int backlog, std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, ip, &a.sin_addr) == 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  REQUIRE(::listen(fd, backlog) == 0);
  return fd;
}

/// A TCP connection to 127.0.0.1:`port` from `from` (any 127.0.0.0/8
/// address is this host's).
inline int connect_from(const char* from, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, from, &local.sin_addr) == 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  return fd;
}

/// A node configuration with short heartbeats and redials, so that failure
/// tests finish quickly, and logging off (tests check what they expect).
inline libactor::net::node_config node_config(std::string name, std::string secret) {
  using namespace std::chrono_literals;
  libactor::net::node_config c;
  c.name = std::move(name);
  c.secret = std::move(secret);
  c.heartbeat_interval = 100ms;
  c.heartbeat_timeout = 1500ms;
  c.reconnect_min = 20ms;
  c.reconnect_max = 300ms;
  c.log = [](std::string_view) {};
  return c;
}

/// The wire id under which `n` exports its actor `h` (exporting it, as
/// sending its handle in a message would): what a raw peer addresses.
/// Reads the handle's documented encoding (docs/protocol.md).
inline std::uint64_t wire_id(libactor::net::node& n, const libactor::actor_ref& h) {
  std::vector<std::byte> bytes;
  libactor::net::writer w{bytes, n.context()};
  libactor::net::wire_encode(w, h);
  libactor::net::reader r{bytes, libactor::net::decode_limits{}};
  std::uint8_t tag = 0;
  std::string node, host;
  std::uint64_t incarnation = 0, id = 0;
  std::uint16_t port = 0;
  REQUIRE(r.fixed(tag));
  REQUIRE(tag == 1);
  REQUIRE(libactor::net::wire_decode(r, node));
  REQUIRE(r.fixed(incarnation));
  REQUIRE(libactor::net::wire_decode(r, host));
  REQUIRE(r.fixed(port));
  REQUIRE(r.varint(id));
  REQUIRE(r.remaining() == 0);
  return id;
}

/// A TCP connection to 127.0.0.1:port.
inline int raw_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

/// Writes all of `b` unless the peer closes first (the test checks that).
inline void write_all(int fd, const std::vector<std::byte>& b) {
  std::size_t off = 0;
  while (off < b.size()) {
    const auto n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

/// Completes this node's handshake (in the clear, under `secret`) as the
/// acceptor `name` on the accepted socket `c`; false when it failed or the
/// dialler went quiet for 5 s.
inline bool accept_handshake(int c, const std::string& name, const std::string& secret) {
  libactor::net::handshake_config hc;
  hc.node_name = name;
  hc.protect_frames = false;
  hc.secret = secret;
  hc.version = libactor::net::protocol_version;
  libactor::net::handshake h(hc, libactor::net::handshake::role::acceptor);
  write_all(c, h.start());
  std::array<std::byte, 4096> buf;
  while (h.current() == libactor::net::handshake::state::in_progress) {
    pollfd q{c, POLLIN, 0};
    if (::poll(&q, 1, 5000) != 1) return false;
    const auto n = ::read(c, buf.data(), std::min(buf.size(), h.room()));
    if (n <= 0) return false;
    write_all(c, h.feed(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n))));
  }
  return h.current() == libactor::net::handshake::state::done;
}

/// Copies bytes between `a` and `b`, both ways, until either side ends or
/// `stop` is set (a relay's pump).
inline void pump(int a, int b, const std::atomic<bool>& stop) {
  std::array<std::byte, 65536> buf;
  // relaxed: the flag only ends the loop; it guards no data.
  for (bool done = false; !done && !stop.load(std::memory_order_relaxed);) {
    pollfd ps[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(ps, 2, 50) <= 0) continue;
    for (int i = 0; i < 2 && !done; ++i) {
      if (ps[i].revents == 0) continue;
      const auto n = ::read(ps[i].fd, buf.data(), buf.size());
      if (n <= 0) {
        done = true;
      } else {
        write_all(i == 0 ? b : a, std::vector<std::byte>(buf.begin(), buf.begin() + n));
      }
    }
  }
}

inline std::vector<std::byte> frame_of(libactor::net::frame_kind k,
                                       const std::vector<std::byte>& payload) {
  std::vector<std::byte> out;
  libactor::net::append_frame(out, k, payload);
  return out;
}

/// The wire encoding of `v` (without a node: handles must be empty).
template <class T>
std::vector<std::byte> encoded(const T& v) {
  std::vector<std::byte> out;
  libactor::net::writer w{out};
  libactor::net::wire_encode(w, v);
  return out;
}

/// A `message` frame as a raw peer writes it (docs/protocol.md, "message"):
/// kind (0 user, 1 response, 2 error reply, 3 exit, 5 stop), receiver and
/// sender wire ids, request key, type id, then the payload.
inline std::vector<std::byte> message_frame(std::uint8_t kind, std::uint64_t receiver,
                                            std::uint64_t sender, std::uint64_t request,
                                            std::uint64_t type,
                                            const std::vector<std::byte>& payload) {
  std::vector<std::byte> msg;
  libactor::net::writer m{msg};
  m.fixed(kind);
  m.varint(receiver);
  m.varint(sender);
  m.fixed(request);
  m.fixed(type);
  msg.insert(msg.end(), payload.begin(), payload.end());
  return frame_of(libactor::net::frame_kind::message, msg);
}

/// The encoding of a handle to actor `wire_id` of node `node` (incarnation
/// `inc`) listening on `host`:`port`, as a peer would write it.
inline std::vector<std::byte> handle_bytes(const std::string& node, std::uint64_t inc,
                                           const std::string& host, std::uint16_t port,
                                           std::uint64_t wire_id) {
  std::vector<std::byte> out;
  libactor::net::writer w{out};
  w.fixed(std::uint8_t{1});
  libactor::net::wire_encode(w, node);
  w.fixed(inc);
  libactor::net::wire_encode(w, host);
  w.fixed(port);
  w.varint(wire_id);
  return out;
}

/// A node_info frame: incarnation `inc`, listening on 127.0.0.1:1.
inline std::vector<std::byte> node_info_frame(std::uint64_t inc) {
  std::vector<std::byte> info;
  libactor::net::writer w{info};
  w.fixed(inc);
  libactor::net::wire_encode(w, std::string("127.0.0.1"));
  w.fixed(std::uint16_t{1});
  return frame_of(libactor::net::frame_kind::node_info, info);
}

/// A raw socket that authenticates with `secret` as node `name` and sends
/// node_info with `incarnation`; returns once the node answered with its
/// own node_info. It writes frames in the clear: the node under test needs
/// protect_frames = false.
inline int raw_peer(std::uint16_t port, const std::string& name, std::uint64_t incarnation,
                    const std::string& secret);

/// Reads exactly `n` bytes from `fd` into `out` before `deadline`; false on
/// end of stream, error or deadline. It never reads past the `n` bytes, so
/// whatever follows stays in the socket for the next call.
inline bool read_exact(int fd, std::byte* out, std::size_t n,
                       std::chrono::steady_clock::time_point deadline) {
  while (n > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready != 1) return false;
    const auto got = ::read(fd, out, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

/// Reads frames from `fd` until one satisfies `want`, with a deadline; it
/// splits frames itself, so that it reads any kind. It reads each frame
/// exactly (header, then body), so calling it again on the same socket
/// continues at the next frame.
template <class Pred>
std::optional<libactor::net::frame> next_frame(
    int fd, Pred want, std::chrono::milliseconds d = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (true) {
    std::byte head[5];
    if (!read_exact(fd, head, sizeof head, deadline)) return std::nullopt;
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(head[i]) << (8 * i);
    if (len == 0) return std::nullopt;  // not a frame: the length counts the kind byte
    libactor::net::frame f{static_cast<libactor::net::frame_kind>(head[4]),
                           std::vector<std::byte>(len - 1)};
    if (!read_exact(fd, f.payload.data(), f.payload.size(), deadline)) return std::nullopt;
    if (want(f)) return f;
  }
}

/// True once the peer closes `fd` (end of stream or reset) within `d`.
inline bool closed_by_peer(int fd, std::chrono::milliseconds d = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return true;
  }
}

/// Waits until `pred()` holds, checking every few milliseconds, or the
/// deadline passes (for conditions no event announces: counters, /proc).
template <class Pred>
bool eventually(Pred pred, std::chrono::steady_clock::duration d = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling interval, with a deadline
  }
  return true;
}

inline int raw_peer(std::uint16_t port, const std::string& name, std::uint64_t incarnation,
                    const std::string& secret) {
  const int fd = raw_connect(port);
  libactor::net::handshake_config c;
  c.node_name = name;
  c.protect_frames = false;  // the node under test must not seal either
  c.secret = secret;
  c.version = libactor::net::protocol_version;
  libactor::net::handshake h(c, libactor::net::handshake::role::initiator);
  write_all(fd, h.start());
  char buf[4096];
  while (h.current() == libactor::net::handshake::state::in_progress) {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    const auto n = ::read(fd, buf, sizeof buf);
    REQUIRE(n > 0);
    write_all(fd, h.feed(std::span<const std::byte>(reinterpret_cast<std::byte*>(buf),
                                                    static_cast<std::size_t>(n))));
  }
  REQUIRE(h.current() == libactor::net::handshake::state::done);
  write_all(fd, node_info_frame(incarnation));
  REQUIRE(next_frame(fd, [](const libactor::net::frame& f) {
    return f.kind == libactor::net::frame_kind::node_info;
  }));
  return fd;
}

}  // namespace test
