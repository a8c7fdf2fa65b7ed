// XtsBackend: one lane's AES-256-XTS engine inside XtsSectorTransform.
//
// A backend is keyed once and then encrypts or decrypts one XTS data unit
// per call under a given 16-byte tweak; the sector loop and dm-crypt's
// plain64 tweak rule live in XtsSectorTransform. Two implementations share this
// contract and are checked against each other and against the IEEE 1619 /
// NIST vectors (tests/unit/dmtarget): libgcrypt (the default) and OpenSSL 3
// EVP. Internal to dmtarget; not installed.
//
// Thread-safety: none; XtsSectorTransform gives each lane its own backend.
#ifndef VOLMGR_DMTARGET_INTERNAL_XTS_BACKEND_H_
#define VOLMGR_DMTARGET_INTERNAL_XTS_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::dmtarget::internal {

class XtsBackend {
 public:
  virtual ~XtsBackend() = default;
  // Encrypts (decrypts) the `len` bytes at `in`, one XTS data unit, into
  // `out`. REQUIRES: len is a sector size the transform validated; out == in
  // or the two do not overlap.
  // Errors: kInternal when the library fails (out is then unspecified).
  virtual Status Crypt(bool encrypt, const uint8_t (&tweak)[16],
                       const uint8_t* in, uint8_t* out, size_t len) = 0;
};

// Keyed with the 64-byte key (Key1 || Key2), already validated by the
// caller. The key bytes are copied into the library's context, which wipes
// them when the backend is destroyed.
// Errors: kUnavailable when the library lacks AES-256-XTS (or libgcrypt is
// too old); kInternal for any other library failure.
StatusOr<std::unique_ptr<XtsBackend>> NewGcryptXtsBackend(
    const SecretBytes& key);
StatusOr<std::unique_ptr<XtsBackend>> NewOpenSslXtsBackend(
    const SecretBytes& key);

}  // namespace volmgr::dmtarget::internal

#endif  // VOLMGR_DMTARGET_INTERNAL_XTS_BACKEND_H_
