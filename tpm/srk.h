// The storage root key (SRK) that volmgr seals under.
//
// If the owner provisioned an SRK at the well-known persistent handle
// 0x81000001 (TCG TPM v2.0 Provisioning Guidance §7.8, "Storage Root Key"),
// that key is used. Otherwise the SRK is re-created on each use with
// TPM2_CreatePrimary in the owner hierarchy from the Provisioning Guidance
// SRK template (§7.5.1): the owner seed makes the same template give the
// same key every time, so nothing needs to be stored in the TPM's NV.
// The template:
//   type ECC NIST P-256 (RSA 2048 if the TPM lacks ECC P-256), nameAlg SHA-256
//   objectAttributes fixedTPM | fixedParent | sensitiveDataOrigin |
//                    userWithAuth | noDA | restricted | decrypt
//   authPolicy empty, symmetric AES-128-CFB, scheme NULL, ECC kdf NULL,
//   RSA exponent 0 (= 2^16+1), unique empty.
// This is also what systemd-cryptenroll and tpm2-tools create, so a volmgr
// SRK and theirs are the same key.
//
// Creating the primary needs the owner hierarchy with an empty auth value;
// if the owner set a password, the error is kFailedPrecondition and the fix
// is to persist an SRK at 0x81000001.
#ifndef VOLMGR_TPM_SRK_H_
#define VOLMGR_TPM_SRK_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "tpm/tpm_context.h"
#include "tpm/tss_handles.h"
#include "volmgr/base/status.h"

namespace volmgr::tpm {

inline constexpr TPM2_HANDLE kSrkPersistentHandle = 0x81000001;

// Stored in sealed blobs: values are part of the format.
enum class SrkAlgorithm : uint8_t {
  kEccP256 = 1,
  kRsa2048 = 2,
};

struct SrkInfo {
  bool persistent = false;
  SrkAlgorithm algorithm = SrkAlgorithm::kEccP256;
  // The TPM Name: nameAlg (2 bytes, 0x000B) || SHA-256(TPMT_PUBLIC)
  // (Part 1 §16). Identifies the key independently of its handle.
  std::vector<uint8_t> name;
  friend bool operator==(const SrkInfo&, const SrkInfo&) = default;
};

class Srk {
 public:
  // The persistent SRK if there is one, else a transient primary of
  // `algorithm`, or (unset) ECC P-256 with RSA 2048 as fallback.
  // Errors: kFailedPrecondition when the persistent handle holds something
  // that is not a storage key, or the owner hierarchy has a password;
  // TssError codes otherwise.
  static StatusOr<Srk> LoadOrCreate(
      Tpm& tpm, std::optional<SrkAlgorithm> algorithm = std::nullopt);

  // Always a transient primary from the template; ignores 0x81000001.
  static StatusOr<Srk> CreatePrimary(Tpm& tpm, SrkAlgorithm algorithm);

  ESYS_TR handle() const { return tr_.get(); }
  const SrkInfo& info() const { return info_; }

  // Flushes a transient SRK now (a persistent one is only closed in ESYS).
  // Sessions salted with it and objects loaded under it stay usable; a
  // resource manager then has one object fewer to swap per command.
  // handle() is ESYS_TR_NONE afterwards.
  void Release() { tr_.Reset(); }

 private:
  Srk(EsysTr tr, SrkInfo info) : tr_(std::move(tr)), info_(std::move(info)) {}
  // *absent is set when nothing is stored at kSrkPersistentHandle.
  static StatusOr<Srk> LoadPersistent(Tpm& tpm, bool* absent);

  EsysTr tr_;
  SrkInfo info_;
};

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_SRK_H_
