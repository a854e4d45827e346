// The actor's life: spawn, activations, message handling, asks, timers,
// monitors, links and stopping.

#include <cstdio>
#include <exception>

#include "libactor/detail/proxy.hpp"
#include "libactor/system.hpp"
#include "system_state.hpp"

namespace libactor {
namespace detail {

namespace {
thread_local actor* t_current = nullptr;

thread_local const spawn_context* t_spawn = nullptr;

// The behavior whose handler runs on this thread, so that a task the
// handler starts keeps that behavior alive, and become() can tell that it
// replaces a running one (dispatch_user).
thread_local behavior_impl* t_dispatching = nullptr;

// The root task running on this thread (its first run, or a resumption by
// an answer), for current_sender() and for the asks it makes.
thread_local root_task::promise_type* t_running_root = nullptr;

// Set while an ask enqueues its request (ask_deadline(), proxy.hpp); min()
// meanwhile: no ask is enqueueing.
thread_local std::chrono::steady_clock::time_point t_ask_deadline =
    std::chrono::steady_clock::time_point::min();

/// Runs what the runtime destroys on an actor's thread (sender references,
/// payloads) as nobody: a destructor that sends must not borrow the name of
/// the actor whose activation happens to drop the last reference.
class as_nobody {
 public:
  as_nobody() noexcept : previous_(std::exchange(t_current, nullptr)) {}
  ~as_nobody() { t_current = previous_; }
  as_nobody(const as_nobody&) = delete;
  as_nobody& operator=(const as_nobody&) = delete;

