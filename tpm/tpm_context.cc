#include "tpm/tpm_context.h"

#include <tss2/tss2_tctildr.h>

#include <cstdlib>
#include <utility>

namespace volmgr::tpm {

StatusOr<Tpm> Tpm::Open(std::string_view tcti) {
  if (tcti.empty()) return InvalidArgumentError("empty TPM TCTI string");
  // tpm2-tss reads TSS2_LOG once, at its first log call. overwrite=0 keeps a
  // value the user chose for debugging.
  setenv("TSS2_LOG", "all+none", 0);

  std::string conf(tcti);
  TSS2_TCTI_CONTEXT* raw_tcti = nullptr;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(conf.c_str(), &raw_tcti);
  if (rc != TSS2_RC_SUCCESS) {
    Status s = TssError(rc, "no TPM at " + conf);
    // The loader reports a missing device or a refused connection in its
    // own layer; whatever it says, there is no TPM for us there.
    if (s.code() == StatusCode::kInternal) {
      return Status(StatusCode::kUnavailable, s.message(), s.foreign());
    }
    return s;
  }
  ESYS_CONTEXT* raw_esys = nullptr;
  rc = Esys_Initialize(&raw_esys, raw_tcti, nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    Tss2_TctiLdr_Finalize(&raw_tcti);
    return TssError(rc, "initialising ESAPI on " + conf);
  }
  return Tpm(EsysContext(raw_esys, raw_tcti), std::move(conf));
}

}  // namespace volmgr::tpm
