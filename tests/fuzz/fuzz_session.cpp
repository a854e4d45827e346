// libFuzzer target: the session, through a real node (frames in the clear:
// sealed records have their own fuzzer). Each input is a new
// incarnation of a peer that completes a valid handshake over loopback TCP,
// exchanges node_info, and then sends the input as a sequence of frames
// (any kind, including unknown ones, with arbitrary payloads), followed by a
// probe (a lookup request to the node's service). The input is done when
// the probe is answered or the node closes the connection; a node that does
// neither within 5 s is a finding (it stopped serving), as is any crash,
// leak, overflow or UB in the node's threads.
//
// Input layout, repeated: kind (1 byte), length (2 bytes, little-endian,
// taken modulo 1024), payload (that many bytes, or what is left). A kind byte
// of 0xff is replaced by a message frame whose header names an actor the
// node has (the echo actor), so that deeper decoding is reached often.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libactor/net/handshake.hpp>
#include <libactor/net/node.hpp>
#include <libactor/net/wire.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace net = libactor::net;
using namespace std::chrono_literals;

const std::string secret = "fuzz-session-secret-0123456789-5f1d2a7e9b3c4d60a1b2";

struct target {
  libactor::actor_system sys{libactor::system_config{
      .workers = 2, .log_failures = false, .log_unhandled = false, .log_dead_letters = false}};
  std::optional<net::node> node;
  libactor::actor_ref echo;
  std::uint64_t echo_id = 0;
  target() {
    net::node_config c;
    c.name = "target";
    c.secret = secret;
    // In the clear: the input reaches the session as written (sealed records
    // are fuzzed on their own, fuzz_net_input).
    c.protect_frames = false;
    c.max_frame_size = 1 << 16;
    c.log = [](std::string_view) {};
    node.emplace(sys, c);
    echo = sys.spawn([](libactor::actor&) -> libactor::behavior {
      return {[](const std::string& s) { return s; }, [](std::int64_t v) { return v + 1; }};
    });
    (void)sys.register_name("echo", echo);
    // Exports the echo actor, as sending its handle would, and reads the
    // wire id the handle carries (the id peers address it by).
    std::vector<std::byte> exported;
    net::writer w{exported, node->context()};
    net::wire_encode(w, echo);
    net::reader r{exported, net::decode_limits{}};
    std::uint8_t tag = 0;
    std::string name, host;
    std::uint64_t inc = 0;
    std::uint16_t port = 0;
    if (!r.fixed(tag) || tag != 1 || !net::wire_decode(r, name) || !r.fixed(inc) ||
        !net::wire_decode(r, host) || !r.fixed(port) || !r.varint(echo_id)) {
      std::fprintf(stderr, "cannot read the echo actor's wire id\n");
      std::abort();
    }
  }
};

target& the_target() {
  static target* t = new target();  // never destroyed: the fuzzer exits without unwinding
  return *t;
}

