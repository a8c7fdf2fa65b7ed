// How the CLI reports: human text on a terminal, JSON with --json, and one
// error line "volmgr: <message>" on stderr with the documented exit code.
#ifndef VOLMGR_CLI_OUTPUT_H_
#define VOLMGR_CLI_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "volmgr/base/status.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/conversion.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

// Prints "<program>: <message>" on stderr and returns the exit code.
int ReportError(const Status& status, std::string_view program = "volmgr");

// `status` / `protector list` as JSON. Never contains a secret.
nlohmann::json VolumeJson(const volume::Volume& vol);
nlohmann::json ProtectorJson(const protectors::ProtectorRecord& p);

// The same as aligned human text.
std::string VolumeText(const volume::Volume& vol);

std::string HumanBytes(uint64_t bytes);

// An in-place conversion's state (`conversion status --json`, and the
// "conversion" member of `status --json`).
nlohmann::json ConversionJson(const std::string& device,
                              const volume::ConversionStatus& s);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_OUTPUT_H_
