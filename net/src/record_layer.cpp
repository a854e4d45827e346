#include "record_layer.hpp"

#include <openssl/evp.h>

#include <climits>
#include <stdexcept>

namespace libactor::net::detail {

void record_cipher::ctx_free::operator()(evp_cipher_ctx_st* c) const noexcept {
  EVP_CIPHER_CTX_free(c);
}

record_cipher::record_cipher(const record_key& key, bool sealing)
    : ctx_(EVP_CIPHER_CTX_new()), key_(key), sealing_(sealing) {
  if (!ctx_) throw std::runtime_error("libactor.net: no memory for a cipher context");
  // The cipher and key once; each record then sets only its nonce (a full
  // init per record looks the cipher up again, several microseconds).
  if (EVP_CipherInit_ex(ctx_.get(), EVP_chacha20_poly1305(), nullptr, key_.data(), nullptr,
                        sealing ? 1 : 0) != 1) {
    throw std::runtime_error("libactor.net: ChaCha20-Poly1305 is not available");
  }
}

record_cipher::~record_cipher() {
  key_.fill(0);
}

std::array<std::uint8_t, 12> record_cipher::nonce() const noexcept {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(seq_ >> (8 * i));
  return n;
}

bool record_cipher::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  if (!sealing_) return false;
  const std::size_t start = out.size();
  std::size_t pos = 0;
  while (pos < plain.size()) {
    if (seq_ == UINT64_MAX) return false;  // a nonce must never repeat
    const std::size_t n = std::min(max_record_plaintext, plain.size() - pos);
    const auto len = static_cast<std::uint32_t>(n + record_tag);
    const std::size_t at = out.size();
    out.resize(at + record_header + n + record_tag);
    auto* hdr = reinterpret_cast<unsigned char*>(out.data() + at);
    for (int i = 0; i < 4; ++i) hdr[i] = static_cast<unsigned char>(len >> (8 * i));
    const auto iv = nonce();
    int outl = 0;
    int finl = 0;
    const bool ok = EVP_EncryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, iv.data()) == 1 &&
                    EVP_EncryptUpdate(ctx_.get(), nullptr, &outl, hdr, record_header) == 1 &&
                    EVP_EncryptUpdate(ctx_.get(), hdr + record_header, &outl,
                                      reinterpret_cast<const unsigned char*>(plain.data() + pos),
                                      static_cast<int>(n)) == 1 &&
                    static_cast<std::size_t>(outl) == n &&
                    EVP_EncryptFinal_ex(ctx_.get(), hdr + record_header + n, &finl) == 1 &&
                    finl == 0 &&
                    EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_GET_TAG,
                                        static_cast<int>(record_tag), hdr + record_header + n) == 1;
    if (!ok) {
      out.resize(start);
      return false;
    }
    ++seq_;
    pos += n;
  }
  return true;
}

expected<std::size_t, protocol_error> record_cipher::open(std::span<const std::byte> in,
                                                          std::vector<std::byte>& plain,
                                                          std::size_t* need) {
  if (need != nullptr) *need = 0;
  if (sealing_) return protocol_error{protocol_errc::malformed_payload, "not an opening cipher"};
  std::size_t pos = 0;
  while (in.size() - pos >= record_header) {
    const auto* hdr = reinterpret_cast<const unsigned char*>(in.data() + pos);
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(hdr[i]) << (8 * i);
    if (len < record_tag || len > max_record_plaintext + record_tag) {
      return protocol_error{protocol_errc::frame_too_large,
                            "a sealed record of " + std::to_string(len) + " bytes (" +
                                std::to_string(record_tag) + " to " +
                                std::to_string(max_record_plaintext + record_tag) + " allowed)"};
    }
    if (in.size() - pos < record_header + len) {
      if (need != nullptr) *need = record_header + len;
      break;
    }
    if (seq_ == UINT64_MAX) {
      return protocol_error{protocol_errc::malformed_payload, "record sequence exhausted"};
    }
    const std::size_t n = len - record_tag;
    const std::size_t at = plain.size();
    plain.resize(at + n);
    const auto iv = nonce();
    auto* tag = const_cast<unsigned char*>(hdr + record_header + n);  // read by OpenSSL
    int outl = 0;
    int finl = 0;
    const bool setup =
        EVP_DecryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, iv.data()) == 1 &&
        EVP_DecryptUpdate(ctx_.get(), nullptr, &outl, hdr, record_header) == 1 &&
        EVP_DecryptUpdate(ctx_.get(), reinterpret_cast<unsigned char*>(plain.data() + at), &outl,
                          hdr + record_header, static_cast<int>(n)) == 1 &&
        static_cast<std::size_t>(outl) == n &&
        EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(record_tag), tag) ==
            1;
    const bool verified =
        setup &&
        EVP_DecryptFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(plain.data() + at + n),
                            &finl) == 1;
    if (!verified) {
      plain.resize(at);
      return protocol_error{protocol_errc::auth_failed,
                            "record " + std::to_string(seq_) +
                                " does not verify: a frame was changed, injected, replayed, "
                                "reordered or dropped on the way"};
    }
    ++seq_;
    pos += record_header + len;
  }
  return pos;
}

}  // namespace libactor::net::detail