 private:
  actor* previous_;
};

std::string what_of(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

actor* current_actor() noexcept {
  return t_current;
}

namespace {
// One-way messages a handler sent to one receiver, linked newest-first. The
// outbox holds a reference to the receiver until it is flushed.
struct outbox {
  actor* to = nullptr;
  message* newest = nullptr;
  message* oldest = nullptr;
  unsigned count = 0;
  // The receiver of this handler's last direct send; compared, never
  // dereferenced. A second consecutive send to it starts a batch, so single
  // sends (request/response chains) pay nothing for batching.
  const actor* last_direct = nullptr;
  // Set when a send by this thread unblocked (scheduled) an actor; lets the
  // activation loop skip the run-next release after handlers that woke no one.
  bool woke = false;
  // A proxy's deferred write (see flush_after_handler); one reference held.
  flushable* deferred = nullptr;
};
thread_local outbox t_outbox;
constexpr unsigned outbox_limit = 64;
}  // namespace

void flush_local_batch() noexcept {
  outbox& o = t_outbox;
  o.last_direct = nullptr;
  if (o.to == nullptr) return;
  actor* to = std::exchange(o.to, nullptr);
  message* newest = std::exchange(o.newest, nullptr);
  message* oldest = std::exchange(o.oldest, nullptr);
  o.count = 0;
  to->push_chain(newest, oldest);
  actor_access::release(to);
}

void flush_outbox() noexcept {
  // The local batch first: it holds sends made before anything the deferred
  // write carries that could depend on them (a proxy's enqueue flushes the
  // batch before it encodes, see flush_local_batch()).
  flush_local_batch();
  outbox& o = t_outbox;
  if (o.deferred != nullptr) [[unlikely]] {
    flushable* f = std::exchange(o.deferred, nullptr);
    f->flush();
    f->release();
  }
}
std::chrono::steady_clock::time_point ask_deadline() noexcept {
  return t_ask_deadline;
}

send_status enqueue_request(actor* to, message* m,
                            std::chrono::steady_clock::time_point deadline) noexcept {
  // Restored, not reset: an enqueue that runs user code (a dead-letter hook)
  // could ask in turn.
  const auto outer = std::exchange(t_ask_deadline, deadline);
  const send_status s = actor_access::enqueue(to, m);
  t_ask_deadline = outer;
  return s;
}

bool flush_after_handler(flushable* f) noexcept {
  if (t_current == nullptr) return false;
  outbox& o = t_outbox;
  if (o.deferred == f) return true;
  if (o.deferred != nullptr) {
    flushable* prev = std::exchange(o.deferred, nullptr);
    prev->flush();
    prev->release();
  }
  f->add_ref();
  o.deferred = f;
  return true;
}

void release_actor(actor* a) noexcept {
  actor_access::release(a);
}

current_guard::current_guard(actor* a) noexcept : previous_(t_current) {
  t_current = a;
}
current_guard::~current_guard() {
  t_current = previous_;
}

spawn_scope::spawn_scope(system_state* sys, const spawn_options& opts)
    : ctx_{sys, opts}, previous_(t_spawn) {
  // seq_cst: see system_state::shutting_down.
  if (sys->shutting_down.load(std::memory_order_seq_cst)) {
    throw std::logic_error("actor_system::spawn: the system is shutting down");
  }
  t_spawn = &ctx_;
}

spawn_scope::~spawn_scope() {
  t_spawn = previous_;
}

void reply_error(const message& m, actor* from, errc code, std::string text) noexcept {
  if (m.request_id == 0 || m.sender == nullptr || m.kind != msg_kind::user) return;
  if (from) actor_access::add_ref(from);
  actor_access::enqueue(m.sender, make_message<error>(msg_kind::error_reply, from, m.request_id,
                                                      error{code, std::move(text)}));
}

send_status send_to_empty(message* m) noexcept {
  // Inside a handler, the sender's system counts and logs it; outside, the
  // caller has the returned status (and an asker its error).
  if (actor* cur = t_current; cur != nullptr && cur->sys_ != nullptr) {
    cur->sys_->dead_letter(m, nullptr);
  } else {
    reply_error(*m, nullptr, errc::receiver_down, "the handle is empty");
    m->dispose();
  }
  return send_status::dead_letter;
}

// --- reply_target --------------------------------------------------------------

reply_target::reply_target(const message& request) noexcept {
  if (request.request_id != 0 && request.sender != nullptr && request.kind == msg_kind::user) {
    to_ = request.sender;
    actor_access::add_ref(to_);
    request_id_ = request.request_id;
  }
}

reply_target::~reply_target() {
  if (to_) fail(errc::receiver_down, "the receiver stopped before it answered");
}

actor* reply_target::self_ref() noexcept {
  actor* a = t_current;
  if (a) actor_access::add_ref(a);
  return a;
}

void reply_target::deliver_message(message* m) noexcept {
  actor* to = std::exchange(to_, nullptr);
  actor_access::enqueue(to, m);
  as_nobody nobody;  // the asker's last reference may go here
  actor_access::release(to);
}

void reply_target::fail(errc code, std::string text) {
  if (!to_) return;
  deliver_message(make_message<error>(msg_kind::error_reply, self_ref(), request_id_,
                                      error{code, std::move(text)}));
}

// --- tasks ----------------------------------------------------------------------

root_task::promise_type::~promise_type() {
  if (self != nullptr) {
    // Owner thread: linked by start_root, which created the extra part.
    auto& ex = *self->extra_.load(std::memory_order_acquire);  // acquire: see extra()
    if (prev != nullptr) {
      prev->next = next;
    } else {
      ex.roots = next;
    }
    if (next != nullptr) next->prev = prev;
  }
  if (started_by != nullptr) release(started_by);
  if (request_sender != nullptr) {
    as_nobody nobody;  // the requester's last reference may go here
    release_actor(request_sender);
  }
}

void start_root(root_task t) {
  actor* self = t_current;
  auto& ex = self->extra();  // may throw: nothing is linked yet
  auto& p = t.handle.promise();
  p.self = self;
  p.started_by = t_dispatching;
  if (p.started_by != nullptr) retain(p.started_by);
  if (self->current_ != nullptr) {
    p.request_type = self->current_->type;
    if (self->current_->sender != nullptr) {
      p.request_sender = self->current_->sender;
      actor_access::add_ref(p.request_sender);
    }
  }
  p.next = ex.roots;
  if (ex.roots != nullptr) ex.roots->prev = &p;
  ex.roots = &p;
  root_task::promise_type* outer = std::exchange(t_running_root, &p);
  std::exchange(t.handle, nullptr).resume();  // linked: the actor owns the frame now
  t_running_root = outer;                     // the frame may be gone: do not touch p
}

void fail_current(std::exception_ptr ep, reply_target& rt) noexcept {
  std::string text = what_of(ep);
  try {
    rt.fail(errc::handler_failed, text);
  } catch (...) {
  }
  if (actor* self = t_current) {
    // The message whose handler failed: a task's starting message, or the
    // one being dispatched.
    const root_task::promise_type* root = t_running_root;
    const type_id type = root != nullptr && root->self == self ? root->request_type
                         : self->current_ != nullptr           ? self->current_->type
                                                               : nullptr;
    self->sys_->actor_failed(self, "the handler for", type, ep);
    if (!self->quitting_) {
      self->quitting_ = true;
      self->extra().quit_reason = exit_reason::error(std::move(text));
    }
  }
}

// --- spawn -----------------------------------------------------------------------

actor_ref launch(actor* a) {
  system_state* sys = a->sys_;
  try {
    sys->track(a);
  } catch (...) {
    actor_access::release(a);  // never published: destroyed here
    throw;
  }
  actor_ref handle{ref_ptr<actor>(a)};
  {
    current_guard g(a);
    try {
      a->bhv_ = a->make_behavior();
      if (!a->bhv_) a->quit(exit_reason::normal());
    } catch (...) {
      sys->actor_failed(a, "make_behavior", nullptr, std::current_exception());
      a->quit(exit_reason::error(what_of(std::current_exception())));
    }
    flush_outbox();
    if (a->quitting_) {
      a->stop_now(a->extra().quit_reason, nullptr);
      return handle;
    }
    // Hand the actor to the scheduler: block it, or schedule it if messages
    // arrived while it initialised.
    if (!a->mailbox_.try_block()) sys->schedule(a);
  }
  // A shutdown that began after track() found this actor in its scan and
  // asked it to stop; it waits for it.
  return handle;
}

// --- reply_sink --------------------------------------------------------------------

reply_sink::reply_sink() noexcept : actor(proxy_tag{}, nullptr) {}

reply_sink::~reply_sink() {
  if (answer_) answer_->dispose();
}

send_status reply_sink::enqueue(message* m) noexcept {
  flush_outbox();  // what the replying handler sent before answering goes first
  {
    std::lock_guard lock(mu_);
    if (!answer_ && !taken_ &&
        (m->kind == msg_kind::response || m->kind == msg_kind::error_reply)) {
      answer_ = m;
      m = nullptr;
    }
  }
  if (m) {
    m->dispose();
    return send_status::dead_letter;
  }
  cv_.notify_all();
  return send_status::ok;
}

message* reply_sink::wait(time_point deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [this] { return answer_ != nullptr; });
  taken_ = true;
  return std::exchange(answer_, nullptr);
}

}  // namespace detail

// --- actor: construction -----------------------------------------------------------

actor::actor() {
  const detail::spawn_context* ctx = detail::t_spawn;
  if (ctx == nullptr) {
    throw std::logic_error("actors are created with actor_system::spawn, not directly");
  }
  sys_ = ctx->sys;
  sys_->retain();
  capacity_ = ctx->opts.mailbox_capacity;
  policy_ = ctx->opts.overload;
  if (capacity_ != 0 && policy_ == overload_policy::drop_oldest) {
    // Before the actor is published: no producer can see a half-made inbox.
    extra().inbox = std::make_unique<detail::evicting_inbox>(capacity_);
  }
  // relaxed: a unique number; nothing is published with it.
  id_ = sys_->next_id.fetch_add(1, std::memory_order_relaxed);
}

actor::actor(proxy_tag, detail::system_state* sys) noexcept : proxy_(true), sys_(sys) {
  // Proxies get ids from a process-wide counter when they have no system.
  static std::atomic<std::uint64_t> proxy_ids{std::uint64_t{1} << 62};
  // relaxed: as above.
  id_ = sys ? sys->next_id.fetch_add(1, std::memory_order_relaxed)
            : proxy_ids.fetch_add(1, std::memory_order_relaxed);
  if (sys_ != nullptr) sys_->retain();
}

actor::~actor() {
  // acquire: this thread owns the last reference; see ref_counted::release().
  delete extra_.load(std::memory_order_acquire);
  if (detail::message* left = mailbox_.take_stash()) {
    while (left) {
      detail::message* n = left->next;
      left->dispose();
      left = n;
    }
  }
  if (sys_ != nullptr) sys_->release();  // last: may free the (retired) system
}

detail::actor_extra& actor::extra() {
  // acquire: pairs with the release CAS below; the object is fully built.
  detail::actor_extra* e = extra_.load(std::memory_order_acquire);
  if (e) return *e;
  auto* fresh = new detail::actor_extra;
  // acq_rel: release publishes *fresh; acquire (also on failure) sees the
  // winner's object.
  if (extra_.compare_exchange_strong(e, fresh, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
    return *fresh;
  }
  delete fresh;
  return *e;
}

actor_system& actor::system() const noexcept {
  return sys_->owner;
}

void actor::require_owner(const char* what) const {
  if (detail::t_current != this) {
    throw std::logic_error(std::string("libactor::actor::") + what +
                           " may only be called from the actor's own handlers");
  }
}

// --- actor: context API ----------------------------------------------------------------

actor_ref actor::current_sender() const {
  require_owner("current_sender");
  const auto* root = detail::t_running_root;
  actor* s = nullptr;
  if (root != nullptr && root->self == this) {
    s = root->request_sender;
  } else if (current_ != nullptr) {
    s = current_->sender;
  }
  return s == nullptr ? actor_ref{} : actor_ref{detail::ref_ptr<actor>(s)};
}

void actor::become(behavior b) {
  require_owner("become");
  // The running handler (and its captures) must outlive this call: keep a
  // reference to its behavior until dispatch_user() returns from it. Only
  // the first become() of a handler can replace the running behavior.
  if (bhv_.impl_ != nullptr && bhv_.impl_ == detail::t_dispatching && !pinned_) {
    detail::retain(bhv_.impl_);
    pinned_ = true;
  }
  bhv_ = std::move(b);
}

void actor::quit(exit_reason reason) {
  require_owner("quit");
  if (quitting_) return;
  quitting_ = true;
  extra().quit_reason = std::move(reason);
}

void actor::trap_exit(bool on) {
  require_owner("trap_exit");
  trap_exit_ = on;
}

void actor::monitor(const actor_ref& other) {
  require_owner("monitor");
  if (!other) throw std::invalid_argument("monitor: empty handle");
  actor* o = other.get();
  std::optional<exit_reason> gone;
  std::vector<actor_ref> swept;  // released after the lock: a last reference runs a destructor
  {
    auto& ex = o->extra();
    detail::spin_guard g(o->lock_);
    if (ex.stopped) {
      gone = ex.final_reason;
    } else {
      // Watchers that stopped without demonitor() would otherwise stay
      // (and keep their memory) until `o` stops.
      if (ex.monitors.size() >= ex.monitors_sweep_at) {
        auto keep = std::partition(ex.monitors.begin(), ex.monitors.end(), [](const actor_ref& w) {
          return !detail::actor_access::stopped(w.get());
        });
        swept.assign(std::make_move_iterator(keep), std::make_move_iterator(ex.monitors.end()));
        ex.monitors.erase(keep, ex.monitors.end());
        ex.monitors_sweep_at = std::max<std::size_t>(16, 2 * (ex.monitors.size() + 1));
      }
      ex.monitors.push_back(self());
    }
  }
  if (!gone && o->proxy_) o->on_watched();
  if (gone) {
    o->add_ref();
    enqueue(detail::make_message<down_msg>(detail::msg_kind::down, o, 0,
                                           down_msg{other, std::move(*gone)}));
  }
}

void actor::demonitor(const actor_ref& other) {
  require_owner("demonitor");
  if (!other) return;
  actor* o = other.get();
  auto& ex = o->extra();
  detail::spin_guard g(o->lock_);
  for (auto it = ex.monitors.begin(); it != ex.monitors.end(); ++it) {
    if (it->get() == this) {
      ex.monitors.erase(it);
      return;
    }
  }
}

/// Records a link in both actors, each under its own lock (never both at
/// once). An actor that had already stopped records nothing; the other one
/// gets its exit signal now, as if it had been linked when it stopped.
/// True when both were running. `a` refuses a new link when it already has
/// `max_links_of_a` (links made on a peer's behalf are bounded); then
/// nothing is recorded and `refused` is set.
bool actor::link_pair(actor* a, actor* b, std::size_t max_links_of_a, bool* refused) noexcept {
  using namespace detail;
  // A link is there or not (Erlang's semantics): linking twice is one
  // link, and one unlink removes it.
  auto record = [](actor* in, actor* other, std::size_t max,
                   bool* full) -> std::optional<exit_reason> {
    auto& ex = in->extra();
    {
      spin_guard g(in->lock_);
      if (ex.stopped) return ex.final_reason;
      if (ex.links.count(other) != 0) return std::nullopt;
      if (ex.links.size() >= max) {
        *full = true;
        return std::nullopt;
      }
      ex.links.emplace(other, actor_ref{ref_ptr<actor>(other)});
    }
    if (in->proxy_) in->on_links_changed(1);
    return std::nullopt;
  };
  auto tell = [](actor* to, actor* gone, exit_reason reason) {
    actor_access::add_ref(gone);
    actor_access::enqueue(
        to, make_message<exit_msg>(msg_kind::exit_signal, gone, 0,
                                   exit_msg{actor_ref{ref_ptr<actor>(gone)}, std::move(reason)}));
  };
  bool full = false;
  const auto a_gone = record(a, b, max_links_of_a, &full);
  if (full) {
    if (refused != nullptr) *refused = true;
    return false;
  }
  const auto b_gone = record(b, a, SIZE_MAX, &full);
  if (!a_gone && b->proxy_ && actor_access::stopped(a)) {
    // `a` stopped between the two records: its exit went through the proxy
    // `b` before `b` had recorded it (drop_link found nothing), and nothing
    // else would take it out of `b` now.
    static_cast<proxy*>(b)->drop_link(a);
  }
  if (b_gone && !a_gone) tell(a, b, *b_gone);
  if (a_gone && !b_gone) tell(b, a, *a_gone);
  return !a_gone && !b_gone;
}

bool actor::linked_to(actor* a, const actor* b) noexcept {
  auto* ex = a->extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (ex == nullptr) return false;
  detail::spin_guard g(a->lock_);
  return ex->links.count(b) != 0;
}

void actor::unlink_pair(actor* a, actor* b) noexcept {
  for (auto [in, other] : {std::pair{a, b}, std::pair{b, a}}) {
    auto* ex = in->extra_.load(std::memory_order_acquire);  // acquire: see extra()
    if (ex == nullptr) continue;
    bool erased = false;
    {
      detail::spin_guard g(in->lock_);
      erased = ex->links.erase(other) != 0;
    }
    if (erased && in->proxy_) in->on_links_changed(-1);
  }
}

namespace detail {
bool link_on_behalf(actor* local, actor* remote, std::size_t max_links) noexcept {
  bool refused = false;
  (void)actor::link_pair(local, remote, max_links, &refused);
  return !refused;
}

void unlink_on_behalf(actor* local, actor* remote) noexcept {
  actor::unlink_pair(local, remote);
}

bool linked(actor* local, const actor* remote) noexcept {
  return actor::linked_to(local, remote);
}
}  // namespace detail

void actor::link(const actor_ref& other) {
  require_owner("link");
  if (!other || other.get() == this) throw std::invalid_argument("link: empty handle or self");
  actor* o = other.get();
  if (link_pair(this, o, SIZE_MAX, nullptr) && o->proxy_) {
    o->on_watched();
    o->on_linked(this);
  }
}

void actor::unlink(const actor_ref& other) {
  require_owner("unlink");
  if (!other) return;
  actor* o = other.get();
  unlink_pair(this, o);
  if (o->proxy_) o->on_unlinked(this);
}

timer_id actor::start_timer(detail::message* proto,
                            detail::message* (*clone)(const detail::message&), duration delay,
                            duration period) {
  detail::message_ptr owned{proto};
  require_owner("send_after/send_every");
  auto& ex = extra();
  // A stopping actor's timers are already cancelled (a timer started in
  // on_exit would otherwise fire into a closed mailbox forever).
  if (ex.timers_closed) return timer_id{0};
  const std::uint64_t id = sys_->timers.add(self(), owned.release(), clone, delay, period);
  if (id == 0) return timer_id{0};  // the system is shutting down
  try {
    ex.timers.emplace(id, period > duration::zero());
  } catch (...) {
    sys_->timers.cancel(id);  // untracked, it could not be cancelled later
    throw;
  }
  return timer_id{id};
}

bool actor::cancel_timer(timer_id id) {
  require_owner("cancel_timer");
  auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (!ex || ex->timers.erase(static_cast<std::uint64_t>(id)) == 0) return false;
  sys_->timers.cancel(static_cast<std::uint64_t>(id));
  return true;
}

void actor::start_ask(const actor_ref& to, detail::message* req, duration timeout,
                      std::coroutine_handle<> h, detail::pending_ask_slot slot) {
  // Until it is sent, the request is ours to dispose of: if anything below
  // throws (no memory for the table or the timer), nothing stays behind and
  // the exception reaches the awaiting coroutine.
  detail::message_ptr owned{req};
  auto& ex = extra();
  const std::uint64_t id = ++ex.next_request;
  req->request_id = id;
  auto slot_it =
      ex.asks.emplace(id, detail::actor_extra::pending_ask{h, slot, 0, detail::t_running_root})
          .first;
  try {
    slot_it->second.timer = sys_->timers.add(
        self(),
        detail::make_message<detail::no_payload>(detail::msg_kind::ask_timeout, nullptr, id),
        nullptr, timeout, duration::zero());
  } catch (...) {
    ex.asks.erase(slot_it);
    throw;
  }
  req = owned.release();
  if (to) {
    detail::enqueue_request(to.get(), req,
                            detail::deadline_after(std::chrono::steady_clock::now(), timeout));
  } else {
    detail::send_to_empty(req);
  }
}

void actor::complete_ask(std::uint64_t id, detail::message* m, error* e) noexcept {
  auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (!ex) return;
  auto it = ex->asks.find(id);
  if (it == ex->asks.end()) return;  // answered after its timeout: ignored
  auto p = it->second;
  ex->asks.erase(it);
  if (p.timer != 0 && e == nullptr) sys_->timers.cancel(p.timer);
  try {
    p.slot.set(p.slot.result, m, e);
  } catch (...) {
    error oom{errc::bad_response_type, "failed to move the reply into place"};
    p.slot.set(p.slot.result, nullptr, &oom);
  }
  detail::root_task::promise_type* outer = std::exchange(detail::t_running_root, p.root);
  p.handle.resume();
  detail::t_running_root = outer;
}

// --- actor: messages ----------------------------------------------------------------------

void actor::push_chain(detail::message* newest, detail::message* oldest) noexcept {
  switch (mailbox_.push_chain(newest, oldest)) {
    case detail::mailbox::push_result::ok:
      return;
    case detail::mailbox::push_result::unblocked:
      detail::t_outbox.woke = true;
      sys_->schedule(this);
      return;
    case detail::mailbox::push_result::closed:
      for (detail::message* m = newest;;) {
        detail::message* next = m->next;
        const bool last = m == oldest;
        sys_->dead_letter(m, this);
        if (last) break;
        m = next;
      }
      return;
  }
}

send_status actor::enqueue(detail::message* m) noexcept {
  // Batching of one-way sends made by a handler (see actor_ref::send). Only
  // plain messages to unbounded, non-proxy actors other than the sender.
  auto& o = detail::t_outbox;
  const bool batchable =
      m->kind == detail::msg_kind::user && m->request_id == 0 && capacity_ == 0 && !proxy_;
  if (o.to == this && batchable) {
    m->next = o.newest;
    o.newest = m;
    if (++o.count == detail::outbox_limit) detail::flush_outbox();
    return send_status::ok;
  }
  if (o.to != nullptr) detail::flush_outbox();  // keeps the order of everything sent before
  if (batchable) {
    actor* cur = detail::t_current;
    if (cur != nullptr && cur != this) {
      if (o.last_direct == this) {
        add_ref();
        o.to = this;
        o.newest = o.oldest = m;
        m->next = nullptr;
        o.count = 1;
        return send_status::ok;
      }
      o.last_direct = this;
    } else {
      o.last_direct = nullptr;
    }
  } else {
    o.last_direct = nullptr;
  }
  if (capacity_ != 0 && policy_ == overload_policy::drop_oldest) return enqueue_evicting(m);
  const bool counted = capacity_ != 0 && m->kind == detail::msg_kind::user;
  if (counted) {
    // relaxed: a capacity count, not a publication; the push below publishes
    // the message.
    const std::uint32_t n = queued_.fetch_add(1, std::memory_order_relaxed);
    if (n >= capacity_) {
      queued_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
      detail::reply_error(*m, nullptr, errc::mailbox_full, "the receiver's mailbox is full");
      m->dispose();
      if (policy_ == overload_policy::reject) {
        sys_->rejected.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        return send_status::mailbox_full;
      }
      sys_->dropped.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      return send_status::dropped;
    }
  }
  switch (mailbox_.push(m)) {
    case detail::mailbox::push_result::ok:
      return send_status::ok;
    case detail::mailbox::push_result::unblocked:
      detail::t_outbox.woke = true;
      sys_->schedule(this);
      return send_status::ok;
    case detail::mailbox::push_result::closed:
      if (counted) queued_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
      sys_->dead_letter(m, this);
      return send_status::dead_letter;
  }
  return send_status::ok;
}

send_status actor::enqueue_evicting(detail::message* m) noexcept {
  // acquire: see extra(); the inbox was made before the actor was published.
  detail::evicting_inbox& inbox = *extra_.load(std::memory_order_acquire)->inbox;
  detail::message* evicted = nullptr;
  if (inbox.push(m, evicted) == detail::evicting_inbox::push_result::closed) {
    sys_->dead_letter(m, this);
    return send_status::dead_letter;
  }
  if (evicted != nullptr) {
    sys_->dropped.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    detail::reply_error(*evicted, this, errc::mailbox_full, "dropped from a full mailbox");
    evicted->dispose();
  }
  // After the push: the ring is an RMW that the consumer's take_all acquires
  // before it looks at the inbox, so it cannot block with `m` unseen.
  if (mailbox_.ring() == detail::mailbox::push_result::unblocked) {
    detail::t_outbox.woke = true;
    sys_->schedule(this);
  }
  return send_status::ok;
}

namespace {
// Drops sender references of consecutive messages from one sender with one
// atomic operation instead of one per message.
class release_batch {
 public:
  void add(actor* a) noexcept {
    if (a != last_) {
      flush();
      last_ = a;
    }
    ++n_;
  }
  void flush() noexcept {
    if (last_) {
      detail::as_nobody g;  // the last reference may go: see as_nobody
      detail::actor_access::release_n(last_, n_);
    }
    last_ = nullptr;
    n_ = 0;
  }
  ~release_batch() { flush(); }

 private:
  actor* last_ = nullptr;
  std::uint32_t n_ = 0;
};
}  // namespace

detail::resume_result actor::resume(unsigned budget) noexcept {
  detail::current_guard g(this);
  release_batch senders;
  detail::message* q = mailbox_.take_stash();
  // A drop_oldest mailbox keeps its messages in the evicting inbox and hands
  // them over one at a time; the other bounded ones count them.
  detail::evicting_inbox* const inbox =
      capacity_ != 0 && policy_ == overload_policy::drop_oldest
          ? extra_.load(std::memory_order_acquire)->inbox.get()  // acquire: see extra()
          : nullptr;
  const bool counted = capacity_ != 0 && inbox == nullptr;

  bool check_stop = true;
  for (unsigned n = 0;; ++n) {
    // acquire: pairs with the release store in request_stop(). Checked every
    // 16 messages, and right after the kill message that request_stop()
    // enqueues, to keep the consumer off the producers' cache line.
    if ((check_stop || (n & 15) == 0) && stop_pending_.load(std::memory_order_acquire)) {
      exit_reason r;
      {
        detail::spin_guard lg(lock_);
        r = extra_.load(std::memory_order_acquire)->stop_request;  // acquire: see extra()
      }
      senders.flush();
      stop_now(std::move(r), q);
      return detail::resume_result::stopped;
    }
    if (q == nullptr) {
      if (inbox != nullptr) {
        if (n >= budget) {
          // Not taken: what waits stays evictable until the next activation.
          senders.flush();
          detail::flush_outbox();
          return detail::resume_result::more;
        }
        (void)mailbox_.take_all();  // takes a `notified` tag before looking
        q = inbox->pop();
      } else {
        q = mailbox_.take_all();
      }
      if (q == nullptr) {
        senders.flush();
        // Releasing senders can run destructors that send; what they sent
        // leaves now rather than with some later activation.
        detail::flush_outbox();
        // After a successful try_block another thread may schedule and run
        // this actor at once: touch nothing of it after this point.
        if (mailbox_.try_block()) return detail::resume_result::idle;
        continue;
      }
    }
    if (n >= budget) {
      senders.flush();
      detail::flush_outbox();  // as above
      mailbox_.stash(q);
      return detail::resume_result::more;
    }

    detail::message* m = q;
    q = q->next;
    if (counted && m->kind == detail::msg_kind::user) {
      queued_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see enqueue()
    }
    check_stop = m->kind == detail::msg_kind::kill;
    detail::t_outbox.woke = false;
    if (m->kind == detail::msg_kind::user) [[likely]] {
      dispatch_user(m);
    } else {
      handle(m);
    }
    detail::flush_outbox();
    // This activation continues with messages already in hand: an actor this
    // handler woke must not wait for it in the run-next slot; make it
    // stealable. (When the handler was the last, the woken actor runs next
    // on this warm core: the request/response fast path.)
    if (q != nullptr && detail::t_outbox.woke) sys_->sched->release_run_next();
    if (m->sender != nullptr) senders.add(std::exchange(m->sender, nullptr));
    {
      detail::as_nobody nobody;  // the payload may hold the last handle to some actor
      m->dispose();
    }
    if (quitting_) {
      senders.flush();
      stop_now(extra().quit_reason, q);
      return detail::resume_result::stopped;
    }
  }
}

void actor::handle(detail::message* m) noexcept {
  using detail::msg_kind;
  switch (m->kind) {
    case msg_kind::user:
      dispatch_user(m);
      return;
    case msg_kind::timer: {
      auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
      auto it = ex ? ex->timers.find(m->request_id) : decltype(ex->timers.end()){};
      if (!ex || it == ex->timers.end()) return;  // cancelled
      if (!it->second) ex->timers.erase(it);
      dispatch_user(m);
      return;
    }
    case msg_kind::response:
    case msg_kind::error_reply:
      complete_ask(m->request_id, m, nullptr);
      return;
    case msg_kind::ask_timeout: {
      error e{errc::timeout, "no reply within the ask's timeout"};
      complete_ask(m->request_id, nullptr, &e);
      return;
    }
    case msg_kind::exit_signal:
      handle_exit_signal(m);
      return;
    case msg_kind::down:
      dispatch_user(m);
      return;
    case msg_kind::kill:
      return;  // the stop flag is what matters; this message only woke us
  }
}

void actor::dispatch_user(detail::message* m) noexcept {
  current_ = m;
  bool handled = false;
  // The handler may call become(), which then keeps `b` alive for the
  // rest of the call (pinned_). Not a reference per message: the count
  // lives in the behavior, which another core's objects may share a cache
  // line with, and a write per message there cost the one-sender mailbox
  // (docs/architecture.md, "Behaviors").
  detail::behavior_impl* b = bhv_.impl_;
  detail::behavior_impl* outer = std::exchange(detail::t_dispatching, b);
  try {
    handled = b != nullptr && b->invoke(*m);
  } catch (...) {
    // try_invoke catches handler exceptions; this catches the rest (e.g. a
    // throwing move of the reply).
    handled = true;
    detail::reply_target none;
    detail::fail_current(std::current_exception(), none);
  }
  detail::t_dispatching = outer;
  if (pinned_) {
    pinned_ = false;
    detail::release(b);  // destroys the behavior become() replaced
  }
  if (!handled) {
    sys_->unhandled_message(this, *m);
    detail::reply_error(*m, this, errc::unhandled,
                        std::string("no handler for ") + detail::readable_name(m->type));
  }
  current_ = nullptr;
}

void actor::handle_exit_signal(detail::message* m) noexcept {
  if (m->type != detail::type_of<exit_msg>()) return;  // only the runtime makes these
  auto& em = detail::payload<exit_msg>(*m);
  bool linked = false;
  actor* source = detail::actor_access::get(em.source);
  {
    auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
    if (ex) {
      detail::spin_guard g(lock_);
      linked = ex->links.erase(source) != 0;
    }
  }
  // The link has ended here; a proxy (the linked actor is elsewhere) must
  // not keep its side of it, nor this actor with it.
  if (linked && source->proxy_) static_cast<detail::proxy*>(source)->drop_link(this);
  // Erlang's rule: an exit signal from an actor this one is not linked to
  // (any more: unlink() has returned) has no effect, whatever its reason.
  // Exit signals only carry a linked actor's exit, killed or not; the kill
  // that nothing prevents is actor_system::stop(), a different message.
  if (!linked) return;
  if (trap_exit_) {
    dispatch_user(m);
  } else if (!em.reason.is_normal() && !quitting_) {
    quitting_ = true;
    extra().quit_reason = em.reason;
  }
}

void actor::request_stop(exit_reason reason) noexcept {
  if (proxy_) {
    on_stop_request(reason);
    return;
  }
  {
    auto& ex = extra();
    detail::spin_guard g(lock_);
    // relaxed: read under lock_, which orders it with the store below.
    if (ex.stopped || stop_pending_.load(std::memory_order_relaxed)) return;
    ex.stop_request = std::move(reason);
    // release: see the field's comment.
    stop_pending_.store(true, std::memory_order_release);
  }
  enqueue(detail::make_message<detail::no_payload>(detail::msg_kind::kill, nullptr, 0));
}

void actor::stop_now(exit_reason reason, detail::message* rest) noexcept {
  quitting_ = true;
  current_ = nullptr;
  // 1. Nothing more gets in; what is queued becomes dead letters.
  detail::message* left = mailbox_.close();
  auto* ex0 = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  detail::message* evictable =
      ex0 != nullptr && ex0->inbox != nullptr ? ex0->inbox->close() : nullptr;
  const bool counted = capacity_ != 0 && policy_ != overload_policy::drop_oldest;
  for (detail::message* q : {rest, left, evictable}) {
    while (q) {
      detail::message* next = q->next;
      if (counted && q->kind == detail::msg_kind::user) {
        queued_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see enqueue()
      }
      sys_->dead_letter(q, this);
      q = next;
    }
  }
  auto& ex = extra();
  // 2. Pending asks and suspended tasks. Destroying a task answers the
  // request it served with receiver_down (reply_target's destructor).
  for (auto& [id, p] : ex.asks) {
    if (p.timer != 0) sys_->timers.cancel(p.timer);
  }
  // Each frame unlinks itself when destroyed.
  while (ex.roots != nullptr) {
    std::coroutine_handle<detail::root_task::promise_type>::from_promise(*ex.roots).destroy();
  }
  ex.asks.clear();
  // 3. The user's hook.
  try {
    on_exit(reason);
  } catch (...) {
    sys_->actor_failed(this, "on_exit", nullptr, std::current_exception());
  }
  // 4. Timers, including any the hook started; from here start_timer
  // refuses. Then the behavior (and whatever its handlers hold).
  ex.timers_closed = true;
  for (auto& [id, periodic] : ex.timers) sys_->timers.cancel(id);
  ex.timers.clear();
  bhv_ = behavior{};
  // 5. Publish the reason; from here monitor()/link() report us as stopped.
  std::vector<actor_ref> monitors;
  std::unordered_map<const actor*, actor_ref> links;
  std::vector<std::string> names;
  {
    detail::spin_guard g(lock_);
    ex.stopped = true;
    ex.final_reason = reason;
    monitors.swap(ex.monitors);
    links.swap(ex.links);
    names.swap(ex.names);
  }
  // 6. Release the names first: whoever reacts to the notices below (a
  // supervisor restarting this actor) may register them again at once.
  for (auto& n : names) sys_->erase_name(n, this);
  // 7. Tell monitors and linked actors.
  for (auto& w : monitors) {
    add_ref();
    detail::actor_access::enqueue(
        w.get(),
        detail::make_message<down_msg>(detail::msg_kind::down, this, 0, down_msg{self(), reason}));
  }
  for (auto& [linked_actor, l] : links) {
    add_ref();
    detail::actor_access::enqueue(
        detail::actor_access::get(l),
        detail::make_message<exit_msg>(detail::msg_kind::exit_signal, this, 0,
                                       exit_msg{self(), reason}));
  }
  // 8. Last: the system's reference. `this` may be gone afterwards, and its
  // destructor must not see itself as the running actor (a message sent from
  // a member's destructor would take a reference to a dying object).
  detail::flush_outbox();
  detail::t_current = nullptr;
  sys_->untrack(this);
}

// --- proxy ------------------------------------------------------------------------------

namespace detail {

proxy::proxy(actor_system& sys) noexcept : actor(proxy_tag{}, &sys.state()) {}

void proxy::terminate(const exit_reason& reason) noexcept {
  std::vector<actor_ref> monitors;
  std::unordered_map<const actor*, actor_ref> links;
  {
    auto& ex = extra();
    spin_guard g(lock_);
    if (ex.stopped) return;
    ex.stopped = true;
    ex.final_reason = reason;
    monitors.swap(ex.monitors);
    links.swap(ex.links);
  }
  if (!links.empty()) on_links_changed(-static_cast<std::ptrdiff_t>(links.size()));
  for (auto& w : monitors) {
    add_ref();
    actor_access::enqueue(actor_access::get(w), make_message<down_msg>(msg_kind::down, this, 0,
                                                                       down_msg{self(), reason}));
  }
  for (auto& [linked_actor, l] : links) {
    add_ref();
    actor_access::enqueue(
        actor_access::get(l),
        make_message<exit_msg>(msg_kind::exit_signal, this, 0, exit_msg{self(), reason}));
  }
}

void proxy::drop_link(const actor* linked) noexcept {
  auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (ex == nullptr) return;
  std::unordered_map<const actor*, actor_ref>::node_type gone;  // released after the lock
  {
    spin_guard g(lock_);
    gone = ex->links.extract(linked);
  }
  if (!gone.empty()) on_links_changed(-1);
}

std::size_t proxy::sweep_monitors() noexcept {
  auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (ex == nullptr) return 0;
  std::vector<actor_ref> swept;  // released after the lock
  std::size_t left = 0;
  {
    spin_guard g(lock_);
    auto keep = std::partition(ex->monitors.begin(), ex->monitors.end(), [](const actor_ref& w) {
      return !actor_access::stopped(actor_access::get(w));
    });
    swept.assign(std::make_move_iterator(keep), std::make_move_iterator(ex->monitors.end()));
    ex->monitors.erase(keep, ex->monitors.end());
    left = ex->monitors.size();
  }
  return left;
}

std::size_t proxy::links_held() noexcept {
  auto* ex = extra_.load(std::memory_order_acquire);  // acquire: see extra()
  if (ex == nullptr) return 0;
  spin_guard g(lock_);
  return ex->links.size();
}

send_status proxy::refuse(message* m, errc code, std::string text, send_status status) noexcept {
  std::string why;
  try {
    why = std::string(to_string(code)) + ": " + text;
  } catch (...) {
  }
  reply_error(*m, this, code, std::move(text));
  m->request_id = 0;  // answered above; dead_letter() must not answer again
  sys_->dead_letter(m, this, why);
  return status;
}

void proxy::count_dead_letters(std::uint64_t n) noexcept {
  sys_->dead_letters.fetch_add(n, std::memory_order_relaxed);  // relaxed: statistics
}

}  // namespace detail
}  // namespace libactor
