// TLS 1.3 over memory BIOs (tls_channel.hpp).

#include "tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include <array>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string_view>

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

/// What a verification failure most likely means for the configuration.
const char* verify_hint(long verify) {
  switch (verify) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      // A peer sends its chain up to its root: another CA's root shows as
      // "self-signed certificate in certificate chain".
      return " (is tls.ca_file the CA that issued the peer's certificate? A peer of another CA "
             "shows as a self-signed certificate in its chain)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return " (check the peer certificate's dates and both machines' clocks)";
    case X509_V_ERR_INVALID_PURPOSE:
      return " (a node both dials and accepts: its certificate needs extendedKeyUsage "
             "serverAuth and clientAuth, or no extendedKeyUsage at all)";
    default:
      return "";
  }
}

/// An ASN.1 time as OpenSSL prints it ("Jan  1 00:00:00 2030 GMT").
std::string asn1_time_text(const ASN1_TIME* t) {
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) return "?";
  std::string out = "?";
  if (ASN1_TIME_print(b, t) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    if (n > 0 && data != nullptr) out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(b);
  ERR_clear_error();
  return out;
}

/// Calls `fn` with each name a certificate carries for certificate_names()
/// (its subjectAltName DNS entries; its common names, as UTF-8, when it has
/// no subjectAltName at all) until `fn` returns true; whether one did.
bool each_name(X509* cert, const std::function<bool(std::string_view)>& fn) {
  bool stop = false;
  auto view = [](const unsigned char* data, int n) {
    return std::string_view(reinterpret_cast<const char*>(data),
                            n < 0 ? 0 : static_cast<std::size_t>(n));
  };
  // Present, even if it does not parse (then nothing in it names anyone).
  if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0) {
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans != nullptr && !stop && i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      stop = fn(view(ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    return stop;
  }
  // The common name only when there is no subjectAltName at all: a
  // certificate that names its subject by URI or address there does not
  // name it by its common name (RFC 6125, 6.4.4).
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0 && !stop;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    unsigned char* utf8 = nullptr;
    const int n =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (n >= 0) stop = fn(view(utf8, n));
    OPENSSL_free(utf8);
  }
  ERR_clear_error();
  return stop;
}

/// The names a certificate carries (each_name), for an error text.
std::string names_in(X509* cert) {
  std::string out;
  each_name(cert, [&out](std::string_view n) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += n;
    out += '"';
    return false;
  });
  return out.empty() ? std::string("nothing") : out;
}

[[noreturn]] void config_error(const std::string& what) {
  throw std::invalid_argument("libactor.net: node_config.tls: " + what + ": " + openssl_reasons());
}

}  // namespace

