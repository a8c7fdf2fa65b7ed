// P11KitApi: the libp11-kit functions volmgr uses, resolved with dlopen the
// first time a PKCS#11 protector needs them (as systemd loads libp11-kit).
//
// Why not link it: every shared library is mapped, relocated and bound at
// the start of every command; libp11-kit (with libffi) is two of them, and
// only customer-key protectors use it. Loading it on demand keeps a TPM or
// passphrase unlock from paying for it (docs/PERFORMANCE.md, "TPM unlock").
//
// Thread-safety: LoadP11Kit may be called from any thread; the table it
// returns is immutable and lives until exit (libp11-kit is never unloaded:
// it registers its own process-exit handlers).
#ifndef VOLMGR_PKCS11_P11KIT_API_H_
#define VOLMGR_PKCS11_P11KIT_API_H_

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "volmgr/base/status.h"

namespace volmgr::pkcs11 {

// The soname Debian's libp11-kit0 ships (the runtime ABI, not the -dev link).
inline constexpr const char kP11KitLibrary[] = "libp11-kit.so.0";

struct P11KitApi {
  decltype(&::p11_kit_message) message = nullptr;
  decltype(&::p11_kit_strerror) strerror = nullptr;
  decltype(&::p11_kit_be_quiet) be_quiet = nullptr;
  decltype(&::p11_kit_modules_load_and_initialize) modules_load_and_initialize =
      nullptr;
  decltype(&::p11_kit_modules_finalize_and_release)
      modules_finalize_and_release = nullptr;
  decltype(&::p11_kit_module_load) module_load = nullptr;
  decltype(&::p11_kit_module_initialize) module_initialize = nullptr;
  decltype(&::p11_kit_module_finalize) module_finalize = nullptr;
  decltype(&::p11_kit_module_release) module_release = nullptr;
  decltype(&::p11_kit_uri_new) uri_new = nullptr;
  decltype(&::p11_kit_uri_free) uri_free = nullptr;
  decltype(&::p11_kit_uri_parse) uri_parse = nullptr;
  decltype(&::p11_kit_uri_message) uri_message = nullptr;
  decltype(&::p11_kit_uri_get_pin_value) uri_get_pin_value = nullptr;
  decltype(&::p11_kit_uri_get_module_path) uri_get_module_path = nullptr;
  decltype(&::p11_kit_uri_match_module_info) uri_match_module_info = nullptr;
  decltype(&::p11_kit_uri_match_token_info) uri_match_token_info = nullptr;
  decltype(&::p11_kit_uri_get_attributes) uri_get_attributes = nullptr;
  decltype(&::p11_kit_uri_get_attribute) uri_get_attribute = nullptr;
};

// The resolved table. The first call loads kP11KitLibrary; later calls
// return the same result (the table, or the same error).
// Errors: kUnavailable when the library or one of its symbols is missing,
// naming which ("install libp11-kit0").
StatusOr<const P11KitApi*> LoadP11Kit();

}  // namespace volmgr::pkcs11

#endif  // VOLMGR_PKCS11_P11KIT_API_H_
