#pragma once
/// @file
/// Compile-time type identity for message dispatch: one address per type, so
/// choosing a handler is a pointer compare, never a string compare.

#include <typeinfo>

namespace libactor::detail {

struct type_meta {
  const char* (*name)() noexcept;  ///< Implementation-defined type name, for logs.
};

template <class T>
const char* type_name_of() noexcept {
  return typeid(T).name();
}

// Default visibility so a type has one identity even across shared objects
// built with -fvisibility=hidden.
template <class T>
struct __attribute__((visibility("default"))) type_tag {
  static constexpr type_meta meta{&type_name_of<T>};
};

using type_id = const type_meta*;

/// The identity of `T` (cv-ref qualifiers ignored).
template <class T>
[[nodiscard]] constexpr type_id type_of() noexcept {
  return &type_tag<std::remove_cvref_t<T>>::meta;
}

}  // namespace libactor::detail
