// libactor-node: starts a node from command-line flags and hosts the actors
// of node_actors.hpp, so that other processes have something to talk to.
// Run with --help for the flags.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "node_actors.hpp"

namespace {

const char* const usage = R"(usage: libactor-node --name NAME --secret-file FILE [options]

Starts a libactor node and keeps it running until SIGINT or SIGTERM.

  --name NAME          this node's name, unique in the cluster (required)
  --secret-file FILE   file holding the cluster secret (required; one trailing
                       newline is ignored; the file must not be empty)
  --host ADDR          numeric address to listen on and advertise
                       (default 127.0.0.1)
  --port PORT          port to listen on; 0 picks a free one (default 0)
  --peer HOST:PORT     a node to connect to; repeat for several. Connecting
                       retries for --connect-timeout-ms, and a lost peer is
                       redialled with backoff.
  --heartbeat-ms N     heartbeat interval (default 500)
  --timeout-ms N       a peer silent this long is down (default 3000)
  --connect-timeout-ms N  how long to keep trying each --peer (default 30000)
  --workers N          actor worker threads (default: one per core)
  --help               this text

Once listening it prints one line to stdout:
  node NAME listening on ADDR:PORT
and one line per peer connected:
  connected NAME

Hosted actors (registered names): echo, sink, relay, stats; peers may spawn
"echo". Their messages are declared in examples/node/node_actors.hpp.
)";

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "libactor-node: %s\n(try --help)\n", msg.c_str());
  std::exit(2);
}

long number(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
    die(flag + " wants a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
        ", got \"" + v + "\"");
  }
  return n;
}

struct options {
  libactor::net::node_config node;
  std::vector<std::pair<std::string, std::uint16_t>> peers;
  long connect_timeout_ms = 30000;
  unsigned workers = 0;
};

options parse(int argc, char** argv) {
  options o;
  std::string secret_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) die("missing value after " + a);
    const std::string v = argv[++i];
    if (a == "--name") {
      o.node.name = v;
    } else if (a == "--secret-file") {
      secret_file = v;
    } else if (a == "--host") {
      o.node.host = v;
    } else if (a == "--port") {
      o.node.port = static_cast<std::uint16_t>(number(a, v, 0, 65535));
    } else if (a == "--peer") {
      const auto colon = v.rfind(':');
      if (colon == std::string::npos) die("--peer wants HOST:PORT, got \"" + v + "\"");
      o.peers.emplace_back(v.substr(0, colon),
                           static_cast<std::uint16_t>(number(a, v.substr(colon + 1), 1, 65535)));
    } else if (a == "--heartbeat-ms") {
      o.node.heartbeat_interval = std::chrono::milliseconds(number(a, v, 1, 3600000));
    } else if (a == "--timeout-ms") {
      o.node.heartbeat_timeout = std::chrono::milliseconds(number(a, v, 2, 36000000));
    } else if (a == "--connect-timeout-ms") {
      o.connect_timeout_ms = number(a, v, 0, 36000000);
    } else if (a == "--workers") {
      o.workers = static_cast<unsigned>(number(a, v, 1, 1024));
    } else {
      die("unknown flag " + a);
    }
  }
  if (o.node.name.empty()) die("--name is required");
  if (secret_file.empty()) die("--secret-file is required");
  std::ifstream in(secret_file, std::ios::binary);
  if (!in) die("cannot read the secret file " + secret_file);
  std::ostringstream ss;
  ss << in.rdbuf();
  o.node.secret = ss.str();
  if (!o.node.secret.empty() && o.node.secret.back() == '\n') o.node.secret.pop_back();
  if (o.node.secret.empty()) die("the secret file " + secret_file + " is empty");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  options opt = parse(argc, argv);

  // SIGINT/SIGTERM end the process through sigwait on this thread; block
  // them before any thread starts so that no other thread takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  libactor::actor_system sys{libactor::system_config{.workers = opt.workers}};
  std::optional<libactor::net::node> node;
  try {
    node.emplace(sys, opt.node);
  } catch (const std::exception& e) {
    die(e.what());
  }
  const std::string name = opt.node.name;
  sys.register_name(
      "echo", sys.spawn([name](libactor::actor& self) { return node_actors::echo(self, name); }));
  sys.register_name("sink", sys.spawn(node_actors::sink));
  sys.register_name("relay", sys.spawn(node_actors::relay));
  libactor::net::node* np = &*node;
  sys.register_name(
      "stats", sys.spawn([np](libactor::actor& self) { return node_actors::stats(self, np); }));
  node->register_actor_type<node_actors::echo_actor>("echo");

  std::printf("node %s listening on %s:%u\n", name.c_str(), opt.node.host.c_str(),
              static_cast<unsigned>(node->port()));
  std::fflush(stdout);

  std::vector<std::thread> dialers;
  for (auto& [host, port] : opt.peers) {
    dialers.emplace_back([&, host = host, port = port] {
      auto r = node->connect(host, port, std::chrono::milliseconds(opt.connect_timeout_ms));
      if (r) {
        std::printf("connected %s\n", r->c_str());
        std::fflush(stdout);
      } else {
        std::fprintf(stderr, "libactor-node: cannot connect to %s:%u: %s\n", host.c_str(),
                     static_cast<unsigned>(port), r.err().to_string().c_str());
      }
    });
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  for (auto& t : dialers) t.join();
  node.reset();
  sys.shutdown();
  return 0;
}
