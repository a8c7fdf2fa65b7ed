// The Customer Key verbs of `volmgr` (docs/CLI.md "Customer Key"):
//
//   volmgr revoke DEVICE ID                       remove a customer key
//   volmgr purge DEVICE --yes-destroy-all-data    destroy every protector
//
// and the `protector add ... pkcs11|cert` flags (Pkcs11AddFlags), which
// check the Customer Key policy before a customer key is enrolled
// (volmgr/protectors/customer_key_policy.h).
#ifndef VOLMGR_CLI_CUSTOMER_KEY_COMMANDS_H_
#define VOLMGR_CLI_CUSTOMER_KEY_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/cli/unlock_flow.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

// `protector add` flags for the pkcs11 and cert kinds.
struct Pkcs11AddFlags {
  std::string uri, module, role, certificate;
  SecretSource new_token_pin;  // --new-token-pin-file / --new-token-pin-fd

  void AddTo(CLI::App* cmd);
  // Checks the flags against `kind`, reads the new key's token PIN (pkcs11:
  // flag, else a prompt) into `pin`, and for a customer key checks the
  // policy (kFailedPrecondition for a second key in the same token or a
  // third key). Call before unlocking.
  Status Prepare(const std::string& kind, const volume::Volume& vol,
                 std::optional<SecretBytes>& pin) const;
  // Copies the flags into `req`; `pin` must outlive it.
  void Fill(protectors::CreateRequest& req,
            const std::optional<SecretBytes>& pin) const;
};

// Registers `revoke` and `purge`.
void RegisterCustomerKeyCommands(CLI::App& app, CommandEnv env);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_CUSTOMER_KEY_COMMANDS_H_
