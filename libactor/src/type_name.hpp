#pragma once
// Readable names of types for errors and logs (see type_name.cpp).

#include <exception>
#include <string>

#include "libactor/detail/type_id.hpp"

namespace libactor {
class actor;
}

namespace libactor::detail {

/// The demangled form of a compiler type name; the input if it is not one.
[[nodiscard]] std::string demangle(const char* mangled);
/// The dynamic type of `a`, demangled ("app::account").
[[nodiscard]] std::string actor_type_name(const actor* a);
/// "<exception type>: <what()>", or "an unknown exception".
[[nodiscard]] std::string describe_exception(const std::exception_ptr& ep);

}  // namespace libactor::detail
