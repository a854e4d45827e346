#pragma once
/// @file
/// `task<T>`: the coroutine type for actor handlers that await replies.
///
/// A handler may return `task<T>` instead of `T`; the actor starts it, and
/// when it `co_return`s the value becomes the reply to the request being
/// handled. While a task is suspended in `co_await self.ask(...)`, the actor
/// keeps processing other messages; the task resumes on the actor's own
/// activation when the reply (or its error) arrives, so it may touch the
/// actor's state without locks. Tasks may `co_await` other tasks.
///
/// Tasks are lazy (they start when awaited or when the actor starts them) and
/// owned: destroying a task destroys its frame and every frame it awaits. When
/// an actor stops, its suspended tasks are destroyed and pending requests they
/// were serving are answered with `errc::receiver_down`.

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace libactor {

template <class T = void>
class task;

namespace detail {

template <class T>
struct task_value {
  std::optional<T> value;
  void return_value(T v) { value.emplace(std::move(v)); }
  T take() { return std::move(*value); }
};

template <>
struct task_value<void> {
  void return_void() noexcept {}
  void take() noexcept {}
};

template <class T>
struct task_promise : task_value<T> {
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;

  task<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<task_promise> h) noexcept {
      auto c = h.promise().continuation;
      return c ? c : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  task(task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) noexcept {
    h_.promise().continuation = cont;
    return h_;
  }
  T await_resume() {
    auto& p = h_.promise();
    if (p.exception) std::rethrow_exception(p.exception);
    return p.take();
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

template <class T>
task<T> detail::task_promise<T>::get_return_object() noexcept {
  return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}

template <class T>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;

}  // namespace libactor
