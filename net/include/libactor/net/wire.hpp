#pragma once
/// @file
/// The wire format of message payloads: how a C++ value becomes bytes for
/// another process, and back.
///
/// ## Declaring a message type
/// A user declares a type's wire name and fields once, in the type's own
/// namespace (the declarations are found by argument-dependent lookup):
///
///     struct order { std::string symbol; std::int64_t qty; double price; };
///     LIBACTOR_WIRE_TYPE(order, "trading.order", symbol, qty, price)
///
/// The type id is the 64-bit FNV-1a hash of the name: stable across builds,
/// compilers and nodes, and independent of declaration order. Changing a
/// name changes the id; changing fields changes the format (give the new
/// layout a new name).
///
/// An enum states its range once, so that a value outside it is refused on
/// decoding instead of reaching a `switch` that does not expect it:
///
///     enum class side : std::uint8_t { buy, sell };
///     LIBACTOR_WIRE_ENUM(side, side::buy, side::sell)
///
/// ## Built-in types
/// bool, integers, floating point, declared enums, std::string, std::vector,
/// std::array, std::map, std::unordered_map, std::optional, std::variant,
/// std::pair, std::tuple, std::monostate, std::chrono::duration, and declared
/// types, nested
/// freely. Anything else does not satisfy `wire_encodable` and is a
/// compile-time error.
///
/// ## Format
/// Integers and floating point: fixed width, little-endian. bool: one byte,
/// 0 or 1. Lengths, counts and variant indices: unsigned LEB128. Strings and
/// containers: count, then elements. optional: one byte (0 or 1), then the
/// value. Declared types: their fields in declaration order.
///
/// ## Untrusted input
/// Decoding never trusts a length: every read checks the bytes left, an
/// element count above `decode_limits::max_elements` is refused before the
/// loop, and storage is reserved for at most as many elements as there are
/// bytes left, so a small malicious input cannot make a large allocation.
/// Elements that take no bytes (an empty declared type, std::monostate)
/// would still cost memory each: the elements of all containers in one
/// value share one budget, `decode_limits::max_total_elements`, charged
/// before each container's loop. Nesting (containers, optionals, variants,
/// pairs, tuples, declared types) is limited to `decode_limits::max_depth`
/// levels, so a recursive type cannot exhaust the stack. Enum values
/// outside their declared range are refused. Errors carry a code and the
/// byte offset; nothing throws.

#include <array>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <mutex>
#include <stdexcept>

#include "libactor/actor.hpp"
#include "libactor/error.hpp"
#include "libactor/net/export.hpp"
#include "libactor/net/inbound_account.hpp"

