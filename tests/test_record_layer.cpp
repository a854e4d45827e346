// Sealed records (net/src/record_layer.hpp), transport-free: what one side
// seals the other opens, at any chunking; a record changed, injected,
// replayed, reordered, dropped or cut is refused; lengths are checked before
// anything is buffered.

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "record_layer.hpp"
#include "support.hpp"

using libactor::net::protocol_errc;
using namespace libactor::net::detail;

namespace {

record_key key_of(std::uint8_t seed) {
  record_key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return k;
}

std::vector<std::byte> bytes_of(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

/// Seals each of `parts` as its own call; returns the record stream.
std::vector<std::byte> seal_all(record_cipher& s,
                                const std::vector<std::vector<std::byte>>& parts) {
  std::vector<std::byte> out;
  for (auto& p : parts) REQUIRE(s.seal(p, out));
  return out;
}

/// Splits a record stream into its records.
std::vector<std::vector<std::byte>> records_of(const std::vector<std::byte>& stream) {
  std::vector<std::vector<std::byte>> out;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(stream[pos + i]) << (8 * i);
    out.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                     stream.begin() + static_cast<std::ptrdiff_t>(pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}

/// The ciphers a test runs: both where the CPU has AES instructions.
std::vector<aead_kind> kinds() {
  std::vector<aead_kind> k{aead_kind::chacha20_poly1305};
  if (aes_gcm_available()) k.push_back(aead_kind::aes256_gcm);
  return k;
}

/// One record as OpenSSL's EVP cipher seals it: the record format of
/// record_layer.hpp, built independently of it.
std::vector<std::byte> openssl_record(const record_key& key, std::uint64_t seq,
                                      const std::vector<std::byte>& plain,
                                      aead_kind kind = aead_kind::chacha20_poly1305) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      &EVP_CIPHER_CTX_free);
  REQUIRE(ctx);
  std::array<unsigned char, 12> iv{};
  for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<unsigned char>(seq >> (8 * i));
  std::vector<std::byte> rec(4 + plain.size() + 16);
  auto* p = reinterpret_cast<unsigned char*>(rec.data());
  const auto len = static_cast<std::uint32_t>(plain.size() + 16);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(len >> (8 * i));
  int outl = 0;
  const EVP_CIPHER* cipher =
      kind == aead_kind::aes256_gcm ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.data(), iv.data()) == 1);
  REQUIRE(EVP_EncryptUpdate(ctx.get(), nullptr, &outl, p, 4) == 1);
  REQUIRE(EVP_EncryptUpdate(ctx.get(), p + 4, &outl,
                            reinterpret_cast<const unsigned char*>(plain.data()),
                            static_cast<int>(plain.size())) == 1);
  REQUIRE(EVP_EncryptFinal_ex(ctx.get(), p + 4 + plain.size(), &outl) == 1);
  REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, p + 4 + plain.size()) == 1);
  return rec;
}

}  // namespace

TEST_CASE("records: byte for byte what OpenSSL's ciphers make, both ways", "[net][records]") {
  // Nodes built with either implementation read each other's records: the
  // record stream is RFC 8439's (or GCM's) construction with this layer's
  // nonce and associated data, whatever computes it.
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    test::for_seeds(
        [kind](std::uint64_t seed) {
          std::mt19937_64 rng(seed);
          const auto key = key_of(static_cast<std::uint8_t>(seed));
          record_cipher seal(key, true, kind);
          record_cipher open(key, false, kind);
          CHECK(seal.kind() == kind);
          // Not only sequence number 0: a random number of records first.
          const int skip = static_cast<int>(rng() % 40);
          for (int i = 0; i < skip; ++i) {
            std::vector<std::byte> out;
            std::vector<std::byte> plain;
            REQUIRE(seal.seal(bytes_of(1 + i, seed + i), out));
            REQUIRE(open.open(out, plain));
          }
          for (int i = 0; i < 8; ++i) {
            const auto plain =
                bytes_of(1 + rng() % (i == 5 ? max_record_plaintext : 3000), seed * 7 + i);
            const std::uint64_t seq = seal.sequence();
            const auto expect = openssl_record(key, seq, plain, kind);
            std::vector<std::byte> ours;
            REQUIRE(seal.seal(plain, ours));
            CHECK(ours == expect);
            // And OpenSSL's record opens here.
            std::vector<std::byte> back;
            auto used = open.open(expect, back);
            REQUIRE(used);
            CHECK(*used == expect.size());
            CHECK(back == plain);
          }
        },
        20);
  }
}

