#include "volmgr/crypto/aead.h"

#include <openssl/rand.h>

#include <string>

#include "volmgr/crypto/internal/aes_gcm.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::crypto {

StatusOr<std::vector<uint8_t>> AesGcmSeal(
    const SecretBytes& key, std::span<const uint8_t> plaintext,
    std::span<const uint8_t> associated_data) {
  if (key.size() != kAesGcmKeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  std::vector<uint8_t> sealed(kAesGcmOverhead + plaintext.size());
  std::span<uint8_t> out(sealed);
  std::span<uint8_t> nonce = out.first(kAesGcmNonceSize);
  // The nonce is public, so RAND_bytes (not RAND_priv_bytes) is the right
  // generator; uniqueness is what matters (SP 800-38D section 8.2.2).
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return OpenSslError("RAND_bytes for AES-GCM nonce");
  }
  VOLMGR_RETURN_IF_ERROR(internal::AesGcmEncryptWithNonce(
      key, nonce, plaintext, associated_data,
      out.subspan(kAesGcmNonceSize, plaintext.size()),
      out.last(kAesGcmTagSize)));
  return sealed;
}

StatusOr<SecretBytes> AesGcmOpen(const SecretBytes& key,
                                 std::span<const uint8_t> sealed,
                                 std::span<const uint8_t> associated_data) {
  if (key.size() != kAesGcmKeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  if (sealed.size() < kAesGcmOverhead) {
    return CorruptionError("AES-GCM message is " +
                           std::to_string(sealed.size()) +
                           " bytes, shorter than nonce and tag (28)");
  }
  const size_t text_len = sealed.size() - kAesGcmOverhead;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes plaintext,
                          SecretBytes::Allocate(text_len));
  VOLMGR_RETURN_IF_ERROR(internal::AesGcmDecryptWithNonce(
      key, sealed.first(kAesGcmNonceSize),
      sealed.subspan(kAesGcmNonceSize, text_len), associated_data,
      sealed.last(kAesGcmTagSize), plaintext.RevealMutable()));
  return plaintext;
}

}  // namespace volmgr::crypto