namespace libactor::net {

/// Error codes of the wire format.
enum class wire_errc : std::uint8_t {
  truncated = 1,      ///< The input ended inside a value.
  too_many_elements,  ///< A count exceeds decode_limits::max_elements.
  bad_varint,         ///< A LEB128 number is longer than 64 bits.
  bad_bool,           ///< A bool or optional tag other than 0 or 1.
  bad_variant_index,  ///< A variant index beyond the alternatives.
  trailing_bytes,     ///< Bytes left after the value.
  bad_handle,         ///< An actor handle that cannot be resolved here.
  bad_value,          ///< A value out of its type's range (e.g. an unknown error code).
  too_deep,           ///< Nesting deeper than decode_limits::max_depth.
  over_budget,        ///< The value's elements exceed decode_limits::max_total_elements.
};

[[nodiscard]] constexpr const char* to_string(wire_errc e) noexcept {
  switch (e) {
    case wire_errc::truncated:
      return "truncated";
    case wire_errc::too_many_elements:
      return "too_many_elements";
    case wire_errc::bad_varint:
      return "bad_varint";
    case wire_errc::bad_bool:
      return "bad_bool";
    case wire_errc::bad_variant_index:
      return "bad_variant_index";
    case wire_errc::trailing_bytes:
      return "trailing_bytes";
    case wire_errc::bad_handle:
      return "bad_handle";
    case wire_errc::bad_value:
      return "bad_value";
    case wire_errc::too_deep:
      return "too_deep";
    case wire_errc::over_budget:
      return "over_budget";
  }
  return "unknown";
}

struct wire_error {
  wire_errc code{};
  std::size_t offset = 0;  ///< Where in the input decoding stopped.
  friend bool operator==(const wire_error&, const wire_error&) = default;
};

struct decode_limits {
  /// Most elements one container or string may declare.
  std::uint64_t max_elements = std::uint64_t{1} << 24;
  /// Most elements of all vectors and maps in one value together (the
  /// characters of strings are not counted: each takes a byte of input).
  std::uint64_t max_total_elements = std::uint64_t{1} << 24;
  /// Most levels of nesting: a vector of vectors of ints is three.
  std::uint32_t max_depth = 64;
  /// Most bytes the decoded value may occupy in its containers and strings
  /// (each vector or map element counts its size in memory, each string
  /// its length): an element can be far larger than its encoding (an empty
  /// optional of a large array is one byte on the wire).
  std::uint64_t max_decoded_bytes = std::uint64_t{1} << 30;
};

/// The 64-bit FNV-1a hash of `name`: a declared type's stable id.
[[nodiscard]] constexpr std::uint64_t type_id_of(std::string_view name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// --- declared types --------------------------------------------------------

/// A type declared with LIBACTOR_WIRE_TYPE.
template <class T>
concept wire_declared = requires(T& t, const T& ct) {
  { libactor_wire_name(static_cast<const T*>(nullptr)) } -> std::convertible_to<std::string_view>;
  libactor_wire_fields([](auto&) {}, t);
  libactor_wire_fields([](const auto&) {}, ct);
};

template <wire_declared T>
inline constexpr std::string_view wire_name_v = libactor_wire_name(static_cast<const T*>(nullptr));

template <wire_declared T>
inline constexpr std::uint64_t wire_id_v = type_id_of(wire_name_v<T>);

// --- what is encodable -------------------------------------------------------

template <class T>
struct wire_traits;  // defined below per family

/// True for types the wire format can carry (checked through nested types:
/// a vector of an undeclared type is not encodable).
template <class T>
concept wire_encodable = requires {
  requires wire_traits<std::remove_cv_t<T>>::encodable;
};

// --- writer and reader ---------------------------------------------------------

/// Turns actor handles into bytes and back; a node implements it. Without
/// one, only empty handles can be encoded and decoded.
class handle_context;

class writer {
 public:
  explicit writer(std::vector<std::byte>& out, handle_context* ctx = nullptr) noexcept
      : out_(out), ctx_(ctx) {}
  [[nodiscard]] handle_context* context() const noexcept { return ctx_; }

  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  template <class U>
  requires std::is_trivially_copyable_v<U>
  void fixed(U v) {
    if constexpr (std::endian::native == std::endian::big && sizeof(U) > 1) {
      std::array<std::byte, sizeof(U)> tmp;
      std::memcpy(tmp.data(), &v, sizeof(U));
      for (std::size_t i = 0; i < sizeof(U); ++i) out_.push_back(tmp[sizeof(U) - 1 - i]);
    } else {
      bytes(&v, sizeof(U));
    }
  }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<std::byte>(v));
  }

 private:
  std::vector<std::byte>& out_;
  handle_context* ctx_;
};

class reader {
 public:
  reader(std::span<const std::byte> in, decode_limits limits,
         handle_context* ctx = nullptr) noexcept
      : begin_(in.data()), p_(in.data()), end_(in.data() + in.size()), limits_(limits), ctx_(ctx) {}
  [[nodiscard]] handle_context* context() const noexcept { return ctx_; }

