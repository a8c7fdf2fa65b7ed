// Status and StatusOr<T>: the error type of every fallible volmgr call.
//
// A Status carries one code from a closed set, a message written for the
// person who will read it (it names the bad value or the failing step), and
// optionally the foreign code it came from (errno, TSS2_RC, OpenSSL error,
// libcryptsetup return, PKCS#11 CK_RV). Libraries never print: they return a
// Status and the CLI decides what the user sees.
//
// Thread-safety: Status and StatusOr are value types; distinct objects may be
// used from distinct threads.
#ifndef VOLMGR_BASE_STATUS_H_
#define VOLMGR_BASE_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace volmgr {

// The closed set of error codes. Every code maps to one CLI exit code
// (see ExitCodeFor and docs/CLI.md); new codes are a format change.
enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed or out of range
  kNotFound,            // the named device, token, key or file is absent
  kAlreadyExists,       // refusing to overwrite something that is there
  kFailedPrecondition,  // the system is not in a state that allows this
  kAuthFailed,          // a secret was well-formed but unlocked nothing
  kPinRequired,         // a protector needs a PIN that was not supplied
  kUnavailable,         // a device or service (TPM, HSM, kernel) is absent
  kCorruption,          // stored data failed an integrity or format check
  kIoError,             // the operating system reported an I/O failure
  kBusy,                // locked or in use by another process
  kUnsupported,         // valid but not supported by this version
  kInternal,            // a bug or an unexpected library failure
};

// Where a foreign code came from, so it is never confused across libraries.
enum class ForeignSource : uint8_t {
  kNone = 0,
  kErrno,
  kTss2,
  kOpenSsl,
  kCryptsetup,
  kPkcs11,
  kGcrypt,
};

struct ForeignCode {
  ForeignSource source = ForeignSource::kNone;
  int64_t value = 0;
};

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message, ForeignCode foreign = {})
      : code_(code), message_(std::move(message)), foreign_(foreign) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  ForeignCode foreign() const { return foreign_; }

  // Returns a copy whose message is "context: message", keeping code and
  // foreign code. Used to add the step that failed on the way up.
  Status WithContext(std::string_view context) const;

  // "CODE_NAME: message [errno 2 (No such file or directory)]".
  std::string ToString() const;

  // Marks a status as deliberately ignored (for best-effort cleanup paths).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  ForeignCode foreign_;
};

bool operator==(const Status& a, const Status& b);

// Short upper-case name of a code, e.g. "AUTH_FAILED".
std::string_view StatusCodeName(StatusCode code);

// The process exit code the CLI uses for a status (0 for OK). Stable: part of
// the documented command-line interface.
int ExitCodeFor(StatusCode code);

// Constructors for the common codes.
Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status AuthFailedError(std::string message);
Status PinRequiredError(std::string message);
Status UnavailableError(std::string message);
Status CorruptionError(std::string message);
Status IoError(std::string message);
Status BusyError(std::string message);
Status UnsupportedError(std::string message);
Status InternalError(std::string message);

// The one conversion from errno: picks the code (ENOENT -> kNotFound,
// EBUSY -> kBusy, EACCES/EPERM -> kFailedPrecondition, EIO -> kIoError, ...)
// and appends strerror to the message.
Status ErrnoToStatus(int err, std::string_view context);

// StatusOr<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // REQUIRES: !status.ok(). An OK status without a value becomes kInternal.
  StatusOr(Status status)  // NOLINT(google-explicit-constructor)
      : v_(status.ok() ? InternalError("StatusOr built from OK status")
                       : std::move(status)) {}
  StatusOr(T value)  // NOLINT(google-explicit-constructor)
      : v_(std::move(value)) {}
  // Converting constructor (e.g. StatusOr<std::string> from a literal). The
  // requires-clause excludes Status, T and StatusOr itself, so it never
  // hides the copy or move constructor.
  template <typename U>
  requires(std::is_constructible_v<T, U&&> &&
           !std::is_same_v<std::decay_t<U>, Status> &&
           !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, StatusOr<T>>)
      StatusOr(U&& value)  // NOLINT(*-explicit-constructor,*-forwarding-*)
      : v_(T(std::forward<U>(value))) {}

  bool ok() const { return std::holds_alternative<T>(v_); }

  // The error; an OK status when a value is held.
  Status status() const& { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace volmgr

// Evaluates expr (a Status); returns it from the enclosing function if not OK.
#define VOLMGR_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::volmgr::Status volmgr_status_ = (expr);        \
    if (!volmgr_status_.ok()) return volmgr_status_; \
  } while (0)

#define VOLMGR_CONCAT_INNER_(a, b) a##b
#define VOLMGR_CONCAT_(a, b) VOLMGR_CONCAT_INNER_(a, b)

// Evaluates rexpr (a StatusOr<T>); on error returns its status, else moves
// the value into lhs (which may be a declaration, e.g. `auto key`).
#define VOLMGR_ASSIGN_OR_RETURN(lhs, rexpr)                                 \
  VOLMGR_ASSIGN_OR_RETURN_IMPL_(VOLMGR_CONCAT_(volmgr_sor_, __LINE__), lhs, \
                                rexpr)
#define VOLMGR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // VOLMGR_BASE_STATUS_H_
