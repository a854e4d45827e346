// chat: a chat service. The server is a node with one actor per room and one
// session per user, and a web page with a WebSocket endpoint; terminal
// clients are nodes in other processes.
//
//   chat server --secret-file F [--port P] [--http-port H] [--host ADDR]
//   chat client --secret-file F --server HOST:PORT --name NAME [--room ROOM]

#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>

#include "../common/cli.hpp"
#include "../common/run.hpp"
#include "chat.hpp"
#include "web.hpp"

using namespace std::chrono_literals;

namespace {

const char* const usage = R"(usage:
  chat server --secret-file FILE [--host ADDR] [--port PORT] [--http-port PORT]
      The chat server node. Terminal clients connect to PORT (default: any
      free port); browsers open http://ADDR:HTTP-PORT/ (default: any free
      port). Prints "chat server on ADDR:PORT, web on http://ADDR:HTTP-PORT/".
  chat client --secret-file FILE --server HOST:PORT --name NAME [--room ROOM]
      A terminal client: joins ROOM (default "general") and posts each line
      read from stdin to the current room. Commands:
        /join ROOM   join (and switch to) another room
        /leave ROOM  leave a room
        /rooms       list the rooms and their member counts
        /quit        leave (end of input does the same)
      Prints what others post: "[room] user: text" and "[room] * user joined".
)";

int run_server(examples::flags& f) {
  libactor::net::node_config cfg;
  cfg.name = "chat-server";
  cfg.secret = f.secret();
  cfg.host = f.text("host", "127.0.0.1");
  cfg.port = static_cast<std::uint16_t>(f.number("port", 0, 0, 65535));
  const auto http_port = static_cast<std::uint16_t>(f.number("http-port", 0, 0, 65535));
  f.check_unused();
  examples::stop_signals stop;

  libactor::actor_system sys;
  libactor::net::node node(sys, cfg);
  auto lobby = sys.spawn<chat::lobby>();
  sys.register_name("lobby", lobby);
  chat::web_server web(sys, lobby, cfg.host, http_port);
  std::printf("chat server on %s:%u, web on http://%s:%u/\n", cfg.host.c_str(),
              static_cast<unsigned>(node.port()), cfg.host.c_str(),
              static_cast<unsigned>(web.port()));
  std::fflush(stdout);
  stop.wait();
  return 0;
}

/// Prints what the server tells this user.
libactor::behavior printer(libactor::actor&) {
  return {[](const chat::chat_event& e) {
    switch (e.kind) {
      case chat::event_kind::message:
        std::printf("[%s] %s: %s\n", e.room.c_str(), e.user.c_str(), e.text.c_str());
        break;
      case chat::event_kind::joined:
        std::printf("[%s] * %s joined\n", e.room.c_str(), e.user.c_str());
        break;
      case chat::event_kind::left:
        std::printf("[%s] * %s left (%s)\n", e.room.c_str(), e.user.c_str(), e.text.c_str());
        break;
      case chat::event_kind::error:
        std::printf("error: %s\n", e.text.c_str());
        break;
    }
    std::fflush(stdout);
  }};
}

int run_client(examples::flags& f) {
  const auto [host, port] = f.endpoint("--server", f.required("server"));
  const std::string name = f.required("name");
  std::string room = f.text("room", "general");
  libactor::net::node_config cfg;
  cfg.name = "chat-client-" + name + "-" + std::to_string(::getpid());
  cfg.secret = f.secret();
  f.check_unused();
  if (auto why = chat::check_name("--name", name); !why.empty()) f.die(why);

  libactor::actor_system sys;
  libactor::net::node node(sys, cfg);
  if (auto r = node.connect(host, port, 30s); !r) {
    std::fprintf(stderr, "chat client: %s\n", r.err().to_string().c_str());
    return 1;
  }
  auto lobby = node.lookup("chat-server", "lobby", 30s);
  if (!lobby) {
    std::fprintf(stderr, "chat client: %s\n", lobby.err().to_string().c_str());
    return 1;
  }
  auto me = sys.spawn(printer);
  auto session = lobby->ask<libactor::actor_ref>(chat::connect_user{name, me}, 30s).get();
  if (!session || !*session) {
    std::fprintf(stderr, "chat client: the server refused the name \"%s\"\n", name.c_str());
    return 1;
  }
  std::printf("connected as %s; joining room %s\n", name.c_str(), room.c_str());
  std::fflush(stdout);
  session->send(chat::join_room{room});

  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (line == "/quit") break;
    if (line.rfind("/join ", 0) == 0) {
      room = line.substr(6);
      session->send(chat::join_room{room});
    } else if (line.rfind("/leave ", 0) == 0) {
      session->send(chat::leave_room{line.substr(7)});
    } else if (line == "/rooms") {
      auto r = session->ask<chat::room_list>(chat::list_rooms{}, 10s).get();
      if (!r) {
        std::printf("error: %s\n", r.err().to_string().c_str());
      } else {
        std::printf("rooms:");
        for (auto& i : r->rooms) {
          std::printf(" %s (%llu)", i.name.c_str(), static_cast<unsigned long long>(i.members));
        }
        std::printf("\n");
      }
      std::fflush(stdout);
    } else {
      session->send(chat::post{room, line});
    }
  }
  // Leaving: the server's session sees this node go and tells the rooms.
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_modes("chat", argc, argv, usage,
                             {{"server", run_server}, {"client", run_client}});
}