  [[nodiscard]] bool ok() const noexcept { return !failed_; }
  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(end_ - p_);
  }
  [[nodiscard]] std::size_t offset() const noexcept {
    return static_cast<std::size_t>(p_ - begin_);
  }
  [[nodiscard]] const wire_error& error() const noexcept { return error_; }
  [[nodiscard]] const decode_limits& limits() const noexcept { return limits_; }

  void fail(wire_errc code) noexcept {
    if (!failed_) {
      failed_ = true;
      error_ = wire_error{code, offset()};
    }
  }

  bool bytes(void* dst, std::size_t n) noexcept {
    if (failed_) return false;
    if (remaining() < n) {
      fail(wire_errc::truncated);
      return false;
    }
    std::memcpy(dst, p_, n);
    p_ += n;
    return true;
  }
  template <class U>
  requires std::is_trivially_copyable_v<U>
  bool fixed(U& v) noexcept {
    if constexpr (std::endian::native == std::endian::big && sizeof(U) > 1) {
      std::array<std::byte, sizeof(U)> tmp;
      if (!bytes(tmp.data(), sizeof(U))) return false;
      std::array<std::byte, sizeof(U)> rev;
      for (std::size_t i = 0; i < sizeof(U); ++i) rev[i] = tmp[sizeof(U) - 1 - i];
      std::memcpy(&v, rev.data(), sizeof(U));
      return true;
    } else {
      return bytes(&v, sizeof(U));
    }
  }
  bool varint(std::uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (failed_) return false;
      if (p_ == end_) {
        fail(wire_errc::truncated);
        return false;
      }
      const auto b = static_cast<std::uint8_t>(*p_++);
      if (shift == 63 && b > 1) {
        fail(wire_errc::bad_varint);
        return false;
      }
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
      if (shift >= 63) {
        fail(wire_errc::bad_varint);
        return false;
      }
    }
  }
  /// A count, checked against the limits.
  bool count(std::uint64_t& n) noexcept {
    if (!varint(n)) return false;
    if (n > limits_.max_elements) {
      fail(wire_errc::too_many_elements);
      return false;
    }
    return true;
  }
  /// A container's element count: checked like count() and charged to the
  /// value's element budget, and `n` elements of `size` bytes each to its
  /// decoded-bytes budget.
  bool elements(std::uint64_t& n, std::size_t size) noexcept {
    if (!count(n)) return false;
    if (n > elements_left_ || !charge_bytes(n, size)) {
      fail(wire_errc::over_budget);
      return false;
    }
    elements_left_ -= n;
    return true;
  }
  /// Charges `n` items of `size` bytes to the decoded-bytes budget.
  bool charge_bytes(std::uint64_t n, std::size_t size) noexcept {
    if (size != 0 && n > bytes_left_ / size) return false;
    bytes_left_ -= n * size;
    return true;
  }
  /// Charges `size` bytes that decoding makes outside the value (the proxy
  /// behind an actor handle) to the decoded-bytes budget; false (and
  /// failed, over_budget) past it.
  bool charge_outside(std::size_t size) noexcept {
    if (!charge_bytes(1, size)) {
      fail(wire_errc::over_budget);
      return false;
    }
    return true;
  }
  /// Bytes charged so far to the decoded-bytes budget.
  [[nodiscard]] std::uint64_t decoded_bytes() const noexcept {
    return limits_.max_decoded_bytes - bytes_left_;
  }
  /// One level deeper; false (and failed) past the depth limit. Each
  /// successful enter() is paired with a leave().
  bool enter() noexcept {
    if (depth_ == limits_.max_depth) {
      fail(wire_errc::too_deep);
      return false;
    }
    ++depth_;
    return true;
  }
  void leave() noexcept { --depth_; }

 private:
  const std::byte* begin_;
  const std::byte* p_;
  const std::byte* end_;
  decode_limits limits_;
  handle_context* ctx_;
  std::uint64_t elements_left_ = limits_.max_total_elements;
  std::uint64_t bytes_left_ = limits_.max_decoded_bytes;
  std::uint32_t depth_ = 0;
  bool failed_ = false;
  wire_error error_{};
};

// --- families ----------------------------------------------------------------------

template <class T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) struct wire_traits<T> {
  static constexpr bool encodable = true;
  static void encode(writer& w, T v) { w.fixed(v); }
  static bool decode(reader& r, T& v) { return r.fixed(v); }
};

template <>
struct wire_traits<bool> {
  static constexpr bool encodable = true;
  static void encode(writer& w, bool v) { w.fixed(static_cast<std::uint8_t>(v ? 1 : 0)); }
  static bool decode(reader& r, bool& v) {
    std::uint8_t b = 0;
    if (!r.fixed(b)) return false;
    if (b > 1) {
      r.fail(wire_errc::bad_bool);
      return false;
    }
    v = b == 1;
    return true;
  }
};

/// An enum declared with LIBACTOR_WIRE_ENUM: its values are a contiguous
/// range, and a value outside it is refused on decoding.
template <class T>
concept wire_enum = std::is_enum_v<T> && requires {
  {
    libactor_wire_enum_range(static_cast<const T*>(nullptr))
    } -> std::same_as<std::pair<std::underlying_type_t<T>, std::underlying_type_t<T>>>;
};

/// std::byte: one byte, any value.
template <>
struct wire_traits<std::byte> {
  static constexpr bool encodable = true;
  static void encode(writer& w, std::byte v) { w.fixed(static_cast<std::uint8_t>(v)); }
  static bool decode(reader& r, std::byte& v) {
    std::uint8_t b = 0;
    if (!r.fixed(b)) return false;
    v = static_cast<std::byte>(b);
    return true;
  }
};

