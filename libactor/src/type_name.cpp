// Readable type names for errors and logs: the compiler's names demangled
// once per type (Boost.Core's demangle, over the C++ ABI's) and kept.

#include <boost/core/demangle.hpp>

#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "type_name.hpp"

#include <typeinfo>

#include "libactor/actor.hpp"

namespace libactor::detail {

namespace {
// The standard library's long spellings, in their usual short forms.
void shorten(std::string& s) {
  static constexpr std::pair<std::string_view, std::string_view> forms[] = {
      {"std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
       "std::string"},
      {"std::basic_string_view<char, std::char_traits<char> >", "std::string_view"},
      {"std::__cxx11::", "std::"},
  };
  for (const auto& [longer, shorter] : forms) {
    for (std::size_t at = s.find(longer); at != std::string::npos; at = s.find(longer, at)) {
      s.replace(at, longer.size(), shorter);
      at += shorter.size();
    }
  }
}
}  // namespace

std::string demangle(const char* mangled) {
  std::string s = boost::core::demangle(mangled);
  shorten(s);
  return s;
}

std::string actor_type_name(const actor* a) {
  return demangle(typeid(*a).name());
}

std::string describe_exception(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return demangle(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    return "an unknown exception";
  }
}

const char* readable_name(const type_meta* t) noexcept {
  // acquire: pairs with the release half of the CAS below.
  if (const char* r = t->readable.load(std::memory_order_acquire)) return r;
  const char* mangled = t->name();
  std::string text;
  try {
    text = demangle(mangled);
  } catch (...) {
    return mangled;
  }
  auto* copy = new (std::nothrow) char[text.size() + 1];
  if (copy == nullptr) return mangled;
  std::memcpy(copy, text.c_str(), text.size() + 1);
  const char* expected = nullptr;
  // acq_rel: release publishes the string; acquire (also on failure) sees
  // the winner's.
  if (t->readable.compare_exchange_strong(expected, copy, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    return copy;  // kept for the life of the process, reachable from the type
  }
  delete[] copy;
  return expected;
}

}  // namespace libactor::detail
