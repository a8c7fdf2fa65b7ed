// HKDF-SHA256 (RFC 5869) over OpenSSL 3's EVP_KDF "HKDF".
#ifndef VOLMGR_CRYPTO_HKDF_H_
#define VOLMGR_CRYPTO_HKDF_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto {

// Extract-then-expand HKDF with SHA-256. `out_len` must be in 1..8160
// (255 * 32, RFC 5869 section 2.3); an empty salt means a zero-filled salt.
StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm,
                                 std::span<const uint8_t> salt,
                                 std::span<const uint8_t> info, size_t out_len);

// The HKDF `info` volmgr's protectors use: the ASCII `label` (which names
// the protector kind and its version) followed by the raw `context` bytes
// (the protector's UUID), with no separator or length prefix; labels are
// fixed strings, so the split is unambiguous.
std::vector<uint8_t> HkdfInfo(std::string_view label,
                              std::span<const uint8_t> context);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_HKDF_H_
