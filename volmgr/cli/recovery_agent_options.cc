#include "volmgr/cli/recovery_agent_options.h"

#include <cstdio>

#include "volmgr/protectors/customer_key_policy.h"
#include "volmgr/x509/certificate.h"

namespace volmgr::cli {

void RecoveryAgentOptions::AddTo(CLI::App* cmd) {
  CredentialOptions::AddTo(cmd);
  cmd->add_option("--agent-key", agent_keys,
                  "data recovery agent private key: a PEM file or a "
                  "pkcs11: URI (repeatable)");
  cmd->add_flag("--availability-key", availability_key,
                "recover with the volume's availability key (PKCS#11), when "
                "both customer keys are lost");
  cmd->add_option("--token-pin-file", token_pin.file,
                  "read the PKCS#11 token PIN from FILE ('-' = stdin)");
  cmd->add_option("--token-pin-fd", token_pin.fd,
                  "read the PKCS#11 token PIN from descriptor N");
  cmd->add_option("--pkcs11-module", pkcs11_module,
                  "PKCS#11 module to load instead of the stored one");
}

Status RecoveryAgentOptions::Fill(const volume::Volume& vol,
                                  protectors::Credentials& creds) const {
  creds.agent_keys = agent_keys;
  creds.allow_availability_key = availability_key;
  creds.use_pkcs11 = availability_key;
  creds.skip_tpm = true;
  creds.pkcs11_module = pkcs11_module;
  bool token = availability_key;
  for (const auto& k : agent_keys) token |= k.rfind("pkcs11:", 0) == 0;
  for (const auto& p : vol.protectors()) {
    if (p.kind != "cert" || agent_keys.empty()) continue;
    auto der =
        protectors::FromBase64(protectors::StringParamOr(p, "certificate"));
    if (!der.ok()) continue;
    auto cert = x509::Certificate::FromDer(*der);
    if (!cert.ok()) continue;
    for (const auto& problem : cert->Problems()) {
      std::fprintf(stderr,
                   "volmgr-recover: warning: agent protector %s: %s "
                   "(recovery proceeds; enrol a new certificate)\n",
                   p.id.substr(0, 8).c_str(), problem.c_str());
    }
  }
  if (availability_key &&
      protectors::EvaluatePolicy(vol.protectors()).availability_keys.empty()) {
    return NotFoundError(vol.device() + " has no availability key");
  }
  if (!token) return Status::Ok();
  if (token_pin.has()) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes pin, ReadSecret(token_pin, ""));
    creds.token_pin = std::move(pin);
  } else if (CanPrompt()) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes pin,
                            PromptSecret("PKCS#11 token PIN: "));
    creds.token_pin = std::move(pin);
  } else {
    return PinRequiredError(
        "the PKCS#11 token needs its PIN: pass --token-pin-file or "
        "--token-pin-fd");
  }
  return Status::Ok();
}

void RecoveryAgentOptions::Report(
    const std::vector<volume::UnlockFailure>& failures) {
  for (const auto& f : failures) {
    std::fprintf(stderr, "volmgr-recover: %s protector %s: %s\n",
                 f.kind.c_str(), f.protector_id.substr(0, 8).c_str(),
                 f.status.message().c_str());
  }
}

}  // namespace volmgr::cli
