// AEAD: AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce.
//
// A sealed message is self-contained:
//
//   nonce (12 bytes) || ciphertext (len(plaintext) bytes) || tag (16 bytes)
//
// The associated data is authenticated but not stored: the opener must
// supply the same bytes, which is how a caller binds a ciphertext to its
// context (volume, slot, purpose) without storing that context twice.
//
// Nonce: 96 random bits from RAND_bytes per message. SP 800-38D section
// 8.3 limits random-IV use to 2^32 messages per key; callers that could
// approach that under one key need a different construction.
//
// Thread-safety: all functions are reentrant.
#ifndef VOLMGR_CRYPTO_AEAD_H_
#define VOLMGR_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto {

inline constexpr size_t kAesGcmKeySize = 32;    // AES-256
inline constexpr size_t kAesGcmNonceSize = 12;  // SP 800-38D 8.2: 96 bits
inline constexpr size_t kAesGcmTagSize = 16;    // full 128-bit tag
// Bytes a sealed message adds to its plaintext.
inline constexpr size_t kAesGcmOverhead = kAesGcmNonceSize + kAesGcmTagSize;

// Encrypts `plaintext` under `key` with a new random nonce, authenticating
// `associated_data`. Returns nonce || ciphertext || tag.
// Errors: kInvalidArgument if key.size() != 32; kInternal/kUnavailable if
// OpenSSL fails (no randomness, no AES-GCM provider).
StatusOr<std::vector<uint8_t>> AesGcmSeal(
    const SecretBytes& key, std::span<const uint8_t> plaintext,
    std::span<const uint8_t> associated_data);

// Verifies and decrypts a message made by AesGcmSeal. The plaintext is
// decrypted straight into locked secret memory and is returned only if the
// tag verifies.
// Errors: kAuthFailed if any byte of the message, the key or the associated
// data differs from what was sealed (the one failure a wrong secret causes);
// kCorruption if `sealed` is shorter than kAesGcmOverhead; kInvalidArgument
// if key.size() != 32.
StatusOr<SecretBytes> AesGcmOpen(const SecretBytes& key,
                                 std::span<const uint8_t> sealed,
                                 std::span<const uint8_t> associated_data);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_AEAD_H_
