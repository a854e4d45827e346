#pragma once
// A certificate authority made at test time, with OpenSSL: a CA key and
// certificate, and certificates it issues for node names, written as PEM
// files to a fresh directory that is removed afterwards. Keys are P-256
// (quick to make); certificates are valid from an hour ago for a day
// unless a test asks for an expired one. Failures throw std::runtime_error
// (a failed test case under Catch; the fuzzers use it too).

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <libactor/net/node.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace test {

inline void pki_check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}
#define LIBACTOR_PKI_CHECK(c) ::test::pki_check(static_cast<bool>(c), #c)

struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* c) const noexcept { X509_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

inline pkey_ptr make_key() {
  pkey_ptr k(EVP_EC_gen("P-256"));
  LIBACTOR_PKI_CHECK(k);
  return k;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  LIBACTOR_PKI_CHECK(ext != nullptr);
  LIBACTOR_PKI_CHECK(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

/// What a certificate says, beyond its subject's key.
struct cert_options {
  std::string common_name;
  /// subjectAltName DNS entry: unset, the node's name (issue()); empty,
  /// none (the common name is then what names the node).
  std::optional<std::string> dns_name;
  /// Another subjectAltName entry ("URI:spiffe://..."); empty: none.
  std::string other_san;
  bool ca = false;
  long not_before_s = -3600;  ///< seconds from now
  long not_after_s = 86400;
};

/// A certificate for `key`, signed by `signer` (issuer `issuer`, or itself).
inline x509_ptr make_cert(EVP_PKEY* key, const cert_options& o, X509* issuer, EVP_PKEY* signer) {
  static long serial = 1;
  x509_ptr c(X509_new());
  LIBACTOR_PKI_CHECK(c);
  LIBACTOR_PKI_CHECK(X509_set_version(c.get(), 2) == 1);
  LIBACTOR_PKI_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(c.get()), ++serial) == 1);
  LIBACTOR_PKI_CHECK(X509_gmtime_adj(X509_getm_notBefore(c.get()), o.not_before_s) != nullptr);
  LIBACTOR_PKI_CHECK(X509_gmtime_adj(X509_getm_notAfter(c.get()), o.not_after_s) != nullptr);
  LIBACTOR_PKI_CHECK(X509_set_pubkey(c.get(), key) == 1);
  X509_NAME* name = X509_get_subject_name(c.get());
  LIBACTOR_PKI_CHECK(
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(o.common_name.c_str()), -1,
                                 -1, 0) == 1);
  X509* iss = issuer != nullptr ? issuer : c.get();
  LIBACTOR_PKI_CHECK(X509_set_issuer_name(c.get(), X509_get_subject_name(iss)) == 1);
  add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
  if (o.ca) {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature");
    add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(c.get(), iss, NID_authority_key_identifier, "keyid");
    std::string san;
    if (o.dns_name && !o.dns_name->empty()) san = "DNS:" + *o.dns_name;
    if (!o.other_san.empty()) san += (san.empty() ? "" : ",") + o.other_san;
    if (!san.empty()) add_ext(c.get(), iss, NID_subject_alt_name, san);
  }
  LIBACTOR_PKI_CHECK(X509_sign(c.get(), signer != nullptr ? signer : key, EVP_sha256()) > 0);
  return c;
}

inline void write_pem(const std::filesystem::path& p, X509* cert) {
  FILE* f = std::fopen(p.c_str(), "w");
  LIBACTOR_PKI_CHECK(f != nullptr);
  LIBACTOR_PKI_CHECK(PEM_write_X509(f, cert) == 1);
  std::fclose(f);
}

inline void write_pem(const std::filesystem::path& p, EVP_PKEY* key) {
  FILE* f = std::fopen(p.c_str(), "w");
  LIBACTOR_PKI_CHECK(f != nullptr);
  LIBACTOR_PKI_CHECK(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::fclose(f);
}

/// A CA in a temporary directory; issue() writes a node's files.
class test_ca {
 public:
  explicit test_ca(const std::string& name = "libactor test CA") : key_(make_key()) {
    char tmpl[] = "/tmp/libactor-pki-XXXXXX";
    LIBACTOR_PKI_CHECK(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    cert_ = make_cert(key_.get(), {.common_name = name, .ca = true}, nullptr, nullptr);
    ca_file_ = (dir_ / "ca.pem").string();
    write_pem(ca_file_, cert_.get());
  }
  ~test_ca() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  [[nodiscard]] const std::string& ca_file() const { return ca_file_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  /// Files for node `name`, trusting this CA: a certificate naming `name`
  /// (or what `o` says) and its key.
  libactor::net::tls_config issue(const std::string& name, cert_options o = {}) {
    if (o.common_name.empty()) o.common_name = name;
    if (!o.dns_name) o.dns_name = name;
    auto key = make_key();
    auto cert = make_cert(key.get(), o, cert_.get(), key_.get());
    const std::string stem = name + "-" + std::to_string(++issued_);
    libactor::net::tls_config t;
    t.ca_file = ca_file_;
    t.certificate_file = (dir_ / (stem + ".crt")).string();
    t.private_key_file = (dir_ / (stem + ".key")).string();
    write_pem(t.certificate_file, cert.get());
    write_pem(t.private_key_file, key.get());
    return t;
  }

 private:
  std::filesystem::path dir_;
  pkey_ptr key_;
  x509_ptr cert_;
  std::string ca_file_;
  int issued_ = 0;
};

}  // namespace test
