// libFuzzer target: everything a peer can send. Bytes go through the frame
// decoder and the handshake (before authentication), through the opener of
// sealed records (what someone on the path can send after it), and through
// the data-phase message decoder: header, handles, and the payload codecs
// of the built-in and declared types. Sealing the input and opening it must
// give it back. Any crash, leak, overflow or UB is a finding.

#include <libactor/net/handshake.hpp>
#include <libactor/net/node.hpp>
#include <libactor/net/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol.hpp"
#include "record_layer.hpp"

namespace {
struct sample {
  std::string name;
  std::vector<std::int64_t> values;
  std::map<std::string, std::optional<double>> extra;
  std::variant<std::monostate, std::string, std::vector<std::uint8_t>> tail;
  libactor::actor_ref owner;
};
LIBACTOR_WIRE_TYPE(sample, "fuzz.sample", name, values, extra, tail, owner)

// Parses handles as a node does, without resolving them to actors.
class parse_only final : public libactor::net::handle_context {
 public:
  void encode_handle(libactor::net::writer& w, const libactor::actor_ref&) override {
    w.fixed(std::uint8_t{0});
  }
  bool decode_handle(libactor::net::reader& r, libactor::actor_ref& h) override {
    std::optional<libactor::net::detail::handle_fields> f;
    h = {};
    return libactor::net::detail::read_handle(r, f);
  }
};

const bool builtins = libactor::net::detail::register_builtin_messages();
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace net = libactor::net;
  (void)builtins;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  // As a raw payload.
  (void)net::decode<sample>(in, net::decode_limits{.max_elements = 4096});

  // As the payload of a message frame, decoded as a node does.
  {
    parse_only ctx;
    net::reader r{in, net::decode_limits{.max_elements = 4096}, &ctx};
    if (auto h = net::detail::read_message_header(r)) {
      // The fuzzer cannot guess 64-bit type ids: the low 3 bits of the
      // input's type field pick one of the known types instead.
      static const std::uint64_t known[] = {net::wire_id_v<sample>,
                                            net::type_id_of("libactor.error"),
                                            net::type_id_of("libactor.exit"),
                                            net::type_id_of("libactor.actor_ref"),
                                            net::type_id_of("string"),
                                            net::type_id_of("i64"),
                                            net::type_id_of("libactor.spawn"),
                                            h->type};
      if (const auto* codec = net::find_codec(known[h->type & 7])) {
        if (auto* m = codec->decode(r, h->kind, nullptr, h->request, nullptr, 0)) m->dispose();
      }
    }
  }

  // As a byte stream into an acceptor, split at a data-dependent point.
  net::handshake_config cfg;
  cfg.node_name = "fuzz";
  cfg.secret = "fuzz-net-input-secret-0123456789-5f1d2a7e9b3c4d60a1b2";
  cfg.max_frame_size = 1 << 16;
  net::handshake hs(cfg, net::handshake::role::acceptor);
  (void)hs.start();
  const std::size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  (void)hs.feed(in.first(cut));
  (void)hs.feed(in.subspan(cut));

  // As sealed records from someone on the path (no key: nothing may open),
  // and sealed then opened with the right key (must round-trip).
  {
    net::detail::record_key key{};
    key[0] = 7;
    net::detail::record_cipher opener(key, false);
    std::vector<std::byte> plain;
    std::size_t need = 0;
    auto used = opener.open(in.first(cut), plain, &need);
    if (used && *used == cut) (void)opener.open(in.subspan(cut), plain, &need);
    if (used && !plain.empty() && *used > 0) __builtin_trap();  // forged without the key
    net::detail::record_cipher sealer(key, true);
    net::detail::record_cipher reader(key, false);
    std::vector<std::byte> sealed;
    if (!sealer.seal(in, sealed)) __builtin_trap();
    std::vector<std::byte> back;
    auto n = reader.open(sealed, back);
    if (!n || *n != sealed.size() || back.size() != size ||
        !std::equal(back.begin(), back.end(), in.begin())) {
      __builtin_trap();
    }
  }
  return 0;
}
