#include "export_table.hpp"

#include "peer.hpp"

namespace libactor::net::detail {

bool export_table::add(actor* a) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(a->id());
  if (inserted) it->second.ref = actor_ref{libactor::detail::ref_ptr<actor>(a)};
  return inserted;
}

actor_ref export_table::find(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? actor_ref{} : it->second.ref;
}

bool export_table::watch(std::uint64_t id, peer* p) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  auto& ws = it->second.watchers;
  for (auto& w : ws) {
    if (w.get() == p) return true;
  }
  ws.emplace_back(p);
  return true;
}

std::vector<libactor::detail::ref_ptr<peer>> export_table::remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  auto watchers = std::move(it->second.watchers);
  entries_.erase(it);
  return watchers;
}

void export_table::clear() {
  decltype(entries_) gone;
  {
    std::lock_guard lock(mu_);
    gone.swap(entries_);
  }
  // Released outside the lock: an actor's last reference may run code
  // that exports (its destructor sends).
}

}  // namespace libactor::net::detail
