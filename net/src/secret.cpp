#include "libactor/net/secret.hpp"

#include "hex.hpp"

#include <openssl/rand.h>

#include <array>
#include <cmath>
#include <stdexcept>

namespace libactor::net {

namespace {

bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_lower(unsigned char c) {
  return c >= 'a' && c <= 'z';
}
bool is_upper(unsigned char c) {
  return c >= 'A' && c <= 'Z';
}

}  // namespace

double secret_bits(std::string_view secret) noexcept {
  bool digits = true;
  bool hex = true;
  double sum = 0;
  for (const char ch : secret) {
    const auto c = static_cast<unsigned char>(ch);
    const bool d = is_digit(c);
    digits = digits && d;
    hex = hex && (d || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
    // Each character by its own class: one odd byte adds its own bits, it
    // does not lift every other character to a larger alphabet.
    sum += d                            ? std::log2(10.0)
           : is_lower(c) || is_upper(c) ? std::log2(26.0)
           : c >= 0x20 && c < 0x7f      ? std::log2(33.0)  // other printable ASCII
                                        : 8.0;                  // any other byte
  }
  const auto n = static_cast<double>(secret.size());
  if (digits) return n * std::log2(10.0);
  if (hex) return n * 4.0;
  return sum;
}

std::string generate_secret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("libactor.net: the system's random generator failed");
  }
  return detail::to_hex(bytes);
}

}  // namespace libactor::net
