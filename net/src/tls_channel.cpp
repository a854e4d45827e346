// TLS 1.3 over memory BIOs (tls_channel.hpp).

#include "tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include "hex.hpp"
#include "libactor/net/node.hpp"

namespace libactor::net::detail {

namespace {

/// OpenSSL's reasons queued on this thread, oldest first, and clears them.
std::string openssl_reasons() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out.empty() ? std::string("no reason given") : out;
}

[[noreturn]] void config_error(const std::string& what) {
  throw std::invalid_argument("libactor.net: node_config.tls: " + what + ": " + openssl_reasons());
}

}  // namespace

tls_context::tls_context(const tls_config& cfg, const std::string& node_name)
    : ctx_(SSL_CTX_new(TLS_method())) {
  if (ctx_ == nullptr) config_error("no TLS context");  // with OpenSSL's reason
  ERR_clear_error();
  try {
    if (SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx_, TLS1_3_VERSION) != 1) {
      config_error("TLS 1.3 is not available");
    }
    // No resumption (every connection runs a full handshake with both
    // certificates), no renegotiation (TLS 1.3 has none; the option also
    // covers a peer that asks for it), no compression.
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_num_tickets(ctx_, 0) != 1) config_error("cannot turn session tickets off");
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    // Buffers are freed while a connection has nothing in flight.
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    // A read returns after each record that carries no data (a KeyUpdate),
    // so that feed() counts them as they come, not after a whole buffer
    // of them was processed.
    SSL_CTX_clear_mode(ctx_, SSL_MODE_AUTO_RETRY);
    // Key exchange on elliptic curves only. OpenSSL's defaults also offer
    // finite-field groups up to 8192 bits, which cost the acceptor 175 ms
    // of CPU for one replayed ClientHello that costs its sender nothing.
    if (SSL_CTX_set1_groups_list(ctx_, "X25519:P-256") != 1) {
      config_error("cannot restrict the key exchange groups");
    }
    // A peer's certificate chain (the largest handshake message a peer
    // sends) is bounded with the rest of the handshake (tls_channel).
    SSL_CTX_set_max_cert_list(ctx_, max_tls_handshake_bytes);
    if (SSL_CTX_load_verify_locations(ctx_, cfg.ca_file.c_str(), nullptr) != 1) {
      config_error("cannot load ca_file " + cfg.ca_file);
    }
    // The key first: loading it after the certificate would fail a key
    // that is not the certificate's with a less telling reason.
    if (SSL_CTX_use_PrivateKey_file(ctx_, cfg.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      config_error("cannot load private_key_file " + cfg.private_key_file);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx_, cfg.certificate_file.c_str()) != 1) {
      config_error("cannot load certificate_file " + cfg.certificate_file);
    }
    if (SSL_CTX_check_private_key(ctx_) != 1) {
      ERR_clear_error();  // OpenSSL's reason ("no private key assigned") says less than this
      throw std::invalid_argument("libactor.net: node_config.tls: private_key_file " +
                                  cfg.private_key_file + " is not the key of " +
                                  cfg.certificate_file);
    }
    // This node's own certificate, checked as its peers will check it.
    X509* own = SSL_CTX_get0_certificate(ctx_);
    if (own == nullptr || X509_cmp_current_time(X509_get0_notAfter(own)) <= 0) {
      ERR_clear_error();
      throw std::invalid_argument("libactor.net: node_config.tls: certificate_file " +
                                  cfg.certificate_file + " has expired");
    }
    if (cfg.check_peer_name && !certificate_names(own, node_name)) {
      ERR_clear_error();
      throw std::invalid_argument(
          "libactor.net: node_config.tls: certificate_file " + cfg.certificate_file +
          " does not name this node, " + node_name +
          " (a subjectAltName DNS entry, or the common name when there is none): peers check "
          "it (check_peer_name)");
    }
    // Both sides verify: a peer without a certificate of the CA is refused.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } catch (...) {
    SSL_CTX_free(ctx_);
    throw;
  }
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

