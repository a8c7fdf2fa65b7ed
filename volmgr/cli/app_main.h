// What every volmgr command-line binary does around its CLI11 app.
#ifndef VOLMGR_CLI_APP_MAIN_H_
#define VOLMGR_CLI_APP_MAIN_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr::cli {

// Parses argv into `app` (whose subcommand callbacks store their outcome in
// `result`) and returns the process exit code: CLI11's usage errors fold
// into 1 (--help/--version stay 0), a failed Status is reported as
// "<program>: <message>" with ExitCodeFor its code.
int ParseAndRun(CLI::App& app, int argc, char** argv,
                const std::optional<Status>& result, std::string_view program);

// The body of main(): HardenProcess() (no core dumps), libcryptsetup's
// default log silenced, then `run`. An exception that escapes `run` (a bug:
// nothing should throw) is reported as an internal error, exit 70, instead
// of aborting the process.
int HardenedMain(std::string_view program, int (*run)(int, char**), int argc,
                 char** argv);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_APP_MAIN_H_
