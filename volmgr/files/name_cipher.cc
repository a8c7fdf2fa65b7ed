#include "volmgr/files/name_cipher.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <vector>

#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::files {
namespace {

constexpr std::string_view kSymlinkAd = "symlink";
constexpr size_t kSivTagSize = 16;

const EVP_CIPHER* AesSiv() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr);
  return cipher;
}

constexpr char kB64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string Base64UrlEncode(std::span<const uint8_t> in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (in.size() - i == 1) {
    uint32_t v = in[i] << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
  } else if (in.size() - i == 2) {
    uint32_t v = in[i] << 16 | in[i + 1] << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

StatusOr<std::vector<uint8_t>> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return CorruptionError("bad base64url length");
  std::vector<uint8_t> out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
            : c == '_'             ? 63
                                   : -1;
    if (v < 0) return CorruptionError("bad base64url character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  // Canonical form only: the unused low bits must be zero.
  if ((acc & ((1u << bits) - 1)) != 0) {
    return CorruptionError("non-canonical base64url");
  }
  return out;
}

StatusOr<NameCipher> NameCipher::Create(SecretBytes key) {
  if (key.size() != kNameKeySize) {
    return InvalidArgumentError("name key must be 64 bytes");
  }
  if (AesSiv() == nullptr) return crypto::OpenSslError("fetch AES-256-SIV");
  return NameCipher(std::move(key));
}

StatusOr<std::string> NameCipher::Siv(std::span<const uint8_t> ad,
                                      std::span<const uint8_t> plain) const {
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::vector<uint8_t> out(kSivTagSize + plain.size());
  int len = 0;
  // RFC 5297: output V || C. OpenSSL's SIV takes each AAD component in one
  // EVP_EncryptUpdate call with a null output and the plaintext in one call.
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), AesSiv(), key_.Reveal().data(), nullptr,
                          nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, ad.data(),
                        static_cast<int>(ad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kSivTagSize, &len, plain.data(),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kSivTagSize, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kSivTagSize,
                          out.data()) != 1) {
    return crypto::OpenSslError("AES-256-SIV encrypt");
  }
  return Base64UrlEncode(out);
}

StatusOr<std::string> NameCipher::Unsiv(std::span<const uint8_t> ad,
                                        std::string_view encoded) const {
  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> in, Base64UrlDecode(encoded));
  if (in.size() <= kSivTagSize)
    return CorruptionError("encrypted name too short");
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(in.size() - kSivTagSize, '\0');
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex2(ctx.get(), AesSiv(), key_.Reveal().data(), nullptr,
                          nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kSivTagSize,
                          in.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, ad.data(),
                        static_cast<int>(ad.size())) != 1) {
    return crypto::OpenSslError("AES-256-SIV decrypt setup");
  }
  // OpenSSL verifies the SIV in the ciphertext update call.
  if (EVP_DecryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(out.data()), &len,
                        in.data() + kSivTagSize,
                        static_cast<int>(out.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), nullptr, &len) != 1) {
    ERR_clear_error();
    return AuthFailedError("encrypted name does not authenticate");
  }
  return out;
}

static Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("invalid file name");
  }
  if (name.size() > 255) return InvalidArgumentError("file name too long");
  return Status::Ok();
}

StatusOr<std::string> NameCipher::Encrypt(const DirId& dir,
                                          std::string_view name) const {
  VOLMGR_RETURN_IF_ERROR(CheckName(name));
  return Siv(dir, {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
}

StatusOr<std::string> NameCipher::Decrypt(const DirId& dir,
                                          std::string_view encoded) const {
  VOLMGR_ASSIGN_OR_RETURN(std::string name, Unsiv(dir, encoded));
  VOLMGR_RETURN_IF_ERROR(CheckName(name));
  return name;
}

StatusOr<std::string> NameCipher::EncryptTarget(std::string_view t) const {
  if (t.empty() || t.size() > 4095) {
    return InvalidArgumentError("bad symlink target length");
  }
  return Siv(
      {reinterpret_cast<const uint8_t*>(kSymlinkAd.data()), kSymlinkAd.size()},
      {reinterpret_cast<const uint8_t*>(t.data()), t.size()});
}

StatusOr<std::string> NameCipher::DecryptTarget(std::string_view e) const {
  return Unsiv(
      {reinterpret_cast<const uint8_t*>(kSymlinkAd.data()), kSymlinkAd.size()},
      e);
}

std::string NameCipher::EntryName(const std::string& encoded) {
  if (encoded.size() <= kMaxEncodedNameLength) return encoded;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size(),
         digest);
  return std::string(kLongNamePrefix) + Base64UrlEncode(digest);
}

bool NameCipher::IsLongEntry(std::string_view entry) {
  return entry.starts_with(kLongNamePrefix);
}

std::string NameCipher::SidecarFor(std::string_view long_entry) {
  return std::string(kLongNameSidecarPrefix) +
         std::string(long_entry.substr(kLongNamePrefix.size()));
}

}  // namespace volmgr::files
