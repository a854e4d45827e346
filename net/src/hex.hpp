#pragma once
// Bytes as lowercase hex digits, two per byte (secrets made for people to
// copy, and secrets derived for the handshake).

#include <span>
#include <string>

namespace libactor::net::detail {

inline std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (const unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

}  // namespace libactor::net::detail
