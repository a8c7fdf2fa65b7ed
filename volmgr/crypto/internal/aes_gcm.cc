#include "volmgr/crypto/internal/aes_gcm.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <climits>
#include <cstring>

#include "volmgr/crypto/aead.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::crypto::internal {
namespace {

Status CheckSizes(const SecretBytes& key, std::span<const uint8_t> nonce,
                  size_t in_len, size_t aad_len, size_t out_len,
                  size_t tag_len) {
  if (key.size() != kAesGcmKeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  if (nonce.size() != kAesGcmNonceSize) {
    return InvalidArgumentError("AES-GCM nonce must be 12 bytes, got " +
                                std::to_string(nonce.size()));
  }
  if (tag_len != kAesGcmTagSize) {
    return InvalidArgumentError("AES-GCM tag must be 16 bytes, got " +
                                std::to_string(tag_len));
  }
  if (out_len != in_len) {
    return InvalidArgumentError("AES-GCM output buffer is " +
                                std::to_string(out_len) + " bytes, need " +
                                std::to_string(in_len));
  }
  // EVP_*Update takes int lengths.
  if (in_len > INT_MAX || aad_len > INT_MAX) {
    return InvalidArgumentError("AES-GCM input longer than INT_MAX bytes");
  }
  return Status::Ok();
}

StatusOr<EvpCipherCtxPtr> NewContext(bool encrypt, const SecretBytes& key,
                                     std::span<const uint8_t> nonce) {
  EvpCipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  if (!cipher) return OpenSslError("EVP_CIPHER_fetch(AES-256-GCM)");
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  // The default GCM IV length in OpenSSL is 12 bytes, the length SP 800-38D
  // section 8.2.1 recommends (the IV is used as-is, no GHASH derivation).
  const int ok =
      encrypt ? EVP_EncryptInit_ex2(ctx.get(), cipher.get(),
                                    key.Reveal().data(), nonce.data(), nullptr)
              : EVP_DecryptInit_ex2(ctx.get(), cipher.get(),
                                    key.Reveal().data(), nonce.data(), nullptr);
  if (ok != 1) return OpenSslError("AES-256-GCM init");
  return ctx;
}

}  // namespace

Status AesGcmEncryptWithNonce(const SecretBytes& key,
                              std::span<const uint8_t> nonce,
                              std::span<const uint8_t> plaintext,
                              std::span<const uint8_t> associated_data,
                              std::span<uint8_t> ciphertext_out,
                              std::span<uint8_t> tag_out) {
  VOLMGR_RETURN_IF_ERROR(CheckSizes(key, nonce, plaintext.size(),
                                    associated_data.size(),
                                    ciphertext_out.size(), tag_out.size()));
  VOLMGR_ASSIGN_OR_RETURN(EvpCipherCtxPtr ctx, NewContext(true, key, nonce));
  int len = 0;
  // With a null output buffer, EVP_EncryptUpdate feeds AAD (GCM only).
  if (!associated_data.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslError("AES-256-GCM associated data");
  }
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx.get(), ciphertext_out.data(), &len,
                        plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1) {
    return OpenSslError("AES-256-GCM encrypt");
  }
  // GCM is a stream mode: Final emits no bytes, it computes the tag.
  uint8_t unused[EVP_MAX_BLOCK_LENGTH];
  if (EVP_EncryptFinal_ex(ctx.get(), unused, &len) != 1) {
    return OpenSslError("AES-256-GCM final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kAesGcmTagSize),
                          tag_out.data()) != 1) {
    return OpenSslError("AES-256-GCM get tag");
  }
  return Status::Ok();
}

Status AesGcmDecryptWithNonce(const SecretBytes& key,
                              std::span<const uint8_t> nonce,
                              std::span<const uint8_t> ciphertext,
                              std::span<const uint8_t> associated_data,
                              std::span<const uint8_t> tag,
                              std::span<uint8_t> plaintext_out) {
  VOLMGR_RETURN_IF_ERROR(CheckSizes(key, nonce, ciphertext.size(),
                                    associated_data.size(),
                                    plaintext_out.size(), tag.size()));
  VOLMGR_ASSIGN_OR_RETURN(EvpCipherCtxPtr ctx, NewContext(false, key, nonce));
  int len = 0;
  if (!associated_data.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslError("AES-256-GCM associated data");
  }
  if (!ciphertext.empty() &&
      EVP_DecryptUpdate(ctx.get(), plaintext_out.data(), &len,
                        ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1) {
    OPENSSL_cleanse(plaintext_out.data(), plaintext_out.size());
    return OpenSslError("AES-256-GCM decrypt");
  }
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer; hand it a copy.
  uint8_t expected_tag[kAesGcmTagSize];
  std::memcpy(expected_tag, tag.data(), kAesGcmTagSize);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kAesGcmTagSize),
                          expected_tag) != 1) {
    OPENSSL_cleanse(plaintext_out.data(), plaintext_out.size());
    return OpenSslError("AES-256-GCM set tag");
  }
  // Final compares the tag in constant time (CRYPTO_memcmp). A mismatch is
  // the one expected failure: the key, nonce, AD, ciphertext or tag is not
  // the one that was sealed. It is not an OpenSSL fault, so it becomes
  // kAuthFailed and not OpenSslError.
  uint8_t unused[EVP_MAX_BLOCK_LENGTH];
  ERR_set_mark();
  if (EVP_DecryptFinal_ex(ctx.get(), unused, &len) != 1) {
    // Whatever a provider queued for the mismatch is not an error to report.
    ERR_pop_to_mark();
    // Release-of-unverified-plaintext is forbidden (SP 800-38D section 7.2
    // step 11 returns FAIL only): wipe what Update already wrote.
    OPENSSL_cleanse(plaintext_out.data(), plaintext_out.size());
    return AuthFailedError("AES-256-GCM tag mismatch");
  }
  ERR_clear_last_mark();
  return Status::Ok();
}

}  // namespace volmgr::crypto::internal
