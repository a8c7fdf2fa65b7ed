#include "volmgr/base/uuid.h"

#include <openssl/rand.h>

#include <algorithm>
#include <string>

namespace volmgr {
namespace {

constexpr size_t kTextSize = 36;

bool IsDashPosition(size_t i) {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// UUIDs are not secret, so the input may be quoted back; long junk is cut.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string q = "\"";
  q += text.substr(0, kMax);
  q += text.size() > kMax ? "...\"" : "\"";
  return q;
}

}  // namespace

Uuid Uuid::FromBytes(std::span<const uint8_t, kSize> bytes) {
  Uuid u;
  std::copy(bytes.begin(), bytes.end(), u.bytes_.begin());
  return u;
}

StatusOr<Uuid> Uuid::Random() {
  Uuid u;
  if (RAND_bytes(u.bytes_.data(), static_cast<int>(kSize)) != 1) {
    return Status(StatusCode::kInternal, "RAND_bytes failed for a random UUID",
                  {ForeignSource::kOpenSsl, 0});
  }
  // RFC 9562 section 5.4: version 4 in the high nibble of octet 6, variant
  // 0b10 in the two high bits of octet 8.
  u.bytes_[6] = static_cast<uint8_t>((u.bytes_[6] & 0x0f) | 0x40);
  u.bytes_[8] = static_cast<uint8_t>((u.bytes_[8] & 0x3f) | 0x80);
  return u;
}

StatusOr<Uuid> Uuid::Parse(std::string_view text) {
  if (text.size() != kTextSize) {
    return InvalidArgumentError("UUID " + Quote(text) + " has " +
                                std::to_string(text.size()) +
                                " characters; expected 36 in the form "
                                "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  }
  Uuid u;
  size_t nibble = 0;
  for (size_t i = 0; i < kTextSize; ++i) {
    const char c = text[i];
    if (IsDashPosition(i)) {
      if (c != '-') {
        return InvalidArgumentError("UUID " + Quote(text) + ": character " +
                                    std::to_string(i + 1) +
                                    " must be '-' (form 8-4-4-4-12)");
      }
      continue;
    }
    const int v = HexValue(c);
    if (v < 0) {
      return InvalidArgumentError("UUID " + Quote(text) + ": character " +
                                  std::to_string(i + 1) +
                                  " is not a hex digit");
    }
    uint8_t& b = u.bytes_[nibble / 2];
    b = static_cast<uint8_t>(nibble % 2 == 0 ? v << 4 : b | v);
    ++nibble;
  }
  return u;
}

std::string Uuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(kTextSize);
  for (size_t i = 0; i < kSize; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[bytes_[i] >> 4];
    s += kHex[bytes_[i] & 0x0f];
  }
  return s;
}

}  // namespace volmgr
