#include "volmgr/cli/app_main.h"

#include <cstdio>
#include <exception>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/cli/output.h"
#include "volmgr/volume/luks_device.h"

namespace volmgr::cli {

int ParseAndRun(CLI::App& app, int argc, char** argv,
                const std::optional<Status>& result, std::string_view program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; its own codes (105, 106, ...) are folded
    // into the documented "1 = usage error".
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (!result || result->ok()) return 0;
  return ReportError(*result, program);
}

int HardenedMain(std::string_view program, int (*run)(int, char**), int argc,
                 char** argv) {
  if (Status s = HardenProcess(); !s.ok()) return ReportError(s, program);
  volume::SilenceCryptsetupDefaultLog();
  // The last line of defence: no input may end a volmgr binary with an
  // uncaught exception (std::terminate, SIGABRT, exit 134). Libraries return
  // Status and parse untrusted JSON through JsonReader, so reaching these
  // handlers is a bug: exit 70, as the exit-code table says. The tests
  // assert that no hostile input gets here.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return ReportError(
        InternalError(std::string("internal error (uncaught exception: ") +
                      e.what() + "); please report it"),
        program);
  } catch (...) {
    return ReportError(
        InternalError("internal error (uncaught exception); please report it"),
        program);
  }
}

}  // namespace volmgr::cli
