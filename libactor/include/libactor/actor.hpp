#pragma once
/// @file
/// Actors, their handles and their behaviors.
///
/// - `actor_ref`: a handle. Cheap to copy, comparable, hashable, usable from
///   any thread, including threads that are not actors.
/// - `actor`: the base class of every actor and, inside handlers, the context
///   (`self`) through which an actor sends, asks, monitors, links, sets timers
///   and stops. Its context functions are owner-only: call them from the
///   actor's own handlers (they throw `std::logic_error` otherwise).
/// - `behavior`: the set of handlers, one per message type, chosen by the
///   message's static type.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "libactor/detail/mailbox.hpp"
#include "libactor/detail/message.hpp"
#include "libactor/detail/ref_counted.hpp"
#include "libactor/error.hpp"
#include "libactor/export.hpp"
#include "libactor/task.hpp"

namespace libactor {

class actor;
class actor_system;
template <class R>
class reply;

namespace detail {
class system_state;
struct actor_extra;
class proxy;
struct actor_access;
/// What an activation ended with (see actor_access::resume).
enum class resume_result : std::uint8_t { idle, more, stopped };
LIBACTOR_EXPORT bool link_on_behalf(actor* local, actor* remote, std::size_t max_links) noexcept;
/// A message sent through an empty handle: counted as a dead letter in the
/// sending actor's system (if any), a request answered with an error.
LIBACTOR_EXPORT send_status send_to_empty(message* m) noexcept;
/// Enqueues request `m` at `to` for an ask that times out at `deadline`
/// (what ask_deadline(), proxy.hpp, returns meanwhile).
LIBACTOR_EXPORT send_status
enqueue_request(actor* to, message* m, std::chrono::steady_clock::time_point deadline) noexcept;
LIBACTOR_EXPORT void unlink_on_behalf(actor* local, actor* remote) noexcept;
LIBACTOR_EXPORT bool linked(actor* local, const actor* remote) noexcept;
/// The actor whose handler runs on this thread, or null.
LIBACTOR_EXPORT actor* current_actor() noexcept;
/// Delivers the one-way messages this thread's handler has batched.
LIBACTOR_EXPORT void flush_outbox() noexcept;
/// Delivers only the batch of one-way local sends (see detail/proxy.hpp).
LIBACTOR_EXPORT void flush_local_batch() noexcept;
}  // namespace detail

using steady_clock = std::chrono::steady_clock;
using duration = steady_clock::duration;
using time_point = steady_clock::time_point;

// ---------------------------------------------------------------------------
// actor_ref

/// A handle to an actor. Copies share one reference-counted control block;
/// the actor itself runs until it stops, independent of how many handles
/// exist. A handle to a stopped actor stays valid: sends to it become dead
/// letters.
/// @threadsafe
class LIBACTOR_EXPORT actor_ref {
 public:
  actor_ref() noexcept = default;
  explicit actor_ref(detail::ref_ptr<actor> p) noexcept : p_(std::move(p)) {}

  /// Sends `msg` to the actor. Inside a handler the sender is the running
  /// actor (so the receiver can reply); elsewhere there is none.
  /// Never blocks; never loses the message silently (see send_status).
  ///
  /// Inside a handler, consecutive one-way sends to the same receiver are
  /// linked into a batch that is enqueued with one atomic operation when the
  /// handler returns, sends to another actor, asks, or reaches 64 messages.
  /// Order per sender-receiver pair, and the order of a handler's sends
  /// across receivers, are kept. A batched message that finds the receiver
  /// stopped becomes a dead letter at that point (send returned `ok`, as for
  /// a receiver that stops after the message was queued).
  template <class T>
  send_status send(T&& msg) const;

  /// Asks the actor and returns a future-like reply. For use outside actors;
  /// inside an actor use `co_await self.ask<R>(...)`, which does not block.
  /// A `void` handler answers `ask<void>`. The timeout must be positive:
  /// otherwise nothing is sent and the reply is errc::invalid_argument.
  template <class R, class T>
  [[nodiscard]] reply<R> ask(T&& msg, duration timeout) const;

  /// A process-unique, never reused id (0 for an empty handle).
  [[nodiscard]] std::uint64_t id() const noexcept;
  explicit operator bool() const noexcept { return static_cast<bool>(p_); }

