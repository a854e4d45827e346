#pragma once
/// @file
/// Cluster secrets: how strong one is, and a way to make a strong one.
///
/// Every node of a cluster holds the same secret; nodes prove to each other
/// that they know it (handshake.hpp). A node refuses a secret that cannot
/// hold 128 bits: guessing it offline from a recorded handshake must be out
/// of reach. The estimate: a secret of hex digits holds 4 bits a digit
/// (decimal digits: 3.3); any other holds, per character, the bits of that
/// character's class: 3.3 for a digit, 4.7 for a letter (either case), 5 for
/// other printable ASCII, 8 for any other byte. So 32 hex digits pass, and a
/// password does not pass by one odd character (a '\r' left by a file saved
/// with CRLF, an accented letter). It cannot see that "aaaa..." is weak;
/// make secrets with generate_secret() (`libactor-node --gen-secret` prints
/// one).

#include <cstddef>
#include <string>
#include <string_view>

#include "libactor/net/export.hpp"

namespace libactor::net {

/// The least strength a node accepts.
inline constexpr double min_secret_bits = 128;

/// Upper bound of the bits of entropy `secret` can hold (see above).
[[nodiscard]] LIBACTOR_NET_EXPORT double secret_bits(std::string_view secret) noexcept;

/// 32 bytes from the system's random generator, as 64 hex digits (256
/// bits). Throws std::runtime_error when the generator fails.
[[nodiscard]] LIBACTOR_NET_EXPORT std::string generate_secret();

}  // namespace libactor::net
