#include "export_table.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "peer.hpp"

namespace libactor::net::detail {

namespace {

/// A wire id no one can predict: 63 bits from the system's generator, and
/// the top bit set, so that every id takes the same 10 bytes as LEB128
/// (frames of one message type have one size) and none is 0 (the service).
std::uint64_t draw_wire_id() {
  std::uint64_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) {
    throw std::runtime_error("libactor.net: no randomness for an actor's wire id");
  }
  return r | (std::uint64_t{1} << 63);
}

}  // namespace

std::unordered_map<std::uint64_t, export_table::entry>::iterator export_table::add_locked(
    actor* a, bool& fresh) {
  auto [w, inserted] = wire_of_.try_emplace(a->id(), 0);
  fresh = inserted;
  if (!inserted) return entries_.find(w->second);
  try {
    std::uint64_t id = draw_wire_id();
    while (entries_.contains(id)) id = draw_wire_id();
    auto it = entries_.try_emplace(id).first;
    it->second.ref = actor_ref{libactor::detail::ref_ptr<actor>(a)};
    w->second = id;
    return it;
  } catch (...) {
    wire_of_.erase(w);
    throw;
  }
}

export_table::added export_table::add(actor* a, peer* spawner, std::uint64_t spawner_inc) {
  std::lock_guard lock(mu_);
  bool fresh = false;
  auto it = add_locked(a, fresh);
  if (spawner != nullptr &&
      std::find(gone_.begin(), gone_.end(),
                std::pair<const peer*, std::uint64_t>{spawner, spawner_inc}) != gone_.end()) {
    return {it->first, fresh, true};
  }
  if (spawner != nullptr && !it->second.spawner) {
    it->second.spawner = libactor::detail::ref_ptr<peer>(spawner);
    it->second.spawner_inc = spawner_inc;
    ++spawned_[spawner];
  }
  return {it->first, fresh};
}

export_table::added export_table::mark(actor* a, bool entry::*flag) {
  std::lock_guard lock(mu_);
  bool fresh = false;
  auto it = add_locked(a, fresh);
  it->second.*flag = true;
  return {it->first, fresh};
}

export_table::added export_table::detach(actor* a) {
  return mark(a, &entry::detached);
}

std::vector<actor_ref> export_table::spawner_gone(const peer* p, std::uint64_t inc) {
  std::vector<actor_ref> out;
  std::lock_guard lock(mu_);
  gone_.emplace_back(p, inc);
  if (gone_.size() > max_gone_spawners) gone_.pop_front();
  if (spawned_.find(p) == spawned_.end()) return out;
  for (auto& [id, e] : entries_) {
    if (e.spawner.get() == p && e.spawner_inc == inc && !e.detached) out.push_back(e.ref);
  }
  return out;
}

std::size_t export_table::spawned_count(const peer* p) {
  std::lock_guard lock(mu_);
  auto it = spawned_.find(p);
  return it == spawned_.end() ? 0 : it->second;
}

export_table::added export_table::allow_stop(actor* a) {
  return mark(a, &entry::any_peer_may_stop);
}

actor_ref export_table::find(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? actor_ref{} : it->second.ref;
}

export_table::stop_target export_table::find_for_stop(std::uint64_t id, const peer* from,
                                                      std::uint64_t inc) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  const entry& e = it->second;
  return {e.ref,
          e.any_peer_may_stop || (e.spawner.get() == from && e.spawner_inc == inc && inc != 0)};
}

bool export_table::retired(std::uint64_t id) {
  std::lock_guard lock(mu_);
  return retired_.contains(id);
}

bool export_table::watch(std::uint64_t id, peer* p) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  auto& ws = it->second.watchers;
  for (auto& w : ws) {
    if (w.get() == p) return true;
  }
  watched_[p].insert(id);
  ws.emplace_back(p);
  return true;
}

void export_table::unwatch_all(const peer* p, std::vector<libactor::detail::ref_ptr<peer>>& out) {
  std::lock_guard lock(mu_);
  auto w = watched_.find(p);
  if (w == watched_.end()) return;
  for (const std::uint64_t id : w->second) {
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;
    auto& ws = it->second.watchers;
    for (auto x = ws.begin(); x != ws.end(); ++x) {
      if (x->get() == p) {
        out.push_back(std::move(*x));
        ws.erase(x);
        break;
      }
    }
  }
  watched_.erase(w);
}

export_table::removed export_table::remove(std::uint64_t actor_id) {
  removed out;
  entry gone;  // released after the lock (see clear())
  {
    std::lock_guard lock(mu_);
    auto w = wire_of_.find(actor_id);
    if (w == wire_of_.end()) return out;
    out.wire_id = w->second;
    wire_of_.erase(w);
    if (retired_.insert(out.wire_id).second) {
      retired_order_.push_back(out.wire_id);
      if (retired_order_.size() > max_retired) {
        retired_.erase(retired_order_.front());
        retired_order_.pop_front();
      }
    }
    auto it = entries_.find(out.wire_id);
    if (it != entries_.end()) {
      gone = std::move(it->second);
      entries_.erase(it);
      if (gone.spawner) {
        auto s = spawned_.find(gone.spawner.get());
        if (s != spawned_.end() && --s->second == 0) spawned_.erase(s);
      }
      for (const auto& watcher : gone.watchers) {
        auto x = watched_.find(watcher.get());
        if (x != watched_.end() && x->second.erase(out.wire_id) == 1 && x->second.empty()) {
          watched_.erase(x);
        }
      }
    }
  }
  out.watchers = std::move(gone.watchers);
  return out;
}

void export_table::clear() {
  decltype(entries_) gone;
  {
    std::lock_guard lock(mu_);
    gone.swap(entries_);
    wire_of_.clear();
    retired_.clear();
    retired_order_.clear();
    spawned_.clear();
    watched_.clear();
    gone_.clear();
  }
  // Released outside the lock: an actor's last reference may run code
  // that exports (its destructor sends).
}

}  // namespace libactor::net::detail
