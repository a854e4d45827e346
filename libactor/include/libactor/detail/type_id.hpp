#pragma once
/// @file
/// Compile-time type identity for message dispatch: one address per type, so
/// choosing a handler is a pointer compare, never a string compare.

#include <atomic>
#include <type_traits>
#include <typeinfo>

#include "libactor/export.hpp"

namespace libactor::detail {

struct type_meta {
  const char* (*name)() noexcept;  ///< The compiler's (mangled) name; see readable_name().
  /// The demangled name, made on first use by readable_name() and kept for
  /// the life of the process. acq_rel/acquire: the string is complete
  /// before its address is seen.
  mutable std::atomic<const char*> readable{nullptr};
  /// The network layer's codec for this type, set once when the type is
  /// declared for the wire; null for types that cannot leave the process.
  /// release store when set, acquire load when read: the codec object is
  /// fully built before its address is seen.
  mutable std::atomic<const void*> codec{nullptr};
};

template <class T>
const char* type_name_of() noexcept {
  return typeid(T).name();
}

// Default visibility so a type has one identity even across shared objects
// built with -fvisibility=hidden. The compiler gives an instantiation the
// narrowest visibility of its arguments, so a message type that one shared
// object creates and another dispatches must itself have default visibility
// (the runtime's own message types are exported for this reason).
template <class T>
struct __attribute__((visibility("default"))) type_tag {
  static constinit inline type_meta meta{&type_name_of<T>};
};

using type_id = const type_meta*;

/// The type's demangled name ("app::order", "std::optional<int>"), for
/// errors and logs. Never null; falls back to the mangled name.
LIBACTOR_EXPORT const char* readable_name(const type_meta* t) noexcept;

/// The identity of `T` (cv-ref qualifiers ignored).
template <class T>
[[nodiscard]] constexpr type_id type_of() noexcept {
  return &type_tag<std::remove_cvref_t<T>>::meta;
}

}  // namespace libactor::detail
