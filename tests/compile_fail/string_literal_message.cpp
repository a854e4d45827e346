// expect: a string literal is not a message
#include <libactor/libactor.hpp>

void greet(const libactor::actor_ref& h) {
  h.send("hello");
}
