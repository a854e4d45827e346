// The registry of message codecs: one table per process, in the library, so
// that types registered by a program and looked up by the node agree even
// when libactor_net is a shared library.

#include "libactor/net/wire.hpp"

namespace libactor::net::detail {

codec_registry& codecs() {
  static codec_registry r;
  return r;
}

}  // namespace libactor::net::detail
