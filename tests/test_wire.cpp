// The wire format: round trips of every built-in family and of declared
// types, stable type ids, compile-time rejection of undeclared types, and
// decoding of malformed or hostile input (truncation at every length, huge
// counts, bad tags, trailing bytes, random bytes).

#include <catch2/catch.hpp>

#include <libactor/net/node.hpp>
#include <libactor/net/wire.hpp>

#include <random>

#include "support.hpp"

namespace trading {

enum class side : std::uint8_t { buy, sell };
LIBACTOR_WIRE_ENUM(side, side::buy, side::sell)

struct order {
  std::string symbol;
  std::int64_t qty = 0;
  double price = 0;
  side s = side::buy;
  std::optional<std::string> client_tag;
  friend bool operator==(const order&, const order&) = default;
};
LIBACTOR_WIRE_TYPE(order, "trading.order", symbol, qty, price, s, client_tag)

struct book {
  std::vector<order> bids;
  std::map<std::string, std::int32_t> totals;
  std::variant<std::monostate, std::int32_t, std::string> note;
  std::array<std::uint16_t, 3> levels{};
  std::pair<bool, char> flags{};
  std::tuple<std::int8_t, float, std::uint64_t> misc{};
  std::unordered_map<std::int32_t, std::vector<std::string>> index;
  std::chrono::milliseconds timeout{0};
  friend bool operator==(const book&, const book&) = default;
};
LIBACTOR_WIRE_TYPE(book, "trading.book", bids, totals, note, levels, flags, misc, index, timeout)

}  // namespace trading

namespace shapes {
/// A recursive type: each level is one count byte on the wire.
struct tree {
  std::vector<tree> kids;
};
LIBACTOR_WIRE_TYPE(tree, "test.tree", kids)
/// Encodes to zero bytes: a count of them costs memory and no input.
struct nothing {};
LIBACTOR_WIRE_TYPE(nothing, "test.nothing")
}  // namespace shapes

struct undeclared {
  int x;
};

namespace net = libactor::net;

static_assert(net::wire_encodable<trading::order>);
static_assert(net::wire_encodable<std::vector<std::map<std::string, trading::book>>>);
static_assert(!net::wire_encodable<undeclared>);
static_assert(!net::wire_encodable<std::vector<undeclared>>);
static_assert(!net::wire_encodable<std::optional<std::pair<int, undeclared>>>);

namespace {

trading::book sample_book() {
  trading::book b;
  b.bids.push_back({"ACME", 100, 12.5, trading::side::buy, std::nullopt});
  b.bids.push_back({"INIT", -7, -0.25, trading::side::sell, std::string("desk-9")});
  b.totals = {{"ACME", 100}, {"INIT", -7}};
  b.note = std::string("halted");
  b.levels = {1, 2, 65535};
  b.flags = {true, 'x'};
  b.misc = {-128, 3.5f, 0xffffffffffffffffull};
  b.index = {{1, {"a", "bb"}}, {-2, {}}};
  b.timeout = std::chrono::milliseconds(1500);
  return b;
}

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

}  // namespace

TEST_CASE("wire: declared types round-trip, nested, with every built-in family", "[wire]") {
  const auto b = sample_book();
  std::vector<std::byte> buf;
  net::encode(b, buf);
  auto back = net::decode<trading::book>(buf);
  REQUIRE(back);
  CHECK(*back == b);

  // Scalars keep their exact values.
  for (double d : {0.0, -0.0, 1e308, -3.25}) {
    std::vector<std::byte> out;
    net::encode(d, out);
    CHECK(out.size() == 8);
    auto r = net::decode<double>(out);
    REQUIRE(r);
    CHECK(std::memcmp(&*r, &d, sizeof d) == 0);
  }
  std::vector<std::byte> s;
  net::encode(std::string(300, 'z'), s);
  CHECK(s.size() == 2 + 300);  // a two-byte LEB128 length
}

TEST_CASE("wire: type ids are the FNV-1a hash of the declared name", "[wire]") {
  CHECK(net::wire_name_v<trading::order> == "trading.order");
  // The value is fixed by the name alone: any build, any node.
  CHECK(net::wire_id_v<trading::order> == 0xb80551aecdd4e724ull);
  CHECK(net::wire_id_v<trading::book> != net::wire_id_v<trading::order>);
}

TEST_CASE("wire: every truncation of a valid encoding is rejected, never read past the end",
          "[wire][hostile]") {
  std::vector<std::byte> buf;
  net::encode(sample_book(), buf);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    auto r = net::decode<trading::book>(std::span<const std::byte>(buf.data(), n));
    REQUIRE_FALSE(r);
    CHECK(r.err().code == net::wire_errc::truncated);
    CHECK(r.err().offset <= n);
  }
}

