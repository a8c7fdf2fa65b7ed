#include "volmgr/crypto/key_wrap.h"

#include <openssl/evp.h>

#include <algorithm>

#include "volmgr/crypto/aead.h"
#include "volmgr/crypto/internal/aes_gcm.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::crypto {
namespace {

static_assert(WrappedKey::kNonceSize == kAesGcmNonceSize);
static_assert(WrappedKey::kTagSize == kAesGcmTagSize);

bool IsWrappableKeySize(size_t n) {
  return n >= kWrapMinKeySize && n <= kWrapMaxKeySize &&
         n % kWrapKeySizeGranule == 0;
}

Status CheckKek(const SecretBytes& kek) {
  if (kek.size() != kWrapKekSize) {
    return InvalidArgumentError("key-wrap KEK must be 32 bytes, got " +
                                std::to_string(kek.size()));
  }
  return Status::Ok();
}

void AppendField(std::vector<uint8_t>& out, std::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  out.push_back(static_cast<uint8_t>(n >> 24));
  out.push_back(static_cast<uint8_t>(n >> 16));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), field.begin(), field.end());
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

StatusOr<std::vector<uint8_t>> EncodeWrapContext(const WrapContext& ctx) {
  if (ctx.purpose.empty()) {
    return InvalidArgumentError("wrap context purpose is empty");
  }
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"purpose", &ctx.purpose},
      {"volume_uuid", &ctx.volume_uuid},
      {"protector_id", &ctx.protector_id},
      {"protector_kind", &ctx.protector_kind},
  };
  size_t total = kWrapContextMagicV1.size();
  for (const auto& [name, value] : fields) {
    if (value->size() > kWrapContextMaxFieldSize) {
      return InvalidArgumentError("wrap context " + std::string(name) + " is " +
                                  std::to_string(value->size()) +
                                  " bytes, limit 1024");
    }
    total += 4 + value->size();
  }
  std::vector<uint8_t> out;
  out.reserve(total);
  out.insert(out.end(), kWrapContextMagicV1.begin(), kWrapContextMagicV1.end());
  for (const auto& field : fields) AppendField(out, *field.second);
  return out;
}

StatusOr<WrappedKey> WrappedKey::FromBytes(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return CorruptionError("wrapped key is empty");
  if (bytes[0] != kWrappedKeyVersion1) {
    return CorruptionError("wrapped key has unknown version " +
                           std::to_string(bytes[0]));
  }
  if (bytes.size() < kOverhead ||
      !IsWrappableKeySize(bytes.size() - kOverhead)) {
    return CorruptionError(
        "wrapped key is " + std::to_string(bytes.size()) +
        " bytes; version 1 is 29 bytes plus a 16, 32, 48 or 64-byte key");
  }
  return WrappedKey(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

StatusOr<WrappedKey> WrappedKey::FromBase64(std::string_view text) {
  // EVP_DecodeBlock is lenient (it skips surrounding whitespace, ignores
  // padding when counting and accepts non-zero trailing bits), so check the
  // RFC 4648 section 4 alphabet and padding first, then require that the
  // decoded bytes re-encode to exactly `text` (RFC 4648 section 3.5).
  if (text.empty() || text.size() % 4 != 0) {
    return CorruptionError("wrapped key base64 length " +
                           std::to_string(text.size()) +
                           " is not a positive multiple of 4");
  }
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!IsBase64Char(text[i])) {
      return CorruptionError("wrapped key base64 has an invalid character at " +
                             std::to_string(i));
    }
  }
  if (text.size() > 4 * 1024) {
    return CorruptionError("wrapped key base64 is too long");
  }
  std::vector<uint8_t> decoded(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(decoded.data(),
                                reinterpret_cast<const uint8_t*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != decoded.size()) {
    return CorruptionError("wrapped key base64 does not decode");
  }
  decoded.resize(decoded.size() - padding);
  VOLMGR_ASSIGN_OR_RETURN(WrappedKey key, FromBytes(decoded));
  if (key.ToBase64() != text) {
    return CorruptionError("wrapped key base64 is not in canonical form");
  }
  return key;
}

std::string WrappedKey::ToBase64() const {
  std::string out((bytes_.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                                bytes_.data(), static_cast<int>(bytes_.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

StatusOr<WrappedKey> WrapKey(const SecretBytes& kek, const SecretBytes& key,
                             const WrapContext& ctx) {
  VOLMGR_RETURN_IF_ERROR(CheckKek(kek));
  if (!IsWrappableKeySize(key.size())) {
    return InvalidArgumentError("cannot wrap a " + std::to_string(key.size()) +
                                "-byte key; sizes are 16, 32, 48 or 64");
  }
  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> aad, EncodeWrapContext(ctx));
  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> sealed,
                          AesGcmSeal(kek, key.Reveal(), aad));
  // version || (nonce || ciphertext || tag), the layout AesGcmSeal returns.
  std::vector<uint8_t> bytes;
  bytes.reserve(1 + sealed.size());
  bytes.push_back(kWrappedKeyVersion1);
  bytes.insert(bytes.end(), sealed.begin(), sealed.end());
  return WrappedKey(std::move(bytes));
}

StatusOr<SecretBytes> UnwrapKey(const SecretBytes& kek,
                                const WrappedKey& wrapped,
                                const WrapContext& ctx) {
  VOLMGR_RETURN_IF_ERROR(CheckKek(kek));
  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> aad, EncodeWrapContext(ctx));
  // The version byte is not in the AD: it selects the AD encoding itself
  // (the magic names the version), so a blob relabelled with another version
  // is parsed with another AD and fails to authenticate.
  StatusOr<SecretBytes> key =
      AesGcmOpen(kek, std::span(wrapped.bytes()).subspan(1), aad);
  if (!key.ok()) {
    return key.status().WithContext("unwrapping " + ctx.purpose);
  }
  return key;
}

StatusOr<SecretBytes> UnwrapKey(const SecretBytes& kek,
                                std::span<const uint8_t> serialized,
                                const WrapContext& ctx) {
  VOLMGR_ASSIGN_OR_RETURN(WrappedKey wrapped,
                          WrappedKey::FromBytes(serialized));
  return UnwrapKey(kek, wrapped, ctx);
}

}  // namespace volmgr::crypto
