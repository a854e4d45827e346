// expect: a handler takes exactly one message argument by value or const reference
#include <libactor/libactor.hpp>

libactor::behavior make() {
  return {[](int) {}, [] {}};
}
