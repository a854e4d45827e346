// expect: LIBACTOR_WIRE_TYPE
#include <libactor/net/node.hpp>

struct secret_plan {
  int step;
};

void leak(const libactor::actor_ref& remote) {
  libactor::net::send(remote, secret_plan{1});
}