template <class T>
requires std::is_enum_v<T>
struct wire_traits<T> {
  static constexpr bool encodable = wire_enum<T>;
  static_assert(!std::is_same_v<std::underlying_type_t<T>, bool>,
                "an enum over bool cannot cross the network: give it an integer underlying type");
  using U = std::underlying_type_t<T>;
  static void encode(writer& w, T v) { w.fixed(static_cast<U>(v)); }
  static bool decode(reader& r, T& v) {
    U u{};
    if (!r.fixed(u)) return false;
    const auto [lo, hi] = libactor_wire_enum_range(static_cast<const T*>(nullptr));
    if (u < lo || u > hi) {
      r.fail(wire_errc::bad_value);
      return false;
    }
    v = static_cast<T>(u);
    return true;
  }
};

template <>
struct wire_traits<std::monostate> {
  static constexpr bool encodable = true;
  static void encode(writer&, std::monostate) {}
  static bool decode(reader& r, std::monostate&) { return r.ok(); }
};

template <>
struct wire_traits<std::string> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const std::string& s) {
    w.varint(s.size());
    w.bytes(s.data(), s.size());
  }
  static bool decode(reader& r, std::string& s) {
    std::uint64_t n = 0;
    if (!r.count(n)) return false;
    if (n > r.remaining()) {
      r.fail(wire_errc::truncated);
      return false;
    }
    if (!r.charge_bytes(n, 1)) {
      r.fail(wire_errc::over_budget);
      return false;
    }
    s.resize(static_cast<std::size_t>(n));
    return r.bytes(s.data(), s.size());
  }
};

template <class Rep, class Period>
struct wire_traits<std::chrono::duration<Rep, Period>> {
  static constexpr bool encodable = wire_encodable<Rep>;
  using D = std::chrono::duration<Rep, Period>;
  static void encode(writer& w, const D& d) { wire_traits<Rep>::encode(w, d.count()); }
  static bool decode(reader& r, D& d) {
    Rep c{};
    if (!wire_traits<Rep>::decode(r, c)) return false;
    d = D{c};
    return true;
  }
};

template <class T>
void wire_encode(writer& w, const T& v);
template <class T>
bool wire_decode(reader& r, T& v);

namespace detail {
// Decodes `n` elements appended through `add`, reserving no more than the
// bytes left could possibly hold.
template <class C, class Add>
bool decode_elements(reader& r, C& c, std::uint64_t n, Add add) {
  if constexpr (requires { c.reserve(std::size_t{}); }) {
    c.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, r.remaining())));
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!add()) return false;
  }
  return true;
}
}  // namespace detail

template <class T, class A>
struct wire_traits<std::vector<T, A>> {
  static constexpr bool encodable = wire_encodable<T>;
  static void encode(writer& w, const std::vector<T, A>& v) {
    w.varint(v.size());
    for (const auto& e : v) wire_encode(w, e);
  }
  static bool decode(reader& r, std::vector<T, A>& v) {
    std::uint64_t n = 0;
    if (!r.elements(n, sizeof(T))) return false;
    v.clear();
    return detail::decode_elements(r, v, n, [&] {
      T e{};
      if (!wire_decode(r, e)) return false;
      v.push_back(std::move(e));
      return true;
    });
  }
};

template <class T, std::size_t N>
struct wire_traits<std::array<T, N>> {
  static constexpr bool encodable = wire_encodable<T>;
  static void encode(writer& w, const std::array<T, N>& a) {
    for (const auto& e : a) wire_encode(w, e);
  }
  static bool decode(reader& r, std::array<T, N>& a) {
    for (auto& e : a) {
      if (!wire_decode(r, e)) return false;
    }
    return true;
  }
};

template <class Map>
struct map_traits {
  using K = typename Map::key_type;
  using V = typename Map::mapped_type;
  static constexpr bool encodable = wire_encodable<K> && wire_encodable<V>;
  static void encode(writer& w, const Map& m) {
    w.varint(m.size());
    for (const auto& [k, v] : m) {
      wire_encode(w, k);
      wire_encode(w, v);
    }
  }
  static bool decode(reader& r, Map& m) {
    std::uint64_t n = 0;
    // A map element is a node: the pair and a few pointers.
    if (!r.elements(n, sizeof(typename Map::value_type) + 4 * sizeof(void*))) return false;
    m.clear();
    return detail::decode_elements(r, m, n, [&] {
      K k{};
      V v{};
      if (!wire_decode(r, k) || !wire_decode(r, v)) return false;
      m.insert_or_assign(std::move(k), std::move(v));
      return true;
    });
  }
};