tls_context::tls_context(const tls_config& cfg, const std::string& node_name, bool aes_gcm)
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
    // Buffers are freed while a handshake waits for the peer (after it the
    // whole session goes: take_over).
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    // The suites tls_records speaks (its header says why these): AES-GCM
    // first where this CPU has AES instructions and node_config::aes_gcm
    // allows it, and then only. The acceptor's order decides, so two nodes
    // use AES-GCM when both offer it and ChaCha20-Poly1305 otherwise.
    const bool aes = aes_gcm && aes_gcm_available();
    const char* suites = aes ? "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
                             : "TLS_CHACHA20_POLY1305_SHA256";
    offered_ = aes        ? "TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256"
               : !aes_gcm ? "TLS_CHACHA20_POLY1305_SHA256 only (node_config::aes_gcm is off)"
                          : "TLS_CHACHA20_POLY1305_SHA256 only (no AES-GCM on this CPU)";
    if (SSL_CTX_set_ciphersuites(ctx_, suites) != 1) {
      config_error((std::string(suites) + " not available").c_str());
    }
    SSL_CTX_set_options(ctx_, SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Where each connection takes its application traffic secrets from.
    SSL_CTX_set_keylog_callback(ctx_, &tls_channel::on_key_log);
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
    // that is not the certificate's with a less telling reason. A key
    // under a passphrase fails (OpenSSL's default would prompt on the
    // terminal, or fail with ten lines that never say why).
    bool passphrase_asked = false;
    SSL_CTX_set_default_passwd_cb(ctx_, [](char*, int, int, void* asked) {
      *static_cast<bool*>(asked) = true;
      return 0;
    });
    SSL_CTX_set_default_passwd_cb_userdata(ctx_, &passphrase_asked);
    const int key_loaded =
        SSL_CTX_use_PrivateKey_file(ctx_, cfg.private_key_file.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb(ctx_, nullptr);
    SSL_CTX_set_default_passwd_cb_userdata(ctx_, nullptr);
    if (key_loaded != 1 && passphrase_asked) {
      ERR_clear_error();
      throw std::invalid_argument(
          "libactor.net: node_config.tls: private_key_file " + cfg.private_key_file +
          " is encrypted: a node cannot ask for a passphrase (store the key decrypted, "
          "readable by the node's user only: openssl pkey -in " +
          cfg.private_key_file + " -out <file>)");
    }
    if (key_loaded != 1) config_error("cannot load private_key_file " + cfg.private_key_file);
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
    if (own == nullptr) config_error("no certificate in certificate_file " + cfg.certificate_file);
    if (X509_cmp_current_time(X509_get0_notAfter(own)) <= 0) {
      ERR_clear_error();
      throw std::invalid_argument("libactor.net: node_config.tls: certificate_file " +
                                  cfg.certificate_file + " has expired (not after " +
                                  asn1_time_text(X509_get0_notAfter(own)) + ")");
    }
    if (X509_cmp_current_time(X509_get0_notBefore(own)) >= 0) {
      ERR_clear_error();
      throw std::invalid_argument("libactor.net: node_config.tls: certificate_file " +
                                  cfg.certificate_file + " is not valid yet (not before " +
                                  asn1_time_text(X509_get0_notBefore(own)) +
                                  "; is this machine's clock right?)");
    }
    if (cfg.check_peer_name && !certificate_names(own, node_name)) {
      ERR_clear_error();
      throw std::invalid_argument(
          "libactor.net: node_config.tls: certificate_file " + cfg.certificate_file +
          " does not name this node, " + node_name +
          " (a subjectAltName DNS entry, or the common name when there is none; it names " +
          names_in(own) + "): peers check it (check_peer_name)");
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

tls_channel::tls_channel(const tls_context& ctx, bool client)
    : ssl_(SSL_new(ctx.native())), offered_(ctx.offered()), client_(client) {
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
  // The key log callback finds the channel here.
  if (SSL_set_app_data(ssl_, this) != 1) {
    SSL_free(ssl_);
    throw std::runtime_error("no TLS state: " + openssl_reasons());
  }
  if (client) {
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

tls_channel::~tls_channel() {
  SSL_free(ssl_);
  X509_free(peer_);
  sodium_memzero(exported_.data(), exported_.size());
  sodium_memzero(client_secret_.data(), client_secret_.size());
  sodium_memzero(server_secret_.data(), server_secret_.size());
}

void tls_channel::on_key_log(const ssl_st* ssl, const char* line) {
  // Called inside SSL_do_handshake, under the channel's lock, once per
  // secret: "<label> <client random, hex> <secret, hex>". Only the two
  // application traffic secrets are kept; the line is never stored or
  // logged.
  auto* self = static_cast<tls_channel*>(SSL_get_app_data(ssl));
  if (self == nullptr || line == nullptr) return;
  const std::string_view text(line);
  traffic_secret* into = nullptr;
  std::size_t* size = nullptr;
  if (text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
    into = &self->client_secret_;
    size = &self->client_secret_size_;
  } else if (text.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
    into = &self->server_secret_;
    size = &self->server_secret_size_;
  } else {
    return;
  }
  const std::size_t space = text.rfind(' ');
  const std::string_view hex = text.substr(space + 1);
  // A secret of a length no suite here has is not kept: then take_over()
  // refuses the connection, as it does when the length is not the suite's.
  std::size_t n = 0;
  const bool ok = (hex.size() == 64 || hex.size() == 96) &&
                  sodium_hex2bin(into->data(), into->size(), hex.data(), hex.size(), nullptr, &n,
                                 nullptr) == 0 &&
                  n == hex.size() / 2;
  *size = ok ? n : 0;
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
    text += verify_hint(verify);
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
    } else if (reasons.find("no shared cipher") != std::string::npos) {
      text += std::string(" (this node offers ") + offered_ + ")";
    } else if (reasons.find("alert handshake failure") != std::string::npos) {
      // The peer found nothing in common: a suite, or a key exchange group.
      text += std::string(" (no suite or key exchange group in common? this node offers ") +
              offered_ + ", on X25519 or P-256)";
    }
  } else {
    text += ": OpenSSL error " + std::to_string(e);
    ERR_clear_error();
  }
  return protocol_error{protocol_errc::tls_failed, std::move(text)};
}

expected<void, protocol_error> tls_channel::start() {
  std::lock_guard lock(mu_);
  if (done_) {
    return protocol_error{protocol_errc::tls_failed, "TLS: start() after the handshake"};
  }
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    std::vector<std::byte> plain;  // nothing can have come yet
    return take_over(plain);
  }
  if (SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) return {};
  return failure("TLS handshake", r);
}

expected<void, protocol_error> tls_channel::take_over(std::vector<std::byte>& plain) {
  done_ = true;
  // A refused handover keeps nothing of the session's secrets.
  auto refuse = [this](const std::string& why) {
    sodium_memzero(client_secret_.data(), client_secret_.size());
    sodium_memzero(server_secret_.data(), server_secret_.size());
    client_secret_size_ = server_secret_size_ = 0;
    return protocol_error{protocol_errc::tls_failed, "TLS: " + why};
  };
  if (records_ || ssl_ == nullptr) return refuse("the handshake was taken over already");
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const unsigned long id = cipher != nullptr ? SSL_CIPHER_get_id(cipher) : 0;
  tls_suite suite{};
  if (id == static_cast<unsigned long>(TLS1_3_CK_CHACHA20_POLY1305_SHA256)) {
    suite = tls_suite::chacha20_poly1305_sha256;
  } else if (id == static_cast<unsigned long>(TLS1_3_CK_AES_256_GCM_SHA384)) {
    suite = tls_suite::aes_256_gcm_sha384;
  } else {
    return refuse(
        "the session's suite is neither TLS_AES_256_GCM_SHA384 nor TLS_CHACHA20_POLY1305_SHA256");
  }
  if (client_secret_size_ != secret_size(suite) || server_secret_size_ != secret_size(suite)) {
    return refuse("OpenSSL did not hand over the session's traffic secrets");
  }
  // OpenSSL reads a record header, then exactly its body: what the peer
  // sent after its last handshake message is still in rbio, and nothing is
  // in the SSL object itself.
  if (SSL_has_pending(ssl_) != 0) return refuse("OpenSSL holds records past the handshake");
  drain(tail_);  // the handshake's last flight (the dialler's Finished)
  // The acceptor's last flight went out before the dialler's Finished came:
  // anything OpenSSL wrote now would be records under the acceptor's
  // application key (tickets, were they on), whose sequence numbers
  // tls_records would use again.
  if (!client_ && !tail_.empty()) return refuse("OpenSSL wrote records past the handshake");
  BIO* rbio = SSL_get_rbio(ssl_);
  std::vector<std::byte> rest(BIO_ctrl_pending(rbio));
  if (!rest.empty() &&
      BIO_read(rbio, rest.data(), static_cast<int>(rest.size())) != static_cast<int>(rest.size())) {
    return refuse("cannot take the bytes after the handshake");
  }
  // What the node still needs of the session: the exported secret and the
  // peer's certificate.
  static constexpr char label[] = "EXPORTER-libactor-handshake";
  if (SSL_export_keying_material(ssl_, exported_.data(), exported_.size(), label, sizeof(label) - 1,
                                 nullptr, 0, 0) != 1) {
    return refuse("cannot export keying material: " + openssl_reasons());
  }
  have_exported_ = true;
  peer_ = SSL_get1_peer_certificate(ssl_);
  try {
    records_ =
        std::make_unique<tls_records>(client_ ? client_secret_ : server_secret_,
                                      client_ ? server_secret_ : client_secret_, client_, suite);
  } catch (const std::exception& e) {
    return refuse(std::string("no record protection: ") + e.what());
  }
  sodium_memzero(client_secret_.data(), client_secret_.size());
  sodium_memzero(server_secret_.data(), server_secret_.size());
  client_secret_size_ = server_secret_size_ = 0;
  // OpenSSL reads and writes no more records, and its session holds the
  // secrets tls_records now moves on from (KeyUpdate): it goes, with its
  // buffers.
  SSL_free(ssl_);
  ssl_ = nullptr;
  if (rest.empty()) return {};
  return explained(records_->open(rest, plain));
}

expected<void, protocol_error> tls_channel::explained(expected<void, protocol_error> r) const {
  if (r) return r;
  // In TLS 1.3 a dialler finishes its side before the acceptor checks its
  // certificate: a refusal reaches it as an alert in the records.
  protocol_error e = r.err();
  switch (records_->peer_alert()) {
    case 42:  // bad_certificate
    case 43:  // unsupported_certificate
    case 44:  // certificate_revoked
    case 45:  // certificate_expired
    case 46:  // certificate_unknown
    case 48:  // unknown_ca
      e.text +=
          " (the peer refused this node's certificate: is it from the CA the peer trusts, valid "
          "now, and for both client and server use? The peer's log says why)";
      break;
    case 116:  // certificate_required
      e.text += " (the peer requires a certificate: set tls on this node)";
      break;
    default:
      break;
  }
  return e;
}

expected<void, protocol_error> tls_channel::feed(std::span<const std::byte> in,
                                                 std::vector<std::byte>& plain) {
  std::lock_guard lock(mu_);
  if (!done_) {
    ERR_clear_error();
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
    // Only what fits under the bound goes to OpenSSL: the handshake must
    // end within it. Bytes past the bound in the same read are the
    // records that follow a handshake that did (or an excess when not).
    const std::size_t now = std::min(in.size(), max_tls_handshake_bytes - handshake_bytes_);
    handshake_bytes_ += now;
    // A memory BIO takes everything or fails (out of memory).
    if (now > 0 &&
        BIO_write(SSL_get_rbio(ssl_), in.data(), static_cast<int>(now)) != static_cast<int>(now)) {
      return protocol_error{protocol_errc::tls_failed, "TLS: out of memory"};
    }
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) return failure("TLS handshake", r);
      if (now < in.size()) {
        return protocol_error{protocol_errc::tls_failed,
                              "TLS handshake: the peer sent more than " +
                                  std::to_string(max_tls_handshake_bytes) +
                                  " bytes before it was done"};
      }
      return {};
    }
    // What came after the handshake's last message (in rbio, and past the
    // bound) goes to the records.
    if (auto taken = take_over(plain); !taken) return taken;
    in = in.subspan(now);
  }
  if (!records_) {
    return protocol_error{protocol_errc::tls_failed, "TLS: the connection failed already"};
  }
  return explained(records_->open(in, plain));
}

