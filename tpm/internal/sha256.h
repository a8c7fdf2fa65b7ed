// SHA-256 over a list of byte ranges, for policy digests and the PIN's
// authValue. Not part of the public API.
#ifndef VOLMGR_TPM_INTERNAL_SHA256_H_
#define VOLMGR_TPM_INTERNAL_SHA256_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>

namespace volmgr::tpm::internal {

// REQUIRES: out.size() == 32. Returns false only if OpenSSL fails.
bool Sha256Into(std::initializer_list<std::span<const uint8_t>> parts,
                std::span<uint8_t> out);

inline std::array<uint8_t, 32> Sha256(
    std::initializer_list<std::span<const uint8_t>> parts) {
  std::array<uint8_t, 32> out{};
  Sha256Into(parts, out);
  return out;
}

}  // namespace volmgr::tpm::internal

#endif  // VOLMGR_TPM_INTERNAL_SHA256_H_
