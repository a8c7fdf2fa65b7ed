// The credential options every command that unlocks a volume accepts, in
// volmgr and volmgr-recover alike.
#ifndef VOLMGR_CLI_CREDENTIAL_OPTIONS_H_
#define VOLMGR_CLI_CREDENTIAL_OPTIONS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "volmgr/cli/secret_input.h"

namespace volmgr::cli {

struct CredentialOptions {
  SecretSource key;                       // --key-file / --key-fd
  std::vector<std::string> startup_keys;  // --startup-key (repeatable)
  std::string recovery_id;                // --recovery-id

  // Registers --key-file, --key-fd, --startup-key and --recovery-id on `cmd`.
  void AddTo(CLI::App* cmd);
};

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_CREDENTIAL_OPTIONS_H_
