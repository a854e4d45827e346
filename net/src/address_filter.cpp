// The networks of node_config::dial_allow, and the match.

#include "address_filter.hpp"

#include <stdexcept>

namespace libactor::net::detail {

namespace ip = boost::asio::ip;

address_filter::address_filter(const std::vector<std::string>& entries) {
  for (const std::string& e : entries) {
    boost::system::error_code ec;
    const auto slash = e.find('/');
    if (slash == std::string::npos) {
      const auto a = ip::make_address(e, ec);
      if (!ec && a.is_v4()) {
        v4_.emplace_back(a.to_v4(), 32);
        continue;
      }
      if (!ec) {
        v6_.emplace_back(a.to_v6(), 128);
        continue;
      }
    } else if (e.find(':') == std::string::npos) {
      const auto n = ip::make_network_v4(e, ec);
      if (!ec) {
        v4_.push_back(n.canonical());
        continue;
      }
    } else {
      const auto n = ip::make_network_v6(e, ec);
      if (!ec) {
        v6_.push_back(n.canonical());
        continue;
      }
    }
    throw std::invalid_argument("libactor.net: dial_allow entry \"" + e +
                                "\" is not an IP address or network (like 10.0.0.0/8 or fd00::/8)");
  }
}

bool address_filter::allows(const ip::address& a) const noexcept {
  if (admits_all()) return true;
  ip::address addr = a;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = ip::make_address_v4(ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v4()) {
    const auto v4 = addr.to_v4();
    for (const auto& n : v4_) {
      if (ip::network_v4(v4, 32).is_subnet_of(n) || n.address() == v4) return true;
    }
    return false;
  }
  const auto v6 = addr.to_v6();
  for (const auto& n : v6_) {
    if (ip::network_v6(v6, 128).is_subnet_of(n) || n == ip::network_v6(v6, 128)) return true;
  }
  return false;
}

}  // namespace libactor::net::detail
