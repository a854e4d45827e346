#pragma once
// Which addresses a node may dial when only a peer's message named them
// (node_config::dial_allow): a list of IPv4 and IPv6 networks, parsed once
// when the node starts. Pure: no sockets, so tests drive it directly.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <string>
#include <vector>

namespace libactor::net::detail {

class address_filter {
 public:
  /// Parses `entries` ("10.1.2.3", "10.0.0.0/8", "::1", "fd00::/8"); an
  /// empty list admits every address. Throws std::invalid_argument naming
  /// the first entry that is not an address or network.
  explicit address_filter(const std::vector<std::string>& entries);

  /// True when `a` lies in one of the networks (or the list is empty). An
  /// IPv4-mapped IPv6 address (::ffff:10.1.2.3) is matched as IPv4.
  [[nodiscard]] bool allows(const boost::asio::ip::address& a) const noexcept;

  [[nodiscard]] bool admits_all() const noexcept { return v4_.empty() && v6_.empty(); }

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace libactor::net::detail
