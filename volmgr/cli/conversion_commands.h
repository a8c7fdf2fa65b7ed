// `volmgr encrypt`, `volmgr decrypt` and `volmgr conversion
// pause|resume|status`: in-place conversion of a device that holds data
// (volmgr/volume/conversion.h), with progress on a terminal and Ctrl-C as a
// clean pause.
#ifndef VOLMGR_CLI_CONVERSION_COMMANDS_H_
#define VOLMGR_CLI_CONVERSION_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/cli/unlock_flow.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

void RegisterConversionCommands(CLI::App& app, CommandEnv env);

// For `volmgr open`: true if `vol` is being encrypted and the conversion
// is not running right now.
bool ConversionPending(const volume::Volume& vol);

// `volmgr open` of a volume whose encryption was interrupted: recovers a
// crashed conversion, maps the volume as `name`, and continues the
// conversion online in a background process (`volmgr status` shows it,
// `volmgr conversion pause` stops it).
Status OpenDuringConversion(volume::Volume& vol, const SecretBytes& vmk,
                            const std::string& name);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_CONVERSION_COMMANDS_H_
