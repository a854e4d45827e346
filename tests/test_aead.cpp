// The record formats' cipher (net/src/aead.hpp) against OpenSSL's EVP
// ciphers, computed independently: every size from empty to past a record,
// in place and not, and a changed byte anywhere refused.

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "aead.hpp"
#include "support.hpp"

using namespace libactor::net::detail;

namespace {

using bytes = std::vector<unsigned char>;
using nonce_t = std::array<std::uint8_t, aead_nonce_size>;

bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<unsigned char>(rng());
  return b;
}

/// ciphertext || tag, as OpenSSL's EVP seals it.
bytes openssl_seal(aead_kind kind, const bytes& key, const nonce_t& nonce, const bytes& ad,
                   const bytes& plain) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      &EVP_CIPHER_CTX_free);
  REQUIRE(ctx);
  const EVP_CIPHER* c = kind == aead_kind::aes256_gcm ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  bytes out(plain.size() + aead_tag_size);
  int outl = 0;
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), c, nullptr, nullptr, nullptr) == 1);
  REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) == 1);
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) == 1);
  if (!ad.empty()) {
    REQUIRE(EVP_EncryptUpdate(ctx.get(), nullptr, &outl, ad.data(), static_cast<int>(ad.size())) ==
            1);
  }
  int total = 0;
  if (!plain.empty()) {
    REQUIRE(EVP_EncryptUpdate(ctx.get(), out.data(), &outl, plain.data(),
                              static_cast<int>(plain.size())) == 1);
    total = outl;
  }
  REQUIRE(EVP_EncryptFinal_ex(ctx.get(), out.data() + total, &outl) == 1);
  REQUIRE(static_cast<std::size_t>(total + outl) == plain.size());
  REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, out.data() + plain.size()) ==
          1);
  return out;
}

std::vector<aead_kind> kinds() {
  std::vector<aead_kind> k{aead_kind::chacha20_poly1305};
  if (aes_gcm_available()) k.push_back(aead_kind::aes256_gcm);
  return k;
}

}  // namespace

TEST_CASE("aead: byte for byte OpenSSL's ciphers, every size, in place or not", "[aead]") {
  // The CPUs the suite runs on have AES instructions; elsewhere the AES
  // half is skipped and says so.
  if (!aes_gcm_available()) WARN("no AES instructions on this CPU: AES-256-GCM is not checked");
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    test::for_seeds(
        [kind](std::uint64_t seed) {
          std::mt19937_64 rng(seed);
          const bytes key = random_bytes(rng, aead_key_size);
          aead_key k;
          REQUIRE(k.set(kind, std::span<const std::uint8_t, aead_key_size>(key.data(), 32)));
          CHECK(k.kind() == kind);
          // Every size up to 300 (across block and batch edges), then sizes
          // of a record and past it.
          std::vector<std::size_t> sizes;
          for (std::size_t n = 0; n <= 300; n += 1 + seed % 3) sizes.push_back(n);
          for (const std::size_t n : {1023u, 4096u, 16385u, 65536u, 65537u}) sizes.push_back(n);
          for (const std::size_t n : sizes) {
            INFO("size " << n);
            nonce_t nonce;
            for (auto& b : nonce) b = static_cast<std::uint8_t>(rng());
            const bytes ad = random_bytes(rng, rng() % 14);
            const bytes plain = random_bytes(rng, n);
            const bytes want = openssl_seal(kind, key, nonce, ad, plain);
            // Out of place.
            bytes out(n), tag(aead_tag_size);
            REQUIRE(k.seal(out.data(), tag.data(), plain.data(), n, ad, nonce));
            out.insert(out.end(), tag.begin(), tag.end());
            CHECK(out == want);
            // In place.
            bytes in_place = plain;
            in_place.resize(n + aead_tag_size);
            REQUIRE(k.seal(in_place.data(), in_place.data() + n, in_place.data(), n, ad, nonce));
            CHECK(in_place == want);
            // OpenSSL's record opens.
            bytes back(n);
            REQUIRE(k.open(back.data(), want.data(), n, want.data() + n, ad, nonce));
            CHECK(back == plain);
          }
        },
        6);
  }
}

