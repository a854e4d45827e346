#pragma once
/// @file
/// `actor_system`: spawns actors, runs them on a work-stealing pool of worker
/// threads (or, in deterministic mode, on the caller's thread), and owns the
/// timers, the name registry and the counters of dead letters and unhandled
/// messages.

#include <atomic>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "libactor/actor.hpp"
#include "libactor/export.hpp"

namespace libactor {

/// A message that reached no actor: the receiver was stopped or the handle
/// empty. Passed to system_config::on_dead_letter.
struct dead_letter_info {
  std::uint64_t receiver_id;  ///< 0 for an empty handle.
  const char* type_name;      ///< The payload type's name, demangled ("app::order").
};

/// A message whose type the receiver's behavior has no handler for.
struct unhandled_info {
  std::uint64_t receiver_id;
  const char* type_name;  ///< Demangled, as in dead_letter_info.
};

/// How serious a log line is.
enum class log_level : std::uint8_t {
  error,    ///< Something failed: an actor stopped because its code threw.
  warning,  ///< Something was lost or refused: a dead letter, an unhandled message, bad input.
  info,     ///< Worth knowing: a node came up.
};

/// What a log line is about. Each category is rate-limited on its own, so a
/// flood of dead letters cannot hide an actor failure.
enum class log_category : std::uint8_t {
  actor_failed,  ///< A handler, make_behavior or on_exit threw; the actor stopped.
  unhandled,     ///< A message no handler took.
  dead_letter,   ///< A message to a stopped actor or an empty handle.
  network,       ///< A node's connection events (libactor::net).
};
inline constexpr std::size_t log_category_count = 4;

/// A short, stable name for `c`, e.g. "dead_letter".
[[nodiscard]] constexpr const char* to_string(log_category c) noexcept {
  switch (c) {
    case log_category::actor_failed:
      return "actor_failed";
    case log_category::unhandled:
      return "unhandled";
    case log_category::dead_letter:
      return "dead_letter";
    case log_category::network:
      return "network";
  }
  return "unknown";
}

/// One line the runtime logs.
struct log_record {
  log_level level;
  log_category category;
  std::string_view text;  ///< One line, without a newline.
  /// Lines of this category that the rate limit dropped since the previous
  /// one that passed (their events are still counted in stats()).
  std::uint64_t suppressed;
};

/// At most `lines` lines per category in each `period` (0: no limit), as
/// Akka limits dead-letter logging. A line over the limit costs a couple of
/// atomic operations and is only counted.
struct log_rate_limit {
  std::uint32_t lines = 10;
  duration period = std::chrono::seconds(1);
};

struct system_config {
  /// Worker threads. 0: std::thread::hardware_concurrency().
  unsigned workers = 0;
  /// Messages an actor handles per activation before others get a turn.
  unsigned budget = 64;
  /// An actor a handler makes runnable runs next on that handler's worker
  /// (a request and its answer stay on one core). If the handler then runs
  /// for longer than this while other workers idle, another worker takes
  /// the waiting actor (within about twice this). Zero: never; the actor
  /// waits for the handler, however long it runs. The default is longer than
  /// a kernel time slice, so that a worker the kernel preempts is not taken
  /// for one stuck in a handler (docs/architecture.md, "The worker loop").
  duration run_next_timeout = std::chrono::milliseconds(10);
  /// Set: deterministic mode. No threads are started; the caller drives the
  /// system with run_once()/run_until_idle()/advance_time(), the next actor to
  /// run is picked by a PRNG seeded with this value, and timers use virtual time.
  std::optional<std::uint64_t> deterministic_seed;
  /// Called (from any thread, after the counter is incremented) for every
  /// dead letter. Must be thread-safe and must not block.
  std::function<void(const dead_letter_info&)> on_dead_letter;
  /// Called (on the receiver's thread) for every unhandled message.
  std::function<void(const unhandled_info&)> on_unhandled;

