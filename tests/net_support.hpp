#pragma once
// Test helpers for the network layer.

#include <libactor/net/node.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace test {

/// A node configuration with short heartbeats and redials, so that failure
/// tests finish quickly, and logging off (tests check what they expect).
inline libactor::net::node_config node_config(std::string name, std::string secret) {
  using namespace std::chrono_literals;
  libactor::net::node_config c;
  c.name = std::move(name);
  c.secret = std::move(secret);
  c.heartbeat_interval = 100ms;
  c.heartbeat_timeout = 1500ms;
  c.reconnect_min = 20ms;
  c.reconnect_max = 300ms;
  c.log = [](std::string_view) {};
  return c;
}

}  // namespace test
