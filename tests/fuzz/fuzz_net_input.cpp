// libFuzzer target: everything a peer can send before and during the
// handshake goes through the frame decoder and the handshake, and payloads
// through the wire decoder. Any crash, leak, overflow or UB is a finding.

#include <libactor/net/handshake.hpp>
#include <libactor/net/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace {
struct sample {
  std::string name;
  std::vector<std::int64_t> values;
  std::map<std::string, std::optional<double>> extra;
  std::variant<std::monostate, std::string, std::vector<std::uint8_t>> tail;
};
LIBACTOR_WIRE_TYPE(sample, "fuzz.sample", name, values, extra, tail)
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  // As a raw payload.
  (void)libactor::net::decode<sample>(in, libactor::net::decode_limits{.max_elements = 4096});

  // As a byte stream into an acceptor, split at a data-dependent point.
  libactor::net::handshake_config cfg;
  cfg.node_name = "fuzz";
  cfg.secret = "fuzz-secret";
  cfg.max_frame_size = 1 << 16;
  libactor::net::handshake h(cfg, libactor::net::handshake::role::acceptor);
  (void)h.start();
  const std::size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  (void)h.feed(in.first(cut));
  (void)h.feed(in.subspan(cut));
  return 0;
}
