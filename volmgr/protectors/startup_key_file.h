// The startup key file shared by the startup-key and TPM+startup-key
// protectors (docs/FORMAT.md "Startup key file"):
//   "VMGRSK01" (8) || protector ID (16, UUID bytes) || key (32)
// 56 bytes, created with mode 0400 and never overwritten. The ID lets volmgr
// say which protector a file belongs to.
#ifndef VOLMGR_PROTECTORS_STARTUP_KEY_FILE_H_
#define VOLMGR_PROTECTORS_STARTUP_KEY_FILE_H_

#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/base/uuid.h"

namespace volmgr::protectors {

inline constexpr size_t kStartupKeyBytes = 32;
inline constexpr size_t kStartupKeyFileBytes = 8 + 16 + kStartupKeyBytes;

// A new file image for protector `id` with 32 fresh random key bytes.
StatusOr<SecretBytes> NewStartupKeyFile(const Uuid& id);

// The 32 key bytes of a file image.
// REQUIRES: `file` came from NewStartupKeyFile or ReadStartupKey.
StatusOr<SecretBytes> StartupKeyOf(const SecretBytes& file);

// Writes a file image to `path`, or to "<path>/<id>.BEK" when `path` is a
// directory (BitLocker's naming). Returns the path written.
// Errors: kAlreadyExists if the file exists; I/O errors.
StatusOr<std::string> WriteStartupKeyFile(const std::string& path,
                                          const std::string& id,
                                          const SecretBytes& file);

// The file image of the first of `paths` that belongs to protector `id`.
// Errors: kNotFound (no path given, or every file belongs to another
// protector: names it), kInvalidArgument (a file that is not a volmgr
// startup key), I/O errors reading one.
StatusOr<SecretBytes> ReadStartupKey(const std::vector<std::string>& paths,
                                     const Uuid& id,
                                     const std::string& protector_id);

}  // namespace volmgr::protectors

#endif  // VOLMGR_PROTECTORS_STARTUP_KEY_FILE_H_
