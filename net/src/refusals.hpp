#pragma once
// Refusals by the authorization rules (docs/protocol.md, "What a peer may
// do"): each is counted; the first of each rule from each peer is logged,
// within a node-wide rate limit, so that a peer that repeats a refused frame
// at wire speed, or under many names, cannot flood the log. A line that the
// limit holds back is counted and reported with the next line logged.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "token_bucket.hpp"

namespace libactor::net::detail {

class refusals {
 public:
  /// Keys (peer, rule) remembered as logged, least recently refused
  /// forgotten first: a peer that keeps repeating a refusal stays
  /// remembered (no second line), new peers' first lines still come.
  static constexpr std::size_t max_keys = 4096;
  /// Lines at once, then per second.
  static constexpr double burst = 20;
  static constexpr double per_second = 1;

  /// Records one refusal of `rule` from `peer`. Returns the line to log,
  /// or nothing when this one stays unlogged.
  std::optional<std::string> record(std::string_view peer, std::string_view rule,
                                    const std::string& text, token_bucket::clock::time_point now);
  /// The same limit for any line: `line` is returned (with the count of
  /// lines held back, if any) the first time (`who`, `rule`) comes, within
  /// the rate limit. `counted`: it also counts as a refusal.
  std::optional<std::string> once(std::string_view who, std::string_view rule, std::string line,
                                  token_bucket::clock::time_point now, bool counted);
  [[nodiscard]] std::uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::list<std::string> order_;  // keys, most recently refused first
  std::unordered_map<std::string, std::list<std::string>::iterator> logged_;
  token_bucket bucket_{burst, per_second};
  std::uint64_t count_ = 0;
  std::uint64_t held_back_ = 0;  // first-of-a-kind lines the rate limit dropped
};

}  // namespace libactor::net::detail
