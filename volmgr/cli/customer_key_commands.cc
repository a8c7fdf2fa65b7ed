#include "volmgr/cli/customer_key_commands.h"

#include <cstdio>
#include <memory>

#include "volmgr/base/clock.h"
#include "volmgr/protectors/customer_key_policy.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume_lock.h"

namespace volmgr::cli {

using volume::Volume;

void Pkcs11AddFlags::AddTo(CLI::App* cmd) {
  cmd->add_option("--uri", uri,
                  "pkcs11: RFC 7512 URI of the key in the HSM, e.g. "
                  "'pkcs11:token=ck-a;object=vmk-kek' (an AES key, or an RSA "
                  "key pair); cert: with --pkcs11 nothing else");
  cmd->add_option("--module", module,
                  "pkcs11: PKCS#11 module library (default: the URI's "
                  "module-path, else p11-kit's registered modules)");
  cmd->add_option("--role", role,
                  "pkcs11: customer (default; tried by --pkcs11) or "
                  "availability (only volmgr-recover uses it)")
      ->check(CLI::IsMember({"customer", "availability"}));
  cmd->add_option("--new-token-pin-file", new_token_pin.file,
                  "pkcs11: read the PIN of the token holding the new key "
                  "from FILE ('-' = stdin)");
  cmd->add_option("--new-token-pin-fd", new_token_pin.fd,
                  "pkcs11: the same from descriptor N");
  cmd->add_option("--certificate", certificate,
                  "cert: the data recovery agent's X.509 certificate (PEM "
                  "or DER; RSA 2048+ or EC P-256/P-384)");
}

Status Pkcs11AddFlags::Prepare(const std::string& kind, const Volume& vol,
                               std::optional<SecretBytes>& pin) const {
  if (kind != "pkcs11" && (!uri.empty() || !module.empty() || !role.empty() ||
                           new_token_pin.has())) {
    return InvalidArgumentError(
        "--uri, --module, --role and --new-token-pin-* are for pkcs11");
  }
  if (kind != "cert" && !certificate.empty()) {
    return InvalidArgumentError("--certificate is for cert");
  }
  if (kind == "cert" && certificate.empty()) {
    return InvalidArgumentError("cert needs --certificate FILE");
  }
  if (kind != "pkcs11") return Status::Ok();
  if (uri.empty()) {
    return InvalidArgumentError("pkcs11 needs --uri 'pkcs11:...'");
  }
  if (role.empty() || role == protectors::kRoleCustomer) {
    auto identity = protectors::Pkcs11TokenIdentity(uri, module);
    if (!identity.ok()) return identity.status();
    VOLMGR_RETURN_IF_ERROR(
        protectors::CheckNewCustomerKey(vol.protectors(), *identity));
  }
  if (new_token_pin.has()) {
    VOLMGR_ASSIGN_OR_RETURN(pin, ReadSecret(new_token_pin, ""));
  } else if (CanPrompt()) {
    VOLMGR_ASSIGN_OR_RETURN(
        pin, PromptSecret("PIN of the token holding the new key: "));
  } else {
    return PinRequiredError(
        "the new key's token needs its PIN: pass --new-token-pin-file or "
        "--new-token-pin-fd");
  }
  return Status::Ok();
}

void Pkcs11AddFlags::Fill(protectors::CreateRequest& req,
                          const std::optional<SecretBytes>& pin) const {
  req.pkcs11_uri = uri;
  req.pkcs11_module = module;
  req.role = role;
  req.token_pin = pin ? &*pin : nullptr;
  req.certificate_file = certificate;
}

namespace {

constexpr const char* kRevokeHelp = R"(
Removes a customer key (a pkcs11 protector of role customer) from DEVICE:
the key in that HSM no longer opens the volume, even if the HSM is
compromised later. Other protectors are untouched; the last protector is
never removed (see `volmgr purge`).

Examples:
  volmgr revoke /dev/sdb 5d1c2a10
  volmgr status /dev/sdb          # shows the Customer Key policy
)";

constexpr const char* kPurgeHelp = R"(
Data purge: destroys every keyslot and every protector token of DEVICE, so
that nothing (no protector, no recovery password, no availability key, not
even stock cryptsetup) can open it again. The encrypted data stays on the
disk but its key is gone. Header backups made earlier still hold working
keyslots: destroy them too (docs/SECURITY.md "Data purge").

Examples:
  volmgr close data
  volmgr purge /dev/sdb --yes-destroy-all-data
)";

}  // namespace

