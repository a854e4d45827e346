// expect: spawn takes an actor class .* or a function .*behavior
#include <libactor/libactor.hpp>

void start(libactor::actor_system& sys) {
  sys.spawn([](int) {});
}