  /// Receives the runtime's log lines. Empty (the default): each line goes
  /// to stderr as "libactor: <category>: <text>". Called on the thread where
  /// the event happened (a worker, a sender's thread, a node's I/O): it must
  /// be thread-safe and must not block; what it throws is ignored. Not
  /// called after the actor_system's destructor returns.
  std::function<void(const log_record&)> logger;
  /// The rate limit per category.
  log_rate_limit log_limit;
  /// Which events are logged (they are counted in stats() either way).
  bool log_failures = true;      ///< An actor stopped because its code threw.
  bool log_unhandled = true;     ///< A message no handler took.
  bool log_dead_letters = true;  ///< A message reached no actor.
};

/// Counters since the system started. Each is a monotonic total except
/// `live_actors`.
struct system_stats {
  std::uint64_t spawned = 0;
  std::uint64_t live_actors = 0;
  std::uint64_t dead_letters = 0;  ///< Messages to stopped actors or empty handles.
  std::uint64_t unhandled = 0;     ///< Messages no handler took.
  std::uint64_t dropped = 0;       ///< Discarded by drop_newest/drop_oldest mailboxes.
  std::uint64_t rejected = 0;      ///< Refused by full `reject` mailboxes.
  /// Exceptions that escaped actor code (a handler, a task, make_behavior,
  /// on_exit). Each stopped its actor, or happened while it stopped.
  std::uint64_t failures = 0;
  /// Log lines the rate limit dropped (see system_config::log_limit).
  std::uint64_t log_suppressed = 0;
};

namespace detail {

struct spawn_context {
  system_state* sys;
  spawn_options opts;
};

/// Makes `actor()` constructors inside it belong to `sys`. Lives on the
/// spawning thread's stack for the duration of one spawn. @internal
class LIBACTOR_EXPORT spawn_scope {
 public:
  spawn_scope(system_state* sys, const spawn_options& opts);
  ~spawn_scope();
  spawn_scope(const spawn_scope&) = delete;
  spawn_scope& operator=(const spawn_scope&) = delete;

 private:
  spawn_context ctx_;
  const spawn_context* previous_;
};

template <class F>
class function_actor final : public actor {
 public:
  explicit function_actor(F f) : f_(std::move(f)) {}

 protected:
  behavior make_behavior() override { return f_(static_cast<actor&>(*this)); }

 private:
  F f_;
};

/// Receives the one answer of an ask made outside any actor.
class LIBACTOR_EXPORT reply_sink final : public actor {
 public:
  reply_sink() noexcept;
  ~reply_sink() override;
  send_status enqueue(message* m) noexcept override;
  /// The answer, or null when `deadline` passed first. Ownership moves to the caller.
  message* wait(time_point deadline);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  message* answer_ = nullptr;
  bool taken_ = false;
};

}  // namespace detail

/// The outcome of an ask made outside an actor.
template <class R>
class [[nodiscard]] reply {
 public:
  reply(detail::ref_ptr<detail::reply_sink> sink, time_point deadline) noexcept
      : sink_(std::move(sink)), deadline_(deadline) {}

  /// Blocks until the answer arrives or the ask's timeout expires. Call once;
  /// a second call returns errc::invalid_argument, and so does a call from
  /// inside an actor's handler (which must not block its worker).
  expected<R> get() {
    if (!sink_) return error{errc::invalid_argument, "reply::get() called twice"};
    auto sink = std::move(sink_);
    // Inside a handler only an answer that is already there is taken: a
    // wait would block the worker.
    const bool may_wait = detail::current_actor() == nullptr;
    detail::message_ptr m{sink->wait(may_wait ? deadline_ : time_point::min())};
    if (!m && !may_wait) {
      return error{errc::invalid_argument,
                   "reply::get() would block a worker thread; inside an actor use "
                   "co_await self.ask<R>(...)"};
    }
    if (!m) return error{errc::timeout, "no reply before the ask's timeout"};
    return detail::to_expected<R>(*m.get());
  }

 private:
  detail::ref_ptr<detail::reply_sink> sink_;
  time_point deadline_;
};

template <class R, class T>
reply<R> actor_ref::ask(T&& msg, duration timeout) const {
  static_assert(detail::check_message<T>());
  detail::ref_ptr<detail::reply_sink> sink{new detail::reply_sink, false};
  const auto now = steady_clock::now();
  const char* refusal = nullptr;
  if (timeout <= duration::zero()) {
    refusal = "an ask's timeout must be positive";
  } else if (detail::current_actor() != nullptr) {
    // Its reply could only be waited for by blocking this worker (which
    // reply::get() refuses), so it is not even sent.
    refusal =
        "actor_ref::ask inside a handler would block a worker thread; nothing was sent: use "
        "co_await self.ask<R>(...)";
  }
  if (refusal != nullptr) {
    // Refused before anything is sent.
    detail::actor_access::enqueue(
        sink.get(), detail::make_message<error>(detail::msg_kind::error_reply, nullptr, 1,
                                                error{errc::invalid_argument, refusal}));
    return reply<R>(std::move(sink), now);
  }
  detail::actor_access::add_ref(sink.get());  // the request's sender reference
  auto* m = detail::make_message<std::remove_cvref_t<T>>(detail::msg_kind::user, sink.get(), 1,
                                                         std::forward<T>(msg));
  const auto deadline = detail::deadline_after(now, timeout);
  if (!p_) {
    detail::send_to_empty(m);
  } else {
    detail::enqueue_request(p_.get(), m, deadline);
  }
  return reply<R>(std::move(sink), deadline);
}

/// The runtime. Create one per process (or per test); destroying it shuts it
/// down. All member functions are thread-safe unless noted.
///
/// Handles may outlive their system: once it is destroyed, a send to one of
/// its actors is a dead letter (`send_status::dead_letter`), an ask is
/// answered with errc::receiver_down, monitors and links see the actor
/// stopped, and the system's hooks (system_config) are no longer called.
class LIBACTOR_EXPORT actor_system {
 public:
  explicit actor_system(system_config cfg = {});
  ~actor_system();
  actor_system(const actor_system&) = delete;
  actor_system& operator=(const actor_system&) = delete;

