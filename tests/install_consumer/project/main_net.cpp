// Two nodes in one process: a declared message type crosses between them,
// which needs one codec registry and one type identity across the program
// and the installed library.
#include <libactor/net/node.hpp>

#include <cstdio>

namespace app {
struct add {
  int a = 0;
  int b = 0;
};
LIBACTOR_WIRE_TYPE(add, "consumer.add", a, b)
}  // namespace app

int main() {
  using namespace std::chrono_literals;
  const std::string secret = "consumer-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2";
  libactor::actor_system sa{libactor::system_config{.workers = 2}};
  libactor::actor_system sb{libactor::system_config{.workers = 2}};
  libactor::net::node a(sa, {.name = "a", .secret = secret});
  libactor::net::node b(sb, {.name = "b", .secret = secret});
  sb.register_name("adder", sb.spawn([](libactor::actor&) -> libactor::behavior {
    return {[](app::add x) { return x.a + x.b; }};
  }));
  if (!a.connect("127.0.0.1", b.port(), 10s)) return 1;
  auto adder = a.lookup("b", "adder", 10s);
  if (!adder) return 2;
  auto r = libactor::net::ask<int>(*adder, app::add{40, 2}, 10s).get();
  if (!r) return 3;
  std::printf("consumer_net: %d\n", *r);
  return 0;
}