template <class K, class V, class C, class A>
struct wire_traits<std::map<K, V, C, A>> : map_traits<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct wire_traits<std::unordered_map<K, V, H, E, A>>
    : map_traits<std::unordered_map<K, V, H, E, A>> {};

template <class T>
struct wire_traits<std::optional<T>> {
  static constexpr bool encodable = wire_encodable<T>;
  static void encode(writer& w, const std::optional<T>& o) {
    w.fixed(static_cast<std::uint8_t>(o ? 1 : 0));
    if (o) wire_encode(w, *o);
  }
  static bool decode(reader& r, std::optional<T>& o) {
    bool has = false;
    if (!wire_traits<bool>::decode(r, has)) return false;
    if (!has) {
      o.reset();
      return true;
    }
    T v{};
    if (!wire_decode(r, v)) return false;
    o = std::move(v);
    return true;
  }
};

template <class... Ts>
struct wire_traits<std::variant<Ts...>> {
  static constexpr bool encodable = (wire_encodable<Ts> && ...);
  using V = std::variant<Ts...>;
  static void encode(writer& w, const V& v) {
    w.varint(v.index());
    std::visit([&w](const auto& x) { wire_encode(w, x); }, v);
  }
  static bool decode(reader& r, V& v) {
    std::uint64_t i = 0;
    if (!r.varint(i)) return false;
    if (i >= sizeof...(Ts)) {
      r.fail(wire_errc::bad_variant_index);
      return false;
    }
    return decode_at(r, v, static_cast<std::size_t>(i), std::index_sequence_for<Ts...>{});
  }

 private:
  template <std::size_t... Is>
  static bool decode_at(reader& r, V& v, std::size_t i, std::index_sequence<Is...>) {
    bool ok = false;
    (void)((Is == i ? (ok = decode_one<Is>(r, v), true) : false) || ...);
    return ok;
  }
  template <std::size_t I>
  static bool decode_one(reader& r, V& v) {
    std::variant_alternative_t<I, V> x{};
    if (!wire_decode(r, x)) return false;
    v.template emplace<I>(std::move(x));
    return true;
  }
};

template <class A, class B>
struct wire_traits<std::pair<A, B>> {
  static constexpr bool encodable = wire_encodable<A> && wire_encodable<B>;
  static void encode(writer& w, const std::pair<A, B>& p) {
    wire_encode(w, p.first);
    wire_encode(w, p.second);
  }
  static bool decode(reader& r, std::pair<A, B>& p) {
    return wire_decode(r, p.first) && wire_decode(r, p.second);
  }
};

template <class... Ts>
struct wire_traits<std::tuple<Ts...>> {
  static constexpr bool encodable = (wire_encodable<Ts> && ...);
  static void encode(writer& w, const std::tuple<Ts...>& t) {
    std::apply([&w](const auto&... x) { (wire_encode(w, x), ...); }, t);
  }
  static bool decode(reader& r, std::tuple<Ts...>& t) {
    return std::apply([&r](auto&... x) { return (wire_decode(r, x) && ...); }, t);
  }
};

template <wire_declared T>
struct wire_traits<T> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const T& v) {
    libactor_wire_fields([&w](const auto& f) { wire_encode(w, f); }, v);
  }
  static bool decode(reader& r, T& v) {
    bool ok = true;
    libactor_wire_fields(
        [&](auto& f) {
          if (ok) ok = wire_decode(r, f);
        },
        v);
    return ok;
  }
};

template <class T>
void wire_encode(writer& w, const T& v) {
  static_assert(!std::is_enum_v<T> || std::is_same_v<T, std::byte> || wire_enum<T>,
                "this enum cannot cross the network: declare its range with LIBACTOR_WIRE_ENUM");
  static_assert(wire_encodable<T>,
                "this type cannot cross the network: declare it with LIBACTOR_WIRE_TYPE");
  wire_traits<T>::encode(w, v);
}

template <class T>
bool wire_decode(reader& r, T& v) {
  static_assert(!std::is_enum_v<T> || std::is_same_v<T, std::byte> || wire_enum<T>,
                "this enum cannot cross the network: declare its range with LIBACTOR_WIRE_ENUM");
  static_assert(wire_encodable<T>,
                "this type cannot cross the network: declare it with LIBACTOR_WIRE_TYPE");
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string>) {
    return wire_traits<T>::decode(r, v);  // a leaf: no nesting
  } else {
    if (!r.enter()) return false;
    const bool ok = wire_traits<T>::decode(r, v);
    r.leave();
    return ok;
  }
}