TEST_CASE("wire: hostile counts are refused before anything is allocated", "[wire][hostile]") {
  // A vector claiming 2^40 elements in a 6-byte input.
  auto huge = bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x20});
  auto v = net::decode<std::vector<std::uint64_t>>(huge);
  REQUIRE_FALSE(v);
  CHECK(v.err().code == net::wire_errc::too_many_elements);
  // Within the element limit but far beyond the input: the string is refused
  // by length before it is sized, the vector fails on the first missing byte
  // after reserving at most the bytes left.
  auto big_string = bytes_of({0xff, 0xff, 0x3f, 'a'});  // length 1,048,575
  auto s = net::decode<std::string>(big_string);
  REQUIRE_FALSE(s);
  CHECK(s.err().code == net::wire_errc::truncated);
  auto big_vector = bytes_of({0xff, 0xff, 0x3f, 1, 2, 3});
  auto bv = net::decode<std::vector<std::uint64_t>>(big_vector);
  REQUIRE_FALSE(bv);
  CHECK(bv.err().code == net::wire_errc::truncated);
  // A tighter configured limit.
  auto ten = bytes_of({10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  auto limited = net::decode<std::vector<std::uint8_t>>(ten, net::decode_limits{.max_elements = 5});
  REQUIRE_FALSE(limited);
  CHECK(limited.err().code == net::wire_errc::too_many_elements);
  CHECK(net::decode<std::vector<std::uint8_t>>(ten));
}

TEST_CASE("wire: bad tags, overlong varints and trailing bytes are clear errors",
          "[wire][hostile]") {
  auto b = net::decode<bool>(bytes_of({2}));
  REQUIRE_FALSE(b);
  CHECK(b.err().code == net::wire_errc::bad_bool);
  auto o = net::decode<std::optional<int>>(bytes_of({7}));
  REQUIRE_FALSE(o);
  CHECK(o.err().code == net::wire_errc::bad_bool);
  auto v = net::decode<std::variant<int, std::string>>(bytes_of({2, 0, 0, 0, 0}));
  REQUIRE_FALSE(v);
  CHECK(v.err().code == net::wire_errc::bad_variant_index);
  CHECK(v.err().offset == 1);
  auto longv = net::decode<std::string>(
      bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}));
  REQUIRE_FALSE(longv);
  CHECK(longv.err().code == net::wire_errc::bad_varint);
  auto extra = net::decode<std::uint8_t>(bytes_of({1, 2}));
  REQUIRE_FALSE(extra);
  CHECK(extra.err().code == net::wire_errc::trailing_bytes);
  CHECK(extra.err().offset == 1);
}

TEST_CASE("wire: random bytes never crash the decoder", "[wire][hostile][stress]") {
  std::mt19937_64 rng(20261121);
  std::vector<std::byte> good;
  net::encode(sample_book(), good);
  const std::size_t rounds = test::scaled(20000);
  std::size_t decoded = 0;
  for (std::size_t i = 0; i < rounds; ++i) {
    std::vector<std::byte> in;
    if (i % 2 == 0) {
      in.resize(rng() % 64);
      for (auto& b : in) b = static_cast<std::byte>(rng());
    } else {
      in = good;  // a valid encoding with a few bytes flipped
      for (int k = 0; k < 3; ++k) in[rng() % in.size()] ^= static_cast<std::byte>(1 + rng() % 255);
    }
    auto r = net::decode<trading::book>(in, net::decode_limits{.max_elements = 1024});
    if (r) ++decoded;
  }
  // Most mutated inputs are rejected; the point is that none crashed (the
  // suite runs this under ASan and UBSan too).
  CHECK(decoded < rounds);
}

TEST_CASE("wire: a recursive type is refused at the depth limit, not by the stack",
          "[wire][hostile]") {
  // 200 KB of count bytes of 1: a tree 200,000 levels deep. Each level is a
  // tree and its vector (two levels of nesting), so the default limit of 64
  // stops it on the vector that reads byte 32.
  const std::vector<std::byte> deep(200'000, std::byte{1});
  auto r = net::decode<shapes::tree>(deep);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == net::wire_errc::too_deep);
  CHECK(r.err().offset == 32);
  // Exactly at the limit decodes: 31 counts of 1, then an empty vector.
  std::vector<std::byte> at_limit(31, std::byte{1});
  at_limit.push_back(std::byte{0});
  auto ok = net::decode<shapes::tree>(at_limit);
  REQUIRE(ok);
  std::size_t levels = 1;
  for (const shapes::tree* t = &*ok; !t->kids.empty(); t = &t->kids[0]) ++levels;
  CHECK(levels == 32);
  // One level more is refused; so is less under a tighter limit.
  at_limit.insert(at_limit.begin(), std::byte{1});
  auto over = net::decode<shapes::tree>(at_limit);
  REQUIRE_FALSE(over);
  CHECK(over.err().code == net::wire_errc::too_deep);
  auto tight = net::decode<std::vector<std::vector<int>>>(bytes_of({1, 1, 7, 0, 0, 0}),
                                                          net::decode_limits{.max_depth = 1});
  REQUIRE_FALSE(tight);
  CHECK(tight.err().code == net::wire_errc::too_deep);
  CHECK(net::decode<std::vector<std::vector<int>>>(bytes_of({1, 1, 7, 0, 0, 0}),
                                                   net::decode_limits{.max_depth = 2}));
}