tls_channel::tls_channel(const tls_context& ctx, bool client) : ssl_(SSL_new(ctx.native())) {
  if (ssl_ == nullptr) throw std::runtime_error("no TLS state: " + openssl_reasons());
  ERR_clear_error();
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl_);
    throw std::runtime_error("no TLS buffers: " + openssl_reasons());
  }
  // An empty rbio means "wait for more", not end of stream.
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(ssl_, rbio, wbio);  // the SSL owns both from here
  // Counts the KeyUpdate messages the peer sends (see feed).
  SSL_set_msg_callback(ssl_, &tls_channel::on_message);
  SSL_set_msg_callback_arg(ssl_, this);
  if (client) {
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

tls_channel::~tls_channel() {
  SSL_free(ssl_);
}

protocol_error tls_channel::failure(const char* what, int ret) const {
  const int e = SSL_get_error(ssl_, ret);
  std::string text = what;
  const long verify = SSL_get_verify_result(ssl_);
  if (e == SSL_ERROR_ZERO_RETURN) {
    text += ": the peer closed the TLS session";
    ERR_clear_error();
  } else if (verify != X509_V_OK) {
    text += ": the peer's certificate does not verify: ";
    text += X509_verify_cert_error_string(verify);
    text += " (is tls.ca_file the CA that issued the peer's certificate?)";
    ERR_clear_error();
  } else if (e == SSL_ERROR_SSL) {
    const std::string reasons = openssl_reasons();
    text += ": " + reasons;
    // What the peer's alert means for this node's configuration.
    if (reasons.find("alert unknown ca") != std::string::npos ||
        reasons.find("alert bad certificate") != std::string::npos ||
        reasons.find("alert certificate expired") != std::string::npos) {
      text +=
          " (the peer refused this node's certificate: is it from the CA the peer trusts, "
          "and valid? The peer's log says why)";
    } else if (reasons.find("alert certificate required") != std::string::npos) {
      text += " (the peer requires a certificate: set tls on this node)";
    }
  } else {
    text += ": OpenSSL error " + std::to_string(e);
    ERR_clear_error();
  }
  return protocol_error{protocol_errc::tls_failed, std::move(text)};
}

expected<void, protocol_error> tls_channel::start() {
  std::lock_guard lock(mu_);
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    done_ = true;
    return {};
  }
  if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) return {};
  return failure("TLS handshake", r);
}

expected<void, protocol_error> tls_channel::feed(std::span<const std::byte> in,
                                                 std::vector<std::byte>& plain) {
  std::lock_guard lock(mu_);
  ERR_clear_error();
  if (!done_) {
    // Before the handshake is done nothing is verified: whoever connected
    // makes this node hold what it sends (OpenSSL buffers a whole handshake
    // message, and a ClientHello may claim 128 KiB). A real handshake is a
    // few KiB.
    // The first handshake message (ClientHello, ServerHello) travels in
    // the clear: what its header claims is refused before OpenSSL sizes a
    // buffer for it.
    for (std::size_t i = 0; i < in.size() && first_header_len_ < first_header_.size(); ++i) {
      first_header_[first_header_len_++] = std::to_integer<unsigned char>(in[i]);
    }
    if (first_header_len_ == first_header_.size()) {
      // | type 22 | version (2) | length (2) | msg type | msg length (3) |
      const std::size_t claimed = (std::size_t{first_header_[6]} << 16) |
                                  (std::size_t{first_header_[7]} << 8) | first_header_[8];
      if (first_header_[0] == 22 && claimed > max_tls_handshake_bytes) {
        return protocol_error{protocol_errc::tls_failed,
                              "TLS handshake: the peer's first handshake message claims " +
                                  std::to_string(claimed) + " bytes (at most " +
                                  std::to_string(max_tls_handshake_bytes) + ")"};
      }
    }
    handshake_bytes_ += in.size();
    if (handshake_bytes_ > max_tls_handshake_bytes) {
      return protocol_error{protocol_errc::tls_failed, "TLS handshake: the peer sent more than " +
                                                           std::to_string(max_tls_handshake_bytes) +
                                                           " bytes before it was done"};
    }
  }
  if (!in.empty()) {
    // A memory BIO takes everything or fails (out of memory).
    const int w = BIO_write(SSL_get_rbio(ssl_), in.data(), static_cast<int>(in.size()));
    if (w != static_cast<int>(in.size())) {
      return protocol_error{protocol_errc::tls_failed, "TLS: out of memory"};
    }
  }
  if (!done_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) return {};
      return failure("TLS handshake", r);
    }
    done_ = true;
  }
  // Everything buffered is read now: records stay in rbio only while
  // incomplete, so what a peer makes this node hold is one record.
  std::size_t unread = SIZE_MAX;
  for (bool first = true;; first = false) {
    // One record's plaintext at most, into a buffer nothing initializes
    // (growing `plain` by 16 KiB first would zero it on every read).
    std::array<std::byte, 16 * 1024> chunk;
    std::size_t n = 0;
    // SSL_get_error reads this thread's queue: empty before each read (the
    // first read follows the clear above).
    if (!first) ERR_clear_error();
    const int r = SSL_read_ex(ssl_, chunk.data(), chunk.size(), &n);
    if (r == 1)
      plain.insert(plain.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (post_handshake_messages_ > max_post_handshake_messages) {
      return protocol_error{protocol_errc::tls_failed,
                            "TLS: the peer sent more than " +
                                std::to_string(max_post_handshake_messages) +
                                " post-handshake messages (KeyUpdate, NewSessionTicket: each "
                                "costs this node work; nodes send none)"};
    }
    if (r == 1) {
      // Nothing left, neither bytes in rbio nor plaintext in the SSL: done
      // without another read that can only say so (a read and an error
      // queue clear per record, in a ping-pong the common case).
      if (SSL_pending(ssl_) == 0 && BIO_ctrl_pending(SSL_get_rbio(ssl_)) == 0) return {};
      continue;
    }
    // Without auto-retry, a record with no data ends a read with WANT_READ
    // while more may be buffered: read on until nothing is.
    if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) {
      // Only while that makes progress: bytes left in rbio that the last
      // read did not take mean a whole record may wait there.
      const std::size_t left = BIO_ctrl_pending(SSL_get_rbio(ssl_));
      if (left > 0 && left < unread) {
        unread = left;
        continue;
      }
      return {};
    }
    return failure("TLS", r);
  }
}

