// Real processes on 127.0.0.1: this test process is node "a"; the other
// nodes are libactor-node child processes (examples/node). Covered: send,
// ask, monitor and link across processes; a handle passed on to a third
// node and used for the reply; one million ordered messages; kill -9 of a
// peer and its restart; raw sockets sending each kind of bad input while a
// good peer streams. Every wait has a deadline; nothing sleeps.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libactor/net/handshake.hpp>
#include <libactor/net/node.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "net_support.hpp"
#include "node_actors.hpp"
#include "support.hpp"

using namespace libactor;
using namespace std::chrono_literals;
namespace na = node_actors;

namespace {

const std::string secret = "cluster-secret-for-tests-5f1d2a7e9b3c4d60a1b2";

std::string secret_file() {
  static const std::string path = [] {
    const std::string p = "/tmp/libactor-test-secret-" + std::to_string(::getpid());
    std::ofstream(p) << secret << "\n";
    return p;
  }();
  return path;
}

/// A libactor-node child process. Its stdout is read line by line; its
/// stderr goes to a file the test can read.
class child_node {
 public:
  child_node(std::string name, std::uint16_t port = 0, std::vector<std::string> extra = {})
      : name_(std::move(name)) {
    static std::atomic<int> serial{0};  // two processes may share a node name
    err_path_ = "/tmp/libactor-test-" + std::to_string(::getpid()) + "-" + name_ + "-" +
                std::to_string(serial.fetch_add(1)) + ".err";
    int out[2];
    REQUIRE(::pipe(out) == 0);
    std::vector<std::string> args{
        LIBACTOR_NODE_PROGRAM, "--name",         name_, "--secret-file", secret_file(), "--port",
        std::to_string(port),  "--heartbeat-ms", "100", "--timeout-ms",  "1500"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    const std::string first = line();
    const auto colon = first.rfind(':');
    REQUIRE(first.rfind("node " + name_ + " listening on", 0) == 0);
    port_ = static_cast<std::uint16_t>(std::stoi(first.substr(colon + 1)));
  }
  ~child_node() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      // A clean shutdown; under sanitizers, a report would fail the exit.
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    const std::string err = stderr_text();
    CHECK(err.find("Sanitizer") == std::string::npos);
    CHECK(err.find("runtime error") == std::string::npos);
    ::close(out_);
    ::unlink(err_path_.c_str());
  }
  child_node(const child_node&) = delete;
  child_node& operator=(const child_node&) = delete;

