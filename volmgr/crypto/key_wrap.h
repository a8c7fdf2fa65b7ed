// The volmgr key-wrap format: a key encrypted under a key-encryption key
// (KEK) with AES-256-GCM, bound to a description of what it is and where it
// belongs.
//
// Serialized WrappedKey (docs/FORMAT.md "Key wrap format"):
//
//   version (1, = 0x01) || nonce (12) || ciphertext (key length) || tag (16)
//
// The GCM associated data is the canonical encoding of a WrapContext:
//
//   "volmgr-wrap-v1" (14 bytes, no terminator)
//   || u32be(len(purpose))        || purpose
//   || u32be(len(volume_uuid))    || volume_uuid
//   || u32be(len(protector_id))   || protector_id
//   || u32be(len(protector_kind)) || protector_kind
//
// Length prefixes make the encoding injective: two different contexts never
// produce the same bytes, so a wrapped key copied to another volume, another
// protector or another purpose fails to unwrap (kAuthFailed).
//
// Thread-safety: free functions are reentrant; WrappedKey is a value type.
#ifndef VOLMGR_CRYPTO_KEY_WRAP_H_
#define VOLMGR_CRYPTO_KEY_WRAP_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::crypto {

inline constexpr uint8_t kWrappedKeyVersion1 = 1;
inline constexpr std::string_view kWrapContextMagicV1 = "volmgr-wrap-v1";
inline constexpr size_t kWrapKekSize = 32;
// Wrappable key sizes: 16, 32, 48 or 64 bytes (128..512-bit keys; an
// XTS-AES-256 FVEK is 64). A closed set lets a parser reject most truncated
// or extended blobs as kCorruption before any decryption.
inline constexpr size_t kWrapMinKeySize = 16;
inline constexpr size_t kWrapMaxKeySize = 64;
inline constexpr size_t kWrapKeySizeGranule = 16;
// Context fields longer than this are refused (they name things; they are
// not payloads).
inline constexpr size_t kWrapContextMaxFieldSize = 1024;

// What a wrapped key is and where it belongs. Every field is authenticated.
//   purpose:        the role of the wrapped key, e.g. "vmk", "fvek".
//                   Must not be empty.
//   volume_uuid:    the volume the key belongs to, canonical text form.
//   protector_id:   the protector (key slot) instance that holds it.
//   protector_kind: the protector type name, e.g. "tpm2", "passphrase".
// Fields are byte strings compared exactly (no case folding or Unicode
// normalization): callers must pass canonical forms.
struct WrapContext {
  std::string purpose;
  std::string volume_uuid;
  std::string protector_id;
  std::string protector_kind;
};

// The canonical associated-data encoding of `ctx` (see the file comment).
// Errors: kInvalidArgument if purpose is empty or a field is longer than
// kWrapContextMaxFieldSize.
StatusOr<std::vector<uint8_t>> EncodeWrapContext(const WrapContext& ctx);

// A wrapped key in its serialized form. Always structurally valid: built
// only by WrapKey or by the parsers below, which check version and length.
// Holds no secret (the ciphertext is safe to store and print).
class WrappedKey {
 public:
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kOverhead = 1 + kNonceSize + kTagSize;

  // Parses a serialized wrapped key.
  // Errors: kCorruption if empty, if the version byte is not 1, or if the
  // length is not kOverhead + a wrappable key size.
  static StatusOr<WrappedKey> FromBytes(std::span<const uint8_t> bytes);

  // Parses standard base64 (RFC 4648 section 4, with '=' padding, no line
  // breaks or whitespace) and then the bytes.
  // Errors: kCorruption for any non-canonical or invalid base64, and the
  // errors of FromBytes.
  static StatusOr<WrappedKey> FromBase64(std::string_view text);

  // The serialized form, exactly as parsed or produced.
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::string ToBase64() const;

  uint8_t version() const { return bytes_[0]; }
  std::span<const uint8_t> nonce() const {
    return std::span(bytes_).subspan(1, kNonceSize);
  }
  std::span<const uint8_t> ciphertext() const {
    return std::span(bytes_).subspan(1 + kNonceSize, bytes_.size() - kOverhead);
  }
  std::span<const uint8_t> tag() const {
    return std::span(bytes_).last(kTagSize);
  }
  // Length of the key this unwraps to.
  size_t key_size() const { return bytes_.size() - kOverhead; }

  friend bool operator==(const WrappedKey&, const WrappedKey&) = default;

 private:
  explicit WrappedKey(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  friend StatusOr<WrappedKey> WrapKey(const SecretBytes&, const SecretBytes&,
                                      const WrapContext&);

  std::vector<uint8_t> bytes_;
};

// Wraps `key` under `kek`, bound to `ctx`, with a fresh random nonce (so
// wrapping the same key twice gives different blobs).
// REQUIRES: kek.size() == 32; key.size() in {16, 32, 48, 64}.
// Errors: kInvalidArgument for the sizes above or a bad context;
// kInternal/kUnavailable from OpenSSL.
StatusOr<WrappedKey> WrapKey(const SecretBytes& kek, const SecretBytes& key,
                             const WrapContext& ctx);

// Unwraps a key wrapped by WrapKey. The key is decrypted directly into
// locked secret memory and returned only after the tag verifies.
// Errors: kAuthFailed if the KEK is wrong, if any field of `ctx` differs
// from the one used to wrap, or if the nonce, ciphertext or tag was
// altered; kInvalidArgument if kek.size() != 32 or `ctx` is invalid.
StatusOr<SecretBytes> UnwrapKey(const SecretBytes& kek,
                                const WrappedKey& wrapped,
                                const WrapContext& ctx);

// Parses `serialized` (WrappedKey::FromBytes) and unwraps it.
// Errors: kCorruption for a malformed blob (bad version or length), then
// the errors of the overload above.
StatusOr<SecretBytes> UnwrapKey(const SecretBytes& kek,
                                std::span<const uint8_t> serialized,
                                const WrapContext& ctx);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_KEY_WRAP_H_
