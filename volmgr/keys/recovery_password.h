// RecoveryPassword: the 48-digit numeric recovery password (BitLocker's
// format), which carries a 128-bit key the user writes down or prints.
//
// Text form: 8 groups of 6 decimal digits, shown as
// "NNNNNN-NNNNNN-NNNNNN-NNNNNN-NNNNNN-NNNNNN-NNNNNN-NNNNNN" (55 characters).
// Group i (1-based) is 11 * w, where w is the little-endian 16-bit word at
// key bytes [2(i-1), 2(i-1)+1]; so a valid group is a multiple of 11 and at
// most 720885 (65535 * 11). This is the layout BitLocker and cryptsetup's
// BITLK reader use. The factor 11 is a per-group check: any single mistyped
// digit, and any swap of two different adjacent digits within a group,
// changes the value by a non-multiple of 11 and is reported for that group.
// The format is specified in docs/FORMAT.md, "Recovery password".
//
// Secrets: the key and every text form of it live only in SecretBytes, and
// no error message quotes the digits the user typed (an almost-right group
// is almost the key).
//
// Thread-safety: const methods may run concurrently on one object.
#ifndef VOLMGR_KEYS_RECOVERY_PASSWORD_H_
#define VOLMGR_KEYS_RECOVERY_PASSWORD_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/base/uuid.h"

namespace volmgr::keys {

// Size of the key a recovery password encodes.
inline constexpr size_t kRecoveryKeySize = 16;
inline constexpr int kRecoveryPasswordGroups = 8;
inline constexpr size_t kRecoveryPasswordGroupDigits = 6;
inline constexpr size_t kRecoveryPasswordDigits = 48;
// Length of Format()'s output: 48 digits and 7 dashes.
inline constexpr size_t kRecoveryPasswordFormattedSize = 55;
// Size of the random per-protector salt given to DeriveWrappingKey.
inline constexpr size_t kRecoveryPasswordSaltSize = 32;
// Size of the key DeriveWrappingKey returns.
inline constexpr size_t kRecoveryWrappingKeySize = 32;
// HKDF info prefix; the 16 bytes of the recovery ID follow it.
inline constexpr std::string_view kRecoveryPasswordKdfLabel =
    "volmgr recovery-password v1";

class RecoveryPassword {
 public:
  RecoveryPassword(RecoveryPassword&&) noexcept = default;
  RecoveryPassword& operator=(RecoveryPassword&&) noexcept = default;

  // A new password over 16 bytes from the OS CSPRNG. Every 16-byte key has
  // a valid password. Fails only if secret memory or randomness is
  // unavailable.
  static StatusOr<RecoveryPassword> Generate();

  // The password for an existing key. kInvalidArgument unless
  // key.size() == kRecoveryKeySize. Takes ownership of `key`.
  static StatusOr<RecoveryPassword> FromKey(SecretBytes key);

  // Parses what the user typed. Accepted: the 48 digits either as 8 groups
  // of 6 separated by runs of dashes and/or whitespace, or with no
  // separators at all; leading and trailing whitespace is ignored.
  //
  // Errors, all kInvalidArgument, checked in this order:
  //  - empty input, or a character that is neither a digit, a dash nor
  //    whitespace: names its 1-based position in `text` and its group;
  //  - not 48 digits: says how many digits were found; with separators,
  //    also names the groups that do not have 6 digits;
  //  - separators that do not split the digits into 8 groups of 6;
  //  - groups that are not multiples of 11 or exceed 720885: names every
  //    such group by its number (1-8), as ValidateRecoveryPasswordGroup
  //    does.
  // Messages never contain the typed digits.
  static StatusOr<RecoveryPassword> Parse(const SecretBytes& text);

  // The canonical text form: 8 groups of 6 digits joined by '-',
  // kRecoveryPasswordFormattedSize characters, no terminator. Fails only if
  // secret memory is unavailable.
  StatusOr<SecretBytes> Format() const;

  // The 16 key bytes; key()[0] is the low byte of group 1's word.
  const SecretBytes& key() const { return key_; }

  // The key that wraps the volume master key in this password's protector:
  //   HKDF-SHA256(ikm  = key(),
  //               salt = `salt` (kRecoveryPasswordSaltSize random bytes
  //                      stored in the protector),
  //               info = kRecoveryPasswordKdfLabel || recovery_id.bytes(),
  //               L    = kRecoveryWrappingKeySize).
  // The password already carries 128 bits of entropy, so unlike a user
  // passphrase it needs no slow KDF; HKDF binds the result to the protector
  // (salt and recovery ID). Deterministic for equal inputs.
  // kInvalidArgument if salt.size() != kRecoveryPasswordSaltSize; otherwise
  // fails only if HKDF fails.
  StatusOr<SecretBytes> DeriveWrappingKey(std::span<const uint8_t> salt,
                                          const Uuid& recovery_id) const;

 private:
  explicit RecoveryPassword(SecretBytes key) : key_(std::move(key)) {}

  SecretBytes key_;
};

// Whether `text` was meant as a recovery password, so that a malformed one
// is reported as a recovery-password typo (Parse's message: which group,
// which character) instead of being tried as a passphrase that opens
// nothing. True for:
//  - only digits and separators (dashes, whitespace), at least 36 digits;
//  - the shape of one with a few characters mistyped: 8 groups of 6
//    characters split by separators, or 48 characters unsplit, at least 36
//    of them digits (one O for 0, l for 1, ...).
// A passphrase of that shape is still tried as a passphrase by the caller;
// only the error, when nothing opened, is the typo's.
bool LooksLikeRecoveryPassword(const SecretBytes& text);

// Checks one group as the user types it, for interactive prompts. `group` is
// the 1-based group number (1..8), used in the message; `six_digits` is the
// group's text. OK iff it is exactly 6 decimal digits forming a multiple of
// 11 no greater than 720885. Otherwise kInvalidArgument naming the group and
// the problem, worded as Parse words it; the digits are never quoted.
Status ValidateRecoveryPasswordGroup(int group, std::string_view six_digits);

}  // namespace volmgr::keys

#endif  // VOLMGR_KEYS_RECOVERY_PASSWORD_H_
