// An X.509 certificate that a certificate protector (data recovery agent)
// wraps to: loading, the checks made before enrolment, and what is kept.
//
// A certificate that has expired, is not yet valid, or whose keyUsage does
// not allow the key transport it is used for (keyEncipherment for RSA,
// keyAgreement for EC; an extendedKeyUsage, if present, must not exclude
// it) is refused for a new enrolment and only warned about at recovery: the
// private key still works, and refusing it then would lose data.
#ifndef VOLMGR_X509_CERTIFICATE_H_
#define VOLMGR_X509_CERTIFICATE_H_

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/x509/public_key_wrap.h"

namespace volmgr::x509 {

class Certificate {
 public:
  // Reads a PEM or DER certificate. kNotFound for a missing file,
  // kInvalidArgument for one that holds no certificate.
  static StatusOr<Certificate> Load(const std::string& path);
  // Parses DER (as stored in a token). kCorruption when it does not parse.
  static StatusOr<Certificate> FromDer(std::span<const uint8_t> der);

  std::vector<uint8_t> Der() const;
  std::string Subject() const;
  // Lower-case hex SHA-256 of the DER.
  std::string Sha256Fingerprint() const;
  // RFC 3339 UTC.
  std::string NotAfter() const;
  EVP_PKEY* public_key() const;

  // Problems that make it unfit for a new enrolment, one sentence each
  // (empty when fit): expiry, validity not yet begun, key usage, key type.
  std::vector<std::string> Problems() const;

 private:
  struct Free {
    void operator()(X509* x) const { X509_free(x); }
  };
  explicit Certificate(X509* x) : x_(x) {}
  std::unique_ptr<X509, Free> x_;
};

}  // namespace volmgr::x509

#endif  // VOLMGR_X509_CERTIFICATE_H_
