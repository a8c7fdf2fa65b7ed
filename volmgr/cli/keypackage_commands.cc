#include "volmgr/cli/keypackage_commands.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "volmgr/cli/secret_input.h"
#include "volmgr/recover/key_package_export.h"

namespace volmgr::cli {
namespace {

constexpr const char* kExportHelp = R"(
A key package holds what it takes to rebuild access to the volume if its
LUKS2 header is destroyed: the FVEK, the geometry, the UUID and a checksum of
the first data MiB, sealed under the recovery password you type (its ID is
kept in the clear), or with --certificate to a data recovery agent's
certificate (then any passphrase, recovery password or key file of the
volume unlocks, and only the agent's private key opens the package). Keep it
as safe as that password or key, and apart from it.
`volmgr-recover keypackage show|verify|mount|rebuild` read it.

Examples:
  volmgr keypackage export /dev/sdb --out /media/usb/sdb.vkp   # prompts
  volmgr keypackage export disk.img --out disk.vkp --key-file disk.recovery
  volmgr keypackage export /dev/sdb --out sdb.vkp --recovery-id 5d1c2a10-...
  volmgr keypackage export /dev/sdb --out sdb-agent.vkp --certificate agent.crt
  volmgr-recover rebuild /dev/sdb --key-package /media/usb/sdb.vkp
  volmgr-recover rebuild /dev/sdb --key-package sdb-agent.vkp --agent-key agent.pem
)";

struct ExportArgs {
  std::string device;
  std::string out;
  SecretSource key;
  std::string recovery_id;
  std::string certificate;
};

}  // namespace

void RegisterKeypackageCommands(CLI::App& app, CommandEnv env) {
  auto* kp = app.add_subcommand(
      "keypackage", "Key packages: rebuild access if the header is destroyed");
  kp->require_subcommand(1);
  auto* ex = kp->add_subcommand(
      "export",
      "Write a key package for DEVICE, sealed under one of its recovery "
      "passwords (which also unlocks)");
  ex->footer(kExportHelp);
  // The callback outlives this function: the options live as long as `app`.
  auto args = std::make_shared<ExportArgs>();
  ex->add_option("DEVICE", args->device, "volume device or image")->required();
  ex->add_option("--out", args->out, "new key package file (mode 0400)")
      ->required();
  ex->add_option("--key-file", args->key.file,
                 "read the recovery password from FILE ('-' = stdin)");
  ex->add_option("--key-fd", args->key.fd,
                 "read the recovery password from descriptor N");
  ex->add_option("--recovery-id", args->recovery_id,
                 "which recovery password (if the volume has several)");
  ex->add_option("--certificate", args->certificate,
                 "seal to this data recovery agent certificate (PEM/DER) "
                 "instead of the recovery password");
  ex->add_flag("--json", env.json_mode, "print the result as JSON");
  ex->callback([args, env] {
    env.result = [&]() -> Status {
      if (access(args->out.c_str(), F_OK) == 0) {
        return AlreadyExistsError(args->out +
                                  " exists; a key package is never "
                                  "overwritten");
      }
      const bool agent = !args->certificate.empty();
      if (agent && !args->recovery_id.empty()) {
        return InvalidArgumentError(
            "--recovery-id picks the sealing recovery password; a package "
            "for --certificate is sealed to the certificate");
      }
      const char* what =
          agent ? "passphrase or recovery password" : "recovery password";
      if (!args->key.has() && !CanPrompt()) {
        return FailedPreconditionError(
            std::string("no ") + what +
            " given and no terminal to ask on: pass --key-file or --key-fd");
      }
      // A file --recovery-password-file wrote reads as its password and ID.
      VOLMGR_ASSIGN_OR_RETURN(
          KeyInput typed,
          ReadKey(args->key, std::string(agent ? "Passphrase or recovery "
                                                 "password for "
                                               : "Recovery password for ") +
                                 args->device + ": "));
      const std::string rid =
          args->recovery_id.empty() ? typed.recovery_id : args->recovery_id;
      VOLMGR_ASSIGN_OR_RETURN(
          recover::ExportedKeyPackage pkg,
          agent ? recover::ExportKeyPackageForAgent(
                      args->device, std::move(typed.secret), args->certificate)
                : recover::ExportKeyPackage(args->device,
                                            std::move(typed.secret), rid));
      VOLMGR_RETURN_IF_ERROR(recover::WriteKeyPackage(args->out, pkg.file));
      if (env.json_mode) {
        nlohmann::json j{{"device", args->device},
                         {"key_package", args->out},
                         {"volume_uuid", pkg.volume_uuid}};
        if (agent) {
          j["certificate_sha256"] = pkg.certificate_sha256;
          j["certificate_subject"] = pkg.certificate_subject;
        } else {
          j["recovery_id"] = pkg.recovery_id;
        }
        std::cout << j.dump(2) << std::endl;
        return Status::Ok();
      }
      if (agent) {
        std::printf(
            "Key package for volume %s written to %s.\nIt opens with the "
            "private key of agent certificate %s (SHA-256 %.16s...); "
            "together they decrypt the whole volume.\n",
            pkg.volume_uuid.c_str(), args->out.c_str(),
            pkg.certificate_subject.c_str(), pkg.certificate_sha256.c_str());
        return Status::Ok();
      }
      std::printf(
          "Key package for volume %s written to %s.\nIt opens with "
          "recovery password %s; together they decrypt the whole volume: "
          "store it apart from the password.\n",
          pkg.volume_uuid.c_str(), args->out.c_str(), pkg.recovery_id.c_str());
      return Status::Ok();
    }();
  });
}

}  // namespace volmgr::cli
