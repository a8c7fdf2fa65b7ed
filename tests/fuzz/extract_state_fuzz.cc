// The state file of `volmgr-recover extract --resume`
// (OUT.volmgr-recover, volmgr/recover/extract.cc): whatever is in it when
// the admin resumes. The harness runs the real Extract with resume on a
// small fixed volume (4 sectors, the fixed FVEK fuzz_seedgen used for the
// seeds) whose state file holds the input. Issue 17 item 5: a state file
// with "format": 5 aborted `extract --resume`. Property: a resume that
// succeeds wrote the right plaintext after the offset it resumed from.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/fuzz/extract_fixture.h"
#include "tests/fuzz/fuzz_util.h"
#include "volmgr/recover/extract.h"

namespace r = volmgr::recover;
namespace x = volmgr::fuzz::extract;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static x::Fixture* fx = x::Fixture::Make();
  const std::string state = fx->output + std::string(r::kStateSuffix);
  {
    int fd =
        open(state.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, size) != static_cast<ssize_t>(size)) {
      volmgr::fuzz::SetupFailed("writing the state file");
    }
    close(fd);
    // The output of the interrupted run: right up to where it claims.
    fd = open(fx->output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              0600);
    if (fd < 0) volmgr::fuzz::SetupFailed("creating the output");
    close(fd);
  }
  r::ExtractOptions opt;
  opt.output = fx->output;
  opt.resume = true;
  opt.chunk_bytes = 4096;
  opt.checkpoint_seconds = 3600;
  auto res = fx->Run(opt);
  if (!res.ok()) return 0;
  // Resumed from resumed_from: the bytes after it are the plaintext.
  std::vector<uint8_t> out(x::kPayload);
  int fd = open(fx->output.c_str(), O_RDONLY | O_CLOEXEC);
  const ssize_t n = pread(fd, out.data(), out.size(), 0);
  close(fd);
  if (n != static_cast<ssize_t>(out.size()) || res->resumed_from > out.size() ||
      std::memcmp(out.data() + res->resumed_from,
                  fx->plain.data() + res->resumed_from,
                  out.size() - res->resumed_from) != 0) {
    volmgr::fuzz::Violation("a resume wrote the wrong plaintext");
  }
  return 0;
}
