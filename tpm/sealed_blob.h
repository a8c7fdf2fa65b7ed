// SealedBlob: a secret sealed to this TPM, as stored on disk.
//
// Everything needed to unseal it and to explain a refusal: the TPM object
// (public and private areas as the TPM returned them), the PCR selection and
// the per-PCR values at seal time (so a later refusal names the PCR that
// changed), the policy digest, which SRK it was sealed under, and whether a
// PIN is part of the policy. The byte format is specified in
// docs/FORMAT.md, "TPM sealed blob"; Serialize/Parse below are its only
// implementation.
//
// Integrity: the blob carries no checksum of its own. The TPM protects the
// private area with an HMAC bound to the public area's Name (Part 1 §23.3),
// so a modified public or private area fails TPM2_Load; everything else is
// checked against the public area by ValidateSealedBlob before any TPM
// command, and a forged PCR value can only make the TPM refuse.
#ifndef VOLMGR_TPM_SEALED_BLOB_H_
#define VOLMGR_TPM_SEALED_BLOB_H_

#include <cstdint>
#include <span>
#include <vector>

#include "tpm/pcr_policy.h"
#include "tpm/srk.h"
#include "volmgr/base/status.h"

namespace volmgr::tpm {

inline constexpr uint16_t kSealedBlobVersion = 1;

struct SealedBlob {
  // tss2-mu marshalled TPM2B_PUBLIC and TPM2B_PRIVATE (each starts with its
  // own 2-byte big-endian size, as on the TPM wire).
  std::vector<uint8_t> public_area;
  std::vector<uint8_t> private_area;
  PcrSelection pcrs;
  std::vector<PcrValue> pcr_values;  // ascending index, one per selected PCR
  Sha256Digest pcr_digest{};         // PcrValuesDigest(pcr_values)
  Sha256Digest policy_digest{};      // == public area authPolicy
  SrkInfo srk;
  bool has_pin = false;
};

// The format v1 bytes. REQUIRES: blob passes ValidateSealedBlob.
std::vector<uint8_t> SerializeSealedBlob(const SealedBlob& blob);

// Parses and validates. Errors: kCorruption for anything malformed or
// inconsistent (message says what); kUnsupported for a later version.
StatusOr<SealedBlob> ParseSealedBlob(std::span<const uint8_t> bytes);

// The consistency checks Parse runs, usable on a blob built in memory:
// pcr_values match pcrs, pcr_digest and policy_digest recompute, the public
// area unmarshals to a KEYEDHASH object whose authPolicy is policy_digest,
// userWithAuth is clear (only the policy can authorise), fixedTPM and
// fixedParent are set, and noDA is set exactly when there is no PIN.
// Errors: kCorruption.
Status ValidateSealedBlob(const SealedBlob& blob);

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_SEALED_BLOB_H_
