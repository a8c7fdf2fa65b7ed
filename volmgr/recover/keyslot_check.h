// With a credential, `volmgr-recover check` proves the LUKS2 keyslots that
// stock cryptsetup depends on (issue 17, item 8): a volmgr volume opens
// through its tokens (the wrapped FVEK in the volmgr-volume token) even when
// its keyslot areas are destroyed, so "both header copies are intact" says
// nothing about whether `cryptsetup open` with the recovery password still
// works. This opens, read-only and without a mapping:
//   * the keyslot the credential itself opens (stock cryptsetup's path:
//     the recovery password's own keyslot, or any keyslot of a LUKS2
//     volume volmgr did not make), and
//   * for a volmgr volume, the VMK keyslot with the VMK the credential's
//     protector unwraps.
//
// REQUIRES: DisableHeaderAutoRepair() (header_check.h) was called, so that
// loading the header never writes.
// Thread-safety: none (libcryptsetup handles).
#ifndef VOLMGR_RECOVER_KEYSLOT_CHECK_H_
#define VOLMGR_RECOVER_KEYSLOT_CHECK_H_

#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::recover {

struct KeyslotCheckReport {
  std::vector<std::string> opened;    // "keyslot 1 (recovery password ...)"
  std::vector<std::string> problems;  // damage: a keyslot that must open
  bool ok() const { return problems.empty(); }
};

// kAuthFailed when the credential opens neither a keyslot nor a volmgr
// protector; header errors from loading (kCorruption, kFailedPrecondition)
// as libcryptsetup reports them.
StatusOr<KeyslotCheckReport> CheckKeyslots(const std::string& device,
                                           const SecretBytes& credential);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_KEYSLOT_CHECK_H_
