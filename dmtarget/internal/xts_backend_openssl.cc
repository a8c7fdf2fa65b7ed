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
  Status Run(const SectorRun& run) override {
    EVP_CIPHER_CTX* ctx = run.encrypt ? enc_.get() : dec_.get();
    const int enc = run.encrypt ? 1 : 0;
    const int len = static_cast<int>(run.sector_size);
    uint8_t tweak[16];
    for (uint64_t i = 0; i < run.sectors; ++i) {
      StorePlain64(run.first_iv + i * run.iv_step, tweak);
      const size_t offset = static_cast<size_t>(i) * run.sector_size;
      // IV only: cipher and key NULL keep the existing key schedule.
      if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, tweak, enc, nullptr) != 1) {
        return OpenSslError("setting XTS tweak");
      }
      // One EVP_CipherUpdate call is exactly one XTS data unit.
      int out_len = 0;
      if (EVP_CipherUpdate(ctx, run.out + offset, &out_len, run.in + offset,
                           len) != 1 ||
          out_len != len) {
        return OpenSslError(run.encrypt ? "AES-256-XTS encrypt"
                                        : "AES-256-XTS decrypt");
      }
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
