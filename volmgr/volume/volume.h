// Volume: the FVEK / VMK / protector hierarchy on a LUKS2 container.
//
//   data  --AES-256-XTS (dm-crypt)-->  FVEK (64 bytes, the LUKS2 volume key)
//   FVEK  <--keyslot "vmk"--           VMK  (32 random bytes as passphrase)
//   VMK   <--AES-256-GCM wrap--        each protector's KEK (token volmgr-*)
//   FVEK  <--keyslot "recovery"--      recovery password text (stock
//                                      cryptsetup interop)
//
// docs/FORMAT.md specifies every token. All changes hold a VolumeLock and
// re-read the header under it, so two volmgr processes cannot interleave.
//
// Thread-safety: none; one Volume per thread.
#ifndef VOLMGR_VOLUME_VOLUME_H_
#define VOLMGR_VOLUME_VOLUME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/crypto/argon2id.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/luks_device.h"

namespace volmgr::volume {

inline constexpr size_t kFvekBytes = 64;  // AES-256-XTS: two 256-bit keys
inline constexpr size_t kVmkBytes = 32;
inline constexpr std::string_view kSubsystem = "volmgr";
// LUKS2's default header (16 MiB incl. keyslot area) plus 1 MiB of data.
inline constexpr uint64_t kMinDeviceBytes = 17ull << 20;

struct FormatSpec {
  std::string device;
  uint32_t sector_size = 4096;
  std::string label;
  bool force = false;  // overwrite existing filesystems / partition tables
  bool recovery_password = true;
  const SecretBytes* passphrase = nullptr;  // adds a passphrase protector
  std::string startup_key_file;             // adds a startup-key protector
  crypto::Argon2Params argon2{};            // zeros: calibrate
};

// A protector just created, with the secret to show the user once.
struct NewProtector {
  protectors::ProtectorRecord record;
  std::optional<SecretBytes> shown_secret;
};

struct FormatResult {
  std::string uuid;
  std::vector<NewProtector> protectors;
};

struct UnlockResult {
  SecretBytes vmk;
  protectors::ProtectorRecord used;
};

class Volume {
 public:
  // Creates a new volume on spec.device. Refuses (kFailedPrecondition) a
  // device holding a filesystem, partition table or LUKS header unless
  // spec.force, one in use (kBusy), or one under kMinDeviceBytes
  // (kInvalidArgument). Validates every input before writing anything.
  static StatusOr<FormatResult> Format(const FormatSpec& spec);

  // Reads a volmgr volume. kFailedPrecondition for a LUKS2 volume that
  // volmgr did not make (no volmgr-volume token) or a device without LUKS;
  // kCorruption for a damaged header.
  static StatusOr<Volume> Load(const std::string& device);

  const std::string& device() const { return luks_.path(); }
  std::string uuid() const { return luks_.uuid(); }
  const LuksDevice& luks() const { return luks_; }
  int vmk_keyslot() const { return vmk_keyslot_; }
  const std::string& created() const { return created_; }
  const std::vector<protectors::ProtectorRecord>& protectors() const {
    return protectors_;
  }
  // Things found but left alone: tokens of kinds this build does not know
  // (from a newer volmgr), damaged tokens. Each a sentence for the user.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Finds the protector(s) that can use `creds` and recovers the VMK,
  // proving it against the VMK keyslot. kAuthFailed if nothing opened,
  // kInvalidArgument for a malformed recovery password (names the group),
  // kNotFound if no protector accepts the kind of credential given.
  StatusOr<UnlockResult> Unlock(const protectors::Credentials& creds) const;

  // Creates /dev/mapper/`name` (needs the kernel's dm-crypt).
  Status Activate(const std::string& name, const SecretBytes& vmk,
                  const ActivateOptions& options);

  // Adds a protector of `kind` wrapping `vmk`.
  StatusOr<NewProtector> AddProtector(const SecretBytes& vmk,
                                      std::string_view kind,
                                      const protectors::CreateRequest& req);

  // Removes protector `id` (full UUID or an unambiguous prefix of >= 8
  // characters). Refuses to remove the last protector that can unlock.
  Status RemoveProtector(const std::string& id);

  // Replaces recovery password `id` (or the only one, if `id` is empty) by
  // a new one: the new keyslot and token are written before the old ones
  // are destroyed, so a crash leaves at least one working password.
  StatusOr<NewProtector> RotateRecoveryPassword(const SecretBytes& vmk,
                                                const std::string& id);

  // The FVEK, through the VMK keyslot (admin recovery; key packages).
  StatusOr<SecretBytes> ReadFvek(const SecretBytes& vmk);

  // Active dm-crypt mappings of this volume (by its LUKS UUID in sysfs).
  std::vector<std::string> ActiveMappingNames() const;

  // Resolves an ID or unique prefix to a protector; kNotFound /
  // kInvalidArgument (ambiguous).
  StatusOr<const protectors::ProtectorRecord*> FindProtector(
      const std::string& id) const;

 private:
  explicit Volume(LuksDevice luks) : luks_(std::move(luks)) {}
  Status ParseTokens();
  Status Reload();
  StatusOr<NewProtector> AddProtectorLocked(
      const SecretBytes& vmk, std::string_view kind,
      const protectors::CreateRequest& req);
  Status RemoveProtectorLocked(const protectors::ProtectorRecord& p);

  LuksDevice luks_;
  int volume_token_ = -1;
  int vmk_keyslot_ = -1;
  std::string created_;
  std::vector<protectors::ProtectorRecord> protectors_;
  std::vector<std::string> warnings_;
};

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_VOLUME_H_
