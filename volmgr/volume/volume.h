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
// `volmgr purge` leaves this LUKS2 subsystem followed by the time (RFC 3339,
// UTC), so a purged volume is told apart from one volmgr never made.
inline constexpr std::string_view kPurgedSubsystemPrefix = "volmgr purged ";
// LUKS2's default header (16 MiB incl. keyslot area) plus 1 MiB of data.
inline constexpr uint64_t kMinDeviceBytes = 17ull << 20;

// The "volmgr-volume" token (docs/FORMAT.md) naming the VMK keyslot. With
// `wrapped_fvek` (base64 of the FVEK wrapped under the VMK, FvekWrapContext)
// it is a version 2 token, else version 1.
std::string VolumeTokenJson(int vmk_keyslot, const std::string& created,
                            const std::string& wrapped_fvek = "");

// The AES-GCM binding of the FVEK wrapped under the VMK: purpose "fvek" and
// the volume UUID (no protector).
crypto::WrapContext FvekWrapContext(const std::string& volume_uuid);

struct FormatSpec {
  std::string device;
  uint32_t sector_size = 4096;
  std::string label;
  bool force = false;  // overwrite existing filesystems / partition tables
  bool recovery_password = true;
  const SecretBytes* passphrase = nullptr;  // adds a passphrase protector
  std::string startup_key_file;             // adds a startup-key protector
  crypto::Argon2Params argon2{};            // zeros: calibrate
  // Adds a TPM protector (PCRs, PIN, startup-key file and TCTI as for
  // `protector add tpm`). The TPM is checked before the device is written.
  std::optional<protectors::CreateRequest> tpm;
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
  // The protector that opened; for the clear key of a suspended volume, a
  // record of kind kClearKeyKind (no handler).
  protectors::ProtectorRecord used;
};

// A protector that was tried and did not open, with why: the CLI reports a
// TPM refusal ("TPM refused: PCR 7 changed ...") before falling back.
struct UnlockFailure {
  std::string protector_id;
  std::string kind;
  Status status;
};

// BitLocker's "suspended protection": the VMK in clear in a
// volmgr-clear-key token (docs/FORMAT.md). Not a protector.
inline constexpr std::string_view kClearKeyTokenType = "volmgr-clear-key";
inline constexpr std::string_view kClearKeyKind = "clear-key";

// A volmgr token that could not be read (a missing field, a wrong JSON type,
// parameters its handler rejects): skipped, reported in warnings(), and
// removable with RemoveProtector("token:N") or by its protector ID.
struct DamagedToken {
  int token_id = -1;
  std::string type;           // "volmgr-passphrase"
  std::string id;             // the protector ID if it could be read
  std::vector<int> keyslots;  // if they could be read
};

struct ClearKeyInfo {
  int token_id = -1;
  // Unlocks left; 0 = until `resume`.
  uint32_t remaining = 0;
  std::string created;
};

// How TPM protectors are re-bound to the current PCR values.
struct ResealRequest {
  std::vector<uint32_t> pcrs;                  // empty: each keeps its PCR set
  std::string tcti;                            // empty: device:/dev/tpmrm0
  const SecretBytes* pin = nullptr;            // for TPM+PIN protectors
  std::vector<std::string> startup_key_files;  // for TPM+startup key ones
};

struct ResealOutcome {
  std::string protector_id;
  Status status;        // per protector: one may fail while others succeed
  std::string summary;  // Describe() after resealing
};

struct ClearKeyUnlock {
  UnlockResult unlock;
  bool until_resume = false;
  uint32_t remaining = 0;  // unlocks left after this one
  bool resumed = false;    // this was the last one: clear key removed
  std::vector<ResealOutcome> resealed;  // when resumed
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
  //
  // Access::kReadOnly for commands that only read (status, protector list,
  // open --test, header backup, key package export, unlock --probe):
  // nothing reaches the device, not even libcryptsetup's repair of a damaged
  // header copy, which is then reported in warnings(). The methods that
  // change the volume take the VolumeLock and re-read the header writable
  // first, whatever `access` was.
  static StatusOr<Volume> Load(const std::string& device,
                               Access access = Access::kReadWrite);

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
  const std::vector<DamagedToken>& damaged_tokens() const { return damaged_; }

  // Finds the protector(s) that can use `creds` and recovers the VMK,
  // proving it against the VMK keyslot. TPM protectors are tried first
  // (they need no typing); when they fail the others are tried, and each
  // failure is appended to `failures` if given. Errors: kInvalidArgument for
  // a malformed recovery password (names the group); kAuthFailed if the
  // credentials opened nothing (the message adds the TPM's reason); when
  // only TPM protectors could be tried, the TPM's own error (kPinRequired,
  // kAuthFailed "TPM refused: PCR 7 changed ...", kUnavailable for no TPM
  // or lockout, kCorruption); kNotFound if no protector accepts the kind of
  // credential given. Never uses the clear key (UnlockWithClearKey).
  StatusOr<UnlockResult> Unlock(
      const protectors::Credentials& creds,
      std::vector<UnlockFailure>* failures = nullptr) const;