/// Appends the encoding of `v` to `out`.
template <class T>
void encode(const T& v, std::vector<std::byte>& out) {
  writer w{out};
  wire_encode(w, v);
}

/// Decodes a whole `T` from `in`; the input must hold exactly one value.
template <class T>
requires std::default_initializable<T>
[[nodiscard]] expected<T, wire_error> decode(std::span<const std::byte> in,
                                             decode_limits limits = {}) {
  reader r{in, limits};
  T v{};
  if (!wire_decode(r, v)) return r.error();
  if (r.remaining() != 0) return wire_error{wire_errc::trailing_bytes, r.offset()};
  return v;
}

// --- runtime types that cross the network ------------------------------------------

class handle_context {
 public:
  /// Appends `h` (empty or not) in the handle format of docs/wire-format.md.
  virtual void encode_handle(writer& w, const actor_ref& h) = 0;
  /// Reads a handle; on malformed input fails `r` and returns false.
  virtual bool decode_handle(reader& r, actor_ref& h) = 0;

 protected:
  ~handle_context() = default;
};

/// Actor handles: a node name, its listening host and port, and the actor's
/// id there (see docs/wire-format.md). Only inside a node's messages; plain
/// encode()/decode() carry empty handles only.
template <>
struct wire_traits<actor_ref> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const actor_ref& h) {
    if (w.context() != nullptr) {
      w.context()->encode_handle(w, h);
    } else {
      w.fixed(std::uint8_t{0});  // the empty handle
    }
  }
  static bool decode(reader& r, actor_ref& h) {
    if (r.context() != nullptr) return r.context()->decode_handle(r, h);
    std::uint8_t tag = 1;
    if (!r.fixed(tag)) return false;
    if (tag != 0) {
      r.fail(wire_errc::bad_handle);
      return false;
    }
    h = actor_ref{};
    return true;
  }
};

template <>
struct wire_traits<unit_t> {
  static constexpr bool encodable = true;
  static void encode(writer&, unit_t) {}
  static bool decode(reader& r, unit_t&) { return r.ok(); }
};

template <>
struct wire_traits<exit_reason> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const exit_reason& e) {
    w.fixed(static_cast<std::uint8_t>(e.code()));
    wire_traits<std::string>::encode(w, e.text());
  }
  static bool decode(reader& r, exit_reason& e) {
    std::uint8_t code = 0;
    std::string text;
    if (!r.fixed(code) || !wire_traits<std::string>::decode(r, text)) return false;
    if (code > static_cast<std::uint8_t>(exit_code::node_down)) {
      r.fail(wire_errc::bad_value);
      return false;
    }
    e = exit_reason{static_cast<exit_code>(code), std::move(text)};
    return true;
  }
};

template <>
struct wire_traits<error> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const error& e) {
    w.fixed(static_cast<std::uint8_t>(e.code));
    wire_traits<std::string>::encode(w, e.text);
  }
  static bool decode(reader& r, error& e) {
    std::uint8_t code = 0;
    if (!r.fixed(code) || !wire_traits<std::string>::decode(r, e.text)) return false;
    if (code < 1 || code > static_cast<std::uint8_t>(errc::overloaded)) {
      r.fail(wire_errc::bad_value);
      return false;
    }
    e.code = static_cast<errc>(code);
    return true;
  }
};

template <>
struct wire_traits<exit_msg> {
  static constexpr bool encodable = true;
  static void encode(writer& w, const exit_msg& m) {
    wire_encode(w, m.source);
    wire_encode(w, m.reason);
  }
  static bool decode(reader& r, exit_msg& m) {
    return wire_decode(r, m.source) && wire_decode(r, m.reason);
  }
};

// --- message codecs ------------------------------------------------------------------