bool tls_channel::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  std::lock_guard lock(mu_);
  if (!done_) return false;
  ERR_clear_error();
  const std::size_t at = out.size();
  if (!plain.empty()) {
    std::size_t n = 0;
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE a write into a memory BIO
    // takes everything or fails.
    if (SSL_write_ex(ssl_, plain.data(), plain.size(), &n) != 1 || n != plain.size()) {
      ERR_clear_error();
      out.resize(at);
      return false;
    }
  }
  drain(out);
  return true;
}

void tls_channel::drain(std::vector<std::byte>& out) {
  BIO* w = SSL_get_wbio(ssl_);
  const std::size_t pending = BIO_ctrl_pending(w);
  if (pending == 0) return;
  const std::size_t at = out.size();
  out.resize(at + pending);
  const int r = BIO_read(w, out.data() + at, static_cast<int>(pending));
  out.resize(at + (r > 0 ? static_cast<std::size_t>(r) : 0));
}

void tls_channel::take_records(std::vector<std::byte>& out) {
  std::lock_guard lock(mu_);
  drain(out);
}

bool tls_channel::has_records() const {
  std::lock_guard lock(mu_);
  return BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0;
}

int tls_channel::post_handshake_messages() const {
  std::lock_guard lock(mu_);
  return post_handshake_messages_;
}

bool tls_channel::handshake_done() const {
  std::lock_guard lock(mu_);
  return done_;
}

void tls_channel::on_message(int write_p, int, int content_type, const void* buf, std::size_t len,
                             ssl_st*, void* arg) {
  // Called inside SSL_read, under mu_. TLS 1.3 reports each handshake
  // message after decrypting it: after the handshake, only KeyUpdate (24)
  // and NewSessionTicket (4) may come, and a node sends neither.
  auto* self = static_cast<tls_channel*>(arg);
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 && self->done_) {
    const unsigned char type = *static_cast<const unsigned char*>(buf);
    if (type == SSL3_MT_KEY_UPDATE || type == SSL3_MT_NEWSESSION_TICKET)
      ++self->post_handshake_messages_;
  }
}

bool tls_channel::peer_certificate_names(const std::string& name) const {
  std::lock_guard lock(mu_);
  if (!done_) return false;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  return cert != nullptr && certificate_names(cert, name);
}

bool certificate_names(x509_st* cert, const std::string& name) {
  // Byte for byte: node names are exact strings, so no DNS matching (which
  // would fold case, let ".example" stand for any subdomain of it, and
  // drop a trailing NUL), and no wildcards.
  if (name.empty()) return false;
  auto same = [&name](const unsigned char* data, int n) {
    return n >= 0 && static_cast<std::size_t>(n) == name.size() &&
           std::memcmp(data, name.data(), name.size()) == 0;
  };
  bool found = false;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  // Present, even if it does not parse (then nothing in it names anyone).
  const bool has_san = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0;
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      found = found || same(ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
  }
  ERR_clear_error();
  // The common name only when there is no subjectAltName at all: a
  // certificate that names its subject by URI or address there does not
  // name it by its common name (RFC 6125, 6.4.4).
  if (has_san) return found;
  // No subjectAltName: the common names, as UTF-8.
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    unsigned char* utf8 = nullptr;
    const int n =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    const bool match = same(utf8, n);
    OPENSSL_free(utf8);
    if (match) return true;
  }
  ERR_clear_error();
  return false;
}

expected<std::string, protocol_error> tls_channel::exported_secret() const {
  std::lock_guard lock(mu_);
  std::array<unsigned char, 32> key{};
  static constexpr char label[] = "EXPORTER-libactor-handshake";
  ERR_clear_error();
  if (!done_ || SSL_export_keying_material(ssl_, key.data(), key.size(), label, sizeof(label) - 1,
                                           nullptr, 0, 0) != 1) {
    return protocol_error{protocol_errc::tls_failed,
                          "TLS: cannot export keying material: " + openssl_reasons()};
  }
  return to_hex(key);
}

}  // namespace libactor::net::detail
