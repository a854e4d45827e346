// expect: down_msg and exit_msg are the runtime's notices
#include <libactor/libactor.hpp>

void forge(const libactor::actor_ref& h) {
  h.send(libactor::down_msg{h, libactor::exit_reason::killed()});
}
