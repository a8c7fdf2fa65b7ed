// Uuid: a 128-bit identifier (RFC 9562, which obsoletes RFC 4122).
//
// volmgr uses UUIDs to name volumes and protectors (e.g. the recovery ID of a
// recovery-password protector, shown to the user so they can find the right
// printed password). UUIDs are not secret.
//
// The 16 bytes are kept in RFC 9562 network order: the order in which their
// hex digits appear in the canonical string. This is *not* the mixed-endian
// in-memory layout of a Windows GUID.
//
// Thread-safety: a value type; distinct objects may be used from distinct
// threads, and const methods may run concurrently.
#ifndef VOLMGR_BASE_UUID_H_
#define VOLMGR_BASE_UUID_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr {

class Uuid {
 public:
  static constexpr size_t kSize = 16;

  // The nil UUID, 00000000-0000-0000-0000-000000000000.
  Uuid() = default;

  // The UUID with exactly these bytes (network order), e.g. as read from an
  // on-disk header. No version or variant is checked.
  static Uuid FromBytes(std::span<const uint8_t, kSize> bytes);

  // A fresh random (version 4, variant 10x) UUID: 122 bits from OpenSSL's
  // RAND_bytes. Fails with kInternal only if the CSPRNG cannot produce
  // output; it never falls back to a weaker source.
  static StatusOr<Uuid> Random();

  // Parses the canonical 36-character form 8-4-4-4-12, hex digits in either
  // case ("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"). No braces, "urn:uuid:"
  // prefix or surrounding whitespace. Any version and variant is accepted.
  // kInvalidArgument names the problem: the length, or the position of the
  // first character that is not a hex digit / not a dash where one belongs.
  static StatusOr<Uuid> Parse(std::string_view text);

  // The canonical lower-case form, 36 characters.
  std::string ToString() const;

  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  // The version field (bits 48..51): 4 for Random().
  int version() const { return bytes_[6] >> 4; }

  bool IsNil() const { return *this == Uuid(); }

  friend bool operator==(const Uuid&, const Uuid&) = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

}  // namespace volmgr

#endif  // VOLMGR_BASE_UUID_H_
