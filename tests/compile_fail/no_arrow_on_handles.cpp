// expect: base operand of .+->.+ has non-pointer type
#include <libactor/libactor.hpp>

void poke(const libactor::actor_ref& h) {
  h->enqueue(nullptr);
}
