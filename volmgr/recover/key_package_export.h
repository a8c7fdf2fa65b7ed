// Making a key package from a live volume: unlock it, take the FVEK,
// geometry and the checksum of the first data bytes, and seal them under
// the recovery password that unlocked it, or to a data recovery agent's
// certificate (key_package.h). Shared by
// `volmgr keypackage export` and `volmgr-recover keypackage export`.
//
// Thread-safety: reentrant.
#ifndef VOLMGR_RECOVER_KEY_PACKAGE_EXPORT_H_
#define VOLMGR_RECOVER_KEY_PACKAGE_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::recover {

struct ExportedKeyPackage {
  std::vector<uint8_t> file;  // the sealed package, ready to write
  std::string volume_uuid;
  std::string recovery_id;         // of the sealing recovery password, or empty
  std::string certificate_sha256;  // of the agent certificate, or empty
  std::string certificate_subject;  // of the agent certificate, or empty
  // The first data bytes the package's checksum covers are blank (all one
  // byte value: never written, or discarded): the checksum cannot prove
  // that a device holds this volume (data_proof.h), so a rebuild from this
  // package will need --force. Worth a warning, not an error.
  bool data_blank = false;
};

// Unlocks the volmgr volume `device` with `typed`, which must be one of its
// recovery passwords (`recovery_id`, if not empty, picks which), and seals a
// new package. Errors: those of Volume::Load / Unlock (kAuthFailed for a
// wrong password, kInvalidArgument naming the group of a typo);
// kInvalidArgument when `typed` opened another kind of protector (the
// message names it); kIoError when the first data bytes cannot be read.
StatusOr<ExportedKeyPackage> ExportKeyPackage(const std::string& device,
                                              SecretBytes typed,
                                              const std::string& recovery_id);

// Unlocks `device` with `typed` (any of its passphrase, recovery password
// or key-file protectors) and seals a new package to the data recovery
// agent certificate at `certificate_path` (PEM or DER). Refuses
// (kInvalidArgument) an expired certificate or one without the key usage
// for key encipherment / key agreement, as protector enrolment does.
StatusOr<ExportedKeyPackage> ExportKeyPackageForAgent(
    const std::string& device, SecretBytes typed,
    const std::string& certificate_path);

// Writes a package to a new file, mode 0400, fsync'ed. kAlreadyExists if
// `path` exists: a key package is never overwritten.
Status WriteKeyPackage(const std::string& path,
                       const std::vector<uint8_t>& file);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_KEY_PACKAGE_EXPORT_H_
