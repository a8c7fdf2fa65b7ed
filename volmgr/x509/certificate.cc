#include "volmgr/x509/certificate.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace volmgr::x509 {
namespace {

std::string Rfc3339(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

StatusOr<Certificate> Certificate::Load(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"),
                                          &std::fclose);
  if (!f) {
    return NotFoundError("cannot read certificate " + path + ": " +
                         std::strerror(errno));
  }
  X509* x = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
  if (x == nullptr) {
    ERR_clear_error();
    std::rewind(f.get());
    x = d2i_X509_fp(f.get(), nullptr);
  }
  if (x == nullptr) {
    ERR_clear_error();
    return InvalidArgumentError(path + " holds no X.509 certificate");
  }
  return Certificate(x);
}

StatusOr<Certificate> Certificate::FromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x == nullptr || p != der.data() + der.size()) {
    X509_free(x);
    ERR_clear_error();
    return CorruptionError("the stored certificate does not parse");
  }
  return Certificate(x);
}

std::vector<uint8_t> Certificate::Der() const {
  int n = i2d_X509(x_.get(), nullptr);
  std::vector<uint8_t> out(n > 0 ? static_cast<size_t>(n) : 0);
  unsigned char* p = out.data();
  i2d_X509(x_.get(), &p);
  return out;
}

std::string Certificate::Subject() const {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x_.get()), buf, sizeof(buf));
  return buf;
}

std::string Certificate::Sha256Fingerprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x_.get(), EVP_sha256(), md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kHex[md[i] >> 4];
    s += kHex[md[i] & 15];
  }
  return s;
}

std::string Certificate::NotAfter() const {
  return Rfc3339(X509_get0_notAfter(x_.get()));
}

EVP_PKEY* Certificate::public_key() const { return X509_get0_pubkey(x_.get()); }

std::vector<std::string> Certificate::Problems() const {
  std::vector<std::string> out;
  const std::string who = "certificate " + Subject();
  if (X509_cmp_current_time(X509_get0_notAfter(x_.get())) <= 0) {
    out.push_back(who + " expired on " + NotAfter());
  }
  if (X509_cmp_current_time(X509_get0_notBefore(x_.get())) > 0) {
    out.push_back(who + " is not valid before " +
                  Rfc3339(X509_get0_notBefore(x_.get())));
  }
  EVP_PKEY* key = public_key();
  if (key == nullptr) {
    out.push_back(who + " has an unreadable public key");
    return out;
  }
  auto alg = AlgorithmFor(key);
  if (!alg.ok()) {
    out.push_back(who + ": " + alg.status().message());
    return out;
  }
  // X509_get_key_usage returns UINT32_MAX when the extension is absent:
  // then every usage is allowed (RFC 5280 4.2.1.3).
  const uint32_t ku = X509_get_key_usage(x_.get());
  const bool rsa = *alg == KemAlgorithm::kRsaOaepSha256;
  const uint32_t need = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
  if (ku != UINT32_MAX && (ku & need) == 0) {
    out.push_back(who + ": its keyUsage does not allow " +
                  (rsa ? "keyEncipherment" : "keyAgreement"));
  }
  return out;
}

}  // namespace volmgr::x509