namespace detail {

/// How one message type crosses the network. One per registered type; the
/// core's type identity points to it (type_meta::codec).
struct message_codec {
  std::uint64_t wire_id;
  std::string_view wire_name;
  /// The core's identity of the type, unique in the process even across
  /// shared objects (each of which may hold its own copy of this codec).
  libactor::detail::type_id type;
  void (*encode)(writer& w, const libactor::detail::message& m);
  /// The decoded message, or null when `r` failed. Takes over `sender` (an
  /// owned reference) in every case, including when it throws. With an
  /// `account`, the message's `bytes` are charged to it until it is
  /// destroyed (inbound flow control).
  libactor::detail::message* (*decode)(reader& r, libactor::detail::msg_kind kind, actor* sender,
                                       std::uint64_t request_id, inbound_account* account,
                                       std::uint32_t bytes);
};

struct codec_registry {
  std::mutex mu;
  std::unordered_map<std::uint64_t, const message_codec*> by_id;
};

/// The process's one registry. Defined in the library so that a program and
/// a shared libactor_net see the same table.
LIBACTOR_NET_EXPORT codec_registry& codecs();

template <class T>
void encode_payload(writer& w, const libactor::detail::message& m) {
  wire_encode(w, static_cast<const libactor::detail::typed_message<T>&>(m).value);
}

template <class T>
libactor::detail::message* decode_payload(reader& r, libactor::detail::msg_kind kind, actor* sender,
                                          std::uint64_t request_id, inbound_account* account,
                                          std::uint32_t bytes) {
  bool ok = false;
  T v{};
  try {
    ok = wire_decode(r, v);
  } catch (...) {
    if (sender != nullptr) libactor::detail::release_actor(sender);
    throw;
  }
  if (!ok) {
    if (sender != nullptr) libactor::detail::release_actor(sender);
    return nullptr;
  }
  // Both release `sender` themselves if they throw.
  if (account != nullptr) {
    // What the value holds in memory counts, not only its encoding.
    const auto held =
        std::min<std::uint64_t>(r.decoded_bytes(), std::uint32_t{0xffffffffu} - bytes);
    return make_accounted_message(kind, sender, request_id, account,
                                  bytes + static_cast<std::uint32_t>(held), std::move(v));
  }
  return libactor::detail::make_message<T>(kind, sender, request_id, std::move(v));
}

}  // namespace detail

/// Makes `T` a message type that can cross the network under `name` (its id
/// is the FNV-1a hash of the name, see type_id_of). Types declared with
/// LIBACTOR_WIRE_TYPE are registered by the declaration; use this for other
/// encodable types sent as whole messages or replies, e.g.
/// `register_message<std::vector<int>>("app.ints")`. Registering one type
/// twice under the same name is harmless; two types under one name, or one
/// type under two names, throw std::logic_error. @threadsafe
template <class T>
bool register_message(std::string_view name) {
  static_assert(wire_encodable<T>,
                "this type cannot cross the network: declare it with LIBACTOR_WIRE_TYPE");
  static_assert(std::default_initializable<T>, "a message type needs a default constructor");
  // A program and a shared library may each instantiate this function, so
  // there may be several copies of `codec`; the first one registered wins
  // and types are compared by the core's identity, which is unique.
  static const detail::message_codec codec{type_id_of(name), name, libactor::detail::type_of<T>(),
                                           &detail::encode_payload<T>, &detail::decode_payload<T>};
  auto& reg = detail::codecs();
  std::lock_guard lock(reg.mu);
  // relaxed: written only under reg.mu, which this thread holds.
  const auto* mine =
      static_cast<const detail::message_codec*>(codec.type->codec.load(std::memory_order_relaxed));
  if (mine != nullptr && mine->wire_name != name) {
    throw std::logic_error(std::string("libactor: the message type ") +
                           libactor::detail::readable_name(codec.type) +
                           " was registered under two wire names: " + std::string(mine->wire_name) +
                           " and " + std::string(name));
  }
  auto [it, inserted] = reg.by_id.emplace(codec.wire_id, &codec);
  if (!inserted && it->second->type != codec.type) {
    throw std::logic_error(std::string("libactor: two message types share a wire name (or its "
                                       "hash): ") +
                           libactor::detail::readable_name(codec.type) + " as " +
                           std::string(name) + " and " +
                           libactor::detail::readable_name(it->second->type) + " as " +
                           std::string(it->second->wire_name));
  }
  // release: pairs with the acquire load of a sender's proxy; the codec is
  // fully built before its address is seen.
  codec.type->codec.store(it->second, std::memory_order_release);
  return true;
}

/// The codec of wire type id `id`, or null. @threadsafe
[[nodiscard]] inline const detail::message_codec* find_codec(std::uint64_t id) {
  auto& reg = detail::codecs();
  std::lock_guard lock(reg.mu);
  auto it = reg.by_id.find(id);
  return it == reg.by_id.end() ? nullptr : it->second;
}

