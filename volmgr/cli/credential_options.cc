#include "volmgr/cli/credential_options.h"

namespace volmgr::cli {

void CredentialOptions::AddTo(CLI::App* cmd) {
  cmd->add_option("--key-file", key.file,
                  "read the passphrase or recovery password from FILE "
                  "('-' = stdin; one trailing newline is ignored)");
  cmd->add_option("--key-fd", key.fd,
                  "read the passphrase or recovery password from descriptor N");
  cmd->add_option("--startup-key", startup_keys,
                  "unlock with this startup key file (.BEK)");
  cmd->add_option("--recovery-id", recovery_id,
                  "use only the recovery password with this ID (or its "
                  "first 8 characters)");
}

}  // namespace volmgr::cli
