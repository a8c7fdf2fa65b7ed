// INTERNAL: AES-256-GCM with a caller-chosen nonce, into caller buffers.
//
// Not for callers outside volmgr/crypto and its tests. Reusing a nonce under
// one key destroys GCM's confidentiality and lets an attacker forge tags
// (NIST SP 800-38D section 8 and appendix A), so production code seals only
// through aead.h / key_wrap.h, which draw a fresh random nonce every time.
// This layer exists for (a) those two implementations and (b) the NIST CAVP
// known-answer tests, whose vectors fix the IV.
#ifndef VOLMGR_CRYPTO_INTERNAL_AES_GCM_H_
#define VOLMGR_CRYPTO_INTERNAL_AES_GCM_H_

#include <cstdint>
#include <span>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto::internal {

// Encrypts `plaintext` under `key` and `nonce`, authenticating
// `associated_data`; writes the ciphertext (same length as the plaintext)
// to `ciphertext_out` and the 16-byte tag to `tag_out`.
// REQUIRES: key.size() == 32, nonce.size() == 12,
//           ciphertext_out.size() == plaintext.size(), tag_out.size() == 16.
// Errors: kInvalidArgument for a size mismatch; kInternal/kUnavailable from
// OpenSSL. `plaintext` and `ciphertext_out` may be the same buffer.
Status AesGcmEncryptWithNonce(const SecretBytes& key,
                              std::span<const uint8_t> nonce,
                              std::span<const uint8_t> plaintext,
                              std::span<const uint8_t> associated_data,
                              std::span<uint8_t> ciphertext_out,
                              std::span<uint8_t> tag_out);

// Verifies `tag` over `associated_data` and `ciphertext` and decrypts into
// `plaintext_out`.
// REQUIRES: key.size() == 32, nonce.size() == 12, tag.size() == 16,
//           plaintext_out.size() == ciphertext.size().
// Errors: kAuthFailed when the tag does not verify (wrong key, nonce, AD,
// ciphertext or tag); `plaintext_out` is then wiped, so unauthenticated
// plaintext never escapes. kInvalidArgument for a size mismatch.
Status AesGcmDecryptWithNonce(const SecretBytes& key,
                              std::span<const uint8_t> nonce,
                              std::span<const uint8_t> ciphertext,
                              std::span<const uint8_t> associated_data,
                              std::span<const uint8_t> tag,
                              std::span<uint8_t> plaintext_out);

}  // namespace volmgr::crypto::internal

#endif  // VOLMGR_CRYPTO_INTERNAL_AES_GCM_H_
