// How volmgr's commands unlock a volume and hand out new secrets: the
// credential flags (key, startup keys, TPM PIN and TCTI), the unlock order
// (a suspended volume's clear key, then TPM and startup keys, then a typed
// key), and showing a new recovery password exactly once. Shared by every
// verb group of the `volmgr` binary (volmgr/cli/*_commands.cc).
#ifndef VOLMGR_CLI_UNLOCK_FLOW_H_
#define VOLMGR_CLI_UNLOCK_FLOW_H_

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/cli/credential_options.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/crypto/argon2id.h"
#include "volmgr/volume/volume.h"

namespace volmgr::cli {

// The TCTI: --tcti, else $VOLMGR_TCTI, else (empty) device:/dev/tpmrm0.
// Configuration, not a secret, so the environment is fine here.
std::string ResolveTcti(const std::string& flag);

// Whether an unlock may use the clear key of a suspended volume: `open`
// uses it and counts the unlock; reseal/suspend use it without counting;
// everything else needs a real protector.
enum class ClearKeyUse { kNo, kCounted, kUncounted };

// The shared credential options plus the TPM PIN and TCTI, and what an
// unlock learnt that a reseal needs afterwards.
struct UnlockOptions : CredentialOptions {
  SecretSource pin_source;  // --pin-file / --pin-fd
  std::string tcti;
  // The PIN once read or typed: kept for a reseal after the unlock.
  std::optional<SecretBytes> pin;
  // Customer keys (pkcs11 protectors): --pkcs11, the token PIN's source
  // (--token-pin-file / --token-pin-fd; else a prompt) and --pkcs11-module.
  bool use_pkcs11 = false;
  SecretSource token_pin_source;
  std::string pkcs11_module;
  bool UsesPkcs11() const {
    return use_pkcs11 || token_pin_source.has() || !pkcs11_module.empty();
  }

  Status LoadPin() {
    if (pin || !pin_source.has()) return Status::Ok();
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes p, ReadSecret(pin_source, ""));
    pin = std::move(p);
    return Status::Ok();
  }

  volume::ResealRequest Reseal() const {
    volume::ResealRequest r;
    r.tcti = ResolveTcti(tcti);
    r.pin = pin ? &*pin : nullptr;
    r.startup_key_files = startup_keys;
    return r;
  }

  // The shared credential options plus the TPM's PIN and TCTI.
  void AddTo(CLI::App* cmd) {
    CredentialOptions::AddTo(cmd);
    cmd->add_option("--pin-file", pin_source.file,
                    "read the TPM PIN from FILE ('-' = stdin)");
    cmd->add_option("--pin-fd", pin_source.fd,
                    "read the TPM PIN from descriptor N");
    cmd->add_option("--tcti", tcti,
                    "how to reach the TPM (default $VOLMGR_TCTI, else "
                    "device:/dev/tpmrm0; e.g. swtpm:host=127.0.0.1,port=2321)");
    AddPkcs11To(cmd);
  }

  // --pkcs11, --token-pin-file, --token-pin-fd, --pkcs11-module.
  void AddPkcs11To(CLI::App* cmd) {
    cmd->add_flag("--pkcs11", use_pkcs11,
                  "unlock with a customer key in a PKCS#11 token (HSM); asks "
                  "for the token PIN unless --token-pin-* gives it");
    cmd->add_option("--token-pin-file", token_pin_source.file,
                    "read the PKCS#11 token PIN from FILE ('-' = stdin); "
                    "implies --pkcs11");
    cmd->add_option("--token-pin-fd", token_pin_source.fd,
                    "read the PKCS#11 token PIN from descriptor N; implies "
                    "--pkcs11");
    cmd->add_option("--pkcs11-module", pkcs11_module,
                    "PKCS#11 module to load instead of the one stored with "
                    "the protector (default: p11-kit's registered modules)");
  }
};

// Reads the token PIN (--token-pin-*, else a prompt) into `creds`. With no
// source and no terminal: kPinRequired.
Status LoadTokenPin(const UnlockOptions& o, const std::string& what,
                    protectors::Credentials& creds);

struct Argon2Flags {
  uint32_t time = 0, memory = 0, lanes = 0;
  void AddTo(CLI::App* cmd) {
    cmd->add_option("--argon2-time", time,
                    "fix Argon2id passes instead of calibrating (with "
                    "--argon2-memory)");
    cmd->add_option("--argon2-memory", memory, "fix Argon2id memory in KiB");
    cmd->add_option("--argon2-lanes", lanes, "fix Argon2id lanes (default 4)");
  }
  crypto::Argon2Params Params() const {
    crypto::Argon2Params p{};
    if (time != 0) {
      p.time_cost = time;
      p.memory_kib = memory != 0 ? memory : 65536;
      p.parallelism = lanes != 0 ? lanes : 4;
    }
    return p;
  }
};

// Prints what a reseal did (or why it could not) for each TPM protector.
void PrintResealOutcomes(const std::vector<volume::ResealOutcome>& out);

// "volmgr: TPM refused: PCR 7 changed (sealed …, now …); falling back"
void ReportTpmFallback(const std::vector<volume::UnlockFailure>& failures);

// True if the volume has a TPM protector (with a PIN, when `with_pin`).
bool HasTpmProtector(const volume::Volume& vol, bool with_pin = false);

// Gathers credentials and unlocks: a suspended volume's clear key (if
// `clear_key` allows), then the TPM and startup keys (no typing; a TPM PIN is
// asked for when needed), then the given key or a prompt.
StatusOr<volume::UnlockResult> Unlock(volume::Volume& vol, UnlockOptions& o,
                                      ClearKeyUse clear_key = ClearKeyUse::kNo);

// Writes "Recovery ID / Recovery password" to a new file (mode 0400).
Status SaveRecoveryPassword(const std::string& path,
                            const volume::NewProtector& p);

// After `recovery-password rotate`: key packages exported earlier still
// open the volume (with the old password); what to do about them.
void PrintKeyPackageNote(const std::string& device, std::FILE* to = stdout);

// Shows a new recovery password once, with its ID (nothing in JSON mode:
// JSON callers get it in the document). The secret goes to stdout with
// write(2), never through stdio's buffer.
Status ShowRecoveryPassword(const volume::NewProtector& p, bool json_mode);
Status ShowRecoveryPassword(const std::string& id, const SecretBytes& text);

// The recovery password among a new volume's protectors (the one whose
// secret is shown once), or nullptr.
const volume::NewProtector* ShownRecoveryPassword(
    const std::vector<volume::NewProtector>& created);

// A new volume's protectors: the "protectors" JSON array, and one line
// "  protector ID  description" each on stdout.
nlohmann::json NewProtectorsJson(
    const std::vector<volume::NewProtector>& created);
void PrintNewProtectors(const std::vector<volume::NewProtector>& created);

// Prints a JSON document in which a recovery password appears; the secret is
// streamed into the output, never into a std::string.
Status PrintJsonWithSecret(nlohmann::json doc, const SecretBytes* secret);

// What every verb group needs from the app: where a subcommand's callback
// stores its outcome, and whether --json was given.
struct CommandEnv {
  std::optional<Status>& result;
  bool& json_mode;
};

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_UNLOCK_FLOW_H_
