// Tpm: one open connection to a TPM 2.0 through tpm2-tss ESAPI.
//
// Opened from a TCTI configuration string as understood by
// Tss2_TctiLdr_Initialize ("device:/dev/tpmrm0", "swtpm:host=H,port=P",
// "mssim:...", "tabrmd:..."). The default is the kernel's resource manager,
// which flushes whatever a crashed process left behind in the TPM.
//
// tpm2-tss logs errors to stderr on its own; libraries must not print, so
// Open() sets TSS2_LOG=all+none unless the caller's environment already sets
// TSS2_LOG (set it to e.g. "all+debug" to see tpm2-tss's own trace).
//
// Thread-safety: a Tpm is used by one thread at a time (ESYS contexts are not
// thread-safe). Objects made from it (Srk, EsysTr) must not outlive it.
#ifndef VOLMGR_TPM_TPM_CONTEXT_H_
#define VOLMGR_TPM_TPM_CONTEXT_H_

#include <string>
#include <string_view>

#include "tpm/tss_handles.h"
#include "volmgr/base/status.h"

namespace volmgr::tpm {

inline constexpr std::string_view kDefaultTcti = "device:/dev/tpmrm0";

class Tpm {
 public:
  // Errors: kUnavailable "no TPM at <tcti>: ..." when the TCTI cannot be
  // loaded or the TPM does not answer (no device node, closed port);
  // kInvalidArgument for an empty string.
  static StatusOr<Tpm> Open(std::string_view tcti = kDefaultTcti);

  Tpm(Tpm&&) noexcept = default;
  Tpm& operator=(Tpm&&) noexcept = default;

  ESYS_CONTEXT* esys() const { return ctx_.get(); }
  const std::string& tcti() const { return tcti_; }

 private:
  Tpm(EsysContext ctx, std::string tcti)
      : ctx_(std::move(ctx)), tcti_(std::move(tcti)) {}

  EsysContext ctx_;
  std::string tcti_;
};

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_TPM_CONTEXT_H_
