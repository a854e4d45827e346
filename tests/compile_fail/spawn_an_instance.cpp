// expect: spawn makes the actor: write spawn<MyActor>
#include <libactor/libactor.hpp>

struct greeter : libactor::actor {
  libactor::behavior make_behavior() override {
    return {[](int) {}};
  }
};

void start(libactor::actor_system& sys) {
  sys.spawn(greeter{});
}
