#pragma once
// Test helpers for the network layer: node configurations for tests, and a
// raw TCP peer's tools (connect, write, read frames with a deadline).

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libactor/net/frame.hpp>
#include <libactor/net/node.hpp>
#include <libactor/net/wire.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace test {

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

inline std::vector<std::byte> frame_of(libactor::net::frame_kind k,
                                       const std::vector<std::byte>& payload) {
  std::vector<std::byte> out;
  libactor::net::append_frame(out, k, payload);
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

/// Reads frames from `fd` until one satisfies `want`, with a deadline; it
/// splits frames itself, so that it reads any kind.
template <class Pred>
std::optional<libactor::net::frame> next_frame(
    int fd, Pred want, std::chrono::milliseconds d = std::chrono::seconds(10)) {
  std::vector<std::byte> in;
  const auto deadline = std::chrono::steady_clock::now() + d;
  char buf[4096];
  while (true) {
    while (in.size() >= 5) {
      std::uint32_t len = 0;
      for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(in[i]) << (8 * i);
      if (in.size() < 4 + std::size_t{len}) break;
      libactor::net::frame f{static_cast<libactor::net::frame_kind>(in[4]),
                             std::vector<std::byte>(in.begin() + 5, in.begin() + 4 + len)};
      in.erase(in.begin(), in.begin() + 4 + len);
      if (want(f)) return f;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return std::nullopt;
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    const auto* b = reinterpret_cast<const std::byte*>(buf);
    in.insert(in.end(), b, b + n);
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

}  // namespace test
