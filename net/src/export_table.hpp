#pragma once
// The actors of this node that peers may address: an actor is exported when
// its handle first leaves the node (in a message, or as a sender), and peers
// address it by its id from then on. A peer that watches an exported actor
// is recorded with it, to be sent `down` when it stops. Thread-safe.

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "libactor/actor.hpp"
#include "libactor/detail/ref_counted.hpp"

namespace libactor::net::detail {

class peer;

class export_table {
 public:
  /// Exports `a` (idempotent); true when it was not exported before.
  bool add(actor* a);
  /// The exported actor with id `id`, or an empty handle.
  actor_ref find(std::uint64_t id);
  /// Records that `p` watches `id`; false when `id` is not exported.
  bool watch(std::uint64_t id, peer* p);
  /// Removes `id`; returns the peers that watched it.
  std::vector<libactor::detail::ref_ptr<peer>> remove(std::uint64_t id);
  void clear();

 private:
  struct entry {
    actor_ref ref;
    std::vector<libactor::detail::ref_ptr<peer>> watchers;
  };
  std::mutex mu_;
  std::unordered_map<std::uint64_t, entry> entries_;
};

}  // namespace libactor::net::detail
