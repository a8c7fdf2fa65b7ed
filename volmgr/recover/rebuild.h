// Rebuilding a destroyed LUKS2 header from a key package: a new header with
// the SAME FVEK, UUID, cipher, sector size and data offset, so the data
// segment is untouched and decrypts as before; then a VMK keyslot, the
// volmgr-volume token, and the package's recovery password again (same
// password, same recovery ID), as keyslot + protector, so the printed
// password keeps working with volmgr and stock cryptsetup. A package sealed
// to an agent certificate gets a new recovery password instead.
//
// Thread-safety: none.
#ifndef VOLMGR_RECOVER_REBUILD_H_
#define VOLMGR_RECOVER_REBUILD_H_

#include <string>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/base/uuid.h"
#include "volmgr/keys/recovery_password.h"
#include "volmgr/recover/key_package.h"

namespace volmgr::recover {

struct RebuildPlan {
  std::string device;
  uint64_t device_bytes = 0;
  // What a rebuild writes, one line each (for --dry-run and the log).
  std::vector<std::string> changes;
};

// Checks, without writing: the device is large enough; no surviving header
// names another volume (kFailedPrecondition naming both UUIDs); an intact
// header needs no rebuild (kFailedPrecondition unless `force`); the data at
// the package's offset decrypts with the package's FVEK to the package's
// checksum (kFailedPrecondition: "not the data of volume X"); blank data
// (all one byte value) proves nothing and is refused unless `force`
// (data_proof.h).
StatusOr<RebuildPlan> PlanRebuild(const std::string& device,
                                  const KeyPackageHeader& header,
                                  const KeyPackageSecret& secret, bool force);

// Writes the new header (holding the volume lock) with `rp` as its recovery
// password protector under `recovery_id` (the package's own password and ID,
// or a new pair for a package sealed to an agent certificate), then reloads
// the volume and proves that the recovery password unlocks it and yields
// the FVEK.
Status ExecuteRebuild(const RebuildPlan& plan, const KeyPackageHeader& header,
                      const KeyPackageSecret& secret,
                      const keys::RecoveryPassword& rp,
                      const Uuid& recovery_id);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_REBUILD_H_
