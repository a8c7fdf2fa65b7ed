// `volmgr unlock`: the unlock that udev, systemd and the initramfs run as a
// volume's device appears (and the close as it goes away). See docs/BOOT.md.
//
//   volmgr unlock --udev /dev/vdb              # ACTION from udev: add|change
//   volmgr unlock --udev --action remove /dev/vdb
//   volmgr unlock --probe /dev/vdb             # udev IMPORT{program}
//
// The unlock tries the clear key of a suspended volume, the TPM and startup
// keys first; when they do not open the volume it asks for the passphrase
// or recovery password (showing the recovery ID) through
// systemd-ask-password or the console, with a timeout, and otherwise leaves
// the device locked and untouched. Every outcome is logged to syslog (the
// journal) and stderr with its reason.
#ifndef VOLMGR_CLI_UNLOCK_COMMANDS_H_
#define VOLMGR_CLI_UNLOCK_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "volmgr/cli/unlock_flow.h"

namespace volmgr::cli {

void RegisterUnlockCommands(CLI::App& app, CommandEnv env);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_UNLOCK_COMMANDS_H_
