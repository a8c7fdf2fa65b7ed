#include "volmgr/pkcs11/p11kit_api.h"

#include <dlfcn.h>

#include <string>

namespace volmgr::pkcs11 {
namespace {

template <typename Fn>
bool Resolve(void* lib, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(lib, name));
  return *out != nullptr;
}

StatusOr<const P11KitApi*> Load() {
  // RTLD_LOCAL: p11-kit's symbols serve this table only, never interpose.
  void* lib = dlopen(kP11KitLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return UnavailableError(
        std::string("PKCS#11 needs ") + kP11KitLibrary +
        " (package libp11-kit0): " + (why != nullptr ? why : "not found"));
  }
  static P11KitApi api;
#define VOLMGR_P11KIT_SYMBOL(field)                                  \
  if (!Resolve(lib, "p11_kit_" #field, &api.field)) {                \
    return UnavailableError(std::string(kP11KitLibrary) +            \
                            " lacks p11_kit_" #field " (too old?)"); \
  }
  VOLMGR_P11KIT_SYMBOL(message)
  VOLMGR_P11KIT_SYMBOL(strerror)
  VOLMGR_P11KIT_SYMBOL(be_quiet)
  VOLMGR_P11KIT_SYMBOL(modules_load_and_initialize)
  VOLMGR_P11KIT_SYMBOL(modules_finalize_and_release)
  VOLMGR_P11KIT_SYMBOL(module_load)
  VOLMGR_P11KIT_SYMBOL(module_initialize)
  VOLMGR_P11KIT_SYMBOL(module_finalize)
  VOLMGR_P11KIT_SYMBOL(module_release)
  VOLMGR_P11KIT_SYMBOL(uri_new)
  VOLMGR_P11KIT_SYMBOL(uri_free)
  VOLMGR_P11KIT_SYMBOL(uri_parse)
  VOLMGR_P11KIT_SYMBOL(uri_message)
  VOLMGR_P11KIT_SYMBOL(uri_get_pin_value)
  VOLMGR_P11KIT_SYMBOL(uri_get_module_path)
  VOLMGR_P11KIT_SYMBOL(uri_match_module_info)
  VOLMGR_P11KIT_SYMBOL(uri_match_token_info)
  VOLMGR_P11KIT_SYMBOL(uri_get_attributes)
  VOLMGR_P11KIT_SYMBOL(uri_get_attribute)
#undef VOLMGR_P11KIT_SYMBOL
  return &api;
}

}  // namespace

StatusOr<const P11KitApi*> LoadP11Kit() {
  static const StatusOr<const P11KitApi*> loaded = Load();
  return loaded;
}

}  // namespace volmgr::pkcs11
