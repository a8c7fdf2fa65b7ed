#include "volmgr/base/status.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace volmgr {

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m), foreign_);
}

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAuthFailed:
      return "AUTH_FAILED";
    case StatusCode::kPinRequired:
      return "PIN_REQUIRED";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kCorruption:
      return "CORRUPTION";
    case StatusCode::kIoError:
      return "IO_ERROR";
    case StatusCode::kBusy:
      return "BUSY";
    case StatusCode::kUnsupported:
      return "UNSUPPORTED";
    case StatusCode::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

int ExitCodeFor(StatusCode code) {
  // 1 is left for "usage error" (CLI11's parse failures); 2.. follow the enum.
  switch (code) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
      return 2;
    case StatusCode::kNotFound:
      return 3;
    case StatusCode::kAlreadyExists:
      return 4;
    case StatusCode::kFailedPrecondition:
      return 5;
    case StatusCode::kAuthFailed:
      return 6;
    case StatusCode::kPinRequired:
      return 7;
    case StatusCode::kUnavailable:
      return 8;
    case StatusCode::kCorruption:
      return 9;
    case StatusCode::kIoError:
      return 10;
    case StatusCode::kBusy:
      return 11;
    case StatusCode::kUnsupported:
      return 12;
    case StatusCode::kInternal:
      return 70;  // EX_SOFTWARE
  }
  return 70;
}

std::string Status::ToString() const {
  std::string s(StatusCodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  switch (foreign_.source) {
    case ForeignSource::kNone:
      break;
    case ForeignSource::kErrno:
      s += " [errno " + std::to_string(foreign_.value) + "]";
      break;
    case ForeignSource::kTss2:
      s += " [TSS2_RC 0x" + [&] {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%llx",
                      static_cast<unsigned long long>(foreign_.value));
        return std::string(buf);
      }() + "]";
      break;
    case ForeignSource::kOpenSsl:
      s += " [openssl " + std::to_string(foreign_.value) + "]";
      break;
    case ForeignSource::kCryptsetup:
      s += " [libcryptsetup " + std::to_string(foreign_.value) + "]";
      break;
    case ForeignSource::kPkcs11:
      s += " [CKR " + std::to_string(foreign_.value) + "]";
      break;
    case ForeignSource::kGcrypt:
      s += " [libgcrypt " + std::to_string(foreign_.value) + "]";
      break;
  }
  return s;
}

bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

#define VOLMGR_DEFINE_ERROR_(Name, Code)                 \
  Status Name(std::string message) {                     \
    return Status(StatusCode::Code, std::move(message)); \
  }
VOLMGR_DEFINE_ERROR_(InvalidArgumentError, kInvalidArgument)
VOLMGR_DEFINE_ERROR_(NotFoundError, kNotFound)
VOLMGR_DEFINE_ERROR_(AlreadyExistsError, kAlreadyExists)
VOLMGR_DEFINE_ERROR_(FailedPreconditionError, kFailedPrecondition)
VOLMGR_DEFINE_ERROR_(AuthFailedError, kAuthFailed)
VOLMGR_DEFINE_ERROR_(PinRequiredError, kPinRequired)
VOLMGR_DEFINE_ERROR_(UnavailableError, kUnavailable)
VOLMGR_DEFINE_ERROR_(CorruptionError, kCorruption)
VOLMGR_DEFINE_ERROR_(IoError, kIoError)
VOLMGR_DEFINE_ERROR_(BusyError, kBusy)
VOLMGR_DEFINE_ERROR_(UnsupportedError, kUnsupported)
VOLMGR_DEFINE_ERROR_(InternalError, kInternal)
#undef VOLMGR_DEFINE_ERROR_

Status ErrnoToStatus(int err, std::string_view context) {
  StatusCode code;
  switch (err) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EBUSY:
    case EAGAIN:
    case ETXTBSY:
      code = StatusCode::kBusy;
      break;
    case EACCES:
    case EPERM:
      code = StatusCode::kFailedPrecondition;
      break;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
      code = StatusCode::kInvalidArgument;
      break;
    case ENOSPC:
    case EIO:
    case EFBIG:
    case EROFS:  // the device cannot be written: an I/O error (issue 17)
      code = StatusCode::kIoError;
      break;
    case ENOTSUP:
      code = StatusCode::kUnsupported;
      break;
    case ENOMEM:
      code = StatusCode::kInternal;
      break;
    default:
      code = StatusCode::kIoError;
      break;
  }
  std::string m(context);
  m += ": ";
  m += std::strerror(err);
  return Status(code, std::move(m), {ForeignSource::kErrno, err});
}

}  // namespace volmgr
