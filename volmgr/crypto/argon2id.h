// Argon2id (RFC 9106) password hashing for passphrase and PIN protectors.
//
// Always Argon2id, version 0x13 (RFC 9106 section 3.1), computed by
// libargon2. The parameters are recorded beside each protector so a volume
// unlocks on any machine with the cost it was enrolled with; only the
// calibration depends on this machine.
//
// Thread-safety: all functions are reentrant. A derivation uses
// `parallelism` threads and `memory_kib` KiB for its duration.
#ifndef VOLMGR_CRYPTO_ARGON2ID_H_
#define VOLMGR_CRYPTO_ARGON2ID_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto {

// Bounds enforced by Argon2Params::Validate. They are stricter than RFC
// 9106's so that a tampered or corrupted token cannot make an unlock run for
// hours or allocate terabytes; see docs/FORMAT.md "Key derivation".
inline constexpr uint32_t kArgon2MinTimeCost = 1;
inline constexpr uint32_t kArgon2MaxTimeCost = 1000;
inline constexpr uint32_t kArgon2MaxMemoryKib = 4u * 1024 * 1024;  // 4 GiB
inline constexpr uint32_t kArgon2MinParallelism = 1;
inline constexpr uint32_t kArgon2MaxParallelism = 16;
// RFC 9106 section 3.1: memory is at least 8 * parallelism KiB.
inline constexpr uint32_t kArgon2MinMemoryKibPerLane = 8;
// RFC 9106 section 3.1 recommends a 128-bit salt.
inline constexpr size_t kArgon2MinSaltSize = 16;
inline constexpr size_t kArgon2MinOutputSize = 16;
inline constexpr size_t kArgon2MaxOutputSize = 1024;

// The cost parameters of one Argon2id derivation. A plain value type: the
// caller stores the three numbers (e.g. in a token) and rebuilds it.
struct Argon2Params {
  uint32_t time_cost = 0;    // passes over memory, t in RFC 9106
  uint32_t memory_kib = 0;   // memory in KiB, m in RFC 9106
  uint32_t parallelism = 0;  // lanes (and threads), p in RFC 9106

  // OK when time_cost is in 1..1000, parallelism in 1..16 and memory_kib in
  // 8 * parallelism .. 4 GiB. Otherwise kInvalidArgument naming the field
  // and its value. Call it on parameters read from storage before deriving
  // (DeriveArgon2id calls it too).
  Status Validate() const;

  friend bool operator==(const Argon2Params&, const Argon2Params&) = default;
};

// Derives `out_len` bytes from `password` and `salt` with Argon2id.
// REQUIRES: salt.size() >= 16; out_len in 16..1024.
// Errors: kInvalidArgument for bad params (see Validate), a short salt or
// out_len; kUnavailable if the memory cannot be allocated; kInternal for
// any other libargon2 failure.
StatusOr<SecretBytes> DeriveArgon2id(const SecretBytes& password,
                                     std::span<const uint8_t> salt,
                                     const Argon2Params& params,
                                     size_t out_len);

// As above, with RFC 9106's optional inputs: `secret` (K, a key such as a
// pepper; up to 32 bytes in RFC 9106 section 3.1 terms, any length here)
// and `associated_data` (X). Both may be empty, which gives the same result
// as the overload above. Needed for the RFC 9106 section 5.3 test vector.
// REQUIRES: salt.size() >= 8 (libargon2's minimum); out_len in 4..1024.
StatusOr<SecretBytes> DeriveArgon2id(const SecretBytes& password,
                                     std::span<const uint8_t> salt,
                                     const SecretBytes& secret,
                                     std::span<const uint8_t> associated_data,
                                     const Argon2Params& params,
                                     size_t out_len);

// Picks parameters so that one derivation with `parallelism` lanes takes
// about `target_ms` milliseconds on this machine, as cryptsetup's PBKDF
// benchmark does: it starts with a small cost, grows memory first (up to
// `max_memory_kib`; memory hardness is what resists GPUs, RFC 9106 section
// 4) and then the time cost, and finally checks the prediction with one
// full-cost run. The calibration itself takes under about 2 * target_ms.
// time_cost is at least 3 (RFC 9106 section 4's second recommended option
// uses t = 3); on a machine too slow for that at minimum memory, the result
// is the minimum cost even if it takes longer than `target_ms`.
// REQUIRES: target_ms in 1..60000; parallelism in 1..16;
//           max_memory_kib in 8 * parallelism .. 4 GiB.
// Errors: kInvalidArgument for the above; errors of DeriveArgon2id.
StatusOr<Argon2Params> CalibrateArgon2id(uint32_t target_ms,
                                         uint32_t max_memory_kib,
                                         uint32_t parallelism);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_ARGON2ID_H_
