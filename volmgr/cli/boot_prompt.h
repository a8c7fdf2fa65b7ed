// Asking for a key at boot, when nobody may be there: through systemd's
// password agents (`systemd-ask-password`, which reaches Plymouth, the
// console and wall agents) when systemd runs, else directly on a console
// (a terminal, or a FIFO that another program feeds). Every ask has a
// deadline: no answer in time is an error, never a hang.
#ifndef VOLMGR_CLI_BOOT_PROMPT_H_
#define VOLMGR_CLI_BOOT_PROMPT_H_

#include <chrono>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::cli {

struct BootPrompt {
  std::string message;  // "Enter the recovery password for ID 5D1C2A10 ..."
  std::string id;       // systemd-ask-password --id, e.g. "volmgr:vdb"
  std::chrono::seconds timeout{90};
  // Prompt on this console instead of asking systemd's agents; empty: use
  // systemd-ask-password when systemd runs (/run/systemd/system exists and
  // the binary is installed), else /dev/console.
  std::string console;
};

// How the answer will be asked for, in words ("systemd-ask-password",
// "console /dev/console").
std::string PromptChannel(const BootPrompt& p);

// Asks once and returns what was typed (no trailing newline). Errors:
// kFailedPrecondition "no answer within N s" on timeout (or when the agent
// was cancelled), kUnavailable if the console cannot be opened, kIoError.
// On a terminal, echo is off while reading and restored afterwards. A FIFO
// console only supplies the answer: the message is written to /dev/console
// if that opens, and is always returned to the caller to log.
StatusOr<SecretBytes> AskWithTimeout(const BootPrompt& p);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_BOOT_PROMPT_H_
