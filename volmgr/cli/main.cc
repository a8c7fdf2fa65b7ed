// volmgr: BitLocker-grade volume encryption on LUKS2. The command line.
//
// Every secret comes from a no-echo prompt, --key-file or --key-fd, never
// from argv or the environment. Errors print one line and exit with the code
// of their Status (see `volmgr --help`, docs/CLI.md).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/secret_io.h"
#include "volmgr/cli/app_main.h"
#include "volmgr/cli/conversion_commands.h"
#include "volmgr/cli/credential_options.h"
#include "volmgr/cli/customer_key_commands.h"
#include "volmgr/cli/files_commands.h"
#include "volmgr/cli/keypackage_commands.h"
#include "volmgr/cli/output.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/cli/unlock_commands.h"
#include "volmgr/cli/unlock_flow.h"
#include "volmgr/cli/verb_filter.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume.h"
#include "volmgr/volume/volume_lock.h"

namespace volmgr::cli {
namespace {

using volume::Volume;

constexpr const char* kExitCodes = R"(
Exit codes:
  0 success               6 wrong key (authentication failed)
  1 usage error           7 PIN required
  2 invalid argument      8 unavailable (no dm-crypt, TPM, HSM)
  3 not found             9 corruption (damaged header or token)
  4 already exists       10 I/O error
  5 failed precondition  11 busy (in use or locked by another volmgr)
                         12 unsupported      70 internal error
)";

constexpr const char* kExamples = R"(
Examples:
  volmgr format /dev/sdb --passphrase
  volmgr format disk.img --passphrase --new-key-file pass.txt \
                --recovery-password-file disk.recovery --sector-size 512
  volmgr format /dev/sdb --tpm --pin          # TPM+PIN and a recovery password
  volmgr open /dev/sdb data                   # prompts for passphrase or recovery password
  volmgr open /dev/sdb data --startup-key /media/usb/5d1c....BEK
  volmgr open disk.img data --key-file - < pass.txt
  volmgr protector add /dev/sdb tpm --pin     # TPM+PIN, sealed to PCR 7
  volmgr protector add /dev/sdb tpm --pcrs 0,2,4,7 --tcti swtpm:host=127.0.0.1,port=2321
  volmgr open /dev/sdb data                   # TPM first; falls back if it refuses
  volmgr suspend /dev/sdb --reboot-count 1    # before a firmware update
  volmgr reseal /dev/sdb                      # after one, authorised by any protector
  volmgr status /dev/sdb --json
  volmgr protector add /dev/sdb pkcs11 --uri 'pkcs11:token=ck-a;object=vmk-kek'
  volmgr open /dev/sdb data --pkcs11          # customer key; asks for the token PIN
  volmgr protector add /dev/sdb cert --certificate fleet-dra.crt
  volmgr protector add /dev/sdb startup-key --out /media/usb/sdb.BEK
  volmgr protector remove /dev/sdb 5d1c2a10
  volmgr recovery-password rotate /dev/sdb
  volmgr header backup /dev/sdb sdb-header.img
  volmgr keypackage export /dev/sdb --out /media/usb/sdb.vkp   # asks for a recovery password
  volmgr close data
)";

// Every top-level verb, in the order `volmgr --help` lists them.
constexpr std::string_view kVerbNames[] = {
    "format",  "open",       "close",
    "status",  "protector",  "recovery-password",
    "reseal",  "suspend",    "resume",
    "header",  "keypackage", "unlock",
    "encrypt", "decrypt",    "conversion",
    "revoke",  "purge",      "files"};
constexpr std::span<const std::string_view> kVerbs(kVerbNames);