TEST_CASE("records: every rekey_after records both sides move the key on, and no sooner",
          "[net][records]") {
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    test::for_seeds(
        [kind](std::uint64_t seed) {
          std::mt19937_64 rng(seed * 17);
          const std::uint64_t every = 2 + seed % 5;
          const auto key = key_of(static_cast<std::uint8_t>(seed + 40));
          record_cipher seal(key, true, kind, every);
          record_cipher open(key, false, kind, every);
          // The keys, computed independently: key' = HMAC-SHA256(key, label).
          std::vector<record_key> keys{key};
          for (int i = 0; i < 8; ++i) {
            record_key next{};
            unsigned int len = 0;
            static constexpr char label[] = "libactor-frames-rekey";
            REQUIRE(HMAC(EVP_sha256(), keys.back().data(), static_cast<int>(keys.back().size()),
                         reinterpret_cast<const unsigned char*>(label), sizeof(label) - 1,
                         next.data(), &len) != nullptr);
            REQUIRE(len == next.size());
            keys.push_back(next);
          }
          for (std::uint64_t seq = 0; seq < every * 6 + 1; ++seq) {
            INFO("record " << seq << ", a new key every " << every);
            const auto plain = bytes_of(1 + rng() % 200, seed * 1000 + seq);
            std::vector<std::byte> ours;
            REQUIRE(seal.seal(plain, ours));
            CHECK(ours == openssl_record(keys[seq / every], seq, plain, kind));
            std::vector<std::byte> back;
            REQUIRE(open.open(ours, back));
            CHECK(back == plain);
          }
          // A reader that moves on at another count fails at the first
          // record where the two differ, never later.
          record_cipher seal2(key, true, kind, every);
          record_cipher late(key, false, kind, every + 1);
          std::uint64_t failed_at = 0;
          for (std::uint64_t seq = 0; seq < every + 2; ++seq) {
            std::vector<std::byte> out, back;
            REQUIRE(seal2.seal(bytes_of(9, seq), out));
            auto r = late.open(out, back);
            if (!r) {
              failed_at = seq;
              CHECK(r.err().code == protocol_errc::auth_failed);
              break;
            }
          }
          CHECK(failed_at == every);
        },
        12);
  }
}

TEST_CASE("records: what one side seals the other opens, at any chunking", "[net][records]") {
  test::for_seeds(
      [](std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        record_cipher seal(key_of(1), true);
        record_cipher open(key_of(1), false);
        // Writes of assorted sizes, one larger than a record.
        std::vector<std::vector<std::byte>> parts;
        std::vector<std::byte> all;
        for (int i = 0; i < 6; ++i) {
          const std::size_t n = i == 3 ? max_record_plaintext + 1 + rng() % 1000 : 1 + rng() % 3000;
          parts.push_back(bytes_of(n, seed * 10 + i));
          all.insert(all.end(), parts.back().begin(), parts.back().end());
        }
        const auto stream = seal_all(seal, parts);
        CHECK(seal.sequence() == 7);  // the large write took two records
        std::vector<std::byte> plain;
        std::vector<std::byte> in;
        const std::size_t chunk = 1 + rng() % 5000;
        for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
          const auto end = std::min(stream.size(), pos + chunk);
          in.insert(in.end(), stream.begin() + static_cast<std::ptrdiff_t>(pos),
                    stream.begin() + static_cast<std::ptrdiff_t>(end));
          std::size_t need = 0;
          auto used = open.open(in, plain, &need);
          REQUIRE(used);
          in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(*used));
          if (!in.empty() && in.size() >= 4) CHECK(need > in.size());
        }
        CHECK(in.empty());
        CHECK(plain == all);
        CHECK(open.sequence() == seal.sequence());
      },
      50);
}

TEST_CASE("records: a changed byte anywhere is refused", "[net][records]") {
  record_cipher seal(key_of(2), true);
  const auto stream = seal_all(seal, {bytes_of(100, 1)});
  for (std::size_t i = 0; i < stream.size(); ++i) {
    INFO("byte " << i);
    auto bad = stream;
    bad[i] ^= std::byte{0x01};
    record_cipher open(key_of(2), false);
    std::vector<std::byte> plain;
    auto r = open.open(bad, plain);
    if (i < 4) {
      // A changed length: too large, or the record is cut short (waits for
      // bytes that never verify), or the tag moves.
      CHECK((!r || *r == 0 || plain.empty()));
    } else {
      REQUIRE_FALSE(r);
      CHECK(r.err().code == protocol_errc::auth_failed);
      CHECK(plain.empty());
    }
  }
}

