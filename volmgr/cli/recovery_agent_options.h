// volmgr-recover's extra credentials: data recovery agent keys
// (--agent-key, for cert protectors) and the availability key
// (--availability-key, a pkcs11 protector of role "availability"), with the
// PKCS#11 token PIN (--token-pin-file / --token-pin-fd, else a prompt) and
// module (--pkcs11-module). `volmgr` itself never takes these: the
// availability key and the agents are for recovery only.
#ifndef VOLMGR_CLI_RECOVERY_AGENT_OPTIONS_H_
#define VOLMGR_CLI_RECOVERY_AGENT_OPTIONS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/cli/credential_options.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

struct RecoveryAgentOptions : CredentialOptions {
  std::vector<std::string> agent_keys;
  bool availability_key = false;
  SecretSource token_pin;
  std::string pkcs11_module;

  bool any() const { return !agent_keys.empty() || availability_key; }

  // The shared credential options plus the recovery-only ones.
  void AddTo(CLI::App* cmd);

  // Fills `creds` for an agent / availability-key unlock of `vol`: reads the
  // token PIN when a PKCS#11 key is involved, and warns (stderr) about agent
  // certificates that have expired or lost their key usage: recovery still
  // proceeds with them.
  Status Fill(const volume::Volume& vol, protectors::Credentials& creds) const;

  // Prints why each agent / availability-key protector did not open (wrong
  // PIN, absent token), one line each on stderr.
  static void Report(const std::vector<volume::UnlockFailure>& failures);
};

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_RECOVERY_AGENT_OPTIONS_H_