void write_all(int fd, const std::vector<std::byte>& b) {
  std::size_t off = 0;
  while (off < b.size()) {
    const auto n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

/// Reads until `done(buffered bytes)` or EOF or the deadline; false on deadline.
template <class Done>
bool read_until(int fd, std::vector<std::byte>& in, Done done, std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  char buf[8192];
  while (!done(in)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return true;  // closed by the node
    const auto* b = reinterpret_cast<const std::byte*>(buf);
    in.insert(in.end(), b, b + n);
  }
  return true;
}

/// Whether `in` holds a message frame answering request `key`.
bool has_answer(const std::vector<std::byte>& in, std::uint64_t key) {
  std::size_t pos = 0;
  while (in.size() - pos >= 5) {
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(in[pos + i]) << (8 * i);
    if (in.size() - pos - 4 < len) return false;
    if (static_cast<net::frame_kind>(in[pos + 4]) == net::frame_kind::message) {
      net::reader r{std::span<const std::byte>(in.data() + pos + 5, len - 1), net::decode_limits{}};
      std::uint8_t kind = 0;
      std::uint64_t receiver = 0, sender = 0, request = 0;
      if (r.fixed(kind) && r.varint(receiver) && r.varint(sender) && r.fixed(request) &&
          request == key) {
        return true;
      }
    }
    pos += 4 + len;
  }
  return false;
}

std::vector<std::byte> message_frame(std::uint8_t kind, std::uint64_t receiver,
                                     std::uint64_t request, std::uint64_t type,
                                     std::span<const std::byte> payload) {
  std::vector<std::byte> body;
  net::writer w{body};
  w.fixed(kind);
  w.varint(receiver);
  w.varint(0);
  w.fixed(request);
  w.fixed(type);
  body.insert(body.end(), payload.begin(), payload.end());
  std::vector<std::byte> f;
  net::append_frame(f, net::frame_kind::message, body);
  return f;
}

std::atomic<std::uint64_t> incarnation{1'000'000};

}  // namespace

namespace {
/// How an input ended: the node answered the probe, or closed the connection.
enum class outcome { answered, closed };
outcome run_one(const std::uint8_t* data, std::size_t size);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Once: an empty input must reach the session and get the probe answered,
  // or every input would end at the connection's first frame and the
  // fuzzer would test nothing past it.
  static const bool reaches_session = run_one(nullptr, 0) == outcome::answered;
  if (!reaches_session) {
    std::fprintf(stderr, "an empty input did not get the probe answered: the setup is broken\n");
    std::abort();
  }
  (void)run_one(data, size);
  return 0;
}

namespace {
outcome run_one(const std::uint8_t* data, std::size_t size) {
  auto& t = the_target();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(t.node->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  const int one = 1;  // small writes go at once (no wait for the node's delayed ACK)
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  // A valid handshake and node_info exchange.
  net::handshake_config hc;
  hc.node_name = "fuzz-peer";
  hc.secret = secret;
  hc.protect_frames = false;
  net::handshake h(hc, net::handshake::role::initiator);
  write_all(fd, h.start());
  std::vector<std::byte> in;
  char buf[4096];
  while (h.current() == net::handshake::state::in_progress) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) std::abort();
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) std::abort();
    write_all(fd, h.feed(std::span<const std::byte>(reinterpret_cast<std::byte*>(buf),
                                                    static_cast<std::size_t>(n))));
  }
  if (h.current() != net::handshake::state::done) std::abort();
  std::vector<std::byte> info;
  net::writer iw{info};
  iw.fixed(incarnation.fetch_add(1, std::memory_order_relaxed));  // relaxed: a unique number
  net::wire_encode(iw, std::string("127.0.0.1"));
  iw.fixed(std::uint16_t{1});
  std::vector<std::byte> out;
  net::append_frame(out, net::frame_kind::node_info, info);

  // The input, as frames.
  std::size_t i = 0;
  while (i < size) {
    const std::uint8_t kind = data[i++];
    std::size_t len = 0;
    if (i + 2 <= size) {
      len = (data[i] | (std::size_t{data[i + 1]} << 8)) % 1024;
      i += 2;
    }
    len = std::min(len, size - i);
    const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(data + i), len);
    i += len;
    if (kind == 0xff) {
      // A message to the echo actor: kind and type from the payload's first
      // bytes, so user messages, requests and answers of real types occur.
      static const std::uint64_t types[] = {
          net::type_id_of("string"),          net::type_id_of("i64"),
          net::type_id_of("libactor.error"),  net::type_id_of("libactor.exit"),
          net::type_id_of("libactor.lookup"), net::type_id_of("libactor.exit_reason")};
      const std::uint8_t k = payload.empty() ? 0 : static_cast<std::uint8_t>(payload[0]) % 6;
      const std::uint64_t type =
          types[payload.size() > 1 ? static_cast<std::uint8_t>(payload[1]) % 6 : 0];
      const auto rest = payload.size() > 2 ? payload.subspan(2) : std::span<const std::byte>{};
      const auto f = message_frame(
          k,
          k == 0 && !payload.empty() && (payload[0] & std::byte{0x80}) != std::byte{0} ? 0
                                                                                       : t.echo_id,
          payload.size() > 3 ? static_cast<std::uint64_t>(payload[3]) : 0, type, rest);
      out.insert(out.end(), f.begin(), f.end());
    } else {
      net::append_frame(out, static_cast<net::frame_kind>(kind), payload);
    }
  }

  // The probe: a lookup the service must answer, unless the input ended the
  // connection.
  const std::uint64_t key =
      0x7072'6f62'6500'0000ull |
      (incarnation.load(std::memory_order_relaxed) & 0xffff);  // relaxed: a tag
  std::vector<std::byte> probe_payload;
  net::writer pw{probe_payload};
  net::wire_encode(pw, std::string("echo"));
  const auto probe = message_frame(0, 0, key, net::type_id_of("libactor.lookup"), probe_payload);
  out.insert(out.end(), probe.begin(), probe.end());
  write_all(fd, out);
  if (!read_until(
          fd, in, [key](const std::vector<std::byte>& b) { return has_answer(b, key); }, 5s)) {
    std::fprintf(stderr, "the node neither answered the probe nor closed the connection\n");
    std::abort();
  }
  ::close(fd);
  return has_answer(in, key) ? outcome::answered : outcome::closed;
}
}  // namespace
