#pragma once
/// @file
/// The message envelope: an intrusive header followed by the payload, in one
/// pool block.

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "libactor/detail/pool.hpp"
#include "libactor/detail/ref_counted.hpp"
#include "libactor/detail/type_id.hpp"
#include "libactor/export.hpp"

namespace libactor {
class actor;
}

namespace libactor::detail {

/// What the runtime does with a message before (or instead of) handing it to
/// the behavior.
enum class msg_kind : std::uint8_t {
  user,         ///< Dispatched to the behavior by payload type.
  response,     ///< The answer to request `request_id`; payload is the value.
  error_reply,  ///< A failed answer to request `request_id`; payload is `error`.
  exit_signal,  ///< A linked actor stopped; payload is `exit_msg`.
  down,         ///< A monitored actor stopped; payload is `down_msg`, dispatched
                ///< like `user`. To a stopped watcher it is moot, not a dead letter.
  kill,         ///< stop()/kill(): the reason waits in the actor; no payload.
  ask_timeout,  ///< The timer of request `request_id` expired; no payload.
  timer,        ///< A timer message to self; `request_id` is the timer id.
};

struct message {
  message* next = nullptr;  ///< Mailbox link; owned by whoever holds the message.
  type_id type = nullptr;
  void (*destroy)(message*) noexcept = nullptr;
  actor* sender = nullptr;       ///< One owned reference, or null.
  std::uint64_t request_id = 0;  ///< Non-zero: the sender awaits an answer.
  msg_kind kind = msg_kind::user;

  /// Destroys the payload, drops the sender reference and frees the block.
  void dispose() noexcept { destroy(this); }
};

static_assert(sizeof(message) == 48, "keep the header at 48 bytes: class 0 holds 16-byte payloads");

/// Drops one reference to `a` (defined in the library; the hot path in
/// actor::resume batches sender releases instead).
LIBACTOR_EXPORT void release_actor(actor* a) noexcept;

struct LIBACTOR_EXPORT no_payload {};

/// The pool size class of a message block type `M`, or -1 for operator new.
template <class M>
inline constexpr int message_size_class =
#if defined(LIBACTOR_NO_MESSAGE_POOL)
    // Built with LIBACTOR_MESSAGE_POOL=OFF: every message uses operator new,
    // so the pool can be measured against the process's allocator.
    -1;
#else
    alignof(M) <= 16 ? pool::size_class_for(sizeof(M)) : -1;
#endif

/// Drops `self`'s sender reference, destroys it and frees its block: the
/// end of every message block type's destroy function.
template <class M>
void destroy_message(M* self) noexcept {
  if (self->sender) release_actor(self->sender);
  self->~M();
  if constexpr (message_size_class<M> >= 0) {
    pool::deallocate(self, message_size_class<M>);
  } else {
    ::operator delete (static_cast<void*>(self), std::align_val_t{alignof(M)});
  }
}

/// Allocates a block of type `M` (a typed_message or a type derived from
/// one), constructs it from `args` and fills the header. `sender` is an
/// owned reference (or null) that the message takes over, also when this
/// throws.
template <class M, class... Args>
M* construct_message(msg_kind kind, actor* sender, std::uint64_t request_id, Args&&... args) {
  void* mem;
  if constexpr (message_size_class<M> >= 0) {
    mem = pool::allocate(message_size_class<M>);
  } else {
    mem = ::operator new (sizeof(M), std::align_val_t{alignof(M)});
  }
  M* m;
  try {
    m = ::new (mem) M(std::forward<Args>(args)...);
  } catch (...) {
    if constexpr (message_size_class<M> >= 0) {
      pool::deallocate(mem, message_size_class<M>);
    } else {
      ::operator delete (mem, std::align_val_t{alignof(M)});
    }
    if (sender) release_actor(sender);
    throw;
  }
  m->type = type_of<typename M::value_type>();
  m->destroy = &M::destroy_fn;
  m->sender = sender;
  m->request_id = request_id;
  m->kind = kind;
  return m;
}

/// A message whose payload is a `T`. Types derived from it add fields after
/// the payload (and a destroy function of their own).
template <class T>
struct typed_message : message {
  using value_type = T;
  template <class... Args>
  explicit typed_message(Args&&... args) : value(std::forward<Args>(args)...) {}
  T value;

  static void destroy_fn(message* m) noexcept { destroy_message(static_cast<typed_message*>(m)); }
};

/// Builds a message whose payload is `T` constructed from `args`. `sender` is
/// an owned reference (or null) that the message takes over.
template <class T, class... Args>
message* make_message(msg_kind kind, actor* sender, std::uint64_t request_id, Args&&... args) {
  return construct_message<typed_message<T>>(kind, sender, request_id, std::forward<Args>(args)...);
}

template <class T>
[[nodiscard]] T& payload(message& m) noexcept {
  return static_cast<typed_message<T>*>(&m)->value;
}

/// Owns a message until released; disposes it otherwise.
class message_ptr {
 public:
  message_ptr() noexcept = default;
  explicit message_ptr(message* m) noexcept : m_(m) {}
  message_ptr(message_ptr&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }
  message_ptr& operator=(message_ptr&& o) noexcept {
    std::swap(m_, o.m_);
    return *this;
  }
  ~message_ptr() {
    if (m_) m_->dispose();
  }
  message* get() const noexcept { return m_; }
  message* operator->() const noexcept { return m_; }
  [[nodiscard]] message* release() noexcept {
    message* m = m_;
    m_ = nullptr;
    return m;
  }
  explicit operator bool() const noexcept { return m_ != nullptr; }

 private:
  message* m_ = nullptr;
};

}  // namespace libactor::detail