  /// Spawns a class actor `A` (derived from `actor`) constructed from `args`.
  /// Its make_behavior() runs before spawn returns, in the actor's context.
  /// Throws std::logic_error once shutdown() has begun.
  template <class A, class... Args>
  requires std::derived_from<A, actor> actor_ref spawn(Args&&... args) {
    return spawn_with<A>(spawn_options{}, std::forward<Args>(args)...);
  }

  /// Spawns a function actor: `fn(actor& self)` returns its behavior.
  template <class F>
  requires std::is_invocable_r_v<behavior, F&, actor&> actor_ref spawn(F fn) {
    return spawn_with(spawn_options{}, std::move(fn));
  }

  /// Anything else: a compile-time error that says what spawn takes.
  template <class F>
  requires(!std::is_invocable_r_v<behavior, F&, actor&>) actor_ref spawn(F&&) {
    static_assert(!std::derived_from<std::remove_cvref_t<F>, actor>,
                  "libactor: spawn makes the actor: write spawn<MyActor>(constructor "
                  "arguments...), not spawn(MyActor{...})");
    static_assert(std::is_invocable_r_v<behavior, F&, actor&>,
                  "libactor: spawn takes an actor class (spawn<MyActor>(constructor "
                  "arguments...)) or a function behavior(actor& self), as in "
                  "spawn([](actor& self) -> behavior { return {...}; })");
    return {};
  }

  template <class A, class... Args>
  requires std::derived_from<A, actor> actor_ref spawn_with(const spawn_options& opts,
                                                            Args&&... args) {
    detail::spawn_scope scope(state_, opts);
    return detail::launch(new A(std::forward<Args>(args)...));
  }

  template <class F>
  requires std::is_invocable_r_v<behavior, F&, actor&> actor_ref
  spawn_with(const spawn_options& opts, F fn) {
    detail::spawn_scope scope(state_, opts);
    return detail::launch(new detail::function_actor<F>(std::move(fn)));
  }

  /// Stops `target` with `reason` before it handles its next message. Its
  /// queued messages become dead letters. For a remote handle the request
  /// travels to the actor's node (and is lost with it if that node is down).
  void stop(const actor_ref& target, exit_reason reason = exit_reason::killed());

  /// Registers `target` under `name`. False if the name is taken or the actor
  /// stopped. The name is removed when the actor stops.
  bool register_name(std::string name, const actor_ref& target);
  /// The actor registered under `name`, or an empty handle.
  [[nodiscard]] actor_ref lookup(std::string_view name) const;
  bool unregister_name(std::string_view name);

  [[nodiscard]] system_stats stats() const noexcept;
  [[nodiscard]] unsigned worker_count() const noexcept;
  /// Steady-clock time, or virtual time in deterministic mode.
  [[nodiscard]] time_point now() const noexcept;

  /// Stops accepting spawns, stops every actor (reason `shutdown`), waits for
  /// them, then joins the worker and timer threads. Idempotent. Must not be
  /// called from inside an actor.
  void shutdown();

  // --- deterministic mode (system_config::deterministic_seed); caller's thread only

  [[nodiscard]] bool deterministic() const noexcept;
  /// Runs one activation of a runnable actor picked by the seeded PRNG.
  /// False when nothing is runnable.
  bool run_once();
  /// Runs activations until nothing is runnable or `max_steps` ran; returns
  /// how many ran.
  std::size_t run_until_idle(std::size_t max_steps = SIZE_MAX);
  /// Moves virtual time forward, firing due timers in deadline order, and
  /// runs until idle after each firing. A negative `d` throws
  /// std::invalid_argument.
  void advance_time(duration d);

  /// @internal
  [[nodiscard]] detail::system_state& state() noexcept { return *state_; }

 private:
  // Counted: every actor object holds a reference, so a handle that outlives
  // this system still reaches valid (retired) state. See system_state.
  detail::system_state* state_;
};

template <class A, class... Args>
actor_ref actor::spawn(Args&&... args) {
  return system().template spawn<A>(std::forward<Args>(args)...);
}

template <class F>
requires std::is_invocable_r_v<behavior, F&, actor&> actor_ref actor::spawn(F fn) {
  return system().spawn(std::move(fn));
}

}  // namespace libactor
