// Encrypted file names: AES-256-SIV (RFC 5297, OpenSSL 3 "AES-256-SIV")
// under the store's 512-bit name key, with the parent directory's random
// 16-byte ID as associated data. Deterministic per directory (a lookup
// re-encrypts the name and finds the file), different across directories
// (equal names in two directories do not match), authenticated (a renamed
// ciphertext entry does not decrypt to a chosen name).
//
//   encoded = base64url-unpadded( V (16-byte SIV tag) || C )
//
// Encoded names longer than kMaxEncodedNameLength are stored as
// ".L" + base64url(SHA-256(encoded)) with the full encoded name in a
// sidecar file ".N" + the same hash in the same directory
// (docs/FORMAT.md, "Encrypted names").
//
// Thread-safety: a NameCipher may be used from many threads at once (each
// call makes its own OpenSSL context).
#ifndef VOLMGR_FILES_NAME_CIPHER_H_
#define VOLMGR_FILES_NAME_CIPHER_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::files {

inline constexpr size_t kNameKeySize = 64;  // AES-256-SIV: two 256-bit keys
inline constexpr size_t kDirIdSize = 16;
inline constexpr size_t kMaxEncodedNameLength = 255;
inline constexpr std::string_view kDirIdFileName = ".dirid";
inline constexpr std::string_view kLongNamePrefix = ".L";
inline constexpr std::string_view kLongNameSidecarPrefix = ".N";

using DirId = std::array<uint8_t, kDirIdSize>;

std::string Base64UrlEncode(std::span<const uint8_t> bytes);
StatusOr<std::vector<uint8_t>> Base64UrlDecode(std::string_view text);

class NameCipher {
 public:
  // REQUIRES: key.size() == 64.
  static StatusOr<NameCipher> Create(SecretBytes key);

  // The encoded (base64url) ciphertext of `name` in directory `dir`.
  // kInvalidArgument for an empty name, ".", "..", a '/' or a NUL, or a
  // name longer than 255 bytes.
  StatusOr<std::string> Encrypt(const DirId& dir, std::string_view name) const;
  // The reverse. kAuthFailed if the encoded name was not made by Encrypt
  // for this directory and key; kCorruption for bad base64.
  StatusOr<std::string> Decrypt(const DirId& dir,
                                std::string_view encoded) const;

  // Symlink targets: the same cipher with associated data "symlink".
  StatusOr<std::string> EncryptTarget(std::string_view target) const;
  StatusOr<std::string> DecryptTarget(std::string_view encoded) const;

  // The on-disk entry name for an encoded name: itself if short enough,
  // else ".L<hash>" (and the sidecar name is ".N<hash>").
  static std::string EntryName(const std::string& encoded);
  static bool IsLongEntry(std::string_view entry);
  static std::string SidecarFor(std::string_view long_entry);

 private:
  explicit NameCipher(SecretBytes key) : key_(std::move(key)) {}
  StatusOr<std::string> Siv(std::span<const uint8_t> ad,
                            std::span<const uint8_t> plain) const;
  StatusOr<std::string> Unsiv(std::span<const uint8_t> ad,
                              std::string_view encoded) const;

  SecretBytes key_;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_NAME_CIPHER_H_
