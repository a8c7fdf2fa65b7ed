// How the CLI reports: human text on a terminal, JSON with --json, and one
// error line "volmgr: <message>" on stderr with the documented exit code.
#ifndef VOLMGR_CLI_OUTPUT_H_
#define VOLMGR_CLI_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "volmgr/base/status.h"
#include "volmgr/base/terminal_text.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/conversion.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

// Prints "<program>: <message>" on stderr and returns the exit code.
int ReportError(const Status& status, std::string_view program = "volmgr");

// `doc` as indented JSON text for stdout. Strings from libcryptsetup (a
// label, a header's raw fields) need not be valid UTF-8, on which nlohmann's
// dump() throws: invalid bytes become U+FFFD instead.
std::string JsonText(const nlohmann::json& doc);

// `status` / `protector list` as JSON. Never contains a secret.
nlohmann::json VolumeJson(const volume::Volume& vol);
nlohmann::json ProtectorJson(const protectors::ProtectorRecord& p);

// The same as aligned human text. Text from the disk (label, IDs, token
// fields, warnings) is escaped with TerminalSafe() (base/terminal_text.h).
std::string VolumeText(const volume::Volume& vol);

// "<ID>  <Describe()>", escaped for a terminal: one protector in text output.
std::string ProtectorLine(const protectors::ProtectorRecord& p);

std::string HumanBytes(uint64_t bytes);

// An in-place conversion's state (`conversion status --json`, and the
// "conversion" member of `status --json`).
nlohmann::json ConversionJson(const std::string& device,
                              const volume::ConversionStatus& s);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_OUTPUT_H_