  friend bool operator==(const actor_ref& a, const actor_ref& b) noexcept { return a.p_ == b.p_; }
  friend auto operator<=>(const actor_ref& a, const actor_ref& b) noexcept {
    return std::compare_three_way{}(a.p_.get(), b.p_.get());
  }

 private:
  friend class actor;
  friend struct detail::actor_access;
  friend struct std::hash<actor_ref>;
  [[nodiscard]] actor* get() const noexcept { return p_.get(); }

  detail::ref_ptr<actor> p_;
};

/// Unit reply of `void` handlers; `ask<void>` expects it.
struct LIBACTOR_EXPORT unit_t {
  friend bool operator==(unit_t, unit_t) = default;
};

/// Delivered to a monitoring actor when the monitored actor stops.
struct LIBACTOR_EXPORT down_msg {
  actor_ref source;
  exit_reason reason;
};

/// Delivered to an actor that traps exits when a linked actor stops.
struct LIBACTOR_EXPORT exit_msg {
  actor_ref source;
  exit_reason reason;
};

/// What a bounded mailbox does with a message that does not fit.
enum class overload_policy : std::uint8_t {
  /// send() returns send_status::mailbox_full and the message is counted in
  /// stats().rejected; an ask gets errc::mailbox_full at once.
  reject,
  /// The new message is discarded (send_status::dropped) and counted in
  /// stats().dropped; an ask gets errc::mailbox_full at once.
  drop_newest,
  /// The oldest queued user message is discarded to make room and counted in
  /// stats().dropped (the send returns ok); if it was an ask, its asker gets
  /// errc::mailbox_full at once. The queue never holds more than the
  /// capacity, whatever the consumer does.
  drop_oldest,
};

struct spawn_options {
  /// 0: unbounded. Otherwise the number of user messages the mailbox holds.
  std::uint32_t mailbox_capacity = 0;
  overload_policy overload = overload_policy::reject;
};

enum class timer_id : std::uint64_t {};

namespace detail {

/// Answers one request. Inert when the message was not a request. If it is
/// destroyed without answering (the actor stopped while a task served the
/// request), the asker gets errc::receiver_down.
class LIBACTOR_EXPORT reply_target {
 public:
  reply_target() noexcept = default;
  explicit reply_target(const message& request) noexcept;
  reply_target(reply_target&& o) noexcept
      : to_(std::exchange(o.to_, nullptr)), request_id_(o.request_id_) {}
  reply_target& operator=(reply_target&&) = delete;
  ~reply_target();

  [[nodiscard]] bool pending() const noexcept { return to_ != nullptr; }

  template <class R>
  void deliver(R&& value) {
    if (!to_) return;
    using V = std::remove_cvref_t<R>;
    deliver_message(
        make_message<V>(msg_kind::response, self_ref(), request_id_, std::forward<R>(value)));
  }
  void fail(errc code, std::string text);

 private:
  static actor* self_ref() noexcept;
  void deliver_message(message* m) noexcept;

  actor* to_ = nullptr;  // owned reference
  std::uint64_t request_id_ = 0;
};

struct behavior_impl;

/// The frame that runs a handler's task and answers its request.
struct root_task {
  struct LIBACTOR_EXPORT promise_type {
    actor* self = nullptr;
    /// The behavior whose handler started this task: its handlers' captures
    /// must outlive the task even if the actor calls become() meanwhile.
    behavior_impl* started_by = nullptr;
    /// The sender of the message that started the task (one owned
    /// reference, or null): current_sender() for the task's whole life.
    actor* request_sender = nullptr;
    /// The type of that message, for the failure log.
    type_id request_type = nullptr;
    /// The actor's list of running root tasks (owner thread only).
    promise_type* prev = nullptr;
    promise_type* next = nullptr;
    root_task get_return_object() noexcept {
      return root_task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // drive() catches everything
    ~promise_type();
  };

