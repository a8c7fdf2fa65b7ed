// OpenSSL 3 EVP AES-256-XTS backend: one context per direction, keyed once;
// per sector only the IV is set. OpenSSL 3.0's IV-only EVP_CipherInit_ex2
// still runs the provider's init path, which is why libgcrypt is the
// default (docs/DMTARGET.md).
#include <openssl/evp.h>

#include <utility>

#include "dmtarget/internal/xts_backend.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::dmtarget::internal {
namespace {

using crypto::EvpCipherCtxPtr;
using crypto::EvpCipherPtr;
using crypto::OpenSslError;

StatusOr<EvpCipherCtxPtr> KeyedContext(const EVP_CIPHER* cipher,
                                       const SecretBytes& key, int enc) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  // Encrypt and decrypt need separate contexts: AES decryption uses the
  // inverse key schedule for Key1, so switching direction would re-key.
  if (EVP_CipherInit_ex2(ctx.get(), cipher, key.Reveal().data(), nullptr, enc,
                         nullptr) != 1) {
    return OpenSslError("keying AES-256-XTS context");
  }
  return ctx;
}

class OpenSslXtsBackend final : public XtsBackend {
 public:
  OpenSslXtsBackend(EvpCipherCtxPtr enc, EvpCipherCtxPtr dec)
      : enc_(std::move(enc)), dec_(std::move(dec)) {}

  // The OpenSSL error queue is per thread, so OpenSslError here drains the
  // calling lane's queue.
  Status Crypt(bool encrypt, const uint8_t (&tweak)[16], const uint8_t* in,
               uint8_t* out, size_t len) override {
    EVP_CIPHER_CTX* ctx = encrypt ? enc_.get() : dec_.get();
    // IV only: cipher and key NULL keep the existing key schedule.
    if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, tweak, encrypt ? 1 : 0,
                           nullptr) != 1) {
      return OpenSslError("setting XTS tweak");
    }
    // One EVP_CipherUpdate call is exactly one XTS data unit.
    const int n = static_cast<int>(len);
    int out_len = 0;
    if (EVP_CipherUpdate(ctx, out, &out_len, in, n) != 1 || out_len != n) {
      return OpenSslError(encrypt ? "AES-256-XTS encrypt"
                                  : "AES-256-XTS decrypt");
    }
    return Status::Ok();
  }

 private:
  EvpCipherCtxPtr enc_;
  EvpCipherCtxPtr dec_;
};

}  // namespace

StatusOr<std::unique_ptr<XtsBackend>> NewOpenSslXtsBackend(
    const SecretBytes& key) {
  EvpCipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-XTS", nullptr));
  if (cipher == nullptr) return OpenSslError("fetching AES-256-XTS");
  VOLMGR_ASSIGN_OR_RETURN(EvpCipherCtxPtr enc,
                          KeyedContext(cipher.get(), key, 1));
  VOLMGR_ASSIGN_OR_RETURN(EvpCipherCtxPtr dec,
                          KeyedContext(cipher.get(), key, 0));
  return std::unique_ptr<XtsBackend>(
      new OpenSslXtsBackend(std::move(enc), std::move(dec)));
}

}  // namespace volmgr::dmtarget::internal
