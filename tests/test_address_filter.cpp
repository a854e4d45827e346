// node_config::dial_allow's networks, matched without sockets.

#include <catch2/catch.hpp>

#include <stdexcept>

#include "address_filter.hpp"

using boost::asio::ip::make_address;
using libactor::net::detail::address_filter;

TEST_CASE("address filter: an empty list admits every address", "[net][limits]") {
  const address_filter any({});
  CHECK(any.admits_all());
  CHECK(any.allows(make_address("203.0.113.9")));
  CHECK(any.allows(make_address("2001:db8::1")));
}

TEST_CASE("address filter: addresses and networks, IPv4 and IPv6", "[net][limits]") {
  const address_filter f({"10.0.0.0/8", "192.168.7.3", "fd00::/8", "::1", "172.16.5.9/12"});
  CHECK_FALSE(f.admits_all());
  CHECK(f.allows(make_address("10.0.0.1")));
  CHECK(f.allows(make_address("10.255.255.255")));
  CHECK_FALSE(f.allows(make_address("11.0.0.1")));
  CHECK_FALSE(f.allows(make_address("9.255.255.255")));
  CHECK(f.allows(make_address("192.168.7.3")));
  CHECK_FALSE(f.allows(make_address("192.168.7.4")));
  // A network written with host bits set stands for its whole network.
  CHECK(f.allows(make_address("172.31.0.1")));
  CHECK_FALSE(f.allows(make_address("172.32.0.1")));
  CHECK(f.allows(make_address("fd12:3456::1")));
  CHECK_FALSE(f.allows(make_address("fe80::1")));
  CHECK(f.allows(make_address("::1")));
  CHECK_FALSE(f.allows(make_address("::2")));
  // IPv4-mapped IPv6 is matched as IPv4.
  CHECK(f.allows(make_address("::ffff:10.1.2.3")));
  CHECK_FALSE(f.allows(make_address("::ffff:127.0.0.1")));
  CHECK_FALSE(f.allows(make_address("127.0.0.1")));
}

TEST_CASE("address filter: /0 admits a whole family, and nothing of the other", "[net][limits]") {
  const address_filter v4({"0.0.0.0/0"});
  CHECK(v4.allows(make_address("8.8.8.8")));
  CHECK_FALSE(v4.allows(make_address("2001:db8::1")));
}

TEST_CASE("address filter: entries that are not addresses are refused by name", "[net][limits]") {
  for (const char* bad : {"10.0.0.0/33", "example.com", "", "10.0.0/8", "fd00::/129", "1.2.3.4/"}) {
    INFO(bad);
    CHECK_THROWS_WITH(address_filter({bad}), Catch::Contains(std::string("\"") + bad + "\""));
  }
}