int Run(int argc, char** argv) {
  CLI::App app{
      "volmgr: BitLocker-grade disk encryption for Linux (LUKS2 + dm-crypt, "
      "AES-256-XTS)."};
  app.footer(std::string(kExamples) + kExitCodes);
  app.require_subcommand(1);
  app.set_version_flag("--version", "volmgr 0.1.0");
  bool json_mode = false;
  std::optional<Status> result;

  // Only the verb the command line names is built: CLI11 pays for every
  // option it registers, and under qemu TCG building all of them was most
  // of a command's start-up (docs/PERFORMANCE.md, "TPM unlock"). Help, a
  // bare --version and unknown verbs still see every verb.
  const VerbFilter wants(argc, argv, kVerbs);

  // What the verbs' options write into; declared here, outside the
  // conditional blocks below, because the callbacks run in app.parse.
  volume::FormatSpec spec;
  bool want_passphrase = false, no_recovery = false;
  SecretSource new_key;
  std::string recovery_file;
  Argon2Flags fmt_argon2;
  bool fmt_tpm = false, fmt_pin = false;
  SecretSource fmt_new_pin;
  std::vector<uint32_t> fmt_pcrs;
  std::string fmt_tpm_sk_out, fmt_tcti;
  std::string device, name;
  UnlockOptions unlock;
  volume::ActivateOptions act;
  bool test_only = false, read_wq = false, write_wq = false;
  std::string close_name;
  std::string target;
  bool status_json = false;
  std::string kind, out_file, description, tpm_sk_out;
  UnlockOptions add_unlock;
  SecretSource add_new_key, add_new_pin;
  Argon2Flags add_argon2;
  bool add_pin = false;
  std::vector<uint32_t> add_pcrs;
  Pkcs11AddFlags add_p11;
  std::string prot_id;
  bool list_json = false;
  UnlockOptions rot_unlock;
  std::string rot_id, rot_file;
  UnlockOptions reseal_unlock;
  std::vector<uint32_t> reseal_pcrs;
  UnlockOptions suspend_unlock;
  uint32_t reboot_count = 1;
  UnlockOptions resume_opts;
  std::string hfile;
  bool restore_force = false;

  if (wants("format")) {
    // ---- format ----------------------------------------------------------
    auto* format = app.add_subcommand(
        "format",
        "Create a new encrypted volume on DEVICE (destroys its data)");
    format->add_option("DEVICE", spec.device, "block device or image file")
        ->required();
    format->add_flag("--passphrase", want_passphrase,
                     "add a passphrase protector");
    format->add_option("--new-key-file", new_key.file,
                       "read the new passphrase from FILE instead of asking");
    format->add_option("--new-key-fd", new_key.fd,
                       "read the new passphrase from descriptor N");
    format->add_option("--startup-key", spec.startup_key_file,
                       "add a startup-key protector, writing the key to this "
                       "new file");
    format->add_flag("--no-recovery-password", no_recovery,
                     "do not create a recovery password (not recommended)");
    format->add_option("--recovery-password-file", recovery_file,
                       "also write the recovery password to this new file");
    format
        ->add_option("--sector-size", spec.sector_size,
                     "encryption sector size: 4096 (default) or 512")
        ->check(CLI::IsMember({512, 4096}));
    format->add_option("--label", spec.label, "LUKS2 label");
    format->add_flag("--force", spec.force,
                     "overwrite a device that holds a filesystem, partition "
                     "table or LUKS header");
    format->add_flag("--json", json_mode, "print the result as JSON");
    fmt_argon2.AddTo(format);
    format->add_flag("--tpm", fmt_tpm,
                     "add a TPM protector sealed to PCR 7 (or --pcrs); the TPM "
                     "is checked before anything is written");
    format->add_flag(
        "--pin", fmt_pin,
        "with --tpm: TPM+PIN, asks for the new PIN (6+ characters)");
    format->add_option(
        "--new-pin-file", fmt_new_pin.file,
        "with --tpm: read the new PIN from FILE (implies --pin)");
    format->add_option("--new-pin-fd", fmt_new_pin.fd,
                       "with --tpm: read the new PIN from descriptor N "
                       "(implies --pin)");
    format
        ->add_option("--pcrs", fmt_pcrs,
                     "with --tpm: PCRs to seal to, sha256 bank (default 7)")
        ->delimiter(',')
        ->check(CLI::Range(0, 23));
    format->add_option("--tpm-startup-key-out", fmt_tpm_sk_out,
                       "with --tpm: TPM+startup key, writing the new key to "
                       "this file (or DIR/<ID>.BEK)");
    format->add_option("--tcti", fmt_tcti,
                       "with --tpm: how to reach the TPM (default "
                       "$VOLMGR_TCTI, else device:/dev/tpmrm0)");
    format->callback([&] {
      result = [&]() -> Status {
        if (!fmt_tpm && (fmt_pin || fmt_new_pin.has() || !fmt_pcrs.empty() ||
                         !fmt_tpm_sk_out.empty() || !fmt_tcti.empty())) {
          return InvalidArgumentError(
              "--pin, --new-pin-*, --pcrs, --tpm-startup-key-out and --tcti "
              "need --tpm");
        }
        std::optional<SecretBytes> new_pin;
        if (fmt_tpm) {
          protectors::CreateRequest req;
          if (fmt_pin || fmt_new_pin.has()) {
            VOLMGR_ASSIGN_OR_RETURN(
                new_pin, ReadSecret(fmt_new_pin, "New TPM PIN: ", true));
            req.pin = &*new_pin;
          }
          req.pcrs = fmt_pcrs;
          req.startup_key_file = fmt_tpm_sk_out;
          req.tcti = ResolveTcti(fmt_tcti);
          spec.tpm = std::move(req);
        }
        std::optional<SecretBytes> pass;
        if (want_passphrase || new_key.has()) {
          VOLMGR_ASSIGN_OR_RETURN(
              pass,
              ReadSecret(new_key, "New passphrase for " + spec.device + ": ",
                         /*confirm=*/true));
          spec.passphrase = &*pass;
        }
        spec.recovery_password = !no_recovery;
        spec.argon2 = fmt_argon2.Params();
        if (!recovery_file.empty() &&
            access(recovery_file.c_str(), F_OK) == 0) {
          return AlreadyExistsError(recovery_file +
                                    " exists; volmgr never "
                                    "overwrites a key file");
        }
        VOLMGR_ASSIGN_OR_RETURN(volume::FormatResult r, Volume::Format(spec));
        const volume::NewProtector* rp = ShownRecoveryPassword(r.protectors);
        if (rp != nullptr && !recovery_file.empty()) {
          VOLMGR_RETURN_IF_ERROR(SaveRecoveryPassword(recovery_file, *rp));
        }
        if (json_mode) {
          nlohmann::json doc = {{"device", spec.device}, {"uuid", r.uuid}};
          doc["protectors"] = NewProtectorsJson(r.protectors);
          if (rp) doc["recovery_id"] = rp->record.id;
          return PrintJsonWithSecret(doc, rp ? &*rp->shown_secret : nullptr);
        }
        std::printf("Formatted %s as a volmgr volume (UUID %s), AES-256-XTS.\n",
                    spec.device.c_str(), r.uuid.c_str());
        PrintNewProtectors(r.protectors);
        if (rp) VOLMGR_RETURN_IF_ERROR(ShowRecoveryPassword(*rp, json_mode));
        return Status::Ok();
      }();
    });
  }

  if (wants("open")) {
    // ---- open --------------------------------------------------------------
    auto* open_cmd = app.add_subcommand(
        "open", "Unlock DEVICE and map it as /dev/mapper/NAME");
    open_cmd->add_option("DEVICE", device, "volume device or image")
        ->required();
    open_cmd->add_option("NAME", name, "mapping name")->required();
    unlock.AddTo(open_cmd);
    open_cmd->add_flag("--readonly", act.read_only, "map read-only");
    open_cmd->add_flag(
        "--discard", act.allow_discards,
        "pass discards (TRIM) to the device (reveals free space)");
    open_cmd->add_flag("--read-workqueue", read_wq,
                       "decrypt in dm-crypt's kcryptd workqueue instead of the "
                       "I/O completion context");
    open_cmd->add_flag("--write-workqueue", write_wq,
                       "encrypt in dm-crypt's workqueue instead of the "
                       "submitting context");
    open_cmd->add_flag("--test", test_only,
                       "only check that the credential unlocks; map nothing");
    open_cmd->callback([&] {
      result = [&]() -> Status {
        if (!test_only && name.empty())
          return InvalidArgumentError("NAME is empty");
        // A test changes nothing on disk: it reads the header read-only and
        // does not count an unlock of a suspended volume (counting the last
        // one would reseal the TPM protectors and remove the clear key).
        VOLMGR_ASSIGN_OR_RETURN(
            Volume vol,
            Volume::Load(device, test_only ? volume::Access::kReadOnly
                                           : volume::Access::kReadWrite));
        for (const auto& w : vol.warnings()) {
          std::fprintf(stderr, "volmgr: warning: %s\n",
                       TerminalSafe(w).c_str());
        }
        VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u,
                                Unlock(vol, unlock,
                                       test_only ? ClearKeyUse::kUncounted
                                                 : ClearKeyUse::kCounted));
        const auto* h = protectors::FindHandler(u.used.kind);
        const std::string used_name = h != nullptr
                                          ? std::string(h->display_name())
                                          : "clear key (protection suspended)";
        if (test_only) {
          std::printf("%s unlocks with protector %s (%s).\n", device.c_str(),
                      TerminalSafe(u.used.id).c_str(), used_name.c_str());
          if (vol.clear_key() && u.used.kind == volume::kClearKeyKind &&
              vol.clear_key()->remaining != 0) {
            std::printf(
                "This test used none of the %u unlock(s) the suspension "
                "allows.\n",
                vol.clear_key()->remaining);
          }
          return Status::Ok();
        }
        act.no_read_workqueue = !read_wq;
        act.no_write_workqueue = !write_wq;
        // An interrupted in-place encryption continues online (issue 9).
        if (ConversionPending(vol))
          return OpenDuringConversion(vol, u.vmk, name);
        VOLMGR_RETURN_IF_ERROR(vol.Activate(name, u.vmk, act));
        if (isatty(STDOUT_FILENO)) {
          std::printf("Unlocked %s with its %s; data at /dev/mapper/%s\n",
                      device.c_str(), used_name.c_str(), name.c_str());
        }
        return Status::Ok();
      }();
    });
  }

  if (wants("close")) {
    // ---- close -------------------------------------------------------------
    auto* close_cmd = app.add_subcommand("close", "Remove mapping NAME (lock)");
    close_cmd->add_option("NAME", close_name, "mapping name")->required();
    close_cmd->callback(
        [&] { result = volume::LuksDevice::Deactivate(close_name); });
  }

  if (wants("status")) {
    // ---- status ------------------------------------------------------------
    auto* status_cmd = app.add_subcommand(
        "status",
        "Show a volume (or every open one): size, encryption, "
        "protectors, lock state");
    status_cmd->add_option("TARGET", target,
                           "device, image or mapping name (default: every "
                           "open volmgr volume)");
    status_cmd->add_flag("--json", status_json, "print JSON");
    status_cmd->callback([&] {
      result = [&]() -> Status {
        std::vector<std::string> devices;
        if (target.empty()) {
          for (const auto& m : volume::OpenLuks2Mappings()) {
            devices.push_back(m.backing_device);
          }
        } else if (access(target.c_str(), F_OK) == 0) {
          devices.push_back(target);
        } else {
          auto m = volume::LuksDevice::QueryMapping(target);
          if (!m.ok()) {
            return NotFoundError(target +
                                 " is neither a device nor an active volume");
          }
          devices.push_back(m->backing_device);
        }
        nlohmann::json all = nlohmann::json::array();
        std::string text;
        for (const auto& dev : devices) {
          auto vol = Volume::Load(dev, volume::Access::kReadOnly);
          if (!vol.ok()) {
            // Without a TARGET, LUKS2 mappings that volmgr did not make are
            // simply not ours to show.
            if (target.empty()) continue;
            return vol.status();
          }
          all.push_back(VolumeJson(*vol));
          text += VolumeText(*vol);
        }
        if (status_json) {
          std::cout << JsonText(target.empty() ? all : all.at(0)) << std::endl;
        } else if (target.empty() && all.empty()) {
          std::cout << "No volmgr volume is open." << std::endl;
        } else {
          std::cout << text;
        }
        return Status::Ok();
      }();
    });
  }

  if (wants("protector")) {
    // ---- protector add|remove|list ----------------------------------------
    auto* prot = app.add_subcommand("protector", "Manage key protectors");
    prot->require_subcommand(1);
    auto* padd = prot->add_subcommand(
        "add",
        "Add a protector (KIND: passphrase, recovery-password, "
        "startup-key, tpm, pkcs11, cert); unlock with an existing one");
    padd->add_option("DEVICE", device, "volume")->required();
    padd->add_option("KIND", kind,
                     "passphrase | recovery-password | startup-key | tpm | "
                     "pkcs11 | cert")
        ->required()
        ->check(CLI::IsMember({"passphrase", "recovery-password", "startup-key",
                               "tpm", "pkcs11", "cert"}));
    add_p11.AddTo(padd);
    padd->add_flag("--pin", add_pin,
                   "tpm: TPM+PIN, asks for the new PIN (6+ characters; wrong "
                   "PINs count towards the TPM's lockout)");
    padd->add_option("--new-pin-file", add_new_pin.file,
                     "tpm: read the new PIN from FILE (implies --pin)");
    padd->add_option("--new-pin-fd", add_new_pin.fd,
                     "tpm: read the new PIN from descriptor N (implies --pin)");
    padd->add_option("--startup-key-out", tpm_sk_out,
                     "tpm: TPM+startup key, writing the new key to this file "
                     "(or DIR/<ID>.BEK)");
    padd->add_option("--pcrs", add_pcrs,
                     "tpm: PCRs to seal to, sha256 bank (default 7)")
        ->delimiter(',')
        ->check(CLI::Range(0, 23));
    padd->add_option("--out", out_file,
                     "startup-key: new key file; recovery-password: also write "
                     "it to this new file");
    padd->add_option("--new-key-file", add_new_key.file,
                     "passphrase: read the new passphrase from FILE");
    padd->add_option("--new-key-fd", add_new_key.fd,
                     "passphrase: read the new passphrase from descriptor N");
    padd->add_option("--description", description, "free text shown by status");
    padd->add_flag("--json", json_mode, "print the result as JSON");
    add_unlock.AddTo(padd);
    add_argon2.AddTo(padd);
    padd->callback([&] {
      result = [&]() -> Status {
        if (kind == "startup-key" && out_file.empty()) {
          return InvalidArgumentError("startup-key needs --out FILE");
        }
        if (kind != "tpm" && (add_pin || add_new_pin.has() ||
                              !tpm_sk_out.empty() || !add_pcrs.empty())) {
          return InvalidArgumentError(
              "--pin, --new-pin-*, --startup-key-out and --pcrs are for tpm");
        }
        if (kind == "tpm" && !out_file.empty()) {
          return InvalidArgumentError(
              "tpm writes no file with --out; for TPM+startup key use "
              "--startup-key-out FILE|DIR");
        }
        struct stat st {};
        if (!out_file.empty() && stat(out_file.c_str(), &st) == 0 &&
            !(kind == "startup-key" && S_ISDIR(st.st_mode))) {
          return AlreadyExistsError(out_file +
                                    " exists; volmgr never "
                                    "overwrites a key file");
        }
        if (!tpm_sk_out.empty() && stat(tpm_sk_out.c_str(), &st) == 0 &&
            !S_ISDIR(st.st_mode)) {
          return AlreadyExistsError(tpm_sk_out +
                                    " exists; volmgr never "
                                    "overwrites a key file");
        }
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        std::optional<SecretBytes> pass;
        if (kind == "passphrase") {
          // Ask for the new passphrase first when both come from a prompt,
          // so the order on screen is "new, then existing".
          VOLMGR_ASSIGN_OR_RETURN(
              pass, ReadSecret(add_new_key, "New passphrase: ", true));
        }
        std::optional<SecretBytes> new_pin;
        if (kind == "tpm" && (add_pin || add_new_pin.has())) {
          VOLMGR_ASSIGN_OR_RETURN(
              new_pin, ReadSecret(add_new_pin, "New TPM PIN: ", true));
        }
        std::optional<SecretBytes> new_token_pin;
        VOLMGR_RETURN_IF_ERROR(add_p11.Prepare(kind, vol, new_token_pin));
        VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u,
                                Unlock(vol, add_unlock));
        protectors::CreateRequest req;
        add_p11.Fill(req, new_token_pin);
        req.description = description;
        req.passphrase = pass ? &*pass : nullptr;
        req.argon2 = add_argon2.Params();
        if (kind == "startup-key") req.startup_key_file = out_file;
        if (kind == "tpm") {
          req.startup_key_file = tpm_sk_out;
          req.pcrs = add_pcrs;
          req.pin = new_pin ? &*new_pin : nullptr;
          req.tcti = ResolveTcti(add_unlock.tcti);
        }
        VOLMGR_ASSIGN_OR_RETURN(volume::NewProtector np,
                                vol.AddProtector(u.vmk, kind, req));
        if (kind == "recovery-password" && !out_file.empty()) {
          VOLMGR_RETURN_IF_ERROR(SaveRecoveryPassword(out_file, np));
        }
        if (json_mode) {
          return PrintJsonWithSecret(
              ProtectorJson(np.record),
              np.shown_secret ? &*np.shown_secret : nullptr);
        }
        std::printf("Added protector %s  %s\n", np.record.id.c_str(),
                    protectors::FindHandler(kind)->Describe(np.record).c_str());
        if (np.shown_secret)
          VOLMGR_RETURN_IF_ERROR(ShowRecoveryPassword(np, false));
        return Status::Ok();
      }();
    });
    auto* prm = prot->add_subcommand("remove", "Remove protector ID");
    prm->add_option("DEVICE", device, "volume")->required();
    prm->add_option("ID", prot_id, "protector ID or its first 8+ characters")
        ->required();
    prm->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        VOLMGR_RETURN_IF_ERROR(vol.RemoveProtector(prot_id));
        std::printf("Removed protector %s from %s.\n", prot_id.c_str(),
                    device.c_str());
        return Status::Ok();
      }();
    });
    auto* pls = prot->add_subcommand("list", "List protectors");
    pls->add_option("DEVICE", device, "volume")->required();
    pls->add_flag("--json", list_json, "print JSON");
    pls->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(
            Volume vol, Volume::Load(device, volume::Access::kReadOnly));
        if (list_json) {
          nlohmann::json a = nlohmann::json::array();
          for (const auto& p : vol.protectors()) a.push_back(ProtectorJson(p));
          std::cout << JsonText(a) << std::endl;
          return Status::Ok();
        }
        for (const auto& p : vol.protectors()) {
          std::printf("%s\n", ProtectorLine(p).c_str());
        }
        for (const auto& w : vol.warnings()) {
          std::printf("warning: %s\n", TerminalSafe(w).c_str());
        }
        return Status::Ok();
      }();
    });
  }

  if (wants("recovery-password")) {
    // ---- recovery-password rotate -----------------------------------------
    auto* rp =
        app.add_subcommand("recovery-password", "Manage recovery passwords");
    rp->require_subcommand(1);
    auto* rot = rp->add_subcommand(
        "rotate",
        "Replace a recovery password by a new one (after it was used)");
    rot->add_option("DEVICE", device, "volume")->required();
    rot->add_option("--id", rot_id, "which recovery password (if several)");
    rot->add_option("--recovery-password-file", rot_file,
                    "also write the new password to this new file");
    rot->add_flag("--json", json_mode, "print the result as JSON");
    rot_unlock.AddTo(rot);
    rot->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u,
                                Unlock(vol, rot_unlock));
        VOLMGR_ASSIGN_OR_RETURN(volume::NewProtector np,
                                vol.RotateRecoveryPassword(u.vmk, rot_id));
        if (!rot_file.empty()) {
          VOLMGR_RETURN_IF_ERROR(SaveRecoveryPassword(rot_file, np));
        }
        if (json_mode) {
          PrintKeyPackageNote(device, stderr);
          return PrintJsonWithSecret(ProtectorJson(np.record),
                                     &*np.shown_secret);
        }
        std::printf("The old recovery password no longer opens %s.\n",
                    device.c_str());
        VOLMGR_RETURN_IF_ERROR(ShowRecoveryPassword(np, false));
        PrintKeyPackageNote(device);
        return Status::Ok();
      }();
    });
  }

  if (wants("reseal")) {
    // ---- reseal / suspend / resume (TPM) ---------------------------------
    auto* reseal_cmd = app.add_subcommand(
        "reseal",
        "Re-bind the TPM protectors to the current PCR values (after "
        "a firmware, boot loader or kernel update); authorised by any "
        "protector");
    reseal_cmd->add_option("DEVICE", device, "volume")->required();
    reseal_cmd
        ->add_option("--pcrs", reseal_pcrs,
                     "seal to these PCRs instead of each protector's own")
        ->delimiter(',')
        ->check(CLI::Range(0, 23));
    reseal_unlock.AddTo(reseal_cmd);
    reseal_cmd->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        if (!HasTpmProtector(vol)) {
          return NotFoundError(device + " has no TPM protector to reseal");
        }
        VOLMGR_ASSIGN_OR_RETURN(
            volume::UnlockResult u,
            Unlock(vol, reseal_unlock, ClearKeyUse::kUncounted));
        // A TPM+PIN protector is sealed again with its PIN: ask for it unless
        // it was given (or typed for the unlock).
        if (HasTpmProtector(vol, /*with_pin=*/true) && !reseal_unlock.pin &&
            CanPrompt()) {
          VOLMGR_ASSIGN_OR_RETURN(
              SecretBytes pin,
              ReadSecret({}, "PIN of the TPM+PIN protector (unchanged): ",
                         /*confirm=*/true));
          reseal_unlock.pin = std::move(pin);
        }
        volume::ResealRequest req = reseal_unlock.Reseal();
        req.pcrs = reseal_pcrs;
        VOLMGR_ASSIGN_OR_RETURN(std::vector<volume::ResealOutcome> out,
                                vol.Reseal(u.vmk, req));
        PrintResealOutcomes(out);
        for (const auto& o : out) {
          if (!o.status.ok()) return o.status;
        }
        return Status::Ok();
      }();
    });
  }

  if (wants("suspend")) {
    auto* suspend_cmd = app.add_subcommand(
        "suspend",
        "Suspend protection (BitLocker's suspend): the volume key "
        "is kept in clear, so the next N unlocks need nothing; then "
        "the TPM protectors are resealed and the clear key removed");
    suspend_cmd->add_option("DEVICE", device, "volume")->required();
    suspend_cmd->add_option("--reboot-count", reboot_count,
                            "unlocks to allow (default 1; 0 = until `volmgr "
                            "resume`)");
    suspend_unlock.AddTo(suspend_cmd);
    suspend_cmd->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        VOLMGR_ASSIGN_OR_RETURN(
            volume::UnlockResult u,
            Unlock(vol, suspend_unlock, ClearKeyUse::kUncounted));
        VOLMGR_RETURN_IF_ERROR(vol.Suspend(u.vmk, reboot_count));
        if (reboot_count == 0) {
          std::printf(
              "Protection of %s is suspended until `volmgr resume`: "
              "anyone with the disk can read it.\n",
              device.c_str());
        } else {
          std::printf(
              "Protection of %s is suspended for the next %u "
              "unlock(s); then the TPM protectors are resealed.\n",
              device.c_str(), reboot_count);
        }
        return Status::Ok();
      }();
    });
  }

  if (wants("resume")) {
    auto* resume_cmd = app.add_subcommand(
        "resume",
        "Resume protection: reseal the TPM protectors to the current "
        "PCRs, then remove the clear key");
    resume_cmd->add_option("DEVICE", device, "volume")->required();
    resume_cmd->add_option("--pin-file", resume_opts.pin_source.file,
                           "PIN of a TPM+PIN protector, to reseal it");
    resume_cmd->add_option("--pin-fd", resume_opts.pin_source.fd,
                           "the same from descriptor N");
    resume_cmd->add_option("--startup-key", resume_opts.startup_keys,
                           "startup key of a TPM+startup key protector, to "
                           "reseal it");
    resume_cmd->add_option("--tcti", resume_opts.tcti,
                           "how to reach the TPM (default $VOLMGR_TCTI, else "
                           "device:/dev/tpmrm0)");
    resume_cmd->callback([&] {
      result = [&]() -> Status {
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(device));
        VOLMGR_RETURN_IF_ERROR(resume_opts.LoadPin());
        if (vol.clear_key() && HasTpmProtector(vol, /*with_pin=*/true) &&
            !resume_opts.pin && CanPrompt()) {
          VOLMGR_ASSIGN_OR_RETURN(
              SecretBytes pin,
              ReadSecret({}, "PIN of the TPM+PIN protector (unchanged): ",
                         /*confirm=*/true));
          resume_opts.pin = std::move(pin);
        }
        VOLMGR_ASSIGN_OR_RETURN(std::vector<volume::ResealOutcome> out,
                                vol.Resume(resume_opts.Reseal()));
        PrintResealOutcomes(out);
        std::printf("Protection of %s is resumed; the clear key is removed.\n",
                    device.c_str());
        return Status::Ok();
      }();
    });
  }

  if (wants("header")) {
    // ---- header backup|restore --------------------------------------------
    auto* hdr =
        app.add_subcommand("header", "Back up or restore the LUKS2 header");
    hdr->require_subcommand(1);
    auto* hb = hdr->add_subcommand("backup", "Write the header to FILE");
    hb->add_option("DEVICE", device, "volume")->required();
    hb->add_option("FILE", hfile, "new backup file")->required();
    hb->callback([&] {
      result = [&]() -> Status {
        if (access(hfile.c_str(), F_OK) == 0) {
          return AlreadyExistsError(hfile + " exists");
        }
        VOLMGR_ASSIGN_OR_RETURN(
            Volume vol, Volume::Load(device, volume::Access::kReadOnly));
        for (const auto& w : vol.warnings()) {
          std::fprintf(stderr, "volmgr: warning: %s\n", w.c_str());
        }
        VOLMGR_RETURN_IF_ERROR(vol.luks().HeaderBackup(hfile));
        std::printf(
            "Header of %s (UUID %s) saved to %s.\nIt holds the "
            "protectors as they are now: keep it as safe as the "
            "recovery password.\n",
            device.c_str(), vol.uuid().c_str(), hfile.c_str());
        return Status::Ok();
      }();
    });
    auto* hr = hdr->add_subcommand(
        "restore", "Replace DEVICE's header with the one in FILE");
    hr->add_option("DEVICE", device, "volume")->required();
    hr->add_option("FILE", hfile, "backup file")->required();
    hr->add_flag("--force", restore_force,
                 "restore even if the backup's UUID differs from the device's");
    hr->callback([&] {
      result = [&]() -> Status {
        // Both only read until the restore itself: a refused restore
        // leaves the device (and the backup file) exactly as they were.
        VOLMGR_ASSIGN_OR_RETURN(Volume backup,
                                Volume::Load(hfile, volume::Access::kReadOnly));
        VOLMGR_ASSIGN_OR_RETURN(volume::VolumeLock lock,
                                volume::VolumeLock::Acquire(device));
        auto current =
            volume::LuksDevice::Load(device, volume::Access::kReadOnly);
        if (current.ok() && current->uuid() != backup.uuid() &&
            !restore_force) {
          return FailedPreconditionError("the backup is of volume " +
                                         backup.uuid() + " but " + device +
                                         " holds volume " + current->uuid() +
                                         "; use --force if you really mean it");
        }
        if (!current.ok() && current.status().code() == StatusCode::kNotFound) {
          return current.status();
        }
        // A damaged header (kCorruption) or none at all is what restore is
        // for; only a readable header of another volume needs --force.
        VOLMGR_RETURN_IF_ERROR(
            volume::LuksDevice::RestoreHeader(device, hfile));
        std::printf("Header of %s restored from %s.\n", device.c_str(),
                    hfile.c_str());
        return Status::Ok();
      }();
    });
  }

  if (wants({"keypackage"})) {
    RegisterKeypackageCommands(app, CommandEnv{result, json_mode});
  }
  if (wants({"unlock"})) {
    RegisterUnlockCommands(app, CommandEnv{result, json_mode});
  }
  if (wants({"encrypt", "decrypt", "conversion"})) {
    RegisterConversionCommands(app, CommandEnv{result, json_mode});
  }
  if (wants({"revoke", "purge"})) {
    RegisterCustomerKeyCommands(app, CommandEnv{result, json_mode});
  }
  if (wants({"files"})) {
    RegisterFilesCommands(app, CommandEnv{result, json_mode});
  }
  return ParseAndRun(app, argc, argv, result, "volmgr");
}

}  // namespace
}  // namespace volmgr::cli

int main(int argc, char** argv) {
  return volmgr::cli::HardenedMain("volmgr", volmgr::cli::Run, argc, argv);
}
