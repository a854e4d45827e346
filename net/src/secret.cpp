#include "libactor/net/secret.hpp"

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
  bool digits = true, lower_hex = true, upper_hex = true, lower_alnum = true, upper_alnum = true,
       alnum = true, base64 = true, printable = true;
  for (const char ch : secret) {
    const auto c = static_cast<unsigned char>(ch);
    const bool d = is_digit(c);
    digits = digits && d;
    lower_hex = lower_hex && (d || (c >= 'a' && c <= 'f'));
    upper_hex = upper_hex && (d || (c >= 'A' && c <= 'F'));
    lower_alnum = lower_alnum && (d || is_lower(c));
    upper_alnum = upper_alnum && (d || is_upper(c));
    alnum = alnum && (d || is_lower(c) || is_upper(c));
    base64 = base64 && (d || is_lower(c) || is_upper(c) || c == '+' || c == '/' || c == '-' ||
                        c == '_' || c == '=');
    printable = printable && c >= 0x20 && c < 0x7f;
  }
  const double alphabet = digits                       ? 10
                          : lower_hex || upper_hex     ? 16
                          : lower_alnum || upper_alnum ? 36
                          : alnum                      ? 62
                          : base64                     ? 67
                          : printable                  ? 95
                                                       : 256;
  return static_cast<double>(secret.size()) * std::log2(alphabet);
}

std::string generate_secret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("libactor.net: the system's random generator failed");
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (const unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

}  // namespace libactor::net
