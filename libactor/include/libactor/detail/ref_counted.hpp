#pragma once
/// @file
/// Intrusive reference count shared by actors and the other runtime objects
/// that handles point to.

#include <atomic>
#include <cstdint>

namespace libactor::detail {

class ref_counted {
 public:
  ref_counted() = default;
  ref_counted(const ref_counted&) = delete;
  ref_counted& operator=(const ref_counted&) = delete;
  virtual ~ref_counted() = default;

  void add_ref() const noexcept {
    // relaxed: a new reference is only made from an existing one, which keeps
    // the count above zero; no other memory is published by the increment.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Adds a reference unless the count already reached zero (the object is
  /// being destroyed). For tables that hold objects without owning them.
  [[nodiscard]] bool try_add_ref() const noexcept {
    // relaxed: as in add_ref(); the table's lock orders the lookup with the
    // destructor's removal, and a zero count is never revived.
    std::uint32_t n = refs_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void release() const noexcept {
    // acq_rel: the release half orders this owner's last uses before the
    // decrement; the acquire half makes every other owner's uses visible to
    // the thread that sees the count reach zero and runs the destructor.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// Drops `n` references at once (a consumer batching the sender
  /// references of consecutive messages).
  void release_n(std::uint32_t n) const noexcept {
    // acq_rel: as in release().
    if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
  }

  [[nodiscard]] std::uint32_t use_count() const noexcept {
    // relaxed: a diagnostic snapshot, never used to decide ownership.
    return refs_.load(std::memory_order_relaxed);
  }

 private:
  mutable std::atomic<std::uint32_t> refs_{1};
};

/// An owning pointer to a ref_counted object.
template <class T>
class ref_ptr {
 public:
  ref_ptr() noexcept = default;
  ref_ptr(std::nullptr_t) noexcept {}  // NOLINT
  /// Adopts one existing reference when `add_ref` is false.
  explicit ref_ptr(T* p, bool add_ref = true) noexcept : p_(p) {
    if (p_ && add_ref) p_->add_ref();
  }
  ref_ptr(const ref_ptr& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  ref_ptr(ref_ptr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  template <class U>
  ref_ptr(ref_ptr<U> o) noexcept : p_(o.detach()) {}  // NOLINT
  ~ref_ptr() {
    if (p_) p_->release();
  }
  ref_ptr& operator=(ref_ptr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  [[nodiscard]] T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// Gives up ownership without releasing.
  [[nodiscard]] T* detach() noexcept {
    T* p = p_;
    p_ = nullptr;
    return p;
  }
  friend bool operator==(const ref_ptr& a, const ref_ptr& b) noexcept { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace libactor::detail