TEST_CASE("records: injected, replayed, reordered and dropped records are refused",
          "[net][records]") {
  record_cipher seal(key_of(3), true);
  const auto recs = records_of(seal_all(seal, {bytes_of(10, 1), bytes_of(20, 2), bytes_of(30, 3)}));
  REQUIRE(recs.size() == 3);
  auto refused = [](std::vector<std::vector<std::byte>> order) {
    record_cipher open(key_of(3), false);
    std::vector<std::byte> plain;
    for (auto& r : order) {
      auto used = open.open(r, plain);
      if (!used) return used.err().code == protocol_errc::auth_failed;
    }
    return false;
  };
  CHECK_FALSE(refused({recs[0], recs[1], recs[2]}));  // the control
  CHECK(refused({recs[0], recs[0]}));                 // replayed
  CHECK(refused({recs[1], recs[0]}));                 // reordered
  CHECK(refused({recs[0], recs[2]}));                 // one dropped
  record_cipher other(key_of(9), true);               // sealed under another key
  CHECK(refused({recs[0], records_of(seal_all(other, {bytes_of(20, 2)}))[0]}));
  // A plain frame where a record belongs: its "length" and "tag" are wrong.
  std::vector<std::byte> frame = {std::byte{20}, std::byte{0}, std::byte{0}, std::byte{0}};
  frame.resize(24, std::byte{8});
  CHECK(refused({recs[0], frame}));
}

TEST_CASE("records: a length outside the allowed range is refused before buffering",
          "[net][records]") {
  for (std::uint32_t len :
       {0u, 15u, static_cast<std::uint32_t>(max_record_plaintext + 17), 0xffffffffu}) {
    INFO("length " << len);
    std::vector<std::byte> in(4);
    for (int i = 0; i < 4; ++i) in[i] = static_cast<std::byte>(len >> (8 * i));
    record_cipher open(key_of(4), false);
    std::vector<std::byte> plain;
    auto r = open.open(in, plain);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == protocol_errc::frame_too_large);
  }
  // The largest allowed record says how much it needs.
  std::vector<std::byte> in(4);
  const auto len = static_cast<std::uint32_t>(max_record_plaintext + record_tag);
  for (int i = 0; i < 4; ++i) in[i] = static_cast<std::byte>(len >> (8 * i));
  record_cipher open(key_of(4), false);
  std::vector<std::byte> plain;
  std::size_t need = 0;
  auto r = open.open(in, plain, &need);
  REQUIRE(r);
  CHECK(*r == 0);
  CHECK(need == 4 + len);
}

TEST_CASE("records: after a record fails, nothing more opens, not even the genuine one",
          "[net][records]") {
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    test::for_seeds(
        [kind](std::uint64_t seed) {
          std::mt19937_64 rng(seed * 7);
          const auto key = key_of(static_cast<std::uint8_t>(seed + 90));
          // A small rekey interval: the failing record may sit at its edge.
          const std::uint64_t every = 2 + seed % 3;
          record_cipher seal(key, true, kind, every);
          record_cipher open(key, false, kind, every);
          std::vector<std::byte> plain;
          const int before = static_cast<int>(rng() % 7);
          for (int i = 0; i < before; ++i) {
            std::vector<std::byte> out;
            REQUIRE(seal.seal(bytes_of(5 + i, seed + i), out));
            REQUIRE(open.open(out, plain));
          }
          std::vector<std::byte> genuine;
          REQUIRE(seal.seal(bytes_of(64, seed), genuine));
          auto changed = genuine;
          changed[4 + rng() % (changed.size() - 4)] ^= std::byte{0x20};
          auto r = open.open(changed, plain);
          REQUIRE_FALSE(r);
          CHECK(r.err().code == protocol_errc::auth_failed);
          // The genuine record and the next one: refused, the direction is over.
          const std::size_t had = plain.size();
          CHECK_FALSE(open.open(genuine, plain));
          std::vector<std::byte> next;
          REQUIRE(seal.seal(bytes_of(9, seed + 50), next));
          CHECK_FALSE(open.open(next, plain));
          CHECK(plain.size() == had);
          // An untouched reader opens both: the records themselves are good.
          record_cipher fresh(key, false, kind, every);
          std::vector<std::byte> replay, back;
          record_cipher seal2(key, true, kind, every);
          for (int i = 0; i < before; ++i) {
            std::vector<std::byte> out;
            REQUIRE(seal2.seal(bytes_of(5 + i, seed + i), out));
            REQUIRE(fresh.open(out, back));
          }
          CHECK(fresh.open(genuine, back));
          CHECK(fresh.open(next, back));
        },
        12);
  }
}

TEST_CASE("records: AES-256-GCM starts only where the CPU has it", "[net][records]") {
  // On a CPU without AES instructions (tests/CMakeLists.txt runs this test
  // as if on one too) the cipher refuses to start with a clear reason, and
  // ChaCha20-Poly1305 always starts.
  if (std::getenv("LIBACTOR_TEST_NO_AES") != nullptr) REQUIRE_FALSE(aes_gcm_available());
  const auto key = key_of(3);
  CHECK_NOTHROW(record_cipher(key, true, aead_kind::chacha20_poly1305));
  if (aes_gcm_available()) {
    CHECK_NOTHROW(record_cipher(key, true, aead_kind::aes256_gcm));
  } else {
    try {
      record_cipher c(key, true, aead_kind::aes256_gcm);
      FAIL("AES-256-GCM started without the CPU's instructions");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("AES-256-GCM cannot start on this CPU") !=
            std::string::npos);
    }
  }
}
