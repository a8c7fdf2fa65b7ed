// HKDF-SHA256 (RFC 5869) over OpenSSL 3's EVP_KDF "HKDF".
#ifndef VOLMGR_CRYPTO_HKDF_H_
#define VOLMGR_CRYPTO_HKDF_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto {

// Extract-then-expand HKDF with SHA-256. `out_len` must be in 1..8160
// (255 * 32, RFC 5869 section 2.3); an empty salt means a zero-filled salt.
StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm,
                                 std::span<const uint8_t> salt,
                                 std::span<const uint8_t> info, size_t out_len);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_HKDF_H_