  /// The next line the child printed, waiting at most `d`.
  std::string line(std::chrono::milliseconds d = 30s) {
    std::string s;
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      REQUIRE(left.count() > 0);
      pollfd p{out_, POLLIN, 0};
      REQUIRE(::poll(&p, 1, static_cast<int>(left.count())) == 1);
      char c = 0;
      REQUIRE(::read(out_, &c, 1) == 1);
      if (c == '\n') return s;
      s += c;
    }
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  [[nodiscard]] std::string stderr_text() const {
    std::ifstream in(err_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  std::string name_;
  std::string err_path_;
  pid_t pid_ = -1;
  int out_ = -1;
  std::uint16_t port_ = 0;
};

net::node_config node_cfg(std::string name) {
  return test::node_config(std::move(name), secret);
}

/// Node "a", in this process.
struct here {
  actor_system sys{system_config{.workers = 2}};
  std::optional<net::node> node;
  /// `protect_frames`: false to meet a child started with --no-frame-protection.
  explicit here(bool protect_frames = true) {
    auto c = node_cfg("a");
    c.protect_frames = protect_frames;
    node.emplace(sys, c);
  }
  ~here() { node.reset(); }
};

/// Streams `total` items tagged `tag` to `sink`, asking the sink for its
/// report after every `batch` (flow control), and records the last report.
behavior streamer(actor& self, actor_ref sink, std::uint64_t tag, std::uint64_t total,
                  std::uint64_t batch, test::recorder<na::sink_report>* done) {
  struct go {};
  self.send_after(duration::zero(), go{});
  auto sent = std::make_shared<std::uint64_t>(0);
  return {[&self, sink, tag, total, batch, done, sent](go) -> task<void> {
    while (*sent < total) {
      const std::uint64_t end = std::min(total, *sent + batch);
      for (; *sent < end; ++*sent) {
        if (sink.send(na::item{tag, *sent}) != send_status::ok) {
          done->push(na::sink_report{*sent, *sent, false});
          co_return;
        }
      }
      auto r = co_await self.ask<na::sink_report>(sink, na::sink_query{tag}, 60s);
      if (!r) {
        done->push(na::sink_report{0, 0, false});
        co_return;
      }
      if (*sent == total) done->push(*r);
    }
  }};
}

/// Runs a client handshake over a raw socket. Returns the handshake (its
/// state tells whether the node accepted).
net::handshake raw_handshake(int fd, const std::string& with_secret, std::uint16_t version) {
  net::handshake_config c;
  c.node_name = "raw-client";
  c.protect_frames = false;  // raw sockets write frames in the clear
  c.secret = with_secret;
  c.version = version;
  net::handshake h(c, net::handshake::role::initiator);
  test::write_all(fd, h.start());
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (h.current() == net::handshake::state::in_progress &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    test::write_all(fd, h.feed(std::span<const std::byte>(reinterpret_cast<std::byte*>(buf),
                                                          static_cast<std::size_t>(n))));
  }
  return h;
}

/// A raw socket that passed the handshake with the right secret and sent
/// its node_info: from here on it may send data frames.
int authenticated_raw_peer(std::uint16_t port, std::uint64_t incarnation, int receive_buffer = 0) {
  const int fd = test::raw_connect(port);
  if (receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  auto h = raw_handshake(fd, secret, net::protocol_version);
  REQUIRE(h.current() == net::handshake::state::done);
  test::write_all(fd, test::node_info_frame(incarnation));
  return fd;
}

}  // namespace

TEST_CASE("libactor-node --gen-secret prints a new 256-bit secret; a weak secret file is refused",
          "[cluster]") {
  auto run = [](const std::string& args) {
    std::string out;
    FILE* p = ::popen((std::string(LIBACTOR_NODE_PROGRAM) + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    const int status = ::pclose(p);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  const auto [rc1, first] = run("--gen-secret");
  const auto [rc2, second] = run("--gen-secret");
  CHECK(rc1 == 0);
  CHECK(rc2 == 0);
  REQUIRE(first.size() == 65);
  CHECK(first.back() == '\n');
  CHECK(first.find_first_not_of("0123456789abcdef\n") == std::string::npos);
  CHECK(first != second);
  const std::string weak = "/tmp/libactor-weak-secret-" + std::to_string(::getpid());
  std::ofstream(weak) << "password\n";
  const auto [rc3, refused] = run("--name x --secret-file " + weak);
  std::remove(weak.c_str());
  CHECK(rc3 == 2);
  CHECK(refused.find("at least 128 are needed") != std::string::npos);
  CHECK(refused.find("--gen-secret") != std::string::npos);
}

TEST_CASE("two processes: send, ask, monitor, link, handle in a message", "[cluster]") {
  test::recorder<std::string> seen;
  child_node b("b");
  here a;
  auto peer = a.node->connect("127.0.0.1", b.port(), 30s);
  REQUIRE(peer);
  CHECK(*peer == "b");

  auto echo = a.node->lookup("b", "echo", 30s);
  REQUIRE(echo);
  auto r = echo->ask<std::string>(std::string("hello"), 30s).get();
  REQUIRE(r);
  CHECK(*r == "hello");

  // A handle inside a message: b's echo answers our local actor.
  auto local = a.sys.spawn([&](actor&) -> behavior {
    return {
        [&](const na::pong& p) { seen.push("pong " + std::to_string(p.n) + " from " + p.from); }};
  });
  REQUIRE(echo->send(na::ping{5, local}) == send_status::ok);
  REQUIRE(seen.wait_for_size(1));
  CHECK(seen.items()[0] == "pong 5 from b");

  // Monitor and link actors spawned on b for the purpose.
  auto victim1 = a.node->spawn_remote("b", "echo", 30s);
  auto victim2 = a.node->spawn_remote("b", "echo", 30s);
  REQUIRE(victim1);
  REQUIRE(victim2);
  test::counter watching;
  auto watcher = a.sys.spawn([&, v1 = *victim1, v2 = *victim2](actor& self) -> behavior {
    self.monitor(v1);
    self.trap_exit(true);
    self.link(v2);
    watching.add();
    return {[&](const down_msg& d) { seen.push("down " + d.reason.to_string()); },
            [&](const exit_msg& e) { seen.push("exit " + e.reason.to_string()); }};
  });
  REQUIRE(watching.wait_for_at_least(1));
  // The watch frames travel before these asks on the same connection.
  REQUIRE(victim1->ask<std::string>(std::string("x"), 30s).get());
  REQUIRE(victim2->ask<std::string>(std::string("y"), 30s).get());
  victim1->send(na::stop_with{"first"});
  victim2->send(na::stop_with{"second"});
  REQUIRE(seen.wait_for_size(3));
  auto items = seen.items();
  std::sort(items.begin() + 1, items.end());
  CHECK(items[1] == "down error: first");
  CHECK(items[2] == "exit error: second");
  (void)watcher;
}

TEST_CASE("three processes: a handle passed to a third node is used for the reply", "[cluster]") {
  test::recorder<std::string> seen;
  child_node b("b");
  child_node c("c");
  here a;
  REQUIRE(a.node->connect("127.0.0.1", b.port(), 30s));
  REQUIRE(a.node->connect("127.0.0.1", c.port(), 30s));
  auto relay_b = *a.node->lookup("b", "relay", 30s);
  auto echo_c = *a.node->lookup("c", "echo", 30s);
  auto local = a.sys.spawn([&](actor&) -> behavior {
    return {[&](const na::pong& p) { seen.push(std::to_string(p.n) + " from " + p.from); }};
  });
  // b receives handles to c's echo and to our actor; it connects to c and
  // pings it; c connects to us to answer.
  for (int i = 0; i < 3; ++i)
    REQUIRE(relay_b.send(na::forward{echo_c, i, local}) == send_status::ok);
  REQUIRE(seen.wait_for_size(3));
  CHECK(seen.items() == std::vector<std::string>{"0 from c", "1 from c", "2 from c"});
}

TEST_CASE("one million messages across processes: none lost, all in order", "[cluster]") {
  test::recorder<na::sink_report> done;
  child_node b("b");
  here a;
  REQUIRE(a.node->connect("127.0.0.1", b.port(), 30s));
  auto sink = *a.node->lookup("b", "sink", 30s);
  const std::uint64_t total = test::scaled(1'000'000);
  a.sys.spawn([&](actor& self) { return streamer(self, sink, 1, total, 50'000, &done); });
  REQUIRE(done.wait_for_size(1, 300s));
  const auto rep = done.items()[0];
  CHECK(rep.count == total);
  CHECK(rep.next == total);
  CHECK(rep.in_order);
}

TEST_CASE("kill -9 of a peer: monitors fire, asks fail, others keep working, restart resumes",
          "[cluster]") {
  test::recorder<std::string> seen;
  std::optional<child_node> b;
  b.emplace("b");
  const std::uint16_t b_port = b->port();
  child_node c("c");
  here a;
  REQUIRE(a.node->connect("127.0.0.1", b_port, 30s));
  REQUIRE(a.node->connect("127.0.0.1", c.port(), 30s));
  auto echo_b = *a.node->lookup("b", "echo", 30s);
  auto echo_c = *a.node->lookup("c", "echo", 30s);
  test::counter ready;
  auto watcher = a.sys.spawn([&, echo_b](actor& self) -> behavior {
    self.monitor(echo_b);
    ready.add();
    return {[&](const down_msg& d) {
              seen.push("down " + std::to_string(static_cast<int>(d.reason.code())));
            },
            [&](const net::node_down_msg& d) { seen.push("node down " + d.node); },
            [&](const net::node_up_msg& u) { seen.push("node up " + u.node); },
            [&, echo_b](na::hold) -> task<void> {
              auto r = co_await self.ask<unit_t>(echo_b, na::hold{}, 120s);
              seen.push(r ? std::string("held answered")
                          : "ask " + std::string(to_string(r.err().code)));
            }};
  });
  REQUIRE(ready.wait_for_at_least(1));
  a.node->monitor_node("b", watcher);
  watcher.send(na::hold{});  // an ask b will never answer
  // The monitor and the held ask are on b before the kill: a later ask on
  // the same connection has its answer.
  REQUIRE(echo_b.ask<std::string>(std::string("sync"), 30s).get());

  b->kill9();
  REQUIRE(seen.wait_for_size(3, 30s));
  {
    auto items = seen.items();
    std::sort(items.begin(), items.end());
    CHECK(items[0] == "ask node_down");
    CHECK(items[1] == "down " + std::to_string(static_cast<int>(exit_code::node_down)));
    CHECK(items[2] == "node down b");
  }
  // The dead node's handle refuses at once; the other peer works.
  CHECK(echo_b.send(std::string("lost")) == send_status::dead_letter);
  auto rc = echo_c.ask<std::string>(std::string("still here"), 30s).get();
  REQUIRE(rc);
  CHECK(*rc == "still here");

  // Restart b on the same port: node a redials it.
  b.reset();
  b.emplace("b", b_port);
  REQUIRE(seen.wait_for_size(4, 60s));
  CHECK(seen.items()[3] == "node up b");
  auto echo_b2 = a.node->lookup("b", "echo", 30s);
  REQUIRE(echo_b2);
  auto rb = echo_b2->ask<std::string>(std::string("again"), 30s).get();
  REQUIRE(rb);
  CHECK(*rb == "again");
}

TEST_CASE("a silent peer is declared down by the heartbeat timeout and comes back", "[cluster]") {
  test::recorder<std::string> seen;
  child_node b("b");
  here a;  // heartbeat timeout 1.5 s (node_cfg)
  REQUIRE(a.node->connect("127.0.0.1", b.port(), 30s));
  auto echo_b = *a.node->lookup("b", "echo", 30s);
  test::counter ready;
  auto watcher = a.sys.spawn([&, echo_b](actor& self) -> behavior {
    self.monitor(echo_b);
    ready.add();
    return {[&](const down_msg& d) { seen.push("down " + d.reason.text()); },
            [&](const net::node_down_msg& d) { seen.push("node down " + d.reason); },
            [&](const net::node_up_msg&) { seen.push("node up"); }};
  });
  REQUIRE(ready.wait_for_at_least(1));
  a.node->monitor_node("b", watcher);
  REQUIRE(echo_b.ask<std::string>(std::string("sync"), 30s).get());

  // Stopped, b's socket stays open but nothing comes from it.
  b.signal(SIGSTOP);
  const auto stopped_at = std::chrono::steady_clock::now();
  REQUIRE(seen.wait_for_size(2, 30s));
  const auto detected_after = std::chrono::steady_clock::now() - stopped_at;
  auto items = seen.items();
  std::sort(items.begin(), items.end());
  CHECK(items[0].find("no frame within the heartbeat timeout") != std::string::npos);
  CHECK(items[1] == "node down no frame within the heartbeat timeout");
  // Detected after the timeout, and not much later (generous for a loaded machine).
  CHECK(detected_after >= 1500ms);
  CHECK(detected_after < 10s);

  // Resumed, b finds its connection closed; a redials it.
  b.signal(SIGCONT);
  REQUIRE(seen.wait_for_size(3, 60s));
  CHECK(seen.items()[2] == "node up");
  auto again = a.node->lookup("b", "echo", 30s);
  REQUIRE(again);
  CHECK(again->ask<std::string>(std::string("back"), 30s).get().value() == "back");
}

TEST_CASE("bad input on raw sockets: each connection is dropped, the node serves on", "[cluster]") {
  test::recorder<na::sink_report> done;
  // Every refusal's line, unlimited; frames in the clear, so that the raw
  // sockets below reach the session's checks (sealed records have tests of
  // their own).
  child_node b("b", 0, {"--log-lines", "0", "--no-frame-protection"});
  here a(false);
  REQUIRE(a.node->connect("127.0.0.1", b.port(), 30s));
  auto sink = *a.node->lookup("b", "sink", 30s);
  auto stats = *a.node->lookup("b", "stats", 30s);
  // A good peer streams throughout.
  const std::uint64_t total = test::scaled(200'000);
  a.sys.spawn([&](actor& self) { return streamer(self, sink, 7, total, 2'000, &done); });

  // 1. Garbage.
  {
    const int fd = test::raw_connect(b.port());
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    test::write_all(
        fd, std::vector<std::byte>(reinterpret_cast<const std::byte*>(junk.data()),
                                   reinterpret_cast<const std::byte*>(junk.data()) + junk.size()));
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 2. An oversized length, before the handshake.
  {
    const int fd = test::raw_connect(b.port());
    test::write_all(
        fd, {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0x7f}, std::byte{1}});
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 3. A malformed handshake: a hello frame whose payload is truncated.
  {
    const int fd = test::raw_connect(b.port());
    test::write_all(fd, test::frame_of(net::frame_kind::hello, {std::byte{1}, std::byte{2}}));
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 4. A wrong secret: refused with a clear error.
  {
    const int fd = test::raw_connect(b.port());
    auto h = raw_handshake(fd, "not-the-cluster-secret-0123456789-5f1d2a7e9b3c4d60a1b2",
                           net::protocol_version);
    CHECK(h.current() == net::handshake::state::failed);
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 5. A wrong protocol version: the error names both versions.
  {
    const int fd = test::raw_connect(b.port());
    auto h = raw_handshake(fd, secret, net::protocol_version + 1);
    REQUIRE(h.current() == net::handshake::state::failed);
    CHECK(h.error().text.find("version") != std::string::npos);
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 6. Authenticated, then requests of a type the node does not know (a
  // peer running newer code): each gets an error answer, and the
  // connection stays up.
  {
    const int fd = authenticated_raw_peer(b.port(), 42);
    for (std::uint64_t key : {77u, 78u}) {
      std::vector<std::byte> msg;
      net::writer m{msg};
      m.fixed(std::uint8_t{0});                       // user
      m.varint(0);                                    // receiver: the service
      m.varint(0);                                    // sender
      m.fixed(key);                                   // a request
      m.fixed(std::uint64_t{0x1234567890abcdefull});  // no such type
      test::write_all(fd, test::frame_of(net::frame_kind::message, msg));
      const auto answer = test::next_frame(
          fd, [](const net::frame& f) { return f.kind == net::frame_kind::message; });
      REQUIRE(answer);
      net::reader r{answer->payload, net::decode_limits{}};
      std::uint8_t kind = 0;
      std::uint64_t receiver = 0, sender = 0, request = 0, type = 0;
      REQUIRE((r.fixed(kind) && r.varint(receiver) && r.varint(sender) && r.fixed(request) &&
               r.fixed(type)));
      CHECK(kind == 2);  // error_reply
      CHECK(request == key);
      CHECK(type == net::type_id_of("libactor.error"));
      error e;
      REQUIRE(net::wire_decode(r, e));
      CHECK(e.code == errc::not_serializable);
      CHECK(e.text.find("1234567890abcdef") != std::string::npos);
    }
    ::close(fd);
  }
  // 7. Authenticated, then an oversized frame.
  {
    const int fd = test::raw_connect(b.port());
    auto h = raw_handshake(fd, secret, net::protocol_version);
    REQUIRE(h.current() == net::handshake::state::done);
    test::write_all(fd, {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}});
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 8. Authenticated, then an error reply whose payload is not an error (a
  // known type, so only the kind/type mismatch is wrong).
  {
    const int fd = authenticated_raw_peer(b.port(), 43);
    std::vector<std::byte> msg;
    net::writer m{msg};
    m.fixed(std::uint8_t{2});   // error_reply
    m.varint(0);                // receiver
    m.varint(0);                // sender
    m.fixed(std::uint64_t{1});  // a request key the node might have used
    m.fixed(net::type_id_of("u8"));
    m.fixed(std::uint8_t{7});
    test::write_all(fd, test::frame_of(net::frame_kind::message, msg));
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }
  // 9. Authenticated, then a plain message whose payload is an exit_msg: a
  // forged exit notice, to be refused (a real one is an exit signal).
  {
    const int fd = authenticated_raw_peer(b.port(), 44);
    std::vector<std::byte> msg;
    net::writer m{msg};
    m.fixed(std::uint8_t{0});   // user
    m.varint(0);                // receiver: the service actor
    m.varint(0);                // sender
    m.fixed(std::uint64_t{0});  // one-way
    m.fixed(net::type_id_of("libactor.exit"));
    m.fixed(std::uint8_t{0});  // an empty handle as the source
    net::wire_encode(m, exit_reason::error("forged"));
    test::write_all(fd, test::frame_of(net::frame_kind::message, msg));
    CHECK(test::closed_by_peer(fd));
    ::close(fd);
  }

  // The good peer lost nothing.
  REQUIRE(done.wait_for_size(1, 300s));
  const auto rep = done.items()[0];
  CHECK(rep.count == total);
  CHECK(rep.in_order);
  // b counted each refusal and logged it.
  auto s = stats.ask<na::stats_report>(na::stats_query{}, 30s).get();
  REQUIRE(s);
  CHECK(s->handshakes_failed == 5);
  CHECK(s->protocol_errors == 3);
  CHECK(s->peers_up >= 1);
  const std::string log = b.stderr_text();
  std::size_t lines = 0;
  for (std::size_t pos = 0; (pos = log.find("closing connection", pos)) != std::string::npos;
       ++pos) {
    ++lines;
  }
  // One line per connection, except that failed handshakes are logged once
  // per address and kind: the garbage (its first bytes read as a length)
  // and the oversized length are both frame_too_large from 127.0.0.1.
  CHECK(lines == 7);
  CHECK(log.find("logged once per address and kind") != std::string::npos);
  CHECK(log.find("message kind 2 with a payload of u8") != std::string::npos);
  CHECK(log.find("an exit_msg that is not an exit signal") != std::string::npos);
  CHECK(log.find("auth_failed") != std::string::npos);
  CHECK(log.find("version_mismatch") != std::string::npos);
  CHECK(log.find("frame_too_large") != std::string::npos);
  CHECK(log.find("refused a message of type id 1234567890abcdef from node raw-client") !=
        std::string::npos);
}

TEST_CASE("a peer that stops reading: its outbound queue is bounded, sends are refused",
          "[cluster]") {
  test::recorder<actor_ref> senders;
  actor_system sys{system_config{.workers = 2}};
  auto cfg = node_cfg("a");
  cfg.protect_frames = false;  // the raw peer writes frames in the clear
  cfg.max_frame_size = 4096;
  cfg.max_outbound_bytes = 64 * 1024;
  cfg.heartbeat_timeout = 60s;  // the stalled peer stays "up"; only its queue is full
  net::node a(sys, cfg);
  auto catcher = sys.spawn([&](actor& self) -> behavior {
    return {[&](const na::item&) { senders.push(self.current_sender()); }};
  });
  // Only actors whose handles left the node are addressable, by the wire
  // id in the handle.
  const std::uint64_t catcher_id = test::wire_id(a, catcher);

  // A raw peer authenticates, sends one message from its actor 5, then
  // never reads again.
  const int fd = authenticated_raw_peer(a.port(), 7, 4096);
  std::vector<std::byte> msg;
  net::writer m{msg};
  m.fixed(std::uint8_t{0});
  m.varint(catcher_id);
  m.varint(5);
  m.fixed(std::uint64_t{0});
  m.fixed(net::wire_id_v<na::item>);
  net::wire_encode(m, na::item{1, 2});
  test::write_all(fd, test::frame_of(net::frame_kind::message, msg));
  REQUIRE(senders.wait_for_size(1));
  const actor_ref stalled = senders.items()[0];
  REQUIRE(stalled);

  const std::string blob(1000, 'x');
  std::uint64_t accepted = 0;
  send_status last = send_status::ok;
  for (int i = 0; i < 100'000 && last == send_status::ok; ++i) {
    last = stalled.send(blob);
    if (last == send_status::ok) ++accepted;
  }
  CHECK(last == send_status::overloaded);
  // What was accepted fits in the kernel's buffers plus the bound, far
  // below the 100 MB the loop would have queued.
  CHECK(accepted < 20'000);
  CHECK(a.stats().overloaded == 1);
  auto r = stalled.ask<std::string>(blob, 10s).get();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::overloaded);
  ::close(fd);
}

namespace {

/// Node "a" in this process, whose log lines a test can read, and a raw
/// peer (actor 5 of node raw-client) known to one of a's actors.
struct raw_pair {
  test::recorder<std::string> log;
  test::recorder<actor_ref> senders;
  actor_system sys{system_config{.workers = 2}};
  std::optional<net::node> node;
  actor_ref catcher;
  int fd = -1;

  std::uint64_t catcher_id = 0;

  explicit raw_pair(std::size_t max_outbound = std::size_t{64} << 20,
                    std::size_t max_unknown_ids = net::node_config{}.max_unknown_ids,
                    duration heartbeat_timeout = 1500ms) {
    auto c = node_cfg("a");
    c.heartbeat_timeout = heartbeat_timeout;
    c.protect_frames = false;  // the raw peer writes frames in the clear
    c.max_frame_size = 4096;
    c.max_outbound_bytes = max_outbound;
    c.max_unknown_ids = max_unknown_ids;
    c.log = [this](std::string_view line) { log.push(std::string(line)); };
    node.emplace(sys, c);
    catcher = sys.spawn([this](actor& self) -> behavior {
      return {[this, &self](const na::item&) { senders.push(self.current_sender()); }};
    });
    catcher_id = test::wire_id(*node, catcher);
    fd = authenticated_raw_peer(node->port(), 1'000);
  }
  ~raw_pair() {
    if (fd >= 0) ::close(fd);
    node.reset();
  }
  /// A message frame from the raw peer's actor 5 to the catcher.
  std::vector<std::byte> item_frame(std::uint64_t seq) const {
    std::vector<std::byte> msg;
    net::writer m{msg};
    m.fixed(std::uint8_t{0});
    m.varint(catcher_id);
    m.varint(5);
    m.fixed(std::uint64_t{0});
    m.fixed(net::wire_id_v<na::item>);
    net::wire_encode(m, na::item{1, seq});
    return test::frame_of(net::frame_kind::message, msg);
  }
  bool logged(const std::string& what, std::chrono::milliseconds d = 10s) {
    const auto end = std::chrono::steady_clock::now() + d;
    for (std::size_t seen = 0;;) {
      auto items = log.items();
      for (; seen < items.size(); ++seen) {
        if (items[seen].find(what) != std::string::npos) return true;
      }
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return false;
      (void)log.wait_for_size(seen + 1, left);
    }
  }
};

}  // namespace

TEST_CASE(
    "raw peer: an answer of a type this node does not know fails its ask at once; the "
    "connection stays",
    "[cluster][raw]") {
  raw_pair p;
  test::write_all(p.fd, p.item_frame(1));
  REQUIRE(p.senders.wait_for_size(1));
  const actor_ref remote = p.senders.items()[0];
  auto answer = std::async(std::launch::async, [&] {
    return remote.ask<std::int64_t>(na::item{2, 3}, 60s).get();
  });
  // The request reaches the raw peer; it answers with a type a lacks.
  auto req = test::next_frame(
      p.fd, [](const net::frame& f) { return f.kind == net::frame_kind::message; });
  REQUIRE(req);
  net::reader r{req->payload, net::decode_limits{}};
  std::uint8_t kind = 0;
  std::uint64_t receiver = 0, sender = 0, key = 0, type = 0;
  REQUIRE(
      (r.fixed(kind) && r.varint(receiver) && r.varint(sender) && r.fixed(key) && r.fixed(type)));
  REQUIRE(kind == 0);
  REQUIRE(key != 0);
  std::vector<std::byte> reply;
  net::writer w{reply};
  w.fixed(std::uint8_t{1});  // response
  w.varint(0);
  w.varint(0);
  w.fixed(key);
  w.fixed(std::uint64_t{0x0badc0de0badc0deull});
  w.fixed(std::uint32_t{42});
  test::write_all(p.fd, test::frame_of(net::frame_kind::message, reply));
  REQUIRE(answer.wait_for(30s) == std::future_status::ready);
  auto got = answer.get();
  REQUIRE_FALSE(got);
  CHECK(got.err().code == errc::not_serializable);
  CHECK(got.err().text.find("0badc0de0badc0de") != std::string::npos);
  CHECK(p.logged("refused a message of type id 0badc0de0badc0de from node raw-client"));
  // The connection still carries messages.
  test::write_all(p.fd, p.item_frame(2));
  REQUIRE(p.senders.wait_for_size(2));
  CHECK(p.node->stats().protocol_errors == 0);
  CHECK(p.node->stats().unknown_types == 1);
}

TEST_CASE("raw peer: a heartbeat or leaving frame with a payload ends the connection",
          "[cluster][raw]") {
  for (auto kind : {net::frame_kind::heartbeat, net::frame_kind::leaving}) {
    raw_pair p;
    test::write_all(p.fd, test::frame_of(kind, {std::byte{1}}));
    CHECK(test::closed_by_peer(p.fd));
    CHECK(p.logged("with a payload of 1 bytes"));
    CHECK(p.node->stats().protocol_errors == 1);
  }
}

TEST_CASE("raw peer: nothing is served after leaving", "[cluster][raw]") {
  raw_pair p;
  test::write_all(p.fd, p.item_frame(1));
  REQUIRE(p.senders.wait_for_size(1));
  test::write_all(p.fd, test::frame_of(net::frame_kind::leaving, {}));
  test::write_all(p.fd, p.item_frame(2));
  CHECK(test::closed_by_peer(p.fd));
  CHECK(p.logged("a frame after `leaving`"));
  CHECK(p.node->stats().protocol_errors == 1);
  CHECK(p.senders.items().size() == 1);
}

TEST_CASE("raw peer: control frames to a peer that does not read are bounded too",
          "[cluster][raw]") {
  // The peer asks to watch ids that do not exist, each answered with a
  // `down` frame, and never reads: the answers fill its queue. (The bound
  // on unknown ids, which would close it first, is the next test's.)
  raw_pair p(64 * 1024, SIZE_MAX);
  std::vector<std::byte> batch;
  for (std::uint64_t id = 1'000'000; id < 1'010'000; ++id) {
    std::vector<std::byte> payload;
    net::writer w{payload};
    w.varint(id);
    net::append_frame(batch, net::frame_kind::watch, payload);
  }
  // Enough answers to fill the kernel's buffers on both ends many times over.
  const std::size_t rounds = 200;
  bool closed = false;
  for (std::size_t i = 0; i < rounds && !closed; ++i) {
    test::write_all(p.fd, batch);
    closed = p.logged("the peer does not read", 1ms);
  }
  INFO([&] {
    std::string all;
    for (auto& l : p.log.items()) all += l + "\n";
    return all;
  }());
  CHECK(p.logged("the peer does not read: its outbound queue is full (max_outbound_bytes)"));
  CHECK(test::closed_by_peer(p.fd, 60s));
}

TEST_CASE(
    "raw peer: a queue full of messages still takes heartbeats; a peer that reads again is not "
    "declared down",
    "[cluster][raw]") {
  // A burst fills the queue to max_outbound_bytes (back-pressure: sends are
  // refused as overloaded) while the peer is slow to read. Heartbeats must
  // still be queued (control frames have room past the bound), and the
  // connection must stay. The raw peer is silent while the queue fills (slow
  // under the sanitizers): a long heartbeat timeout keeps that from
  // counting; heartbeats still go out every 100 ms.
  raw_pair p(64 * 1024, net::node_config{}.max_unknown_ids, 60s);
  test::write_all(p.fd, p.item_frame(1));
  REQUIRE(p.senders.wait_for_size(1));
  const actor_ref peer_actor = p.senders.items()[0];
  const std::string blob(1000, 'x');
  send_status last = send_status::ok;
  for (int i = 0; i < 1'000'000 && last == send_status::ok; ++i) last = peer_actor.send(blob);
  REQUIRE(last == send_status::overloaded);
  // Then the smallest messages, until even they do not fit: the queue is
  // within a few bytes of the bound.
  last = send_status::ok;
  for (int i = 0; i < 1'000'000 && last == send_status::ok; ++i) {
    last = peer_actor.send(std::string());
  }
  REQUIRE(last == send_status::overloaded);
  // The scenario: for ten heartbeat intervals (test::node_config: 100 ms)
  // the peer reads nothing, its queue at the bound; it sends its own
  // heartbeats, so it is alive.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(100ms);
    test::write_all(p.fd, test::frame_of(net::frame_kind::heartbeat, {}));
  }
  // Then it reads: what was queued, and heartbeats after it.
  INFO([&] {
    std::string all;
    for (auto& l : p.log.items()) all += l + "\n";
    return all;
  }());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(test::next_frame(
        p.fd, [](const net::frame& f) { return f.kind == net::frame_kind::heartbeat; }, 30s));
  }
  test::write_all(p.fd, p.item_frame(2));
  REQUIRE(p.senders.wait_for_size(2));
  CHECK_FALSE(p.logged("the peer does not read", 1ms));
  CHECK(p.node->stats().protocol_errors == 0);
}

TEST_CASE(
    "three processes: a second process named b replaces the first on a; the first is told "
    "why and stays out",
    "[cluster][restart]") {
  test::recorder<std::string> downs;
  here a;
  child_node b1("b");
  REQUIRE(a.node->connect("127.0.0.1", b1.port(), 30s));
  auto old_sink = a.node->lookup("b", "sink", 30s);
  REQUIRE(old_sink);
  a.sys.spawn([&, h = *old_sink](actor& self) -> behavior {
    self.monitor(h);
    return {[&](const down_msg& d) { downs.push(d.reason.to_string()); }};
  });
  // A new process with the same name dials a while the first one runs.
  child_node b2("b", 0, {"--peer", "127.0.0.1:" + std::to_string(a.node->port())});
  REQUIRE(downs.wait_for_size(1, 30s));
  CHECK(downs.items()[0].find("restarted") != std::string::npos);
  CHECK(old_sink->send(na::item{1, 1}) == send_status::dead_letter);
  // The first process learns why, and is refused on its redials.
  REQUIRE(test::eventually(
      [&] { return b1.stderr_text().find("this process was replaced") != std::string::npos; }));
  // a uses the new process: with the old one killed, nothing changes for a.
  b1.kill9();
  auto stats = a.node->lookup("b", "stats", 30s);
  REQUIRE(stats);
  auto s = stats->ask<na::stats_report>(na::stats_query{}, 30s).get();
  REQUIRE(s);
  CHECK(s->peers_up == 1);
  CHECK(a.node->stats().node_downs == 1);  // the replacement, and nothing since
  CHECK(a.node->stats().peers_up == 1);
}

TEST_CASE("libactor-node --no-aes-gcm: the node seals with ChaCha20-Poly1305, and the log says so",
          "[cluster]") {
  REQUIRE(sodium_init() >= 0);
  const bool cpu = crypto_aead_aes256gcm_is_available() == 1;
  for (const bool flag : {true, false}) {
    INFO("--no-aes-gcm " << flag);
    child_node b("b", 0,
                 flag ? std::vector<std::string>{"--no-aes-gcm"} : std::vector<std::string>{});
    test::recorder<std::string> log;
    actor_system sys{system_config{.workers = 1}};
    test::unrelated(sys, 3);
    auto c = node_cfg("a");
    c.log = [&log](std::string_view l) { log.push(std::string(l)); };
    std::optional<net::node> a;
    a.emplace(sys, c);
    REQUIRE(a->connect("127.0.0.1", b.port(), 30s));
    const std::string want = std::string(", frames sealed (") +
                             (cpu && !flag ? "AES-256-GCM" : "ChaCha20-Poly1305") + ")";
    CHECK(test::eventually([&] {
      for (auto& l : log.items()) {
        if (l.find("node b is up: ") != std::string::npos && l.ends_with(want)) return true;
      }
      return false;
    }));
    // And the connection carries messages.
    auto sink = a->lookup("b", "sink", 30s);
    REQUIRE(sink);
    a.reset();
  }
}