  // Set while protection is suspended.
  const std::optional<ClearKeyInfo>& clear_key() const { return clear_key_; }

  // The VMK from the clear key, proved against the VMK keyslot. With
  // `count`, the unlock is counted under the VolumeLock: the last allowed
  // one reseals the TPM protectors to the current PCRs (`reseal`, best
  // effort: outcomes in the result) and removes the clear key, whatever the
  // reseal gave. kNotFound when protection is not suspended.
  StatusOr<ClearKeyUnlock> UnlockWithClearKey(bool count,
                                              const ResealRequest& reseal);

  // Suspends protection: writes (or replaces) the clear key, valid for
  // `unlocks` unlocks (0: until Resume). kFailedPrecondition without a TPM
  // protector (suspension exists to survive a PCR change).
  Status Suspend(const SecretBytes& vmk, uint32_t unlocks);

  // Reseals the TPM protectors with the clear key's VMK, then removes the
  // clear key (also when a reseal failed: see the outcomes).
  // kFailedPrecondition when not suspended.
  StatusOr<std::vector<ResealOutcome>> Resume(const ResealRequest& reseal);

  // Re-binds every TPM protector to the current PCR values (or req.pcrs),
  // in place: same protector ID, new TPM secret, salt and wrap. kNotFound
  // without TPM protectors; per-protector errors in the outcomes.
  StatusOr<std::vector<ResealOutcome>> Reseal(const SecretBytes& vmk,
                                              const ResealRequest& req);

  // Creates /dev/mapper/`name` (needs the kernel's dm-crypt).
  Status Activate(const std::string& name, const SecretBytes& vmk,
                  const ActivateOptions& options);

  // Adds a protector of `kind` wrapping `vmk`.
  StatusOr<NewProtector> AddProtector(const SecretBytes& vmk,
                                      std::string_view kind,
                                      const protectors::CreateRequest& req);

  // Removes protector `id` (full UUID or an unambiguous prefix of >= 8
  // characters). Refuses to remove the last protector that can unlock.
  // A damaged token (damaged_tokens()) is named by its protector ID or by
  // "token:N"; removing it never counts as losing a protector. Its keyslot
  // goes with it only when it is a recovery password's own keyslot that no
  // intact protector uses.
  Status RemoveProtector(const std::string& id);

  // Replaces recovery password `id` (or the only one, if `id` is empty) by
  // a new one: the new keyslot and token are written before the old ones
  // are destroyed, so a crash leaves at least one working password.
  StatusOr<NewProtector> RotateRecoveryPassword(const SecretBytes& vmk,
                                                const std::string& id);

  // The FVEK: unwrapped from the volume token (version 2, checked against
  // the header's volume-key digest), else through the VMK keyslot.
  // kAuthFailed if `vmk` is not this volume's VMK.
  StatusOr<SecretBytes> ReadFvek(const SecretBytes& vmk) const;

  // Active dm-crypt mappings of this volume (by its LUKS UUID in sysfs).
  std::vector<std::string> ActiveMappingNames() const;

  // Resolves an ID or unique prefix to a protector; kNotFound /
  // kInvalidArgument (ambiguous).
  StatusOr<const protectors::ProtectorRecord*> FindProtector(
      const std::string& id) const;

 private:
  explicit Volume(LuksDevice luks) : luks_(std::move(luks)) {}
  Status ParseTokens();
  // Re-reads the header (writable: every caller holds the VolumeLock and is
  // about to change the volume).
  Status Reload();
  StatusOr<NewProtector> AddProtectorLocked(
      const SecretBytes& vmk, std::string_view kind,
      const protectors::CreateRequest& req);
  Status RemoveProtectorLocked(const protectors::ProtectorRecord& p);
  // The damaged token named by `id` ("token:N", its protector ID or an
  // unambiguous prefix), or nullptr.
  const DamagedToken* FindDamagedToken(const std::string& id) const;
  Status RemoveDamagedTokenLocked(const DamagedToken& d);
  std::vector<ResealOutcome> ResealLocked(const SecretBytes& vmk,
                                          const ResealRequest& req);
  StatusOr<SecretBytes> ClearKeyVmk() const;
  // Proves `vmk` is this volume's VMK (ReadFvek without keeping the key).
  Status CheckVmk(const SecretBytes& vmk) const;

  LuksDevice luks_;
  int volume_token_ = -1;
  int vmk_keyslot_ = -1;
  std::string wrapped_fvek_;  // base64; empty for a version 1 token
  std::string created_;
  std::vector<protectors::ProtectorRecord> protectors_;
  std::vector<std::string> warnings_;
  std::vector<DamagedToken> damaged_;
  std::optional<ClearKeyInfo> clear_key_;
};

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_VOLUME_H_
