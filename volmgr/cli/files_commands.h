// `volmgr files ...`: service-level file encryption (issue 10). A store is a
// directory of encrypted files with per-file keys in its own key store; see
// volmgr/files/store.h and docs/CLI.md "volmgr files".
#ifndef VOLMGR_CLI_FILES_COMMANDS_H_
#define VOLMGR_CLI_FILES_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "volmgr/cli/unlock_flow.h"

namespace volmgr::cli {

// Adds the `files` verb group (init, status, encrypt, decrypt, rekey,
// shred, verify, mount, umount) to `app`.
void RegisterFilesCommands(CLI::App& app, CommandEnv env);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_FILES_COMMANDS_H_