void RegisterCustomerKeyCommands(CLI::App& app, CommandEnv env) {
  // ---- revoke --------------------------------------------------------------
  auto* revoke = app.add_subcommand(
      "revoke", "Revoke a customer key (PKCS#11 protector) of DEVICE");
  revoke->footer(kRevokeHelp);
  auto device = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  revoke->add_option("DEVICE", *device, "volume")->required();
  revoke->add_option("ID", *id, "customer key protector ID (8+ characters)")
      ->required();
  revoke->callback([device, id, env] {
    env.result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(*device));
      VOLMGR_ASSIGN_OR_RETURN(const protectors::ProtectorRecord* p,
                              vol.FindProtector(*id));
      if (p->kind != "pkcs11" ||
          protectors::StringParamOr(*p, "role") != protectors::kRoleCustomer) {
        return InvalidArgumentError(
            "protector " + p->id + " is not a customer key (it is a " +
            p->kind + " protector); use `volmgr protector remove`");
      }
      const std::string full = p->id;
      VOLMGR_RETURN_IF_ERROR(vol.RemoveProtector(full));
      VOLMGR_ASSIGN_OR_RETURN(Volume after, Volume::Load(*device));
      std::printf(
          "Customer key %s revoked: its HSM key no longer opens %s.\n"
          "Customer Key policy now: %s\n",
          full.c_str(), device->c_str(),
          protectors::EvaluatePolicy(after.protectors()).Summary().c_str());
      return Status::Ok();
    }();
  });

  // ---- purge ---------------------------------------------------------------
  auto* purge = app.add_subcommand(
      "purge",
      "Data purge: destroy every protector and keyslot of DEVICE (the data "
      "becomes unrecoverable)");
  purge->footer(kPurgeHelp);
  auto pdevice = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  purge->add_option("DEVICE", *pdevice, "volume")->required();
  purge->add_flag("--yes-destroy-all-data", *yes,
                  "confirm that the data of DEVICE is to be destroyed");
  purge->callback([pdevice, yes, env] {
    env.result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(*pdevice));
      if (!*yes) {
        return FailedPreconditionError(
            "purge makes every byte of " + *pdevice +
            " unrecoverable; pass --yes-destroy-all-data to confirm");
      }
      auto open = vol.ActiveMappingNames();
      if (!open.empty()) {
        return BusyError(*pdevice + " is open as /dev/mapper/" + open.front() +
                         "; close it first (the kernel holds its key)");
      }
      const std::string uuid = vol.uuid();
      VOLMGR_ASSIGN_OR_RETURN(volume::VolumeLock lock,
                              volume::VolumeLock::Acquire(*pdevice));
      VOLMGR_ASSIGN_OR_RETURN(volume::LuksDevice luks,
                              volume::LuksDevice::Load(*pdevice));
      // Keyslots first: they are what opens the volume (libcryptsetup
      // overwrites each keyslot's key material area). Then the tokens, so
      // no wrapped VMK remains either.
      int slots = 0, tokens = 0;
      for (int slot = 0; slot < 32; ++slot) {
        if (!luks.KeyslotActive(slot)) continue;
        VOLMGR_RETURN_IF_ERROR(luks.DestroyKeyslot(slot));
        ++slots;
      }
      for (const auto& [token_id, json] : luks.ListTokens()) {
        VOLMGR_RETURN_IF_ERROR(luks.RemoveToken(token_id));
        ++tokens;
      }
      // Say what happened, for whoever finds the header later.
      const std::string when = NowRfc3339Utc();
      VOLMGR_RETURN_IF_ERROR(luks.SetSubsystem(
          std::string(volume::kPurgedSubsystemPrefix) + when));
      std::printf(
          "Purged %s (UUID %s) on %s: %d keyslots and %d tokens destroyed. "
          "Nothing opens it any more.\n",
          pdevice->c_str(), uuid.c_str(), when.c_str(), slots, tokens);
      return Status::Ok();
    }();
  });
}

}  // namespace volmgr::cli
