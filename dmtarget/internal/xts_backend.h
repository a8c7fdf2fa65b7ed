// XtsBackend: one lane's AES-256-XTS engine inside XtsSectorTransform.
//
// A backend is keyed once and then encrypts or decrypts runs of consecutive
// data sectors, each sector one XTS data unit whose tweak is the plain64 IV
// (le64 in bytes 0..7, zero in 8..15). Two implementations share this
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

// One contiguous run of sectors.
struct SectorRun {
  bool encrypt = true;
  // plain64 IV of the first sector; sector i uses first_iv + i * iv_step
  // (mod 2^64, as the kernel's u64 arithmetic).
  uint64_t first_iv = 0;
  uint64_t iv_step = 1;
  const uint8_t* in = nullptr;
  uint8_t* out = nullptr;  // == in for in place; never a partial overlap
  uint64_t sectors = 0;
  size_t sector_size = 512;
};

// The plain64 IV: le64(sector) in bytes 0..7, zero in 8..15.
inline void StorePlain64(uint64_t sector, uint8_t* tweak) {
  for (size_t i = 0; i < 8; ++i) {
    tweak[i] = static_cast<uint8_t>(sector >> (8 * i));
  }
  for (size_t i = 8; i < 16; ++i) tweak[i] = 0;
}

class XtsBackend {
 public:
  virtual ~XtsBackend() = default;
  // REQUIRES: run.sector_size is one the backend was validated for.
  // Errors: kInternal when the library fails (out is then unspecified).
  virtual Status Run(const SectorRun& run) = 0;
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
