// expect: a behavior is made of handlers
#include <libactor/libactor.hpp>

libactor::behavior make() {
  return {42};
}