  explicit root_task(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
  root_task(root_task&& o) noexcept : handle(std::exchange(o.handle, nullptr)) {}
  root_task& operator=(root_task&&) = delete;
  /// A frame never handed to its actor (start_root threw first) is destroyed
  /// here, which answers its request.
  ~root_task() {
    if (handle) handle.destroy();
  }

  std::coroutine_handle<promise_type> handle;
};

LIBACTOR_EXPORT void fail_current(std::exception_ptr ep, reply_target& rt) noexcept;
/// Publishes a freshly constructed actor: tracks it, builds its behavior in
/// its own context and hands it to the scheduler. Takes the one reference
/// `a` was created with.
LIBACTOR_EXPORT actor_ref launch(actor* a);

// GCC 12 reports the coroutine frame of drive<T> for a T in an anonymous
// namespace as having internal-linkage members (-Wsubobject-linkage), which
// is harmless for a function template instantiated in that same TU.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
template <class R>
root_task drive(task<R> task_param, reply_target reply_param) {
  // Locals, not the parameters: a coroutine's parameter copies are destroyed
  // after its promise, and the promise holds the behavior whose closure the
  // user's coroutine frame (inside `t`) refers to. Locals go first.
  task<R> t = std::move(task_param);
  reply_target rt = std::move(reply_param);
  try {
    if constexpr (std::is_void_v<R>) {
      co_await t;
      rt.deliver(unit_t{});
    } else {
      rt.deliver(co_await t);
    }
  } catch (...) {
    fail_current(std::current_exception(), rt);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// --- behavior machinery ----------------------------------------------------

// What a handler's call looks like, from the type of its call operator or
// function pointer. Never a hard error: a callable of the wrong shape gets
// `valid == false` and a clear static_assert in check_handler().
template <class M>
struct call_signature {
  static constexpr bool valid = false;
  static constexpr std::size_t arity = 0;
};
template <class R, class... A>
struct call_signature<R(A...)> {
  static constexpr bool valid = true;
  static constexpr std::size_t arity = sizeof...(A);
  using result = R;
  using args = std::tuple<A...>;
};
template <class R, class... A>
struct call_signature<R(A...) noexcept> : call_signature<R(A...)> {};
template <class C, class R, class... A>
struct call_signature<R (C::*)(A...)> : call_signature<R(A...)> {};
template <class C, class R, class... A>
struct call_signature<R (C::*)(A...) const> : call_signature<R(A...)> {};
template <class C, class R, class... A>
struct call_signature<R (C::*)(A...) noexcept> : call_signature<R(A...)> {};
template <class C, class R, class... A>
struct call_signature<R (C::*)(A...) const noexcept> : call_signature<R(A...)> {};

template <class F>
struct call_of : call_signature<void> {};  // not a callable we can read
template <class F>
requires std::is_class_v<F> && requires {
  &F::operator();
}
struct call_of<F> : call_signature<decltype(&F::operator())> {};
template <class F>
requires std::is_function_v<F>
struct call_of<F*> : call_signature<F> {
};

enum class handler_shape : std::uint8_t {
  ok,
  not_callable,       ///< Not a lambda, function object or function pointer.
  generic,            ///< A template call operator (an `auto` parameter).
  no_argument,        ///< Takes nothing.
  several_arguments,  ///< Takes more than one argument.
};

template <class F>
consteval handler_shape shape_of() {
  if constexpr (call_of<F>::valid) {
    if constexpr (call_of<F>::arity == 0) return handler_shape::no_argument;
    if constexpr (call_of<F>::arity > 1) return handler_shape::several_arguments;
    return handler_shape::ok;
  } else if constexpr (std::is_class_v<F> && requires { &F::template operator()<int>; }) {
    return handler_shape::generic;
  } else {
    return handler_shape::not_callable;
  }
}

/// Says at compile time, in the first lines of the error, what is wrong with
/// a handler. True for a valid one.
template <class F>
consteval bool check_handler() {
  constexpr handler_shape s = shape_of<F>();
  static_assert(s != handler_shape::not_callable,
                "libactor: a behavior is made of handlers: lambdas, function objects or "
                "function pointers that each take one message");
  static_assert(s != handler_shape::generic,
                "libactor: a handler takes exactly one message argument by value or const "
                "reference, of a concrete type (the handler is chosen by that type); this one "
                "is generic (an `auto` parameter)");
  static_assert(s != handler_shape::no_argument,
                "libactor: a handler takes exactly one message argument by value or const "
                "reference; this one takes none (make the message a type, e.g. `struct tick "
                "{};`)");
  static_assert(s != handler_shape::several_arguments,
                "libactor: a handler takes exactly one message argument by value or const "
                "reference; this one takes several (put them in one struct)");
  return s == handler_shape::ok;
}

template <class F>
struct handler_traits {
  using arg = std::tuple_element_t<0, typename call_of<F>::args>;
  using result = typename call_of<F>::result;
};

template <class F>
using handler_arg_t = std::remove_cvref_t<typename handler_traits<F>::arg>;

template <class... Ts>
inline constexpr bool all_distinct_v = true;
template <class T, class... Ts>
inline constexpr bool all_distinct_v<T, Ts...> =
    (!std::is_same_v<T, Ts> && ...) && all_distinct_v<Ts...>;

LIBACTOR_EXPORT void start_root(root_task t);

/// Invokes `f` if `m` carries its argument type; answers requests with the
/// handler's result (a `task<R>` answers when it completes).
template <class F>
bool try_invoke(F& f, message& m) {
  using traits = handler_traits<F>;
  using arg = typename traits::arg;
  using T = std::remove_cvref_t<arg>;
  using R = typename traits::result;
  if (m.type != type_of<T>()) return false;
  T& v = payload<T>(m);
  auto call = [&]() -> decltype(auto) {
    if constexpr (std::is_lvalue_reference_v<arg>) {
      return f(v);
    } else {
      return f(std::move(v));
    }
  };
  if constexpr (is_task_v<R>) {
    static_assert(!std::is_reference_v<arg>,
                  "a handler that returns task<...> takes its message by value: the message is "
                  "destroyed when the handler first suspends, and a reference would dangle");
    reply_target rt{m};
    try {
      start_root(drive(call(), std::move(rt)));
    } catch (...) {
      fail_current(std::current_exception(), rt);
    }
  } else if (m.request_id == 0) {
    // One-way message: any result is discarded and nobody awaits an answer.
    try {
      call();
    } catch (...) {
      reply_target none;
      fail_current(std::current_exception(), none);
    }
  } else {
    reply_target rt{m};
    try {
      if constexpr (std::is_void_v<R>) {
        call();
        rt.deliver(unit_t{});
      } else {
        rt.deliver(call());
      }
    } catch (...) {
      // The exception becomes the asker's error and this actor's exit reason.
      fail_current(std::current_exception(), rt);
    }
  }
  return true;
}

/// The handlers of one behavior. Reference counted without atomics: every
/// reference is taken and dropped on the owning actor's thread (its
/// `behavior`, a become() that replaced it while one of its handlers runs,
/// until that handler returns, and each task one of its handlers started),
/// so the closures outlive every use, become() or not.
struct behavior_impl {
  virtual ~behavior_impl() = default;
  /// False when no handler takes the message's type.
  virtual bool invoke(message& m) = 0;
  std::uint32_t refs = 1;
};
inline void retain(behavior_impl* b) noexcept {
  ++b->refs;
}
inline void release(behavior_impl* b) noexcept {
  if (--b->refs == 0) delete b;
}

template <class... Fs>
struct behavior_fns final : behavior_impl {
  static_assert(all_distinct_v<handler_arg_t<Fs>...>,
                "libactor: a behavior has at most one handler per message type");
  explicit behavior_fns(Fs... f) : fs(std::move(f)...) {}
  bool invoke(message& m) override {
    return std::apply([&m](auto&... f) { return (try_invoke(f, m) || ...); }, fs);
  }
  std::tuple<Fs...> fs;
};

/// The behavior's handlers, or (after a static_assert has said why) null:
/// nothing else is instantiated for callables of the wrong shape, so the
/// error the user sees is that one.
template <class... Fs>
behavior_impl* make_behavior_impl(Fs... fs) {
  if constexpr ((check_handler<Fs>() && ...)) {
    return new behavior_fns<Fs...>(std::move(fs)...);
  } else {
    return nullptr;
  }
}

}  // namespace detail

/// A set of message handlers, each a callable taking exactly one message
/// (by value, `const&`, `&` or `&&`). A handler's return value answers a
/// request; returning `task<R>` answers when the task completes. A handler
/// that returns a task takes its message by value (checked at compile time):
/// the message is destroyed when the handler first suspends.
class behavior {
 public:
  behavior() noexcept = default;
  template <class... Fs>
  requires(sizeof...(Fs) > 0)
      behavior(Fs... fs)  // NOLINT: implicit so that `return {handlers...};` works
      : impl_(detail::make_behavior_impl(std::move(fs)...)) {}
  behavior(behavior&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
  behavior& operator=(behavior&& o) noexcept {
    behavior old(std::move(*this));
    impl_ = std::exchange(o.impl_, nullptr);
    return *this;
  }
  behavior(const behavior&) = delete;
  behavior& operator=(const behavior&) = delete;
  ~behavior() {
    if (impl_) detail::release(impl_);
  }

  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  friend class actor;
  detail::behavior_impl* impl_ = nullptr;  // one owned reference
};

/// Awaitable returned by `actor::ask`: `co_await` it inside a `task`.
template <class R>
class [[nodiscard]] ask_awaiter;

namespace detail {
/// Turns a response message into the asker's result.
template <class R>
expected<R> to_expected(message& m) {
  if (m.kind == msg_kind::error_reply) {
    if (m.type != type_of<error>())
      return error{errc::bad_response_type, "a malformed error reply"};
    return payload<error>(m);
  }
  using V = std::conditional_t<std::is_void_v<R>, unit_t, R>;
  if (m.kind != msg_kind::response || m.type != type_of<V>()) {
    return error{errc::bad_response_type, std::string("expected ") + readable_name(type_of<V>()) +
                                              ", got " + readable_name(m.type)};
  }
  if constexpr (std::is_void_v<R>) {
    return {};
  } else {
    return std::move(payload<R>(m));
  }
}

/// `base + d`, saturated at the largest time point instead of overflowing
/// (a timeout of duration::max() means "practically never").
[[nodiscard]] constexpr time_point deadline_after(time_point base, duration d) noexcept {
  if (d <= duration::zero()) return base;
  return d >= time_point::max() - base ? time_point::max() : base + d;
}

struct pending_ask_slot {
  void* result;  // expected<R>* with storage in the awaiter
  void (*set)(void* result, message* m, error* e);
};
}  // namespace detail

// ---------------------------------------------------------------------------
// actor

/// Base class of all actors, and the context handlers use as `self`.
///
/// A class actor derives from `actor`, keeps its state in members and
/// overrides `make_behavior()`. A function actor is a callable
/// `behavior(actor& self)`. Both are spawned with `actor_system::spawn`.
/// Handlers of one actor never run concurrently, so its state needs no locks.
class LIBACTOR_EXPORT actor : private detail::ref_counted {
 public:
  /// Only valid inside actor_system::spawn (throws std::logic_error otherwise).
  actor();
  ~actor() override;

  // --- context: owner only ---------------------------------------------------

  [[nodiscard]] actor_ref self() const noexcept {
    return actor_ref{detail::ref_ptr<actor>(const_cast<actor*>(this))};
  }
  [[nodiscard]] actor_system& system() const noexcept;
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  /// The sender of the message being handled (empty if none). Inside a
  /// task, the sender of the message that started the task, also after a
  /// `co_await`. Owner only.
  [[nodiscard]] actor_ref current_sender() const;

  /// Replaces the behavior from the next message on.
  void become(behavior b);

  /// Stops this actor after the current handler returns.
  void quit(exit_reason reason = {});

  /// One-way: when `other` stops, this actor receives a `down_msg`. Monitoring
  /// a stopped actor delivers the `down_msg` at once. Each call adds one
  /// monitor; demonitor removes one.
  void monitor(const actor_ref& other);
  void demonitor(const actor_ref& other);

  /// Two-way: when either stops with a non-normal reason, the other stops
  /// with the same reason, unless it traps exits (then it receives `exit_msg`).
  /// Linking an actor that has stopped delivers its exit at once. Two actors
  /// are linked or not: linking again changes nothing.
  void link(const actor_ref& other);
  /// Removes the link. Once this returns, the other actor's exit has no
  /// effect on this one, even if its signal is already on the way.
  void unlink(const actor_ref& other);
  void trap_exit(bool on);

  /// Delivers `msg` to this actor after `delay`. No thread per timer.
  template <class T>
  timer_id send_after(duration delay, T&& msg);
  /// Delivers a copy of `msg` to this actor every `period`, until cancelled.
  template <class T>
  timer_id send_every(duration period, T msg);
  /// Cancels a timer. No message of it is handled after this returns.
  bool cancel_timer(timer_id id);

  /// Asks `to`; `co_await` the result inside a `task`. Resolves to an error
  /// on timeout, when the receiver is or becomes dead, or when its handler
  /// throws. Other messages are handled while the task waits. The timeout
  /// must be positive (errc::invalid_argument otherwise, nothing is sent).
  ///
  /// GCC 12: do not build a message that owns resources (a string, a
  /// vector, a handle) as an aggregate temporary inside the `co_await`
  /// expression, as in `co_await self.ask<R>(h, request{name}, t)`. GCC 12
  /// destroys the members of such a temporary twice (a compiler bug,
  /// reproduced without libactor; clang is correct). Name it first:
  /// `request q{name}; co_await self.ask<R>(h, std::move(q), t);`.
  template <class R, class T>
  ask_awaiter<R> ask(const actor_ref& to, T&& msg, duration timeout);

  /// Spawns a sibling actor in the same system (see actor_system::spawn):
  /// a class actor `spawn<A>(args...)`, or a function actor `spawn(fn)`.
  template <class A, class... Args>
  actor_ref spawn(Args&&... args);
  template <class F>
  requires std::is_invocable_r_v<behavior, F&, actor&> actor_ref spawn(F fn);

 protected:
  /// Class actors return their behavior here. It runs inside spawn(), in this
  /// actor's context. An empty behavior stops the actor normally.
  virtual behavior make_behavior() { return {}; }
  /// Runs on the actor's thread when it stops, before monitors are told.
  virtual void on_exit(const exit_reason& /*reason*/) {}

  struct proxy_tag {};
  /// For runtime objects that are actors without a mailbox (reply sinks,
  /// network proxies): enqueue() is overridden.
  actor(proxy_tag, detail::system_state* sys) noexcept;

  /// Proxies only: an actor just monitored or linked this one (called on
  /// that actor's thread, after it was recorded).
  virtual void on_watched() noexcept {}
  /// Proxies only: `local` just linked (or unlinked) this proxy, after both
  /// sides were recorded here. The actor this proxy stands for must record
  /// the link too, so that its exit reaches `local` as a linked actor's.
  virtual void on_linked(actor* /*local*/) noexcept {}
  virtual void on_unlinked(actor* /*local*/) noexcept {}
  /// Proxies only: the number of links this proxy holds changed by `delta`
  /// (a link recorded or removed, from either side, or all of them at
  /// terminate). Called outside the proxy's lock, on whichever thread
  /// changed it. A layer that bounds links per peer counts them here.
  virtual void on_links_changed(std::ptrdiff_t /*delta*/) noexcept {}
  /// Proxies only: actor_system::stop() was called on this handle.
  virtual void on_stop_request(const exit_reason& /*reason*/) noexcept {}

 private:
  // Everything below is the runtime's: schedulers, proxies and the network
  // layer reach it through detail::actor_access, users never do.
  friend class actor_ref;
  friend class actor_system;
  friend class detail::system_state;
  friend class detail::reply_target;
  friend class detail::proxy;
  friend struct detail::actor_access;
  template <class>
  friend class detail::ref_ptr;
  friend struct detail::root_task::promise_type;
  friend LIBACTOR_EXPORT void detail::start_root(detail::root_task);
  friend LIBACTOR_EXPORT actor_ref detail::launch(actor*);
  friend LIBACTOR_EXPORT bool detail::link_on_behalf(actor*, actor*, std::size_t) noexcept;
  friend LIBACTOR_EXPORT void detail::unlink_on_behalf(actor*, actor*) noexcept;
  friend LIBACTOR_EXPORT bool detail::linked(actor*, const actor*) noexcept;
  friend LIBACTOR_EXPORT send_status detail::send_to_empty(detail::message*) noexcept;
  friend LIBACTOR_EXPORT void detail::fail_current(std::exception_ptr,
                                                   detail::reply_target&) noexcept;
  template <class R>
  friend class ask_awaiter;

  /// @threadsafe Enqueues `m` (taking ownership). Overridden by proxies.
  virtual send_status enqueue(detail::message* m) noexcept;
  /// Runs up to `budget` messages. Only the scheduler calls this, and never
  /// for one actor on two threads at once (the mailbox's blocked tag hands
  /// the actor to exactly one scheduler slot).
  detail::resume_result resume(unsigned budget) noexcept;

  void require_owner(const char* what) const;
  void init_from_spawn(behavior (*make)(actor&, void*), void* ctx) noexcept;
  void handle(detail::message* m) noexcept;
  void dispatch_user(detail::message* m) noexcept;
  void stop_now(exit_reason reason, detail::message* rest) noexcept;
  void push_chain(detail::message* newest, detail::message* oldest) noexcept;
  send_status enqueue_evicting(detail::message* m) noexcept;
  friend void detail::flush_outbox() noexcept;
  friend LIBACTOR_EXPORT void detail::flush_local_batch() noexcept;
  void request_stop(exit_reason reason) noexcept;
  void handle_exit_signal(detail::message* m) noexcept;
  void complete_ask(std::uint64_t id, detail::message* m, error* e) noexcept;
  timer_id start_timer(detail::message* proto, detail::message* (*clone)(const detail::message&),
                       duration delay, duration period);
  void start_ask(const actor_ref& to, detail::message* req, duration timeout,
                 std::coroutine_handle<> h, detail::pending_ask_slot slot);
  detail::actor_extra& extra();
  static bool link_pair(actor* a, actor* b, std::size_t max_links_of_a, bool* refused) noexcept;
  static bool linked_to(actor* a, const actor* b) noexcept;
  static void unlink_pair(actor* a, actor* b) noexcept;

  // Field order is deliberate. The first group is written by other threads
  // (producers CAS mailbox_.head_; refs_ sits just before it). The last group
  // is touched by the consumer for every message. At least 64 bytes of cold
  // fields separate them, so they never share a cache line whatever the
  // allocation's alignment, and the consumer's loop does not miss on lines
  // that producers keep stealing.
  detail::mailbox mailbox_;
  std::atomic<std::uint32_t> queued_{0};  // bounded mailboxes only
  std::uint32_t capacity_ = 0;
  overload_policy policy_ = overload_policy::reject;
  std::atomic<bool> lock_{false};  // guards actor_extra's shared part (monitors, links, names)
  // release store in request_stop(), acquire load in resume(): the stop
  // reason written under lock_ is visible when the flag is seen.
  std::atomic<bool> stop_pending_{false};
  bool proxy_ = false;
  detail::system_state* sys_ = nullptr;
  std::uint64_t id_ = 0;
  // The system's intrusive list of live actors (under a shard lock).
  actor* live_prev_ = nullptr;
  actor* live_next_ = nullptr;

  // Consumer-hot group.
  std::atomic<detail::actor_extra*> extra_{nullptr};  // created on first use, see extra()
  behavior bhv_;
  detail::message* current_ = nullptr;
  bool quitting_ = false;
  bool trap_exit_ = false;
  // become() replaced the behavior whose handler is running and took a
  // reference to it, which dispatch_user() drops when the handler returns.
  bool pinned_ = false;
};

namespace detail {

/// The runtime's access to an actor's internals: schedulers run actors,
/// proxies and the network layer enqueue messages and count references.
/// Users hold `actor_ref` and, inside handlers, `actor&`, neither of which
/// reaches any of this. @internal
struct actor_access {
  static send_status enqueue(actor* a, message* m) noexcept { return a->enqueue(m); }
  static resume_result resume(actor* a, unsigned budget) noexcept { return a->resume(budget); }
  static void add_ref(const actor* a) noexcept { a->add_ref(); }
  static void release(const actor* a) noexcept { a->release(); }
  static void release_n(const actor* a, std::uint32_t n) noexcept { a->release_n(n); }
  [[nodiscard]] static bool try_add_ref(const actor* a) noexcept { return a->try_add_ref(); }
  [[nodiscard]] static std::uint32_t use_count(const actor* a) noexcept { return a->use_count(); }
  /// True for runtime objects without a mailbox (reply sinks, network proxies).
  [[nodiscard]] static bool is_proxy(const actor* a) noexcept { return a->proxy_; }
  /// True once a local actor stopped (false for proxies: ask them).
  [[nodiscard]] static bool stopped(const actor* a) noexcept {
    return !a->proxy_ && a->mailbox_.closed();
  }
  [[nodiscard]] static actor* get(const actor_ref& h) noexcept { return h.get(); }
  /// A handle adopting one reference the caller owns.
  [[nodiscard]] static actor_ref adopt(actor* a) noexcept {
    return actor_ref{ref_ptr<actor>(a, false)};
  }
};

/// Says at compile time what cannot be a message.
template <class T>
consteval bool check_message() {
  using V = std::remove_cvref_t<T>;
  static_assert(!std::is_array_v<V>,
                "libactor: an array or a string literal is not a message: send a "
                "std::string(\"...\") or a struct");
  static_assert(!std::is_same_v<V, down_msg> && !std::is_same_v<V, exit_msg>,
                "libactor: down_msg and exit_msg are the runtime's notices (monitor, link); send a "
                "message type of your own");
  static_assert(std::is_constructible_v<V, T&&> && std::is_destructible_v<V>,
                "libactor: a message is any type that can be moved or copied into place");
  return true;
}

/// Builds the request or one-way message for a user payload.
template <class T>
message* make_user_message(std::uint64_t request_id, T&& msg) {
  static_assert(check_message<T>());
  actor* cur = current_actor();
  if (cur) actor_access::add_ref(cur);
  return make_message<std::remove_cvref_t<T>>(msg_kind::user, cur, request_id,
                                              std::forward<T>(msg));
}

template <class T>
message* clone_payload(const message& m) {
  actor* s = m.sender;
  if (s) actor_access::add_ref(s);
  auto* c = make_message<T>(m.kind, s, m.request_id, static_cast<const typed_message<T>&>(m).value);
  return c;
}
}  // namespace detail

template <class R>
class ask_awaiter {
 public:
  ask_awaiter(actor& self, actor_ref to, detail::message* req, duration timeout) noexcept
      : self_(&self), to_(std::move(to)), req_(req), timeout_(timeout) {}
  ask_awaiter(ask_awaiter&& o) noexcept
      : self_(o.self_),
        to_(std::move(o.to_)),
        req_(std::exchange(o.req_, nullptr)),
        timeout_(o.timeout_) {}
  ask_awaiter(const ask_awaiter&) = delete;
  ~ask_awaiter() {
    if (req_) req_->dispose();
  }

  /// A non-positive timeout resolves at once to errc::invalid_argument,
  /// and the request is not sent (as for an ask from outside an actor).
  bool await_ready() {
    if (timeout_ > duration::zero()) return false;
    result_.emplace(error{errc::invalid_argument, "an ask's timeout must be positive"});
    return true;
  }
  void await_suspend(std::coroutine_handle<> h) {
    self_->start_ask(to_, std::exchange(req_, nullptr), timeout_, h,
                     detail::pending_ask_slot{&result_, &set});
  }
  expected<R> await_resume() { return std::move(*result_); }

 private:
  static void set(void* slot, detail::message* m, error* e) {
    auto* r = static_cast<std::optional<expected<R>>*>(slot);
    if (e) {
      r->emplace(std::move(*e));
    } else {
      r->emplace(detail::to_expected<R>(*m));
    }
  }

  actor* self_;
  actor_ref to_;
  detail::message* req_;
  duration timeout_;
  std::optional<expected<R>> result_;
};

// --- actor_ref inline members -------------------------------------------------

inline std::uint64_t actor_ref::id() const noexcept {
  return p_ ? p_->id() : 0;
}

template <class T>
send_status actor_ref::send(T&& msg) const {
  detail::message* m = detail::make_user_message(0, std::forward<T>(msg));
  if (!p_) return detail::send_to_empty(m);
  return p_->enqueue(m);  // actor_ref is a friend of actor
}

// --- actor templates ------------------------------------------------------------

template <class T>
timer_id actor::send_after(duration delay, T&& msg) {
  static_assert(detail::check_message<T>());
  using V = std::remove_cvref_t<T>;
  auto* m = detail::make_message<V>(detail::msg_kind::timer, nullptr, 0, std::forward<T>(msg));
  return start_timer(m, nullptr, delay, duration::zero());
}

template <class T>
timer_id actor::send_every(duration period, T msg) {
  static_assert(detail::check_message<T>());
  static_assert(std::is_copy_constructible_v<T>, "periodic timer messages are copied");
  if (period <= duration::zero()) {
    throw std::invalid_argument("send_every: the period must be positive");
  }
  auto* m = detail::make_message<T>(detail::msg_kind::timer, nullptr, 0, std::move(msg));
  return start_timer(m, &detail::clone_payload<T>, period, period);
}

template <class R, class T>
ask_awaiter<R> actor::ask(const actor_ref& to, T&& msg, duration timeout) {
  require_owner("ask");
  auto* m = detail::make_user_message(0, std::forward<T>(msg));
  return ask_awaiter<R>(*this, to, m, timeout);
}

}  // namespace libactor

template <>
struct std::hash<libactor::actor_ref> {
  std::size_t operator()(const libactor::actor_ref& h) const noexcept {
    return std::hash<const void*>{}(h.get());
  }
};
