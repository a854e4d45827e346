// The chat example end to end with terminal clients: a server process and
// client processes fed through their standard input. Join notices, fan-out
// in order, rooms, and a client killed with SIGKILL being removed from its
// room (the others are told). Every wait is for a line, with a deadline.
// The browser side is tests/chat_browser_test.py.

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <optional>
#include <string>

#include "../examples/common/process.hpp"

using namespace std::chrono_literals;

namespace {

std::string secret_file() {
  static const std::string path = [] {
    const std::string p = "/tmp/libactor-chat-test-" + std::to_string(::getpid());
    std::ofstream(p) << "chat-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2\n";
    return p;
  }();
  return path;
}

struct server {
  examples::child_process proc{LIBACTOR_CHAT_PROGRAM, {"server", "--secret-file", secret_file()}};
  std::string address;
  server() {
    auto l = proc.line(30s);
    REQUIRE(l);
    // "chat server on 127.0.0.1:PORT, web on http://127.0.0.1:PORT/"
    const auto on = l->find(" on ");
    const auto comma = l->find(',');
    REQUIRE(on != std::string::npos);
    REQUIRE(comma != std::string::npos);
    address = l->substr(on + 4, comma - on - 4);
  }
};

std::unique_ptr<examples::child_process> client(const server& s, const std::string& name,
                                                const std::string& room = "general") {
  auto c = std::make_unique<examples::child_process>(
      LIBACTOR_CHAT_PROGRAM,
      std::vector<std::string>{"client", "--secret-file", secret_file(), "--server", s.address,
                               "--name", name, "--room", room},
      true);
  for (const std::string& expect :
       {"connected as " + name, "[" + room + "] * " + name + " joined"}) {
    if (!c->line_with(expect, 30s)) {
      FAIL("client " << name << " never printed \"" << expect << "\"; it printed:\n"
                     << c->transcript());
    }
  }
  return c;
}

}  // namespace

TEST_CASE("chat: terminal clients talk, fan-out keeps order, a killed client leaves", "[chat]") {
  std::signal(SIGPIPE, SIG_IGN);  // a killed client's stdin must not end the test
  server s;
  auto alice = client(s, "alice");
  auto bob = client(s, "bob");
  REQUIRE(alice->line_with("[general] * bob joined", 30s));

  REQUIRE(alice->write_line("hello bob"));
  REQUIRE(bob->line_with("[general] alice: hello bob", 30s));
  REQUIRE(bob->write_line("hello alice"));
  REQUIRE(alice->line_with("[general] bob: hello alice", 30s));
  REQUIRE(bob->line_with("[general] bob: hello alice", 30s));  // everyone, the poster too

  // Fan-out in order: bob sees alice's 200 lines as she sent them.
  for (int i = 0; i < 200; ++i) REQUIRE(alice->write_line("line " + std::to_string(i)));
  for (int i = 0; i < 200; ++i) {
    auto l = bob->line(30s);
    REQUIRE(l);
    CHECK(*l == "[general] alice: line " + std::to_string(i));
  }

  // Another room: carol is alone in "random" and hears nothing of general.
  auto carol = client(s, "carol", "random");
  REQUIRE(carol->write_line("/rooms"));
  auto rooms = carol->line_with("rooms:", 30s);
  REQUIRE(rooms);
  CHECK(rooms->find("general (2)") != std::string::npos);
  CHECK(rooms->find("random (1)") != std::string::npos);

  // A client whose process dies is removed; the others are told.
  bob->stop(SIGKILL);
  REQUIRE(alice->line_with("[general] * bob left (disconnected)", 30s));
  REQUIRE(alice->write_line("anyone?"));
  REQUIRE(alice->line_with("[general] alice: anyone?", 30s));

  // Bad input from a user: an over-long room name is refused with a reason.
  REQUIRE(alice->write_line("/join " + std::string(100, 'x')));
  REQUIRE(alice->line_with("error: a room name must be 1 to 32 bytes", 30s));

  // A client that quits (end of input) leaves too; dave, also in general,
  // sees it, and then the room has just dave.
  auto dave = client(s, "dave");
  REQUIRE(alice->line_with("[general] * dave joined", 30s));
  alice->close_stdin();
  const int status = alice->wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  REQUIRE(dave->line_with("[general] * alice left", 30s));
  REQUIRE(carol->write_line("/rooms"));
  auto after = carol->line_with("rooms:", 30s);
  REQUIRE(after);
  CHECK(after->find("general (1)") != std::string::npos);
}
