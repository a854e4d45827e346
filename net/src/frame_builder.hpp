#pragma once
// Building frames in place in a byte buffer: the length is patched in once
// the payload is written, so a message is encoded straight into the buffer
// it is sent from.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "libactor/net/frame.hpp"

namespace libactor::net::detail {

/// Appends the 4 length bytes (patched by end_frame) and the kind byte.
inline void begin_frame(std::vector<std::byte>& out, frame_kind k) {
  out.resize(out.size() + 5);
  out[out.size() - 1] = static_cast<std::byte>(k);
}

/// Patches the length of the frame that begins at `start`.
inline void end_frame(std::vector<std::byte>& out, std::size_t start) {
  const auto len = static_cast<std::uint32_t>(out.size() - start - 4);
  for (int i = 0; i < 4; ++i) out[start + i] = static_cast<std::byte>((len >> (8 * i)) & 0xff);
}

/// A whole frame with `payload`.
inline std::vector<std::byte> make_frame(frame_kind k, std::span<const std::byte> payload = {}) {
  std::vector<std::byte> f;
  append_frame(f, k, payload);
  return f;
}

}  // namespace libactor::net::detail
