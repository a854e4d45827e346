// expect: (private|inaccessible|not an accessible base)
#include <libactor/libactor.hpp>

libactor::behavior make(libactor::actor& self) {
  return {[&self](int) { self.release(); }};
}
