// Owning handles for the libgcrypt objects volmgr uses, the library's
// one-time initialisation, and the one conversion from gcry_error_t to a
// Status.
//
// Why libgcrypt beside OpenSSL: the userspace dm-crypt twin
// (dmtarget/XtsSectorTransform) sets a new XTS tweak for every sector.
// libgcrypt's gcry_cipher_setiv is a 16-byte copy, and its AES-XTS bulk path
// uses VAES/AVX2 where the CPU has it; OpenSSL 3.0 re-enters the provider
// init path for every IV (docs/DMTARGET.md has the measurements). It is also
// libcryptsetup's upstream default crypto backend.
//
// Thread-safety: GcryptInit may be called from any thread, any number of
// times. A cipher handle must not be used from two threads at once.
#ifndef VOLMGR_CRYPTO_GCRYPT_HANDLES_H_
#define VOLMGR_CRYPTO_GCRYPT_HANDLES_H_

#include <gcrypt.h>

#include <memory>
#include <string_view>
#include <type_traits>

#include "volmgr/base/status.h"

namespace volmgr::crypto {

namespace internal {
struct GcryCipherCloser {
  // gcry_cipher_close wipes the key schedule before freeing (libgcrypt
  // manual, "Working with cipher handles").
  void operator()(gcry_cipher_hd_t h) const { gcry_cipher_close(h); }
};
}  // namespace internal

// A cipher handle from gcry_cipher_open.
using GcryCipherPtr = std::unique_ptr<std::remove_pointer_t<gcry_cipher_hd_t>,
                                      internal::GcryCipherCloser>;

// The libgcrypt version this code needs: 1.9 brought the VAES/AVX2 XTS path.
inline constexpr const char kGcryptMinVersion[] = "1.9.0";

// Initialises libgcrypt once per process, as its manual requires before any
// other call: checks the version, sets up a pool of locked ("secure") memory
// for key schedules (handles opened with GCRY_CIPHER_SECURE live there), and
// finishes initialisation. If something else in the process (a library that
// uses libgcrypt too) has already finished initialising it, only the version
// is checked and its settings are kept.
// Errors: kUnavailable when the loaded libgcrypt is older than
// kGcryptMinVersion.
Status GcryptInit();

// "context: <libgcrypt's reason>", kInternal, with the gcry_error_t as the
// foreign code (ForeignSource::kGcrypt). ENOMEM from the secure-memory pool
// is kUnavailable.
Status GcryptError(std::string_view context, gcry_error_t err);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_GCRYPT_HANDLES_H_