TEST_CASE("aead: a changed byte, another nonce or another key is refused", "[aead]") {
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    test::for_seeds(
        [kind](std::uint64_t seed) {
          std::mt19937_64 rng(seed * 131);
          const bytes key = random_bytes(rng, aead_key_size);
          aead_key k;
          REQUIRE(k.set(kind, std::span<const std::uint8_t, aead_key_size>(key.data(), 32)));
          nonce_t nonce;
          for (auto& b : nonce) b = static_cast<std::uint8_t>(rng());
          const bytes ad = random_bytes(rng, 5);
          const std::size_t n = 1 + rng() % 500;
          const bytes plain = random_bytes(rng, n);
          bytes sealed(n + aead_tag_size);
          REQUIRE(k.seal(sealed.data(), sealed.data() + n, plain.data(), n, ad, nonce));
          // A marker in the output: what a refused open leaves there is
          // never the plaintext.
          const bytes marker(n, 0xA5);
          auto refused = [&](const bytes& c, const bytes& a, const nonce_t& iv,
                             const aead_key& with) {
            bytes out = marker;
            const bool ok = with.open(out.data(), c.data(), n, c.data() + n, a, iv);
            CHECK((out == marker || out == bytes(n, 0)));
            return !ok;
          };
          bytes changed = sealed;
          changed[rng() % changed.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
          CHECK(refused(changed, ad, nonce, k));
          bytes other_ad = ad;
          other_ad[rng() % other_ad.size()] ^= 0x40;
          CHECK(refused(sealed, other_ad, nonce, k));
          nonce_t other_nonce = nonce;
          other_nonce[rng() % other_nonce.size()] ^= 0x01;
          CHECK(refused(sealed, ad, other_nonce, k));
          bytes key2 = key;
          key2[rng() % key2.size()] ^= 0x80;
          aead_key k2;
          REQUIRE(k2.set(kind, std::span<const std::uint8_t, aead_key_size>(key2.data(), 32)));
          CHECK(refused(sealed, ad, nonce, k2));
          // The other cipher under the same key does not open it either.
          if (aes_gcm_available()) {
            aead_key other;
            REQUIRE(other.set(kind == aead_kind::aes256_gcm ? aead_kind::chacha20_poly1305
                                                            : aead_kind::aes256_gcm,
                              std::span<const std::uint8_t, aead_key_size>(key.data(), 32)));
            CHECK(refused(sealed, ad, nonce, other));
          }
          // Unchanged, it opens.
          bytes out(n);
          REQUIRE(k.open(out.data(), sealed.data(), n, sealed.data() + n, ad, nonce));
          CHECK(out == plain);
        },
        20);
  }
}

TEST_CASE("aead: an unset or wiped key seals and opens nothing", "[aead]") {
  for (const aead_kind kind : kinds()) {
    INFO(to_string(kind));
    const bytes key(aead_key_size, 7);
    const nonce_t nonce{};
    const bytes plain(40, 1);
    bytes out(40), tag(aead_tag_size);
    aead_key unset;
    CHECK_FALSE(unset.seal(out.data(), tag.data(), plain.data(), plain.size(), {}, nonce));
    aead_key k;
    REQUIRE(k.set(kind, std::span<const std::uint8_t, aead_key_size>(key.data(), 32)));
    REQUIRE(k.seal(out.data(), tag.data(), plain.data(), plain.size(), {}, nonce));
    k.wipe();
    bytes out2(40);
    CHECK_FALSE(k.seal(out2.data(), tag.data(), plain.data(), plain.size(), {}, nonce));
    CHECK_FALSE(k.open(out2.data(), out.data(), out.size(), tag.data(), {}, nonce));
  }
}

TEST_CASE("aead: AES-256-GCM starts only where the CPU has it", "[aead]") {
  // Run again as on a CPU without AES instructions (LIBACTOR_TEST_NO_AES:
  // tests/CMakeLists.txt preloads a library that says so); the run checks
  // that it took.
  if (std::getenv("LIBACTOR_TEST_NO_AES") != nullptr) REQUIRE_FALSE(aes_gcm_available());
  const bytes key(aead_key_size, 9);
  aead_key k;
  const bool started =
      k.set(aead_kind::aes256_gcm, std::span<const std::uint8_t, 32>(key.data(), 32));
  CHECK(started == aes_gcm_available());
  const nonce_t nonce{};
  const bytes plain(16, 1);
  bytes out(16), tag(aead_tag_size);
  CHECK(k.seal(out.data(), tag.data(), plain.data(), plain.size(), {}, nonce) == started);
  // ChaCha20-Poly1305 starts everywhere.
  aead_key c;
  CHECK(c.set(aead_kind::chacha20_poly1305, std::span<const std::uint8_t, 32>(key.data(), 32)));
}
