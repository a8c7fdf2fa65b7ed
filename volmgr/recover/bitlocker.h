// Windows BitLocker volumes (dual-boot users), through libcryptsetup's BITLK
// support: recognise, describe, check a credential offline, and open a
// read-only dm-crypt mapping.
//
// Credentials libcryptsetup accepts, so we do: the password, the 48-digit
// recovery password, and a startup key (.BEK file, passed as its bytes).
// Not supported (libcryptsetup has no way to use them): TPM, TPM+PIN,
// TPM+startup key, TPM+PIN+startup key, smart card (certificate), and
// network unlock. A volume protected only by those needs its recovery
// password.
//
// There is no userspace decryption of BitLocker here: libcryptsetup does
// not expose BitLocker's segment layout (relocated boot sectors, metadata
// areas, per-segment IVs), only the dm table it builds, so reading the data
// needs the mapping, i.e. device-mapper.
//
// Thread-safety: free functions, reentrant.
#ifndef VOLMGR_RECOVER_BITLOCKER_H_
#define VOLMGR_RECOVER_BITLOCKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::recover {

struct BitlockerInfo {
  std::string guid;         // BitLocker volume GUID (crypt_get_uuid)
  std::string cipher;       // e.g. "aes-xts-plain64", "aes-cbc-eboiv"
  int volume_key_bits = 0;  // FVEK size
  uint64_t device_bytes = 0;
  // The VMK protectors, as libcryptsetup's dump names them: "password",
  // "recovery password", "startup key", "TPM", "TPM+PIN", "smart card",
  // "clear key", "unknown".
  std::vector<std::string> protectors;
  // Whether libcryptsetup (so stock cryptsetup too) would activate the
  // volume at all, whatever the credential: not when Windows has not
  // finished encrypting it (encrypt-on-write, a state other than "normal")
  // or when it holds a clear key (partly decrypted, protection suspended).
  // Then `activation_problem` is libcryptsetup's own sentence.
  bool activatable = true;
  std::string activation_problem;
  // Only a clear key protects the VMK: there is no credential to ask for.
  bool clear_key_only() const {
    return protectors.size() == 1 && protectors[0] == "clear key";
  }
};

// True if `device` holds a BitLocker volume libcryptsetup can parse.
bool IsBitlocker(const std::string& device);

// kFailedPrecondition if `device` is not a BitLocker volume. Reads only.
// With `probe_activation` (and always for a volume with a clear key, where
// it costs nothing), `activatable` is libcryptsetup's own answer: a test
// activation with no mapping and an empty passphrase, as `cryptsetup open
// --test-passphrase` (one BitLocker KDF when the volume passes the check).
// Without it, `activatable` stays true: unknown until a credential is tried.
StatusOr<BitlockerInfo> InspectBitlocker(const std::string& device,
                                         bool probe_activation);

// Why `info`'s volume cannot be activated, as a kUnsupported Status that
// says what stock cryptsetup says and what to do in Windows.
// REQUIRES: !info.activatable or info.clear_key_only().
Status NotActivatableError(const std::string& device,
                           const BitlockerInfo& info);

struct CredentialCheck {
  bool activatable = true;         // false: right credential, but see below
  std::string activation_problem;  // libcryptsetup's sentence
};

// Proves a credential offline (no device-mapper), as `cryptsetup open
// --test-passphrase`: decrypts the VMK and the FVEK with it, then wipes
// them. kAuthFailed when it opens nothing; kUnsupported for a volume
// libcryptsetup cannot unlock with it (only protectors it cannot use). A
// right credential for a volume libcryptsetup will not activate gives
// activatable false (one KDF pass either way).
StatusOr<CredentialCheck> CheckBitlockerCredential(
    const std::string& device, const SecretBytes& credential);

// Creates a read-only mapping /dev/mapper/`name`. kAuthFailed for a wrong
// credential; kUnsupported for a volume libcryptsetup cannot activate
// (NotActivatableError); kUnavailable when device-mapper or dm-crypt is
// missing; kAlreadyExists when `name` is taken.
Status OpenBitlocker(const std::string& device, const std::string& name,
                     const SecretBytes& credential);

// Removes the mapping `name`. kNotFound if absent; kBusy while in use.
Status CloseBitlocker(const std::string& name);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_BITLOCKER_H_
