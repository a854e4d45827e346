// The export table's memory of stopped actors (net/src/export_table.hpp):
// the wire ids of the last max_retired actors that stopped are known as
// late, not guesses; older ones are forgotten, so the set stays bounded
// however many actors a node exports and stops.

#include <catch2/catch.hpp>

#include <libactor/actor.hpp>
#include <libactor/system.hpp>

#include <vector>

#include "export_table.hpp"
#include "peer.hpp"
#include "support.hpp"

using namespace libactor;
using libactor::net::detail::export_table;

TEST_CASE("the wire ids of stopped actors are remembered up to max_retired, oldest forgotten first",
          "[net][exports]") {
  actor_system sys{system_config{.workers = 1}};
  test::unrelated(sys, 9);
  constexpr std::size_t extra = 3;
  constexpr std::size_t n = export_table::max_retired + extra;
  std::vector<actor_ref> actors;
  actors.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    actors.push_back(sys.spawn([](actor&) -> behavior { return {[](int) {}}; }));
  }
  export_table t;
  std::vector<std::uint64_t> wire(n);
  std::size_t fresh = 0;
  std::size_t found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto* a = libactor::detail::actor_access::get(actors[i]);
    const auto added = t.add(a);
    if (added.fresh) ++fresh;
    wire[i] = added.wire_id;
    if (t.find(wire[i]) == actors[i]) ++found;
  }
  CHECK(fresh == n);
  CHECK(found == n);
  // Removed (stopped) in the order they were made; none is retired before.
  CHECK_FALSE(t.retired(wire[0]));
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = t.remove(libactor::detail::actor_access::get(actors[i])->id());
    if (r.wire_id != wire[i]) FAIL("actor " << i << " removed under another wire id");
  }
  std::size_t remembered = 0;
  std::size_t still_found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (t.find(wire[i])) ++still_found;
    if (t.retired(wire[i])) ++remembered;
  }
  CHECK(still_found == 0);
  CHECK(remembered == export_table::max_retired);
  for (std::size_t i = 0; i < extra; ++i) CHECK_FALSE(t.retired(wire[i]));
  CHECK(t.retired(wire[extra]));
  CHECK(t.retired(wire[n - 1]));
  // Removing one again changes nothing: it is not exported any more.
  CHECK(t.remove(libactor::detail::actor_access::get(actors[n - 1])->id()).wire_id == 0);
  CHECK(t.retired(wire[extra]));
}
