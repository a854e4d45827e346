// expect: LIBACTOR_WIRE_TYPE
#include <libactor/net/node.hpp>

struct answer {
  int value;
};

void query(const libactor::actor_ref& remote) {
  auto r = libactor::net::ask<answer>(remote, std::int64_t{1}, std::chrono::seconds(1));
  (void)r;
}