TEST_CASE("wire: the elements of all containers in a value share one budget", "[wire][hostile]") {
  // Elements that take no input bytes: 5,000 of them from a 2-byte input.
  auto empties = bytes_of({0x88, 0x27});  // 5,000
  const net::decode_limits small{.max_total_elements = 4096};
  auto e = net::decode<std::vector<shapes::nothing>>(empties, small);
  REQUIRE_FALSE(e);
  CHECK(e.err().code == net::wire_errc::over_budget);
  CHECK(e.err().offset == 2);  // refused at the count, before any element
  CHECK(net::decode<std::vector<shapes::nothing>>(empties)->size() == 5000);
  // Ten vectors of 500 bytes: each is within max_elements, together they
  // are not within the budget (10 + 5,000 elements).
  std::vector<std::vector<std::uint8_t>> ten(10, std::vector<std::uint8_t>(500, 7));
  std::vector<std::byte> buf;
  net::encode(ten, buf);
  auto t = net::decode<std::vector<std::vector<std::uint8_t>>>(
      buf, net::decode_limits{.max_elements = 1000, .max_total_elements = 4096});
  REQUIRE_FALSE(t);
  CHECK(t.err().code == net::wire_errc::over_budget);
  auto fits = net::decode<std::vector<std::vector<std::uint8_t>>>(
      buf, net::decode_limits{.max_elements = 1000, .max_total_elements = 5010});
  REQUIRE(fits);
  CHECK(*fits == ten);
  // Map entries count too.
  std::map<std::string, std::int32_t> m;
  for (int i = 0; i < 100; ++i) m[std::to_string(i)] = i;
  buf.clear();
  net::encode(m, buf);
  auto mm = net::decode<std::map<std::string, std::int32_t>>(
      buf, net::decode_limits{.max_total_elements = 99});
  REQUIRE_FALSE(mm);
  CHECK(mm.err().code == net::wire_errc::over_budget);
}

TEST_CASE("wire: an enum value outside its declared range is refused", "[wire][hostile]") {
  trading::order o{"ACME", 10, 1.5, trading::side::sell, std::nullopt};
  std::vector<std::byte> buf;
  net::encode(o, buf);
  // The side byte follows the symbol (count + 4), qty (8) and price (8).
  const std::size_t at = 1 + 4 + 8 + 8;
  REQUIRE(buf[at] == std::byte{1});
  for (std::uint8_t v : {2, 3, 0x80, 0xff}) {
    buf[at] = std::byte{v};
    auto r = net::decode<trading::order>(buf);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == net::wire_errc::bad_value);
    CHECK(r.err().offset == at + 1);
  }
  buf[at] = std::byte{0};
  auto back = net::decode<trading::order>(buf);
  REQUIRE(back);
  CHECK(back->s == trading::side::buy);
}

TEST_CASE("wire: what a value holds in memory is bounded, not only its encoding",
          "[wire][hostile]") {
  // One byte per element on the wire (an empty optional), 4 KiB each in
  // memory: 16 Ki elements would hold 64 MiB.
  using big = std::optional<std::array<std::uint8_t, 4096>>;
  std::vector<std::byte> in;
  net::writer w{in};
  w.varint(1 << 14);
  in.resize(in.size() + (1 << 14), std::byte{0});
  const auto node_limits = net::node_config{}.message_limits;
  auto v = net::decode<std::vector<big>>(in, node_limits);
  REQUIRE_FALSE(v);
  CHECK(v.err().code == net::wire_errc::over_budget);
  CHECK(v.err().offset == 3);  // at the count, before anything was reserved
  // Within the budget it decodes.
  std::vector<std::byte> small;
  net::writer s{small};
  s.varint(1000);
  small.resize(small.size() + 1000, std::byte{0});
  auto ok = net::decode<std::vector<big>>(small, node_limits);
  REQUIRE(ok);
  CHECK(ok->size() == 1000);
  // Strings count their length.
  std::vector<std::byte> text;
  net::encode(std::string(5000, 'x'), text);
  auto t = net::decode<std::string>(text, net::decode_limits{.max_decoded_bytes = 4999});
  REQUIRE_FALSE(t);
  CHECK(t.err().code == net::wire_errc::over_budget);
}

TEST_CASE("wire: std::byte crosses the network as one byte, any value", "[wire]") {
  std::vector<std::byte> bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<std::byte>(i));
  std::vector<std::byte> buf;
  net::encode(bytes, buf);
  CHECK(buf.size() == 2 + 256);
  auto back = net::decode<std::vector<std::byte>>(buf);
  REQUIRE(back);
  CHECK(*back == bytes);
}