namespace detail {
// Instantiated by LIBACTOR_WIRE_TYPE: registers the type before main().
template <wire_declared T>
struct auto_registration {
  static inline const bool done = register_message<T>(wire_name_v<T>);
};
}  // namespace detail

}  // namespace libactor::net

// --- the declaration macro -----------------------------------------------------

// LIBACTOR_WIRE_FOR_EACH(m, a, b, c) expands to m(a) m(b) m(c), for up to 256
// arguments (the __VA_OPT__ recursion of C++20).
#define LIBACTOR_WIRE_PARENS ()
#define LIBACTOR_WIRE_EXPAND(...) \
  LIBACTOR_WIRE_EXPAND3(          \
      LIBACTOR_WIRE_EXPAND3(LIBACTOR_WIRE_EXPAND3(LIBACTOR_WIRE_EXPAND3(__VA_ARGS__))))
#define LIBACTOR_WIRE_EXPAND3(...) \
  LIBACTOR_WIRE_EXPAND2(           \
      LIBACTOR_WIRE_EXPAND2(LIBACTOR_WIRE_EXPAND2(LIBACTOR_WIRE_EXPAND2(__VA_ARGS__))))
#define LIBACTOR_WIRE_EXPAND2(...) \
  LIBACTOR_WIRE_EXPAND1(           \
      LIBACTOR_WIRE_EXPAND1(LIBACTOR_WIRE_EXPAND1(LIBACTOR_WIRE_EXPAND1(__VA_ARGS__))))
#define LIBACTOR_WIRE_EXPAND1(...) __VA_ARGS__
#define LIBACTOR_WIRE_FOR_EACH(m, ...) \
  __VA_OPT__(LIBACTOR_WIRE_EXPAND(LIBACTOR_WIRE_FOR_EACH_STEP(m, __VA_ARGS__)))
#define LIBACTOR_WIRE_FOR_EACH_STEP(m, first, ...) \
  m(first) __VA_OPT__(LIBACTOR_WIRE_FOR_EACH_AGAIN LIBACTOR_WIRE_PARENS(m, __VA_ARGS__))
#define LIBACTOR_WIRE_FOR_EACH_AGAIN() LIBACTOR_WIRE_FOR_EACH_STEP
#define LIBACTOR_WIRE_VISIT_FIELD(field) f(x.field);

/// Declares that enum `T` crosses the network with values from `FIRST` to
/// `LAST` (inclusive, contiguous); others are refused on decoding
/// (wire_errc::bad_value). Use in `T`'s namespace, after `T`.
#define LIBACTOR_WIRE_ENUM(T, FIRST, LAST)                                                         \
  [[maybe_unused]] constexpr ::std::pair<::std::underlying_type_t<T>, ::std::underlying_type_t<T>> \
  libactor_wire_enum_range(const T*) noexcept {                                                    \
    static_assert(static_cast<::std::underlying_type_t<T>>(FIRST) <=                               \
                      static_cast<::std::underlying_type_t<T>>(LAST),                              \
                  "LIBACTOR_WIRE_ENUM: the first value must not be above the last");               \
    return {static_cast<::std::underlying_type_t<T>>(FIRST),                                       \
            static_cast<::std::underlying_type_t<T>>(LAST)};                                       \
  }

/// Declares `T`'s wire name and fields. Use in `T`'s namespace, after `T`.
#define LIBACTOR_WIRE_TYPE(T, NAME, ...)                                                \
  [[maybe_unused]] constexpr ::std::string_view libactor_wire_name(const T*) noexcept { \
    return NAME;                                                                        \
  }                                                                                     \
  template <class F>                                                                    \
  void libactor_wire_fields(F&& f, T& x) {                                              \
    LIBACTOR_WIRE_FOR_EACH(LIBACTOR_WIRE_VISIT_FIELD, __VA_ARGS__)                      \
    (void)f;                                                                            \
    (void)x;                                                                            \
  }                                                                                     \
  template <class F>                                                                    \
  void libactor_wire_fields(F&& f, const T& x) {                                        \
    LIBACTOR_WIRE_FOR_EACH(LIBACTOR_WIRE_VISIT_FIELD, __VA_ARGS__)                      \
    (void)f;                                                                            \
    (void)x;                                                                            \
  }                                                                                     \
  [[maybe_unused]] inline bool libactor_wire_registered(const T*) noexcept {            \
    return ::libactor::net::detail::auto_registration<T>::done;                         \
  }
