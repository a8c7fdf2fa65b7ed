// `volmgr keypackage export`: write a key package (docs/FORMAT.md "Key
// package") for a volume, sealed under one of its recovery passwords. The
// package itself is read by `volmgr-recover` (show, mount, verify, rebuild).
#ifndef VOLMGR_CLI_KEYPACKAGE_COMMANDS_H_
#define VOLMGR_CLI_KEYPACKAGE_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "volmgr/cli/unlock_flow.h"

namespace volmgr::cli {

// Adds the `keypackage` verb group (export) to `app`.
void RegisterKeypackageCommands(CLI::App& app, CommandEnv env);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_KEYPACKAGE_COMMANDS_H_
