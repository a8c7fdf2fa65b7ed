// Test helper: AES-256-XTS straight through OpenSSL EVP, one data unit per
// call, with a fresh context each time. The independent reference that
// XtsSectorTransform is compared with.
#ifndef VOLMGR_TESTS_UNIT_DMTARGET_EVP_XTS_REFERENCE_H_
#define VOLMGR_TESTS_UNIT_DMTARGET_EVP_XTS_REFERENCE_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace volmgr::dmtarget::testing {

using Tweak = std::array<uint8_t, 16>;

// Encrypts (encrypt = true) or decrypts one XTS data unit. Reports an
// OpenSSL failure with ADD_FAILURE and returns an empty vector.
std::vector<uint8_t> EvpXts(bool encrypt, std::span<const uint8_t> key,
                            const Tweak& tweak,
                            std::span<const uint8_t> data_unit);

// The tweak exactly as Linux crypt_iv_plain64_gen builds it:
// memset(iv, 0, 16); *(__le64 *)iv = cpu_to_le64(iv_sector).
Tweak KernelPlain64(uint64_t iv_sector);

// dm-crypt's whole-buffer transform, written independently of
// XtsSectorTransform: data sector k of `sector_size` bytes is one XTS data
// unit with iv_sector = (first_sector + k) * (sector_size >> 9) + iv_offset
// (no iv_large_sectors, as LUKS2).
std::vector<uint8_t> DmCryptReference(bool encrypt,
                                      std::span<const uint8_t> key,
                                      uint32_t sector_size, uint64_t iv_offset,
                                      uint64_t first_sector,
                                      std::span<const uint8_t> data);

}  // namespace volmgr::dmtarget::testing

#endif  // VOLMGR_TESTS_UNIT_DMTARGET_EVP_XTS_REFERENCE_H_
