// Key package: what it takes to rebuild access to a volume whose LUKS2
// header is destroyed (BitLocker's idea), sealed under one of the volume's
// recovery passwords. Byte layout: docs/FORMAT.md, "Key package".
//
//   clear header  magic, version, volume UUID, recovery ID, HKDF salt,
//                 creation time, label          (= the AES-GCM AAD)
//   sealed        FVEK, cipher, sector size, data offset, payload size,
//                 iv offset, SHA-256 of the first decrypted data bytes
//
// KEK = HKDF-SHA256(recovery key, salt, "volmgr key-package v1" || recovery
// ID, 32). Anyone holding the package and the recovery password can decrypt
// the whole volume: guard it like the recovery password.
//
// Thread-safety: free functions, reentrant.
#ifndef VOLMGR_RECOVER_KEY_PACKAGE_H_
#define VOLMGR_RECOVER_KEY_PACKAGE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/base/uuid.h"
#include "volmgr/keys/recovery_password.h"

namespace volmgr::recover {

inline constexpr std::string_view kKeyPackageMagic = "VMGRKPKG";
inline constexpr uint16_t kKeyPackageVersion = 1;
inline constexpr std::string_view kKeyPackageKdfLabel = "volmgr key-package v1";
// The package checksums at most this many bytes at the start of the data.
inline constexpr uint32_t kKeyPackageCheckBytes = 1u << 20;

// The clear part: readable without the password, authenticated by it.
struct KeyPackageHeader {
  uint16_t version = kKeyPackageVersion;
  Uuid volume_uuid;
  Uuid recovery_id;
  std::array<uint8_t, 32> salt{};
  int64_t created_unix = 0;
  std::string label;  // at most 255 bytes
};

// The sealed part.
struct KeyPackageSecret {
  SecretBytes fvek;  // 64 bytes, AES-256-XTS
  std::string cipher = "aes-xts-plain64";
  uint32_t sector_size = 0;
  uint64_t data_offset_bytes = 0;
  uint64_t payload_bytes = 0;
  uint64_t iv_offset = 0;
  uint32_t check_bytes = 0;  // bytes hashed at the start of the plaintext
  std::array<uint8_t, 32> check_sha256{};
};

// Seals a new package. A fresh salt is drawn (header.salt is overwritten).
StatusOr<std::vector<uint8_t>> SealKeyPackage(KeyPackageHeader header,
                                              const KeyPackageSecret& secret,
                                              const keys::RecoveryPassword& rp);

// Parses the clear header only. kCorruption for a short or malformed file,
// kUnsupported for an unknown version.
StatusOr<KeyPackageHeader> ReadKeyPackageHeader(std::span<const uint8_t> file);

// Opens the package. kAuthFailed when `rp` is not the package's recovery
// password (or any byte was changed); kCorruption for malformed contents.
StatusOr<KeyPackageSecret> OpenKeyPackage(std::span<const uint8_t> file,
                                          const keys::RecoveryPassword& rp);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_KEY_PACKAGE_H_
