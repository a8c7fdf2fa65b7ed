#include "volmgr/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>

#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::crypto {
namespace {

// RFC 5869 section 2.3: L <= 255 * HashLen.
constexpr size_t kSha256Len = 32;
constexpr size_t kMaxOutLen = 255 * kSha256Len;

}  // namespace

StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm,
                                 std::span<const uint8_t> salt,
                                 std::span<const uint8_t> info,
                                 size_t out_len) {
  if (out_len == 0 || out_len > kMaxOutLen) {
    return InvalidArgumentError("HKDF-SHA256 output length " +
                                std::to_string(out_len) +
                                " is outside 1..8160");
  }
  // OpenSSL's HKDF refuses to derive without a key; an empty IKM is always
  // a caller bug (no entropy to extract), so say so here.
  if (ikm.empty()) return InvalidArgumentError("HKDF-SHA256 IKM is empty");

  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return OpenSslError("EVP_KDF_fetch(HKDF)");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpenSslError("EVP_KDF_CTX_new(HKDF)");

  // OSSL_PARAM takes non-const pointers but the HKDF provider only copies
  // from them (and clears its copy of the key on free).
  OSSL_PARAM params[5];
  size_t n = 0;
  char digest[] = "SHA256";
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.Reveal().data()),
      ikm.size());
  // An absent salt is HashLen zero bytes in RFC 5869 section 2.2; OpenSSL
  // implements that when the parameter is not set (HMAC zero-pads its key).
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  // The default mode is extract-then-expand (RFC 5869 section 2); the PRK
  // never leaves the provider context, which wipes it on free.
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes okm, SecretBytes::Allocate(out_len));
  if (EVP_KDF_derive(ctx.get(), okm.RevealMutable().data(), out_len, params) !=
      1) {
    return OpenSslError("EVP_KDF_derive(HKDF-SHA256)");
  }
  return okm;
}

std::vector<uint8_t> HkdfInfo(std::string_view label,
                              std::span<const uint8_t> context) {
  // Byte by byte: GCC 12's -Warray-bounds misreads a range insert of a
  // fixed-size span here.
  std::vector<uint8_t> info;
  info.reserve(label.size() + context.size());
  for (char ch : label) info.push_back(static_cast<uint8_t>(ch));
  for (uint8_t b : context) info.push_back(b);
  return info;
}

}  // namespace volmgr::crypto
