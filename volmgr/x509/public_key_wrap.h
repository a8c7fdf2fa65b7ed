// Key encapsulation to a public key: how a certificate protector (data
// recovery agent) derives the KEK that wraps a VMK, so that only the holder
// of the certificate's private key can derive it again.
//
//   rsa-oaep-sha256:        seed = 32 random bytes,
//                           data = RSA-OAEP(SHA-256, MGF1-SHA-256, no label)
//                                  of seed under the recipient's key,
//                           KEK  = HKDF-SHA256(IKM = seed, salt = data, info)
//   ecdh-p256-hkdf-sha256,  an ephemeral key pair on the recipient's curve,
//   ecdh-p384-hkdf-sha256:  data = its uncompressed public point (SEC 1
//                                  2.3.3), Z = ECDH(ephemeral, recipient),
//                           KEK  = HKDF-SHA256(IKM = Z, salt = data, info)
//
// The KEK then wraps the VMK with AES-256-GCM (crypto/key_wrap.h), so any
// change to `data`, `info` or the wrap fails authentication. `info` binds the
// KEK to its protector ("volmgr cert v1" || protector ID).
//
// Thread-safety: free functions are reentrant.
#ifndef VOLMGR_X509_PUBLIC_KEY_WRAP_H_
#define VOLMGR_X509_PUBLIC_KEY_WRAP_H_

#include <openssl/evp.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::x509 {

enum class KemAlgorithm { kRsaOaepSha256, kEcdhP256, kEcdhP384 };

// "rsa-oaep-sha256", "ecdh-p256-hkdf-sha256", "ecdh-p384-hkdf-sha256".
std::string_view AlgorithmName(KemAlgorithm a);
// kCorruption for an unknown name.
StatusOr<KemAlgorithm> ParseAlgorithmName(std::string_view name);

// The algorithm for a recipient public key: RSA of 2048 bits or more, or EC
// on P-256 / P-384. kInvalidArgument naming the key otherwise.
StatusOr<KemAlgorithm> AlgorithmFor(EVP_PKEY* recipient);

// What is stored beside the wrapped key (see the file comment).
struct Encapsulation {
  KemAlgorithm algorithm = KemAlgorithm::kRsaOaepSha256;
  std::vector<uint8_t> data;
};

struct Encapsulated {
  SecretBytes kek;  // 32 bytes
  Encapsulation encapsulation;
};

// The private half, wherever it lives (a PEM file, a PKCS#11 token).
class PrivateKeyOps {
 public:
  virtual ~PrivateKeyOps() = default;
  // RSA-OAEP-SHA256 decryption. kAuthFailed when the ciphertext does not
  // decrypt under this key.
  virtual StatusOr<SecretBytes> RsaOaepSha256Decrypt(
      std::span<const uint8_t> ciphertext) const = 0;
  // The raw ECDH shared secret (x coordinate, `len` bytes) with `peer`, an
  // uncompressed point on this key's curve.
  virtual StatusOr<SecretBytes> Ecdh(std::span<const uint8_t> peer,
                                     size_t len) const = 0;
};

// A fresh KEK for `recipient`'s private key holder.
StatusOr<Encapsulated> Encapsulate(EVP_PKEY* recipient,
                                   std::span<const uint8_t> info);

// The KEK again, with the private key. kAuthFailed when the key is not the
// recipient's (RSA); for ECDH a wrong key gives another KEK, which the
// AES-GCM wrap then rejects.
StatusOr<SecretBytes> Decapsulate(const PrivateKeyOps& key,
                                  const Encapsulation& enc,
                                  std::span<const uint8_t> info);

// A private key read from a PEM file (PKCS#8, "RSA PRIVATE KEY" or "EC
// PRIVATE KEY"; unencrypted).
class PemPrivateKey final : public PrivateKeyOps {
 public:
  // kNotFound for a missing file, kInvalidArgument for one that holds no
  // private key.
  static StatusOr<PemPrivateKey> Load(const std::string& path);
  // Takes ownership of an existing key (unit tests).
  explicit PemPrivateKey(crypto::EvpPkeyPtr key) : key_(std::move(key)) {}

  EVP_PKEY* pkey() const { return key_.get(); }
  StatusOr<SecretBytes> RsaOaepSha256Decrypt(
      std::span<const uint8_t> ciphertext) const override;
  StatusOr<SecretBytes> Ecdh(std::span<const uint8_t> peer,
                             size_t len) const override;

 private:
  crypto::EvpPkeyPtr key_;
};

}  // namespace volmgr::x509

#endif  // VOLMGR_X509_PUBLIC_KEY_WRAP_H_
