// PCR selections, PCR reads and the PolicyPCR [+ PolicyAuthValue] policy a
// sealed key is bound to.
//
// A sealed object's authPolicy is the digest of the policy commands that
// must run in a policy session before TPM2_Unseal succeeds (Part 1 §19.7).
// volmgr uses exactly two shapes, always with SHA-256 as the session hash:
//   TPM2_PolicyPCR(bank sha256, pcrs)                       (TPM only)
//   TPM2_PolicyPCR(bank sha256, pcrs); TPM2_PolicyAuthValue (TPM + PIN)
// The digest can be computed in software from PCR values (to predict or to
// check a stored policy) or by the TPM in a trial session; the two must
// agree, and the tests prove they do.
#ifndef VOLMGR_TPM_PCR_POLICY_H_
#define VOLMGR_TPM_PCR_POLICY_H_

#include <tss2/tss2_tpm2_types.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tpm/tpm_context.h"
#include "volmgr/base/status.h"

namespace volmgr::tpm {

using Sha256Digest = std::array<uint8_t, 32>;

// PCRs 0-23 of one bank: the PC Client platform's PCR count, and what a
// 3-octet pcrSelect covers (Part 2 §10.6.2, PCR_SELECT_MIN).
inline constexpr uint32_t kPcrCount = 24;

class PcrSelection {
 public:
  // An empty selection (mask 0): a placeholder, rejected by Seal.
  PcrSelection() = default;
  // REQUIRES nothing; validates. Errors: kUnsupported for a bank other than
  // TPM2_ALG_SHA256; kInvalidArgument for an index >= 24 or an empty list.
  static StatusOr<PcrSelection> Create(TPM2_ALG_ID bank,
                                       std::span<const uint32_t> pcrs);
  static StatusOr<PcrSelection> Sha256(std::span<const uint32_t> pcrs) {
    return Create(TPM2_ALG_SHA256, pcrs);
  }
  // From a bitmask (bit i = PCR i), as stored in a sealed blob.
  static StatusOr<PcrSelection> FromMask(TPM2_ALG_ID bank, uint32_t mask);

  TPM2_ALG_ID bank() const { return bank_; }
  uint32_t mask() const { return mask_; }
  // Ascending PCR indices.
  std::vector<uint32_t> Indices() const;
  // One TPMS_PCR_SELECTION with sizeofSelect = 3.
  TPML_PCR_SELECTION ToTpml() const;
  // "sha256:0,7"
  std::string ToString() const;

  friend bool operator==(const PcrSelection&, const PcrSelection&) = default;

 private:
  PcrSelection(TPM2_ALG_ID bank, uint32_t mask) : bank_(bank), mask_(mask) {}
  TPM2_ALG_ID bank_ = TPM2_ALG_SHA256;
  uint32_t mask_ = 0;
};

struct PcrValue {
  uint32_t index = 0;
  Sha256Digest digest{};
  friend bool operator==(const PcrValue&, const PcrValue&) = default;
};

// Reads the selected PCRs (TPM2_PCR_Read, repeated while the TPM returns
// fewer than asked: it returns at most 8 per call, Part 3 §22.4).
// Result in ascending index order. Errors: kFailedPrecondition when the bank
// is not allocated on this TPM; TssError codes otherwise.
StatusOr<std::vector<PcrValue>> ReadPcrs(Tpm& tpm, const PcrSelection& sel);

// H(value[i0] || value[i1] || ...) in ascending index order: the pcrDigest
// argument of TPM2_PolicyPCR (Part 3 §23.7).
Sha256Digest PcrValuesDigest(std::span<const PcrValue> values);

// Software policy digest, Part 3 §23.7 and §23.18:
//   d0 = 0^32
//   d1 = SHA256(d0 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || pcrDigest)
//   d2 = SHA256(d1 || TPM_CC_PolicyAuthValue)           (only with a PIN)
// The TPML_PCR_SELECTION is marshalled exactly as the command carries it.
// REQUIRES: values are exactly the PCRs of sel, in ascending order.
StatusOr<Sha256Digest> ComputePolicyDigest(const PcrSelection& sel,
                                           std::span<const PcrValue> values,
                                           bool with_auth_value);

// The same digest computed by the TPM: a trial session (TPM_SE_TRIAL), in
// which TPM2_PolicyPCR with an empty pcrDigest takes the TPM's current PCR
// values, then TPM2_PolicyGetDigest.
StatusOr<Sha256Digest> TrialPolicyDigest(Tpm& tpm, const PcrSelection& sel,
                                         bool with_auth_value);

// Lower-case hex of a digest; `max_bytes` > 0 shortens it and appends "…".
std::string DigestHex(std::span<const uint8_t> digest, size_t max_bytes = 0);

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_PCR_POLICY_H_
