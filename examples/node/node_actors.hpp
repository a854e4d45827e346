#pragma once
// The actors a libactor-node hosts, and their messages. A program that
// talks to such a node includes this header for the message declarations.
//
//   echo   answers a std::string with the same string; answers ping by
//          sending pong{n} to ping.reply_to; stops on stop_with (its reason
//          becomes the exit reason that monitors and links see).
//   sink   counts item messages per sender tag and checks their order;
//          answers sink_query with a sink_report.
//   relay  on forward{to, n, reply_to}: sends ping{n, reply_to} to `to`
//          (handles that may live on other nodes).
//   stats  answers stats_query with this node's counters.
// Spawnable by peers (node::spawn_remote): "echo".

#include <libactor/net/node.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace node_actors {

using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;

struct ping {
  std::int64_t n = 0;
  actor_ref reply_to;
};
LIBACTOR_WIRE_TYPE(ping, "node.ping", n, reply_to)

struct pong {
  std::int64_t n = 0;
  std::string from;
};
LIBACTOR_WIRE_TYPE(pong, "node.pong", n, from)

struct stop_with {
  std::string reason;
};
LIBACTOR_WIRE_TYPE(stop_with, "node.stop_with", reason)

/// Asked of echo: never answered (the ask stays pending until the asker's
/// timeout or the node's end).
struct hold {};
LIBACTOR_WIRE_TYPE(hold, "node.hold")

struct item {
  std::uint64_t tag = 0;
  std::uint64_t seq = 0;
};
LIBACTOR_WIRE_TYPE(item, "node.item", tag, seq)

struct sink_query {
  std::uint64_t tag = 0;
};
LIBACTOR_WIRE_TYPE(sink_query, "node.sink_query", tag)

struct sink_report {
  std::uint64_t count = 0;  ///< Items received with this tag.
  std::uint64_t next = 0;   ///< The sequence number expected next.
  bool in_order = true;     ///< Every item had the expected sequence number.
};
LIBACTOR_WIRE_TYPE(sink_report, "node.sink_report", count, next, in_order)

struct forward {
  actor_ref to;  ///< Receives ping{n, reply_to}.
  std::int64_t n = 0;
  actor_ref reply_to;
};
LIBACTOR_WIRE_TYPE(forward, "node.forward", to, n, reply_to)

struct stats_query {};
LIBACTOR_WIRE_TYPE(stats_query, "node.stats_query")

struct stats_report {
  std::uint64_t handshakes_failed = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t peers_up = 0;
  std::uint64_t dead_letters = 0;
};
LIBACTOR_WIRE_TYPE(stats_report, "node.stats_report", handshakes_failed, protocol_errors,
                   messages_in, peers_up, dead_letters)

inline behavior echo(actor& self, std::string node_name) {
  return {
      [](const std::string& s) { return s; },
      [node_name](const ping& p) {
        p.reply_to.send(pong{p.n, node_name});
      },
      [&self](const stop_with& s) { self.quit(libactor::exit_reason::error(s.reason)); },
      [](hold) -> libactor::task<void> { co_await std::suspend_always{}; },
  };
}

/// Echo as a class, so that peers can spawn it by type name.
class echo_actor : public actor {
 protected:
  behavior make_behavior() override { return echo(*this, "spawned"); }
};

inline behavior sink(actor&) {
  auto seen = std::make_shared<std::map<std::uint64_t, sink_report>>();
  return {
      [seen](const item& i) {
        auto& r = (*seen)[i.tag];
        if (i.seq != r.next) r.in_order = false;
        r.next = i.seq + 1;
        ++r.count;
      },
      [seen](const sink_query& q) { return (*seen)[q.tag]; },
  };
}

inline behavior relay(actor&) {
  return {[](const forward& f) { f.to.send(ping{f.n, f.reply_to}); }};
}

inline behavior stats(actor& self, libactor::net::node* n) {
  return {[&self, n](const stats_query&) {
    const auto s = n->stats();
    return stats_report{s.handshakes_failed, s.protocol_errors, s.messages_in, s.peers_up,
                        self.system().stats().dead_letters};
  }};
}

}  // namespace node_actors
