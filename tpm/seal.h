// Sealing a secret to this TPM's PCRs (and optionally a PIN), and unsealing
// it again.
//
//   Seal:   TPM2_Create of a KEYEDHASH "sealed data" object under the SRK
//           (Part 3 §12.1), sensitive.data = the secret, authPolicy =
//           PolicyPCR(sha256, pcrs) [+ PolicyAuthValue], authValue =
//           SHA-256(PIN) or empty. userWithAuth is clear, so only the policy
//           can authorise TPM2_Unseal (Part 1 §19.7.1); fixedTPM|fixedParent
//           keep it on this TPM. noDA is set without a PIN (nothing to guess)
//           and CLEAR with one, so every wrong PIN counts towards the TPM's
//           dictionary-attack lockout (Part 1 §19.8.6).
//   Unseal: first compares the PCRs against the values recorded at seal
//           time and refuses, naming the PCRs that changed, before asking
//           the TPM; then TPM2_Load, a *salted* policy session with AES-128-
//           CFB parameter encryption (Part 1 §19.6.13, §21), TPM2_PolicyPCR
//           [+ TPM2_PolicyAuthValue], TPM2_Unseal. The unsealed bytes are
//           encrypted on the bus and copied straight into SecretBytes; the
//           tpm2-tss buffer is wiped before it is freed.
//
// Both commands that carry the secret (TPM2_Create's inSensitive and
// TPM2_Unseal's outData) run in sessions salted with the SRK, so a passive
// observer of the TPM bus sees neither the secret nor the PIN's authValue.
//
// The PIN is hashed (SHA-256) to form the object's authValue; the PIN never
// reaches the TPM. Rate limiting of PIN guesses is the TPM's DA logic.
//
// Thread-safety: as Tpm.
#ifndef VOLMGR_TPM_SEAL_H_
#define VOLMGR_TPM_SEAL_H_

#include <optional>

#include "tpm/pcr_policy.h"
#include "tpm/sealed_blob.h"
#include "tpm/tpm_context.h"
#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::tpm {

// Largest secret a sealed data object holds (MAX_SYM_DATA, Part 2 §10.4.3
// TPM2B_SENSITIVE_DATA; 128 in the reference implementation and PC Client).
inline constexpr size_t kMaxSealedSecretSize = 128;

// Seals `secret` (1..128 bytes) to the *current* values of `pcrs`, and to
// `pin` when given (non-empty). Errors: kInvalidArgument (secret size, empty
// PIN, empty selection); kFailedPrecondition (owner auth set, PCR bank not
// active); kUnavailable (no TPM, lockout); TssError codes otherwise.
StatusOr<SealedBlob> Seal(Tpm& tpm, const SecretBytes& secret,
                          const PcrSelection& pcrs,
                          const std::optional<SecretBytes>& pin);

// Unseals. Errors, in the order they are checked:
//   kCorruption      the blob is internally inconsistent, or TPM2_Load says
//                    its public/private areas were not made by this TPM
//   kPinRequired     blob.has_pin and no PIN given
//   kAuthFailed      a PCR differs from its sealed value ("PCR 7 changed
//                    (sealed 3a9f…, now 51c2…)"), the TPM's policy check
//                    failed, or the PIN is wrong
//   kFailedPrecondition  the SRK is not the one sealed under (TPM cleared,
//                    other machine, different persistent SRK)
//   kUnavailable     no TPM; dictionary-attack lockout ("lockout")
// A PIN given for a blob without one is ignored.
StatusOr<SecretBytes> Unseal(Tpm& tpm, const SealedBlob& blob,
                             const std::optional<SecretBytes>& pin);

// Seal, then Unseal and compare: what enrolment calls before it writes a
// token, so a token that cannot be opened is never written.
// Errors: those of Seal and Unseal; kInternal if the round trip returned
// different bytes.
StatusOr<SealedBlob> SealAndVerify(Tpm& tpm, const SecretBytes& secret,
                                   const PcrSelection& pcrs,
                                   const std::optional<SecretBytes>& pin);

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_SEAL_H_
