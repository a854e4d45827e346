#pragma once
// The actors of this node that peers may address. An actor is exported when
// its handle first leaves the node (in a message, or as a sender); peers
// address it by its *wire id*: a random 64-bit number drawn for it then, not
// its actor id. A wire id is a capability: a peer can name an actor only if
// some handle to it reached that peer (from this node, or passed on by
// another node), never by counting up from a small id it was given.
//
// An entry also records who may stop the actor from outside (a stop
// request, or a link through which its own exit stops the actor): the
// incarnation of the peer that spawned it (node::spawn_remote), or any peer
// once the owner allowed it (node::allow_remote_stop). A peer that watches
// an exported actor is recorded with it, to be sent `down` when it stops.
// The wire ids of actors that stopped are remembered for a while (a bounded
// set), so that a message to one is known to be late, not a guess.
// Thread-safe.

#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "libactor/actor.hpp"
#include "libactor/detail/ref_counted.hpp"

namespace libactor::net::detail {

class peer;

class export_table {
 public:
  struct added {
    std::uint64_t wire_id;
    bool fresh;  ///< Not exported before (the service must monitor it).
    /// The spawner given to add() had already gone down (spawner_gone()):
    /// the actor was not recorded as its, and must stop.
    bool spawner_gone = false;
  };
  /// Exports `a` (idempotent) and returns its wire id. `spawner` (of
  /// incarnation `spawner_inc`): the peer that spawned it, which may then
  /// stop it. Throws when the system's random generator fails.
  added add(actor* a, peer* spawner = nullptr, std::uint64_t spawner_inc = 0);
  /// Lets any peer that can address `a` stop it.
  added allow_stop(actor* a);
  /// `a` keeps running when the peer that spawned it goes down.
  added detach(actor* a);
  /// Incarnation `inc` of `p` went down: returns the actors it spawned that
  /// are not detached (they stop with it), and remembers it, so that a
  /// spawn of its still in progress is refused by add() (spawner_gone).
  std::vector<actor_ref> spawner_gone(const peer* p, std::uint64_t inc);
  static constexpr std::size_t max_gone_spawners = 4096;
  /// Actors `p` (any incarnation) spawned that still run.
  std::size_t spawned_count(const peer* p);
  /// The exported actor with wire id `id`, or an empty handle.
  actor_ref find(std::uint64_t id);
  /// What a stop request (or a link) from incarnation `inc` of `from` for
  /// wire id `id` may reach.
  struct stop_target {
    actor_ref ref;         ///< Empty when the id is not exported.
    bool allowed = false;  ///< That peer process spawned it, or the owner allowed any peer.
  };
  stop_target find_for_stop(std::uint64_t id, const peer* from, std::uint64_t inc);
  /// Whether `id` named an actor that has stopped (among the last
  /// max_retired to stop).
  bool retired(std::uint64_t id);
  static constexpr std::size_t max_retired = 65536;
  /// Records that `p` watches wire id `id`; false when `id` is not exported.
  bool watch(std::uint64_t id, peer* p);
  /// `p` went down: its watches end (they were for the connection that is
  /// gone). Moves the table's references to `p` into `out`, to be released
  /// after the caller's locks.
  void unwatch_all(const peer* p, std::vector<libactor::detail::ref_ptr<peer>>& out);
  /// Removes the actor with actor id `actor_id`: its wire id (0: it was
  /// not exported) and the peers that watched it.
  struct removed {
    std::uint64_t wire_id = 0;
    std::vector<libactor::detail::ref_ptr<peer>> watchers;
  };
  removed remove(std::uint64_t actor_id);
  void clear();

 private:
  struct entry {
    actor_ref ref;
    std::vector<libactor::detail::ref_ptr<peer>> watchers;
    libactor::detail::ref_ptr<peer> spawner;
    std::uint64_t spawner_inc = 0;
    bool any_peer_may_stop = false;
    bool detached = false;
  };
  /// Caller holds mu_.
  std::unordered_map<std::uint64_t, entry>::iterator add_locked(actor* a, bool& fresh);
  /// Exports `a` (idempotent) and sets one of its entry's flags.
  added mark(actor* a, bool entry::*flag);
  std::mutex mu_;
  std::unordered_map<std::uint64_t, entry> entries_;          // by wire id
  std::unordered_map<std::uint64_t, std::uint64_t> wire_of_;  // actor id -> wire id
  std::unordered_set<std::uint64_t> retired_;                 // wire ids of stopped actors
  std::deque<std::uint64_t> retired_order_;                   // oldest first
  std::unordered_map<const peer*, std::size_t> spawned_;      // live actors per spawner
  std::unordered_map<const peer*, std::unordered_set<std::uint64_t>> watched_;  // ids per watcher
  std::deque<std::pair<const peer*, std::uint64_t>> gone_;  // spawners that went down, newest last
};

}  // namespace libactor::net::detail
