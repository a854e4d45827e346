// The service actor (wire id 0 on every node): it answers peers' lookups and
// remote spawns, and monitors every exported actor, so that the export
// table drops an actor when it stops and watching peers are sent `down`.

#include "frame_builder.hpp"
#include "node_impl.hpp"

namespace libactor::net::detail {

namespace {

struct export_notice {
  actor_ref ref;
};

// The last actor this thread exported, and its wire id: a handler that
// sends one remote message after another exports its sender each time.
thread_local std::uint64_t t_exported_node = 0;  // incarnation of the node below
thread_local std::uint64_t t_exported_id = 0;    // an actor that node exported
thread_local std::uint64_t t_exported_wire = 0;  // its wire id

}  // namespace

actor_ref node_impl::make_service() {
  // The factory holds the node weakly: a function actor keeps its factory
  // as long as the actor object lives, and the node holds the actor
  // (service_). The behavior's handlers hold it strongly, until the service
  // stops.
  return sys_.spawn([weak = weak_from_this()](actor& me) -> behavior {
    auto self = weak.lock();
    if (!self) return {};
    // No link stops the service (it stops with its node): a handle to it
    // can reach local code, which may link it.
    me.trap_exit(true);
    return {
        [&me](export_notice& n) { me.monitor(n.ref); },
        [](exit_msg&) {},
        [self](down_msg& d) { self->local_down(d.source.id(), d.reason); },
        [self](lookup_request& q) -> actor_ref { return self->sys_.lookup(q.name); },
        [self, &me](spawn_request& q) -> spawn_reply {
          node::factory f;
          {
            std::lock_guard lock(self->fac_mu_);
            auto it = self->factories_.find(q.type);
            if (it != self->factories_.end()) f = it->second;
          }
          if (!f)
            return spawn_reply{{}, "no actor type \"" + q.type + "\" on node " + self->cfg_.name};
          auto* from = dynamic_cast<remote_proxy*>(core::actor_access::get(me.current_sender()));
          if (from != nullptr &&
              self->exports_.spawned_count(from->peer_.get()) >= self->cfg_.max_spawned_per_peer) {
            return spawn_reply{{},
                               "node " + from->peer_->name_ + " already runs " +
                                   std::to_string(self->cfg_.max_spawned_per_peer) +
                                   " actors it spawned on node " + self->cfg_.name +
                                   " (node_config::max_spawned_per_peer)"};
          }
          try {
            reader arg{std::span<const std::byte>(reinterpret_cast<const std::byte*>(q.arg.data()),
                                                  q.arg.size()),
                       self->cfg_.message_limits, self.get()};
            auto r = f(self->sys_, arg);
            if (!r) return spawn_reply{{}, r.err().to_string()};
            // The peer that asked may stop what it spawned (and only it).
            if (from != nullptr) {
              if (auto* a = core::actor_access::get(*r);
                  a != nullptr && !core::actor_access::is_proxy(a)) {
                bool gone = false;
                self->export_local(a, from->peer_.get(), from->incarnation_, &gone);
                if (gone) {
                  // Its spawner went down while it was being made: it would
                  // run with no one to use or stop it.
                  const std::string why = "node " + from->peer_->name_ +
                                          ", which spawned it, went down before the spawn finished";
                  self->sys_.stop(*r, exit_reason{exit_code::node_down, why});
                  return spawn_reply{{}, why};
                }
              }
            }
            return spawn_reply{*r, {}};
          } catch (const std::exception& e) {
            return spawn_reply{{}, std::string("spawning failed: ") + e.what()};
          }
        },
    };
  });
}

std::uint64_t node_impl::export_local(actor* a, peer* spawner, std::uint64_t spawner_inc,
                                      bool* spawner_gone) {
  const std::uint64_t id = a->id();
  if (spawner == nullptr && t_exported_node == incarnation_ && t_exported_id == id) {
    return t_exported_wire;
  }
  const auto e = exports_.add(a, spawner, spawner_inc);
  if (spawner_gone != nullptr) *spawner_gone = e.spawner_gone;
  monitor_if_fresh(e, a);
  t_exported_node = incarnation_;
  t_exported_id = id;
  t_exported_wire = e.wire_id;
  return e.wire_id;
}

void node_impl::monitor_if_fresh(const export_table::added& e, actor* a) {
  // The service monitors what is exported, to drop it (and tell watchers)
  // when it stops.
  if (e.fresh && service_) service_.send(export_notice{actor_ref{core::ref_ptr<actor>(a)}});
}

void node_impl::allow_remote_stop(actor* a) {
  monitor_if_fresh(exports_.allow_stop(a), a);
}

void node_impl::detach(actor* a) {
  monitor_if_fresh(exports_.detach(a), a);
}

bool node_impl::add_watch(peer& p, std::uint64_t id) {
  if (id == 0) return true;  // the service stops only with the node
  if (exports_.watch(id, &p)) return true;
  std::vector<std::byte> payload;
  writer w{payload};
  w.varint(id);
  wire_encode(w, exit_reason::error("no such actor on node " + cfg_.name));
  std::lock_guard lock(p.mu_);
  send_control(p, frame_kind::down, payload);
  return false;
}

void node_impl::local_down(std::uint64_t actor_id, const exit_reason& reason) {
  auto gone = exports_.remove(actor_id);
  if (gone.watchers.empty()) return;
  std::vector<std::byte> payload;
  writer w{payload};
  w.varint(gone.wire_id);
  wire_encode(w, reason);
  for (auto& p : gone.watchers) {
    std::lock_guard lock(p->mu_);
    if (p->node_ != nullptr) send_control(*p, frame_kind::down, payload);
  }
}

}  // namespace libactor::net::detail
