// Test-only entry points. Nothing outside tests/ may include this header.
#ifndef VOLMGR_TPM_INTERNAL_UNSEAL_TESTING_H_
#define VOLMGR_TPM_INTERNAL_UNSEAL_TESTING_H_

#include <optional>

#include "tpm/sealed_blob.h"
#include "tpm/tpm_context.h"
#include "volmgr/base/secret_bytes.h"

namespace volmgr::tpm::internal {

// Unseal exactly as tpm::Unseal does, but with the session's ENCRYPT and
// DECRYPT attributes clear: the secret crosses the bus in plaintext. Exists
// only so the bus test can show that its log scan detects a leak.
StatusOr<SecretBytes> UnsealWithoutParameterEncryptionForTesting(
    Tpm& tpm, const SealedBlob& blob, const std::optional<SecretBytes>& pin);

}  // namespace volmgr::tpm::internal

#endif  // VOLMGR_TPM_INTERNAL_UNSEAL_TESTING_H_
