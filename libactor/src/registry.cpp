// The name registry. Lock order: names_mu, then an actor's lock_; an actor
// that stops releases its lock_ before erasing its names, so the two never
// nest the other way.

#include "system_state.hpp"

namespace libactor {

bool actor_system::register_name(std::string name, const actor_ref& target) {
  if (!target || name.empty()) return false;
  auto& st = *state_;
  std::lock_guard lock(st.names_mu);
  if (st.names.count(name) != 0) return false;
  actor* a = detail::actor_access::get(target);
  if (a->proxy_) return false;
  {
    auto& ex = a->extra();
    detail::spin_guard g(a->lock_);
    if (ex.stopped) return false;
    ex.names.push_back(name);
  }
  st.names.emplace(std::move(name), target);
  return true;
}

actor_ref actor_system::lookup(std::string_view name) const {
  auto& st = *state_;
  std::lock_guard lock(st.names_mu);
  auto it = st.names.find(std::string(name));
  return it == st.names.end() ? actor_ref{} : it->second;
}

bool actor_system::unregister_name(std::string_view name) {
  auto& st = *state_;
  actor_ref removed;
  {
    std::lock_guard lock(st.names_mu);
    auto it = st.names.find(std::string(name));
    if (it == st.names.end()) return false;
    removed = std::move(it->second);
    st.names.erase(it);
    actor* a = detail::actor_access::get(removed);
    auto& ex = a->extra();
    detail::spin_guard g(a->lock_);
    for (auto n = ex.names.begin(); n != ex.names.end(); ++n) {
      if (*n == name) {
        ex.names.erase(n);
        break;
      }
    }
  }
  return true;
}

namespace detail {

void system_state::erase_name(const std::string& name, actor* a) noexcept {
  actor_ref removed;  // released outside the lock
  std::lock_guard lock(names_mu);
  auto it = names.find(name);
  if (it != names.end() && actor_access::get(it->second) == a) {
    removed = std::move(it->second);
    names.erase(it);
  }
}

}  // namespace detail
}  // namespace libactor
