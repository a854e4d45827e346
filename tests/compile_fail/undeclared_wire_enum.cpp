// expect: LIBACTOR_WIRE_ENUM
#include <libactor/net/node.hpp>

namespace shop {
enum class colour : std::uint8_t { red, green };
struct paint {
  colour c = colour::red;
};
LIBACTOR_WIRE_TYPE(paint, "shop.paint", c)
}  // namespace shop

void order(const libactor::actor_ref& remote) {
  libactor::net::send(remote, shop::paint{});
}
