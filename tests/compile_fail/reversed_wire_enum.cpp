// expect: the first value must not be above the last
#include <libactor/net/node.hpp>

namespace shop {
enum class size : std::uint8_t { small, large };
LIBACTOR_WIRE_ENUM(size, size::large, size::small)
struct shirt {
  size s = size::small;
};
LIBACTOR_WIRE_TYPE(shirt, "shop.shirt", s)
}  // namespace shop

void order(const libactor::actor_ref& remote) {
  libactor::net::send(remote, shop::shirt{});
}
