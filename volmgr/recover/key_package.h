// Key package: what it takes to rebuild access to a volume whose LUKS2
// header is destroyed (BitLocker's idea), sealed under one of the volume's
// recovery passwords (version 1) or to a data-recovery-agent certificate
// (version 2). Byte layout: docs/FORMAT.md, "Key package".
//
//   clear header  magic, version, volume UUID, recovery ID, salt, creation
//                 time, label; version 2 adds the sealer (certificate), the
//                 certificate's SHA-256 fingerprint and subject, and the
//                 key encapsulation          (= the AES-GCM AAD)
//   sealed        FVEK, cipher, sector size, data offset, payload size,
//                 iv offset, SHA-256 of the first decrypted data bytes
//
// Version 1: KEK = HKDF-SHA256(recovery key, salt, "volmgr key-package v1"
// || recovery ID, 32). Version 2: KEK = x509::Encapsulate to the agent
// certificate's public key with info = "volmgr key-package v2 agent" ||
// volume UUID || salt (RSA-OAEP-SHA256 or ECDH P-256/P-384 + HKDF).
// Anyone holding the package and the recovery password (or the agent's
// private key) can decrypt the whole volume: guard it like them.
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
#include "volmgr/x509/certificate.h"
#include "volmgr/x509/public_key_wrap.h"

namespace volmgr::recover {

inline constexpr std::string_view kKeyPackageMagic = "VMGRKPKG";
inline constexpr uint16_t kKeyPackageVersion = 1;       // recovery password
inline constexpr uint16_t kKeyPackageAgentVersion = 2;  // agent certificate
inline constexpr std::string_view kKeyPackageKdfLabel = "volmgr key-package v1";
inline constexpr std::string_view kKeyPackageAgentLabel =
    "volmgr key-package v2 agent";

// What a package is sealed under.
enum class KeyPackageSealer : uint8_t {
  kRecoveryPassword = 1,
  kCertificate = 2,
};
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
  KeyPackageSealer sealer = KeyPackageSealer::kRecoveryPassword;
  // kCertificate only (recovery_id is then the nil UUID):
  std::string cert_sha256;   // hex SHA-256 of the certificate's DER
  std::string cert_subject;  // one line, at most 255 bytes
  x509::Encapsulation encapsulation;
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

// Seals a new package to an agent certificate (version 2): only the holder
// of its private key opens it. A fresh salt is drawn. kInvalidArgument for
// a key type x509::AlgorithmFor refuses.
StatusOr<std::vector<uint8_t>> SealKeyPackageForAgent(
    KeyPackageHeader header, const KeyPackageSecret& secret,
    const x509::Certificate& agent);

// Parses the clear header only. kCorruption for a short or malformed file,
// kUnsupported for an unknown version.
StatusOr<KeyPackageHeader> ReadKeyPackageHeader(std::span<const uint8_t> file);

// Opens the package. kAuthFailed when `rp` is not the package's recovery
// password (or any byte was changed); kCorruption for malformed contents.
StatusOr<KeyPackageSecret> OpenKeyPackage(std::span<const uint8_t> file,
                                          const keys::RecoveryPassword& rp);

// Opens a version 2 package with the agent's private key. kAuthFailed when
// `key` is not the agent's (or any byte was changed); kInvalidArgument for
// a package sealed under a recovery password.
StatusOr<KeyPackageSecret> OpenKeyPackageWithAgent(
    std::span<const uint8_t> file, const x509::PrivateKeyOps& key);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_KEY_PACKAGE_H_
