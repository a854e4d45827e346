#pragma once
/// @file
/// The core layer's error model: one `errc` enumeration, an `error` value
/// carrying a code and a human-readable text, `expected<T>` for recoverable
/// failures, and `exit_reason` for why an actor stopped.

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "libactor/export.hpp"

namespace libactor {

/// Error codes of the core layer. Every value is a failure a caller can act on.
enum class errc : std::uint8_t {
  /// The ask was not answered before its timeout expired.
  timeout = 1,
  /// The receiver was already stopped, or stopped before it answered.
  receiver_down,
  /// The receiver's handler threw; the text carries the exception's message.
  handler_failed,
  /// The receiver has no handler for the request's type.
  unhandled,
  /// The reply's type differs from the type the asker expected.
  bad_response_type,
  /// A bounded mailbox was full (any policy: the request was rejected,
  /// dropped, or evicted by a newer message).
  mailbox_full,
  /// The actor system is shutting down and accepts no new work.
  shutting_down,
  /// The handle was empty or an argument was out of range.
  invalid_argument,
  /// The receiver's node is unreachable: its connection broke, it missed
  /// heartbeats, or it was never reached.
  node_down,
  /// The message's type has no wire declaration, so it cannot reach an
  /// actor in another process.
  not_serializable,
  /// The outbound queue to the receiver's node is full (its byte bound).
  overloaded,
};

/// A short, stable name for `code`, e.g. "timeout".
[[nodiscard]] constexpr const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::timeout:
      return "timeout";
    case errc::receiver_down:
      return "receiver_down";
    case errc::handler_failed:
      return "handler_failed";
    case errc::unhandled:
      return "unhandled";
    case errc::bad_response_type:
      return "bad_response_type";
    case errc::mailbox_full:
      return "mailbox_full";
    case errc::shutting_down:
      return "shutting_down";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::node_down:
      return "node_down";
    case errc::not_serializable:
      return "not_serializable";
    case errc::overloaded:
      return "overloaded";
  }
  return "unknown";
}

/// A failure: a code to branch on and a text for humans.
struct LIBACTOR_EXPORT error {
  errc code{};
  std::string text;

  [[nodiscard]] std::string to_string() const {
    std::string out = libactor::to_string(code);
    if (!text.empty()) {
      out += ": ";
      out += text;
    }
    return out;
  }
  friend bool operator==(const error& a, const error& b) { return a.code == b.code; }
  friend bool operator==(const error& a, errc b) { return a.code == b; }
};

/// Thrown when the value of an `expected` that holds an error is asked for;
/// what() carries the error.
class bad_expected_access : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Either a `T` or an error (`E`, by default the core's `error`). `void` is
/// allowed and carries no value. Other layers use their own `E`.
template <class T, class E = error>
class expected {
 public:
  expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  expected(E err) : v_(std::in_place_index<1>, std::move(err)) {}      // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value. Throws `bad_expected_access`, which says what the error
  /// is, when this holds an error.
  [[nodiscard]] T& value() & {
    check();
    return std::get<0>(v_);
  }
  [[nodiscard]] const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  [[nodiscard]] T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error. Throws `bad_expected_access` when this holds a value.
  [[nodiscard]] const E& err() const {
    if (has_value()) throw bad_expected_access("libactor::expected::err() on a value");
    return std::get<1>(v_);
  }

 private:
  void check() const {
    if (has_value()) return;
    if constexpr (requires(const E& x) { x.to_string(); }) {
      throw bad_expected_access("libactor::expected holds an error, not a value: " +
                                std::get<1>(v_).to_string());
    } else {
      throw bad_expected_access("libactor::expected holds an error, not a value");
    }
  }

  std::variant<T, E> v_;
};

template <class E>
class expected<void, E> {
 public:
  expected() = default;
  expected(E err) : err_(std::move(err)), ok_(false) {}  // NOLINT: implicit by design
  [[nodiscard]] bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] const E& err() const { return err_; }

 private:
  E err_{};
  bool ok_ = true;
};

/// Why an actor stopped.
enum class exit_code : std::uint8_t {
  normal,     ///< It finished its work (quit() without a reason, or no behavior).
  error,      ///< It failed: quit(error), or a handler threw (text = the exception's message).
  killed,     ///< Another party stopped it with actor_system::stop() or kill().
  shutdown,   ///< The actor system shut down while it was running.
  node_down,  ///< A remote actor's node became unreachable; its state is unknown.
};

class LIBACTOR_EXPORT exit_reason {
 public:
  exit_reason() = default;
  exit_reason(exit_code code, std::string text) : code_(code), text_(std::move(text)) {}

  static exit_reason normal() { return {}; }
  static exit_reason error(std::string text) { return {exit_code::error, std::move(text)}; }
  static exit_reason killed(std::string text = {}) { return {exit_code::killed, std::move(text)}; }

  [[nodiscard]] exit_code code() const noexcept { return code_; }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool is_normal() const noexcept { return code_ == exit_code::normal; }
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const exit_reason&, const exit_reason&) = default;

 private:
  exit_code code_ = exit_code::normal;
  std::string text_;
};

inline std::string exit_reason::to_string() const {
  const char* names[] = {"normal", "error", "killed", "shutdown", "node_down"};
  std::string out = names[static_cast<int>(code_)];
  if (!text_.empty()) {
    out += ": ";
    out += text_;
  }
  return out;
}

/// What `send` did with a message.
enum class send_status : std::uint8_t {
  ok,                ///< Enqueued (for drop_oldest: possibly evicting an older message).
  dead_letter,       ///< The receiver was stopped or the handle empty; counted as a dead letter.
  mailbox_full,      ///< Bounded mailbox, `reject` policy: refused, the message was destroyed.
  dropped,           ///< Bounded mailbox, `drop_newest` policy: discarded and counted.
  not_serializable,  ///< Remote receiver, type without a wire declaration; counted as a dead
                     ///< letter.
  overloaded,        ///< Remote receiver, its node's outbound queue full; counted as a dead letter.
};

}  // namespace libactor
