// expect-success: the harness's own check that correct code compiles with the
// same command, so a failure above is the one that the case expects.
#include <libactor/libactor.hpp>
#include <libactor/net/node.hpp>

struct tick {};
namespace shop {
enum class colour : std::uint8_t { red, green };
LIBACTOR_WIRE_ENUM(colour, colour::red, colour::green)
struct paint {
  colour c = colour::red;
};
LIBACTOR_WIRE_TYPE(paint, "shop.paint", c)
}  // namespace shop
libactor::behavior make(libactor::actor& self) {
  return {[&self](tick) { (void)self.current_sender(); },
          [](const std::string& s) { return s.size(); },
          [](int x) -> libactor::task<int> { co_return x; }};
}
void start(libactor::actor_system& sys, const libactor::actor_ref& remote) {
  sys.spawn(make);
  libactor::net::send(remote, std::int64_t{1});
  libactor::net::send(remote, shop::paint{});
}
