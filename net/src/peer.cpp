// Peers: the peer machine's events, raised by connections and the dialer,
// and its actions carried out. State changes happen under the peer's lock
// together with the transition that asked for them (a sender on another
// thread sees the machine and the connection in use agree); what they cause
// elsewhere (proxies stopped, asks failed, watchers told, connections
// closed) happens after the lock is released.

#include "peer.hpp"

#include "connection.hpp"
#include "frame_builder.hpp"
#include "node_impl.hpp"

#include <unordered_set>

namespace libactor::net::detail {

using act = peer_action::kind;

void peer::flush() noexcept {
  const auto owner = owner_.lock();  // the connection's node must outlive the flush
  if (!owner) return;
  std::shared_ptr<connection> c;
  {
    std::lock_guard lock(mu_);
    c = primary_;
  }
  if (c) c->flush();
}

std::optional<peer::request> peer::take_request(std::uint64_t key) {
  std::lock_guard lock(mu_);
  auto it = requests_.find(key);
  if (it == requests_.end()) return std::nullopt;
  std::optional<request> req(std::move(it->second));
  requests_.erase(it);
  return req;
}

struct node_impl::effects {
  struct down {
    std::vector<core::ref_ptr<remote_proxy>> proxies;
    std::vector<peer::request> requests;
    std::vector<actor_ref> watchers;
    std::uint64_t unsent = 0;
    std::string why;
    bool graceful = false;
    bool was_up = false;
    bool replaced = false;
    bool forgotten = false;  // the node forgot the peer (get_peer logs it)
    bool again = false;      // ... when it was down already: not a second loss
    std::uint64_t incarnation = 0;
  };
  struct up {
    std::shared_ptr<connection> conn;
    std::vector<actor_ref> watchers;
    std::vector<waiter> waiters;
    std::vector<core::ref_ptr<remote_proxy>> stale;
    std::vector<peer::request> failed;
    std::uint64_t dropped = 0;
    std::uint64_t incarnation = 0;
  };
  std::vector<down> downs;
  std::vector<up> ups;
  std::vector<std::pair<std::shared_ptr<connection>, peer_action>> ends;  // close, refuse
  std::vector<std::shared_ptr<connection>> flushes;
  std::vector<std::pair<conn_id, tcp::endpoint>> dials;
  std::vector<duration> redials;
  std::vector<std::pair<waiter, std::string>> resolved;
  std::vector<std::pair<waiter, std::string>> failed_waiters;
  std::string gave_up;                      // failed dials, when the machine gave the peer up
  std::vector<actor_ref> stopped_watchers;  // dropped under the lock, released after it
};

std::shared_ptr<connection> node_impl::find_conn(conn_id id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second;
}

bool node_impl::drive(const core::ref_ptr<peer>& p, const event& e, const std::string& log_line) {
  effects fx;
  {
    std::lock_guard lock(p->mu_);
    stage(*p, e(p->machine_), fx);
  }
  return finish(p, fx, log_line);
}

void node_impl::stage(peer& p, const peer_machine::actions& acts, effects& fx) {
  for (const peer_action& a : acts) {
    switch (a.what) {
      case act::dial:
        if (p.dial_) fx.dials.emplace_back(a.conn, *p.dial_);
        break;
      case act::send_node_info: {
        auto c = find_conn(a.conn);
        if (!c) break;
        std::vector<std::byte> payload;
        writer w{payload};
        w.fixed(incarnation_);
        wire_traits<std::string>::encode(w, cfg_.host);
        w.fixed(port_);
        c->append(make_frame(frame_kind::node_info, payload), false, SIZE_MAX);
        fx.flushes.push_back(c);
        break;
      }
      case act::refuse:
      case act::close:
        if (auto c = find_conn(a.conn)) {
          // A connect() whose connection lost to another: it is answered
          // when the peer is up, by the connection that won.
          if (c->waiter_ && a.duplicate) {
            p.waiters_.push_back(std::exchange(c->waiter_, nullptr));
          } else if (c->waiter_ && p.machine_.current() == peer_machine::phase::up) {
            fx.resolved.emplace_back(std::exchange(c->waiter_, nullptr), p.name_);
          } else if (c->waiter_ && p.machine_.current() == peer_machine::phase::connecting) {
            p.waiters_.push_back(std::exchange(c->waiter_, nullptr));
          }
          fx.ends.emplace_back(std::move(c), a);
        }
        break;
      case act::promote: {
        auto c = find_conn(a.conn);
        effects::up u;
        u.conn = c;
        u.incarnation = a.incarnation;
        p.primary_ = c;
        // Counted with the phase change, under the peer's mutex: whoever
        // sees the peer up (await_peer) sees it counted.
        stats_.peers_up.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        if (c) {
          c->promoted();
          p.adv_host_ = c->info_.host;
          p.adv_port_ = c->info_.port;
          p.mismatch_logged_ = false;
          p.refused_logged_ = false;
          if (c->dialled_) {
            // A peer given to node::connect keeps the operator's address
            // (set when that dial authenticated): a dial a handle started
            // elsewhere may win the race to promotion, but not move it.
            if (!p.machine_.pinned()) p.dial_ = c->dialled_;
          } else if (p.machine_.wanted() && !p.machine_.pinned() && c->info_.port != 0) {
            // Redials go where the peer says it listens now (it may have
            // restarted elsewhere), unless it names no routable address.
            // A peer given to node::connect is redialled where the operator
            // said: a node that connects under its name (with the secret,
            // any name can be claimed) does not move it.
            boost::system::error_code ec;
            const auto addr = asio::ip::make_address(c->info_.host, ec);
            // The peer names this address itself: dial_allow applies as to
            // an address from a handle.
            if (!ec && !addr.is_unspecified() && dial_allow_.allows(addr)) {
              p.dial_ = tcp::endpoint(addr, c->info_.port);
            }
          }
        }
        // Proxies made for another incarnation while connecting: that
        // process is not the one that answered.
        for (auto it = p.proxies_.begin(); it != p.proxies_.end();) {
          if (it->first.incarnation != a.incarnation) {
            if (core::actor_access::try_add_ref(it->second))
              u.stale.emplace_back(it->second, false);
            it = p.proxies_.erase(it);
          } else {
            ++it;
          }
        }
        // Control frames for the process that answered first (those for
        // another one belong to proxies stopped below), then the messages.
        std::vector<std::byte> control;
        for (auto& [inc, frame] : p.pending_control_) {
          if (inc == 0 || inc == a.incarnation)
            control.insert(control.end(), frame.begin(), frame.end());
        }
        p.pending_control_.clear();
        p.pending_control_bytes_ = 0;
        if (c && !control.empty()) c->adopt(control, 0);
        if (p.pending_inc_ != 0 && p.pending_inc_ != a.incarnation) {
          // Queued for another process: dropped, and the asks among them fail.
          u.dropped = p.pending_msgs_;
          p.pending_.clear();
          for (auto& [key, req] : p.requests_) u.failed.push_back(std::move(req));
          p.requests_.clear();
        } else if (c) {
          c->adopt(p.pending_, p.pending_msgs_);  // the connection's queue charges them now
        } else {
          u.dropped = p.pending_msgs_;  // no connection to take them: lost, and counted
          p.pending_.clear();
        }
        p.pending_charge_.settle(0);
        p.pending_msgs_ = 0;
        p.pending_inc_ = 0;
        p.prune_watchers(fx.stopped_watchers);
        u.watchers = p.watchers_;
        u.waiters.swap(p.waiters_);
        if (c) fx.flushes.push_back(c);
        fx.ups.push_back(std::move(u));
        break;
      }
      case act::teardown: {
        effects::down d;
        if (p.primary_)
          stats_.peers_up.fetch_sub(1, std::memory_order_relaxed);  // relaxed: statistics
        for (auto& [key, px] : p.proxies_) {
          if (core::actor_access::try_add_ref(px)) d.proxies.emplace_back(px, false);
        }
        p.proxies_.clear();
        for (remote_proxy** slot : {&p.service_, &p.anonymous_}) {
          if (*slot != nullptr && core::actor_access::try_add_ref(*slot)) {
            d.proxies.emplace_back(*slot, false);
          }
          *slot = nullptr;
        }
        for (auto& [key, req] : p.requests_) d.requests.push_back(std::move(req));
        p.requests_.clear();
        d.unsent = p.pending_msgs_ + (p.primary_ ? p.primary_->unsent_messages() : 0);
        p.pending_.clear();
        p.pending_control_.clear();
        p.pending_control_bytes_ = 0;
        p.pending_charge_.settle(0);
        p.pending_msgs_ = 0;
        p.pending_inc_ = 0;
        p.primary_.reset();
        p.prune_watchers(fx.stopped_watchers);
        d.watchers = p.watchers_;
        d.why = a.text;
        d.graceful = a.graceful;
        d.replaced = a.replaced;
        d.forgotten = a.forgotten;
        d.again = a.again;
        d.incarnation = a.incarnation;
        // connect() calls waiting for the peer's own connection: it is not
        // coming now.
        for (auto& w : p.waiters_) {
          fx.failed_waiters.emplace_back(std::move(w), "node " + p.name_ + " is down: " + a.text);
        }
        p.waiters_.clear();
        fx.downs.push_back(std::move(d));
        break;
      }
      case act::schedule_redial:
        fx.redials.push_back(a.delay);
        break;
      case act::give_up:
        fx.gave_up = a.text;
        break;
    }
  }
}

bool node_impl::finish(const core::ref_ptr<peer>& p, effects& fx, const std::string& log_line) {
  bool down_logged = false;
  for (auto& d : fx.downs) {
    if (!d.again) stats_.node_downs.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    const exit_reason reason{exit_code::node_down, "node " + p->name_ + " unreachable: " + d.why};
    if (d.unsent != 0) {
      drain_->lost(d.unsent);
      stats_.unreachable.fetch_add(d.unsent, std::memory_order_relaxed);  // relaxed: statistics
    }
    for (auto& px : d.proxies) px->kill(reason);
    for (auto& rq : d.requests) {
      core::actor_access::enqueue(
          core::actor_access::get(rq.asker),
          core::make_message<error>(core::msg_kind::error_reply, nullptr, rq.id,
                                    error{errc::node_down, reason.text()}));
    }
    for (auto& w : d.watchers) w.send(node_down_msg{p->name_, d.why});
    {
      // Its watches of this node's actors were for the connection that is
      // gone (its side saw them fire as node_down): they end here, with the
      // references they held to the peer.
      std::vector<core::ref_ptr<peer>> unwatched;
      exports_.unwatch_all(p.get(), unwatched);
    }
    if (!stopping_.load(std::memory_order_acquire) && d.incarnation != 0) {
      // What that process spawned here goes with it (unless detached): its
      // spawner can no longer use or stop it.
      const exit_reason gone{exit_code::node_down,
                             "node " + p->name_ + ", which spawned it, is down: " + d.why};
      for (auto& a : exports_.spawner_gone(p.get(), d.incarnation)) sys_.stop(a, gone);
    }
    if (d.replaced) {
      log_about(*p, "node " + p->name_ + " " + d.why);  // the promotion needs no line of its own
      down_logged = true;
    } else if (d.forgotten) {
      // The line the caller passed says it all (or its rate limit held it).
    } else if (!d.graceful && !stopping_.load(std::memory_order_acquire)) {
      log_about(*p, log_line.empty() ? "node " + p->name_ + " is down: " + d.why
                                     : log_line + "; node " + p->name_ + " is down");
      down_logged = true;
    }
  }
  if (!log_line.empty() && !down_logged) log_about(*p, log_line);
  // Closes after the teardown: a close re-enters the machine, which has
  // already moved on, so it changes nothing there.
  for (auto& [c, a] : fx.ends) {
    if (a.what == act::refuse && a.replaced) {
      c->refuse(protocol_errc::stale_incarnation, a.text);
    } else if (a.what == act::refuse) {
      c->refuse(
          a.duplicate ? protocol_errc::duplicate_connection : protocol_errc::stale_incarnation,
          a.text);
      // Once per incarnation: a replaced process that runs on redials for ever.
      const std::uint64_t inc = c->info_.incarnation;
      bool first = false;
      {
        std::lock_guard lock(p->mu_);
        first = !a.duplicate && p->stale_logged_ != inc;
        if (first) p->stale_logged_ = inc;
      }
      if (first) log_about(*p, "refused a connection from node " + p->name_ + ": " + a.text);
    } else {
      c->close(a.text, false);
    }
  }
  // What queued for the peer while it connected is on the wire before
  // anyone hears it is up (a sender woken by that must find the queue
  // drained, not full of frames from before).
  for (auto& c : fx.flushes) c->flush();
  const bool replacement = !fx.downs.empty() && fx.downs.back().replaced;
  for (auto& u : fx.ups) {
    if (!replacement && u.conn) {
      // How the connection is protected: the setting both sides agreed on
      // (node_config::tls, protect_frames), and the cipher.
      log_about(*p, "node " + p->name_ + " is up: incarnation " + std::to_string(u.incarnation) +
                        " at " + u.conn->info_.host + ":" + std::to_string(u.conn->info_.port) +
                        ", " + u.conn->protection_);
    }
    const exit_reason gone{exit_code::node_down, "node " + p->name_ + " restarted (incarnation " +
                                                     std::to_string(u.incarnation) +
                                                     "): the actor's process is gone"};
    for (auto& px : u.stale) px->kill(gone);
    if (u.dropped != 0) {
      drain_->lost(u.dropped);
      stats_.unreachable.fetch_add(u.dropped, std::memory_order_relaxed);  // relaxed: statistics
    }
    for (auto& rq : u.failed) {
      core::actor_access::enqueue(
          core::actor_access::get(rq.asker),
          core::make_message<error>(core::msg_kind::error_reply, nullptr, rq.id,
                                    error{errc::node_down, gone.text()}));
    }
    {
      std::lock_guard lock(peers_mu_);  // pairs with the wait in node::await_peer
    }
    peer_up_.notify_all();
    if (u.conn && u.conn->waiter_) {
      fx.resolved.emplace_back(std::exchange(u.conn->waiter_, nullptr), p->name_);
    }
    for (auto& w : u.waiters) fx.resolved.emplace_back(w, p->name_);
    for (auto& w : u.watchers) w.send(node_up_msg{p->name_});
  }
  for (auto& [w, name] : fx.resolved) w->set_value(name);
  for (auto& [w, why] : fx.failed_waiters) w->set_value(error{errc::node_down, why});
  if (!fx.gave_up.empty()) {
    std::string where;
    {
      std::lock_guard lock(p->mu_);
      if (p->dial_) where = endpoint_text(*p->dial_);
    }
    if (!where.empty()) {
      given_up_.remember(where, std::chrono::steady_clock::now());
      where = " at " + where;
    }
    if (auto line = refusals_.once(
            p->name_, "give_up",
            "gave up on node " + p->name_ + where + ": " + fx.gave_up +
                " dials in a row failed (node_config::max_failed_dials); handles to its actors "
                "fail until it connects here, node::connect reaches it, or a handle names it "
                "after a minute (logged once per node)",
            std::chrono::steady_clock::now(), false)) {
      log(*line);
    }
  }
  for (auto& [id, ep] : fx.dials) dial(p, ep, nullptr, id);
  for (auto& d : fx.redials) schedule_redial(p, d);
  return !fx.downs.empty();
}

core::ref_ptr<peer> node_impl::find_peer(std::string_view name) {
  std::lock_guard lock(peers_mu_);
  auto it = peers_.find(std::string(name));
  return it == peers_.end() ? core::ref_ptr<peer>{} : it->second;
}

void node_impl::log_about(peer& p, const std::string& line) {
  std::uint64_t held = 0;
  {
    std::lock_guard lock(p.mu_);
    if (!p.log_budget_.take(std::chrono::steady_clock::now())) {
      ++p.log_held_;
      return;
    }
    held = std::exchange(p.log_held_, 0);
  }
  log(held == 0 ? line
                : line + " (" + std::to_string(held) + " earlier lines about node " + p.name_ +
                      " were not logged: at most " + std::to_string(int(peer::log_burst)) +
                      " at once, then one every " + std::to_string(int(peer::log_every_s)) + " s)");
}

core::ref_ptr<peer> node_impl::get_peer(const std::string& name, admission how) {
  core::ref_ptr<peer> p;
  core::ref_ptr<peer> displaced;
  {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(name);
    if (it != peers_.end()) return it->second;
    if (peers_.size() >= cfg_.max_peers && !make_room()) {
      if (how == admission::connected) displaced = displace_unneeded(name);
      if (!displaced && how != admission::own) return {};
    }
    p = core::ref_ptr<peer>(
        new peer(this, weak_from_this(), name,
                 peer_machine::settings{.own_dial_wins = cfg_.name < name,
                                        .reconnect_min = cfg_.reconnect_min,
                                        .reconnect_max = cfg_.reconnect_max,
                                        .max_failed_dials = cfg_.max_failed_dials},
                 links_total_, as_bound(cfg_.max_links_per_peer), outbound_total_),
        false);
    peers_.emplace(name, p);
    evict_order_.push_back(name);
  }
  if (displaced) {
    stats_.peers_displaced.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    std::string why;
    {
      std::lock_guard lock(displaced->mu_);
      why = displaced->forgotten_;
    }
    // One line per forgotten node, within the refusal log's node-wide rate
    // limit: a peer that makes nodes connect and names others cannot flood
    // the log through it.
    const auto line =
        refusals_.once(displaced->name_, "displaced",
                       "node " + displaced->name_ + " " + why + " (logged once per node)",
                       std::chrono::steady_clock::now(), false);
    drive(
        displaced, [&](peer_machine& m) { return m.forget(why); }, line.value_or(""));
  }
  return p;
}

core::ref_ptr<peer> node_impl::displace_unneeded(const std::string& newcomer) {
  // A peer is needed here while it is up, has an authenticated connection
  // (a node that proved itself and is exchanging node_info), was connected
  // and is being redialled, or was asked for by this node's own code
  // (node::connect pins it; node::monitor_node watches it; a connect()
  // waits for it). Any other entry only stands for
  // names that messages gave. Those already down go first: their handles
  // failed already and nothing is queued for them; then those being
  // dialled, whose queued messages and asks fail. Every entry may be
  // looked at: this runs once per authenticated connection that finds the
  // table full, not per message.
  std::unordered_set<const peer*> attached;
  for (const auto& [id, c] : conns_) {
    if (c->peer_ && !c->closed()) attached.insert(c->peer_.get());
  }
  for (const bool want_down : {true, false}) {
    for (auto it = evict_order_.begin(); it != evict_order_.end(); ++it) {
      auto found = peers_.find(*it);
      if (found == peers_.end() || attached.contains(found->second.get())) continue;
      peer& q = *found->second;
      std::lock_guard plock(q.mu_);  // peers_mu_ before a peer's mutex, as in make_room
      const auto phase = q.machine_.current();
      // A peer this node was connected to and redials (a network blip)
      // is needed too: forgetting it would end the link for good.
      const bool redialling = q.machine_.wanted() && q.machine_.incarnation() != 0;
      if (phase == peer_machine::phase::up || (phase == peer_machine::phase::down) != want_down ||
          redialling || q.machine_.pinned() || !q.watchers_.empty() || !q.waiters_.empty()) {
        continue;
      }
      q.forgotten_ = "forgotten to make room for node " + newcomer +
                     ", which connected: nothing on this node needed it (no connection, "
                     "node::connect or node::monitor_node) and the table was full "
                     "(node_config::max_peers)";
      core::ref_ptr<peer> victim = std::move(found->second);
      peers_.erase(found);
      evict_order_.erase(it);
      return victim;
    }
  }
  return {};
}

bool node_impl::make_room() {
  // A peer may be forgotten when the table holds the only reference to it
  // (no proxy, connection, timer or caller has one, and none can take one
  // but through the table, under peers_mu_, which is held) and its machine
  // has nothing to do. The oldest entries are looked at first, a few per
  // call: a full table of busy peers costs a refusal, not a scan.
  for (std::size_t i = 0; i < eviction_checks && !evict_order_.empty(); ++i) {
    std::string name = std::move(evict_order_.front());
    evict_order_.pop_front();
    auto it = peers_.find(name);
    if (it == peers_.end()) continue;
    bool forgettable = false;
    if (it->second->use_count() == 1) {
      peer& q = *it->second;
      std::lock_guard plock(q.mu_);  // peers_mu_ before a peer's mutex, as in await_peer
      forgettable = q.machine_.idle() && (!q.machine_.wanted() || q.machine_.given_up()) &&
                    q.watchers_.empty() && q.waiters_.empty() && q.requests_.empty() &&
                    q.pending_.empty() && q.pending_control_.empty();
    }
    if (forgettable) {
      peers_.erase(it);
      return true;
    }
    evict_order_.push_back(std::move(name));
  }
  return false;
}

void node_impl::want_connection(const core::ref_ptr<peer>& p, const tcp::endpoint& ep) {
  if (stopping_.load(std::memory_order_acquire)) return;
  {
    // Every handle that names the peer comes here: once the machine keeps
    // the connection up on its own, nothing is left to do.
    std::lock_guard lock(p->mu_);
    if (p->dial_ && p->machine_.wanted()) return;
  }
  drive(p, [&](peer_machine& m) {
    if (!p->dial_) p->dial_ = ep;
    return m.want_connection(next_conn());
  });
}

actor* node_impl::proxy_for(peer& p, std::uint64_t id, std::uint64_t inc, remote_proxy::role r,
                            const handle_fields* origin, const std::string* why_down) {
  std::string why;
  {
    std::lock_guard lock(p.mu_);
    const auto phase = p.machine_.current();
    const std::uint64_t known = p.machine_.incarnation();
    if (p.node_ == nullptr) {
      why = "this node has shut down";
    } else if (!p.forgotten_.empty()) {
      why = "node " + p.name_ + " is unreachable: " + p.forgotten_;
    } else if (phase == peer_machine::phase::down && why_down != nullptr) {
      why = *why_down;
    } else if (phase == peer_machine::phase::down && p.machine_.given_up()) {
      why = "node " + p.name_ +
            " is unreachable: it was never reached, and this node gave up dialling it "
            "(node_config::max_failed_dials)";
    } else if (phase == peer_machine::phase::down) {
      why = "node " + p.name_ + " is unreachable";
    } else if (r == remote_proxy::role::actor && inc < known) {
      why = "node " + p.name_ + " restarted: incarnation " + std::to_string(inc) +
            " is older than the one connected (" + std::to_string(known) + ")";
    } else if (r == remote_proxy::role::actor && phase == peer_machine::phase::up && inc != known) {
      // A newer incarnation than the one connected: this node's connection
      // is to a process that has since been replaced; its handles are not
      // reachable through it.
      why = "node " + p.name_ + " incarnation " + std::to_string(inc) +
            " is not the one connected (" + std::to_string(known) + ")";
    } else if (r == remote_proxy::role::actor) {
      auto it = p.proxies_.find({id, inc});
      if (it != p.proxies_.end() && core::actor_access::try_add_ref(it->second)) return it->second;
      auto* fresh = new remote_proxy(sys_, core::ref_ptr<peer>(&p), id, inc, r);
      p.proxies_[{id, inc}] = fresh;
      return fresh;
    } else {
      remote_proxy** slot = r == remote_proxy::role::service ? &p.service_ : &p.anonymous_;
      if (*slot != nullptr && core::actor_access::try_add_ref(*slot)) return *slot;
      // The requester proxy carries the incarnation it came from (the one
      // connected; a teardown drops it): it names who spawned an actor.
      auto* fresh = new remote_proxy(sys_, core::ref_ptr<peer>(&p), id,
                                     r == remote_proxy::role::anonymous ? known : 0, r);
      *slot = fresh;
      return fresh;
    }
  }
  // Dead from the start, and never handed out again from a table. It keeps
  // the address it came with, so a node that can reach the actor can use it.
  handle_fields f{p.name_, inc, {}, 0, id};
  if (origin != nullptr) {
    f.host = origin->host;
    f.port = origin->port;
  } else {
    std::lock_guard lock(p.mu_);
    f.host = p.adv_host_;
    f.port = p.adv_port_;
  }
  return new dead_proxy(sys_, std::move(f), errc::node_down,
                        exit_reason{exit_code::node_down, why});
}

void node_impl::send_control(peer& p, frame_kind kind, std::span<const std::byte> payload,
                             std::uint64_t incarnation) {
  // Caller holds p.mu_.
  const auto phase = p.machine_.current();
  if (phase == peer_machine::phase::up && p.primary_) {
    p.primary_->append_control(make_frame(kind, payload));
    p.primary_->flush();
  } else if (phase == peer_machine::phase::connecting) {
    // Queued whatever the bound: only this node's own actors make control
    // frames before the first connection (a watch, a link), one per proxy
    // and action, and dropping one would leave a monitor that never fires.
    auto frame = make_frame(kind, payload);
    p.pending_control_bytes_ += frame.size();
    p.pending_control_.emplace_back(incarnation, std::move(frame));
    p.pending_charge_.settle(p.pending_.size() + p.pending_control_bytes_);
  }
}

void node_impl::on_authenticated(const std::shared_ptr<connection>& c) {
  const std::string& name = c->peer_name();
  core::ref_ptr<peer> p;
  if (c->target_) {
    // This node's dial for a peer of its table (the table keeps it while
    // the dial holds it; a forgotten one's machine closes the connection).
    if (c->target_->name_ != name) {
      // The address dialled for one node now hosts another (logged once
      // until the node is connected again; the redials go on). Nothing is
      // added to the table for the other node.
      bool first = false;
      {
        std::lock_guard lock(c->target_->mu_);
        first = !std::exchange(c->target_->mismatch_logged_, true);
      }
      c->close("the address of node " + c->target_->name_ + " now hosts node " + name, first);
      return;
    }
    p = c->target_;
  } else {
    // A connection node::connect made is this node's own choice; one the
    // peer made is bounded by the table.
    p = get_peer(name, c->waiter_ ? admission::own : admission::connected);
    if (!p) {
      const std::string why = "node " + cfg_.name + " keeps state for " +
                              std::to_string(cfg_.max_peers) +
                              " nodes, all in use (node_config::max_peers)";
      if (auto line = refusals_.once(
              name, "max_peers",
              "refused a connection from node " + name + ": " + why + " (logged once per node)",
              std::chrono::steady_clock::now(), true)) {
        log(*line);
      }
      c->refuse(protocol_errc::too_many_peers, why);
      return;
    }
  }
  c->peer_ = p;
  if (!c->initiator_) return;  // an acceptor waits for the dialler's node_info
  const bool own = c->waiter_ != nullptr;
  if (c->dialled_) {
    // node::connect's address is the one redials use, even if a handle
    // named the node at another one first.
    std::lock_guard lock(p->mu_);
    if (own || !p->dial_) p->dial_ = c->dialled_;
  }
  drive(p, [&](peer_machine& m) {
    if (own) m.pin();  // node::connect: redialled for as long as this node runs
    return m.authenticated(c->id_, true);
  });
}

void node_impl::on_node_info(const std::shared_ptr<connection>& c, const node_info_fields& info) {
  // Counted among the unauthenticated connections (and their caps) until
  // here: a peer that proves the secret and stops before node_info holds a
  // slot, not a connection beyond the caps.
  admitted(*c);
  c->info_ = info;
  drive(c->peer_,
        [&](peer_machine& m) { return m.node_info(c->id_, c->initiator_, info.incarnation); });
}

void node_impl::on_refused(const std::shared_ptr<connection>& c, const protocol_error& e) {
  if (e.code == protocol_errc::duplicate_connection) {
    // Not a failure: the peer keeps another connection with this node.
    {
      std::lock_guard lock(c->peer_->mu_);
      if (c->waiter_) c->peer_->waiters_.push_back(std::exchange(c->waiter_, nullptr));
    }
    drive(c->peer_, [&](peer_machine& m) { return m.duplicate(c->id_); });
    c->close("", false);
    return;
  }
  // A stale_incarnation refusal repeats on every redial of a process that
  // was replaced but runs on: logged once until the peer is connected again.
  bool first = true;
  if (c->peer_) {
    std::lock_guard lock(c->peer_->mu_);
    first = !std::exchange(c->peer_->refused_logged_, true);
  }
  c->close("refused by the peer: " + e.to_string() +
               (e.code == protocol_errc::stale_incarnation
                    ? " (this process was replaced by a newer one with the same name)"
                    : ""),
           first);
}

void node_impl::on_closed(const std::shared_ptr<connection>& c, const std::string& why,
                          bool graceful, const std::string& line) {
  std::vector<core::ref_ptr<peer>> told;
  if (c->peer_) told.push_back(c->peer_);
  if (c->target_ && c->target_ != c->peer_) told.push_back(c->target_);
  std::string logged = line;
  for (const auto& p : told) {
    drive(
        p, [&](peer_machine& m) { return m.closed(c->id_, why, graceful); }, logged);
    logged.clear();  // one line per event
  }
  if (!logged.empty()) log(logged);
}

}  // namespace libactor::net::detail