bool tls_channel::seal(std::span<const std::byte> plain, std::vector<std::byte>& out) {
  std::lock_guard lock(mu_);
  if (!done_ || !records_) return false;
  drain(out);  // the handshake's last flight, if still there
  return records_->seal(plain, out);
}

bool tls_channel::update_keys(bool request) {
  std::lock_guard lock(mu_);
  return records_ && records_->update_keys(request);
}

void tls_channel::drain(std::vector<std::byte>& out) {
  if (records_) {
    // After the handover OpenSSL writes nothing: what it wrote last waits
    // here.
    out.insert(out.end(), tail_.begin(), tail_.end());
    tail_.clear();
    return;
  }
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
  if (records_) records_->take_records(out);
}

bool tls_channel::has_records() const {
  std::lock_guard lock(mu_);
  if (records_) return !tail_.empty() || records_->has_records();
  return BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0;
}

int tls_channel::post_handshake_messages() const {
  std::lock_guard lock(mu_);
  return records_ ? records_->post_handshake_messages() : 0;
}

bool tls_channel::handshake_done() const {
  std::lock_guard lock(mu_);
  return done_;
}

bool tls_channel::peer_certificate_names(const std::string& name) const {
  std::lock_guard lock(mu_);
  return records_ && peer_ != nullptr && certificate_names(peer_, name);
}

bool certificate_names(x509_st* cert, const std::string& name) {
  // Byte for byte: node names are exact strings, so no DNS matching (which
  // would fold case, let ".example" stand for any subdomain of it, and
  // drop a trailing NUL), and no wildcards.
  if (name.empty()) return false;
  return each_name(cert, [&name](std::string_view n) { return n == name; });
}

std::optional<tls_suite> tls_channel::suite() const {
  std::lock_guard lock(mu_);
  if (!records_) return std::nullopt;
  return records_->suite();
}

expected<std::string, protocol_error> tls_channel::exported_secret() {
  std::lock_guard lock(mu_);
  if (!have_exported_) {
    return protocol_error{protocol_errc::tls_failed,
                          "TLS: no exported secret (the handshake is not done, or it was taken)"};
  }
  std::string hex = to_hex(exported_);
  sodium_memzero(exported_.data(), exported_.size());
  have_exported_ = false;
  return hex;
}

}  // namespace libactor::net::detail
