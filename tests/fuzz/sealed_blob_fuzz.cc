// The TPM sealed blob stored in a TPM protector's token
// (tpm/sealed_blob.h, docs/FORMAT.md "TPM sealed blob"): parsed and
// validated before any TPM command. Property: what parses serializes back
// to bytes that parse again to the same blob.
#include "tests/fuzz/fuzz_util.h"
#include "tpm/sealed_blob.h"

namespace t = volmgr::tpm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto blob = t::ParseSealedBlob({data, size});
  if (!blob.ok()) return 0;
  if (!t::ValidateSealedBlob(*blob).ok()) {
    volmgr::fuzz::Violation("Parse accepted a blob Validate refuses");
  }
  const std::vector<uint8_t> bytes = t::SerializeSealedBlob(*blob);
  auto again = t::ParseSealedBlob(bytes);
  if (!again.ok() || t::SerializeSealedBlob(*again) != bytes) {
    volmgr::fuzz::Violation("SerializeSealedBlob does not round-trip");
  }
  return 0;
}
