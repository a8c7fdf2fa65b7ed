// `volmgr-recover check` on raw LUKS2 header copies
// (volmgr::recover::CheckHeader, volmgr/recover/header_check.h): the tool
// for damaged headers must report, never crash. The input is the start of
// a device (primary copy at 0, secondary after it), in a memfd; issue 17
// item 5 found a token "type" that is not a string aborting it.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/recover/header_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static volmgr::fuzz::MemFile* file = new volmgr::fuzz::MemFile;
  file->Set({data, size});
  auto rep = volmgr::recover::CheckHeader(file->path());
  if (!rep.ok())
    volmgr::fuzz::Violation("CheckHeader: " + rep.status().message());
  // The verdicts must agree with the copies.
  if (rep->healthy() && (!rep->primary.ok() || !rep->secondary.ok())) {
    volmgr::fuzz::Violation("healthy with a damaged copy");
  }
  return 0;
}
