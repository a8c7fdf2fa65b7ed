// libgcrypt AES-256-XTS backend. gcry_cipher_setiv only stores the tweak;
// the tweak encryption and the bulk XTS (VAES/AVX2 or AES-NI, chosen by
// libgcrypt at run time) happen in gcry_cipher_encrypt/decrypt, so the
// per-sector cost is two library calls and a 16-byte copy.
#include <gcrypt.h>

#include <utility>

#include "dmtarget/internal/xts_backend.h"
#include "volmgr/crypto/gcrypt_handles.h"

namespace volmgr::dmtarget::internal {
namespace {

using crypto::GcryCipherPtr;
using crypto::GcryptError;

class GcryptXtsBackend final : public XtsBackend {
 public:
  explicit GcryptXtsBackend(GcryCipherPtr h) : h_(std::move(h)) {}

  Status Crypt(bool encrypt, const uint8_t (&tweak)[16], const uint8_t* in,
               uint8_t* out, size_t len) override {
    gcry_error_t err = gcry_cipher_setiv(h_.get(), tweak, sizeof tweak);
    if (err != 0) return GcryptError("setting XTS tweak", err);
    // One call is exactly one XTS data unit. gcry_cipher_{en,de}crypt take
    // (out, outsize, in, inlen); in == out is allowed (in place).
    err = encrypt ? gcry_cipher_encrypt(h_.get(), out, len, in, len)
                  : gcry_cipher_decrypt(h_.get(), out, len, in, len);
    if (err != 0) {
      return GcryptError(
          encrypt ? "AES-256-XTS encrypt" : "AES-256-XTS decrypt", err);
    }
    return Status::Ok();
  }

 private:
  GcryCipherPtr h_;
};

}  // namespace

StatusOr<std::unique_ptr<XtsBackend>> NewGcryptXtsBackend(
    const SecretBytes& key) {
  VOLMGR_RETURN_IF_ERROR(crypto::GcryptInit());
  gcry_cipher_hd_t raw = nullptr;
  // GCRY_CIPHER_SECURE: the context (key schedules of both halves) lives in
  // libgcrypt's locked pool and is wiped on close.
  gcry_error_t err = gcry_cipher_open(&raw, GCRY_CIPHER_AES256,
                                      GCRY_CIPHER_MODE_XTS, GCRY_CIPHER_SECURE);
  GcryCipherPtr h(raw);
  if (err != 0) {
    if (gcry_err_code(err) == GPG_ERR_CIPHER_ALGO ||
        gcry_err_code(err) == GPG_ERR_INV_CIPHER_MODE) {
      return UnavailableError(std::string("libgcrypt has no AES-256-XTS: ") +
                              gcry_strerror(err));
    }
    return GcryptError("opening an AES-256-XTS handle", err);
  }
  // Encryption and decryption share the handle: libgcrypt derives the
  // inverse key schedule for Key1 on the first decrypt and keeps both.
  err = gcry_cipher_setkey(h.get(), key.Reveal().data(), key.size());
  if (err != 0) return GcryptError("keying AES-256-XTS", err);
  return std::unique_ptr<XtsBackend>(new GcryptXtsBackend(std::move(h)));
}

}  // namespace volmgr::dmtarget::internal
