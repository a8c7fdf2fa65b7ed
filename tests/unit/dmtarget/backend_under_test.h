// Test helper: which XtsSectorTransform backend the dmtarget tests run on.
//
// ctest runs every dmtarget test twice (tests/unit/dmtarget/CMakeLists.txt):
// once on the default backend (libgcrypt) and once, with the prefix
// "openssl/", with VOLMGR_TEST_XTS_BACKEND=openssl. The references the
// transform is compared with (evp_xts_reference.h, the vector files) stay
// the same for both, so each backend is checked independently.
#ifndef VOLMGR_TESTS_UNIT_DMTARGET_BACKEND_UNDER_TEST_H_
#define VOLMGR_TESTS_UNIT_DMTARGET_BACKEND_UNDER_TEST_H_

#include <cstdlib>
#include <string_view>

#include "dmtarget/sector_transform.h"

namespace volmgr::dmtarget::testing {

inline XtsSectorTransform::Backend BackendUnderTest() {
  const char* v = std::getenv("VOLMGR_TEST_XTS_BACKEND");
  return v != nullptr && std::string_view(v) == "openssl"
             ? XtsSectorTransform::Backend::kOpenSsl
             : XtsSectorTransform::Backend::kLibgcrypt;
}

inline XtsSectorTransform::Options TestOptions(unsigned threads = 1) {
  return {.threads = threads, .backend = BackendUnderTest()};
}

}  // namespace volmgr::dmtarget::testing

#endif  // VOLMGR_TESTS_UNIT_DMTARGET_BACKEND_UNDER_TEST_H_
