#include "volmgr/crypto/openssl_handles.h"

#include <openssl/err.h>

#include <string>

namespace volmgr::crypto {

Status OpenSslError(std::string_view context) {
  std::string message(context);
  message += ": ";
  unsigned long first = 0;  // NOLINT(runtime/int): OpenSSL's type.
  bool unavailable = false;
  int count = 0;
  while (unsigned long err = ERR_get_error()) {  // NOLINT(runtime/int)
    if (count == 0) first = err;
    if (count > 0) message += "; ";
    char buf[256];
    ERR_error_string_n(err, buf, sizeof buf);
    message += buf;
    // ERR_R_UNSUPPORTED / "unsupported": fetch of an algorithm that no
    // loaded provider implements (OpenSSL 3 provider model).
    if (ERR_GET_REASON(err) == ERR_R_UNSUPPORTED ||
        ERR_GET_REASON(err) == ERR_R_FETCH_FAILED) {
      unavailable = true;
    }
    ++count;
  }
  if (count == 0) message += "no OpenSSL error queued";
  return Status(unavailable ? StatusCode::kUnavailable : StatusCode::kInternal,
                std::move(message),
                {ForeignSource::kOpenSsl, static_cast<int64_t>(first)});
}

}  // namespace volmgr::crypto
