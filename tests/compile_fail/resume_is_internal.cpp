// expect: (private|inaccessible|protected) within this context
#include <libactor/libactor.hpp>

libactor::behavior make(libactor::actor& self) {
  return {[&self](int) { (void)self.resume(64); }};
}
