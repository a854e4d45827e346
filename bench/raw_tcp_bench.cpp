// The limit the remote scenarios are measured against: the same traffic
// over a plain TCP socket on loopback, with no framework. Frames are 32
// bytes, as a libactor message of one std::uint64_t is on the wire:
//
//     | length: u32 = 28 | sequence: u64 | padding: 20 bytes |
//
// remote-throughput: the sender writes frames in 64 KiB batches; the
// receiver parses every frame, checks the sequence, and answers one byte
// when it has all of them. remote-pingpong: one frame each way per round,
// blocking reads and writes, TCP_NODELAY.
//
//   raw_tcp_bench SCENARIO [key=value ...]

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

constexpr std::size_t frame_bytes = 32;

[[noreturn]] void fail(const std::string& msg) {
  bench::fail("raw_tcp_bench", msg);
}

int listen_any(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 1) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail("cannot listen");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fail("cannot connect");
  }
  no_delay(fd);
  return fd;
}

/// The server side's start: listen, publish the port, accept one client.
struct accepted {
  int listener;
  int fd;
};
accepted accept_one(const bench::server_ctl& ctl) {
  std::uint16_t port = 0;
  const int lfd = listen_any(port);
  ctl.publish(port);
  const int fd = ::accept(lfd, nullptr, nullptr);
  if (fd < 0) fail("accept failed");
  no_delay(fd);
  return {lfd, fd};
}

void write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const auto w = ::write(fd, b, n);
    if (w <= 0) fail("write failed");
    b += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_all(int fd, void* p, std::size_t n) {
  auto* b = static_cast<char*>(p);
  while (n > 0) {
    const auto r = ::read(fd, b, n);
    if (r <= 0) fail("read failed");
    b += r;
    n -= static_cast<std::size_t>(r);
  }
}

void put_frame(char* at, std::uint64_t seq) {
  const std::uint32_t len = frame_bytes - 4;
  std::memcpy(at, &len, 4);
  std::memcpy(at + 4, &seq, 8);
  std::memset(at + 12, 0, frame_bytes - 12);
}

int run_throughput(bench::args& a) {
  const auto messages = a.get("messages", bench::remote_messages);
  a.check_unused();
  if (messages == 0) fail("remote-throughput: messages must be > 0");
  double rate = 0;
  bench::run_two_processes(
      "raw_tcp_bench",
      [&](const bench::server_ctl& ctl) {
        const auto [lfd, fd] = accept_one(ctl);
        std::vector<char> buf(256 * 1024);
        std::size_t have = 0;
        std::uint64_t next = 0;
        while (next < messages) {
          const auto r = ::read(fd, buf.data() + have, buf.size() - have);
          if (r <= 0) fail("read failed");
          have += static_cast<std::size_t>(r);
          std::size_t pos = 0;
          while (have - pos >= 4) {
            std::uint32_t len = 0;
            std::memcpy(&len, buf.data() + pos, 4);
            if (len != frame_bytes - 4) fail("bad frame length");
            if (have - pos < 4 + len) break;
            std::uint64_t seq = 0;
            std::memcpy(&seq, buf.data() + pos + 4, 8);
            if (seq != next) fail("out of order");
            ++next;
            pos += 4 + len;
          }
          std::memmove(buf.data(), buf.data() + pos, have - pos);
          have -= pos;
        }
        const char ack = 1;
        write_all(fd, &ack, 1);
        ctl.wait_for_stop();
        ::close(fd);
        ::close(lfd);
      },
      [&](std::uint16_t port) {
        const int fd = connect_to(port);
        constexpr std::size_t batch = 64 * 1024 / frame_bytes;
        std::vector<char> buf(batch * frame_bytes);
        const auto t0 = bench::now_ns();
        for (std::uint64_t seq = 0; seq < messages;) {
          const std::uint64_t n = std::min<std::uint64_t>(batch, messages - seq);
          for (std::uint64_t i = 0; i < n; ++i) put_frame(buf.data() + i * frame_bytes, seq + i);
          write_all(fd, buf.data(), n * frame_bytes);
          seq += n;
        }
        char ack = 0;
        read_all(fd, &ack, 1);
        const auto t1 = bench::now_ns();
        rate = static_cast<double>(messages) * 1e9 / static_cast<double>(t1 - t0);
        ::close(fd);
      });
  bench::emit("raw-tcp", "remote-throughput", {{"messages", messages}}, rate, "msg/s");
  return 0;
}

int run_pingpong(bench::args& a) {
  const auto rounds = a.get("rounds", bench::remote_rounds);
  a.check_unused();
  if (rounds == 0) fail("remote-pingpong: rounds must be > 0");
  const std::uint64_t warmup = std::min<std::uint64_t>(1000, rounds);
  double ns = 0;
  bench::run_two_processes(
      "raw_tcp_bench",
      [&](const bench::server_ctl& ctl) {
        const auto [lfd, fd] = accept_one(ctl);
        char f[frame_bytes];
        for (std::uint64_t i = 0; i < warmup + rounds; ++i) {
          read_all(fd, f, frame_bytes);
          write_all(fd, f, frame_bytes);
        }
        ctl.wait_for_stop();
        ::close(fd);
        ::close(lfd);
      },
      [&](std::uint16_t port) {
        const int fd = connect_to(port);
        char f[frame_bytes];
        std::int64_t t0 = 0;
        for (std::uint64_t i = 0; i < warmup + rounds; ++i) {
          if (i == warmup) t0 = bench::now_ns();
          put_frame(f, i);
          write_all(fd, f, frame_bytes);
          read_all(fd, f, frame_bytes);
        }
        ns = static_cast<double>(bench::now_ns() - t0) / static_cast<double>(rounds);
        ::close(fd);
      });
  bench::emit("raw-tcp", "remote-pingpong", {{"rounds", rounds}}, ns, "ns");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    bench::usage("raw_tcp_bench");
    return 2;
  }
  const std::string scenario = argv[1];
  bench::args a{"raw_tcp_bench", argc, argv};
  if (scenario == "remote-throughput") return run_throughput(a);
  if (scenario == "remote-pingpong") return run_pingpong(a);
  std::cerr << "raw_tcp_bench: only remote-throughput and remote-pingpong\n";
  return 2;
}
