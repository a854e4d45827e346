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

#include "../common/cli.hpp"
#include "../common/run.hpp"
#include "node_actors.hpp"

namespace {

const char* const usage = R"(usage: libactor-node --name NAME --secret-file FILE [options]
       libactor-node --name NAME --tls-ca FILE --tls-cert FILE --tls-key FILE [options]
       libactor-node --gen-secret > FILE

Starts a libactor node and keeps it running until SIGINT or SIGTERM.

  --name NAME          this node's name, unique in the cluster (required)
  --secret-file FILE   file holding the cluster secret (required without TLS;
                       one trailing newline is ignored). It must hold at least
                       128 bits: 32 hex digits or more, for example
  --tls-ca FILE        TLS 1.3 with certificates (PEM): the CA a peer's
  --tls-cert FILE      certificate must chain to, this node's certificate
  --tls-key FILE       (naming NAME) and its key. All three, or none
  --gen-secret         print a new random secret (64 hex digits, 256 bits)
                       and exit
  --no-frame-protection  send frames after the handshake in the clear instead
                       of sealed records (every node of the cluster must
                       agree); only where the network path is trusted. No
                       effect with TLS, which protects every frame
  --no-aes-gcm         seal with ChaCha20-Poly1305 (and over TLS, offer
                       TLS_CHACHA20_POLY1305_SHA256 only) even where this
                       CPU has AES-GCM; nodes set either way connect
  --host ADDR          numeric address to listen on and advertise
                       (default 127.0.0.1)
  --port PORT          port to listen on; 0 picks a free one (default 0)
  --peer HOST:PORT     a node to connect to; repeat for several. Connecting
                       retries for --connect-timeout-ms, and a lost peer is
                       redialled with backoff.
  --heartbeat-ms N     heartbeat interval (default 500)
  --timeout-ms N       a peer silent this long is down (default 3000; at least
                       three times --heartbeat-ms)
  --connect-timeout-ms N  how long to keep trying each --peer (default 30000)
  --workers N          actor worker threads (default: one per core)
  --log-lines N        log lines per category and second before the rest
                       are only counted (default 10; 0: no limit)
  --help               this text

Once listening it prints one line to stdout:
  node NAME listening on ADDR:PORT
and one line for each --peer once it is connected:
  connected NAME
Connection events (peers down, up, restarted; bad input) go to stderr.

Hosted actors (registered names): echo, sink, relay, stats; peers may spawn
"echo", and may stop or link only the actors they spawned. Their messages are declared in examples/node/node_actors.hpp.
)";

struct options {
  libactor::net::node_config node;
  std::vector<std::pair<std::string, std::uint16_t>> peers;
  long connect_timeout_ms = 30000;
  unsigned workers = 0;
  std::uint32_t log_lines = 10;
};

options parse(int argc, char** argv) {
  examples::flags f{"libactor-node", argc, argv, 1};
  if (f.has("help")) {
    std::fputs(usage, stdout);
    std::exit(0);
  }
  if (f.has("gen-secret")) {
    std::printf("%s\n", libactor::net::generate_secret().c_str());
    std::exit(0);
  }
  options o;
  o.node.name = f.required("name");
  o.node.host = f.text("host", "127.0.0.1");
  o.node.port = static_cast<std::uint16_t>(f.number("port", 0, 0, 65535));
  for (auto& p : f.all("peer")) o.peers.push_back(f.endpoint("--peer", p));
  o.node.heartbeat_interval = std::chrono::milliseconds(f.number("heartbeat-ms", 500, 1, 3600000));
  o.node.heartbeat_timeout = std::chrono::milliseconds(f.number("timeout-ms", 3000, 2, 36000000));
  o.connect_timeout_ms = f.number("connect-timeout-ms", 30000, 0, 36000000);
  o.workers = static_cast<unsigned>(f.number("workers", 0, 0, 1024));
  o.log_lines = static_cast<std::uint32_t>(f.number("log-lines", 10, 0, 1'000'000));
  o.node.tls.ca_file = f.text("tls-ca", "");
  o.node.tls.certificate_file = f.text("tls-cert", "");
  o.node.tls.private_key_file = f.text("tls-key", "");
  if (!o.node.tls.enabled() && !f.has("secret-file")) {
    std::fputs("libactor-node: --secret-file is required (or --tls-ca, --tls-cert and --tls-key)\n",
               stderr);
    std::exit(2);
  }
  o.node.secret = f.secret(o.node.tls.enabled());
  if (f.has("no-frame-protection")) o.node.protect_frames = false;
  if (f.has("no-aes-gcm")) o.node.aes_gcm = false;
  f.check_unused();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  options opt = parse(argc, argv);

  // SIGINT/SIGTERM end the process (blocked before any thread starts).
  examples::stop_signals stop;

  libactor::system_config sys_cfg;
  sys_cfg.workers = opt.workers;
  sys_cfg.log_limit.lines = opt.log_lines;
  libactor::actor_system sys{sys_cfg};
  std::optional<libactor::net::node> node;
  try {
    node.emplace(sys, opt.node);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libactor-node: %s\n", e.what());
    return 2;
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
  stop.wait();
  for (auto& t : dialers) t.join();
  node.reset();
  sys.shutdown();
  return 0;
}
