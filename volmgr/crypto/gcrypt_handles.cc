#include "volmgr/crypto/gcrypt_handles.h"

#include <mutex>
#include <string>

namespace volmgr::crypto {
namespace {

// Room for the key schedules of XtsSectorTransform's lanes (one handle of a
// few KiB per lane, at most 64 lanes per transform) with headroom; the pool
// grows in steps of the same size if a process needs more.
constexpr unsigned kSecureMemoryPool = 512 * 1024;

}  // namespace

Status GcryptInit() {
  static const Status result = []() -> Status {
    // May be asked before gcry_check_version (libgcrypt manual, "Controlling
    // the library").
    const bool already = gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P) != 0;
    if (gcry_check_version(kGcryptMinVersion) == nullptr) {
      return UnavailableError(
          std::string("libgcrypt ") + gcry_check_version(nullptr) +
          " is too old; volmgr needs " + kGcryptMinVersion + " or later");
    }
    if (!already) {
      // Locking fails only for an unprivileged caller over RLIMIT_MEMLOCK;
      // the key schedule is then in ordinary memory, as OpenSSL's is, and
      // libgcrypt must not print about it (libraries never print).
      gcry_control(GCRYCTL_DISABLE_SECMEM_WARN);
      gcry_control(GCRYCTL_INIT_SECMEM, kSecureMemoryPool, 0);
      gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, kSecureMemoryPool, 0);
      gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    return Status::Ok();
  }();
  return result;
}

Status GcryptError(std::string_view context, gcry_error_t err) {
  std::string message(context);
  message += ": ";
  message += gcry_strerror(err);
  const StatusCode code = gcry_err_code(err) == GPG_ERR_ENOMEM
                              ? StatusCode::kUnavailable
                              : StatusCode::kInternal;
  return Status(code, std::move(message),
                {ForeignSource::kGcrypt, static_cast<int64_t>(err)});
}

}  // namespace volmgr::crypto
