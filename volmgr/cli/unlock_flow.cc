#include "volmgr/cli/unlock_flow.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "volmgr/base/secret_io.h"
#include "volmgr/base/terminal_text.h"
#include "volmgr/cli/output.h"

namespace volmgr::cli {

using protectors::Credentials;
using volume::Volume;

// The TCTI: --tcti, else $VOLMGR_TCTI, else (empty) device:/dev/tpmrm0.
// Configuration, not a secret, so the environment is fine here.
std::string ResolveTcti(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("VOLMGR_TCTI");
  return env != nullptr ? env : "";
}

void PrintResealOutcomes(const std::vector<volume::ResealOutcome>& out) {
  for (const auto& o : out) {
    if (o.status.ok()) {
      std::fprintf(stderr, "volmgr: resealed TPM protector %s: %s\n",
                   TerminalSafe(o.protector_id).c_str(),
                   TerminalSafe(o.summary).c_str());
    } else {
      std::fprintf(stderr,
                   "volmgr: warning: TPM protector %s was not resealed: %s; "
                   "run `volmgr reseal` once the cause is fixed\n",
                   TerminalSafe(o.protector_id).c_str(),
                   TerminalSafe(o.status.message()).c_str());
    }
  }
}

// "volmgr: TPM refused: PCR 7 changed (sealed …, now …); falling back"
void ReportTpmFallback(const std::vector<volume::UnlockFailure>& failures) {
  for (const auto& f : failures) {
    if (f.kind != "tpm") continue;
    std::fprintf(stderr, "volmgr: %s; falling back\n",
                 TerminalSafe(f.status.message()).c_str());
  }
}

bool HasTpmProtector(const Volume& vol, bool with_pin) {
  return std::any_of(vol.protectors().begin(), vol.protectors().end(),
                     [&](const protectors::ProtectorRecord& p) {
                       if (p.kind != "tpm") return false;
                       auto pin = protectors::ParamsReader(p).OptionalBool(
                           "pin", false);
                       return !with_pin || (pin.ok() && *pin);
                     });
}

// Gathers credentials and unlocks: a suspended volume's clear key (if
// `clear_key` allows), then the TPM and startup keys (no typing; a TPM PIN is
// asked for when needed), then the given key or a prompt.
StatusOr<volume::UnlockResult> Unlock(Volume& vol, UnlockOptions& o,
                                      ClearKeyUse clear_key) {
  if (clear_key != ClearKeyUse::kNo && vol.clear_key()) {
    VOLMGR_RETURN_IF_ERROR(o.LoadPin());
    // The last counted unlock of a suspension reseals the TPM protectors; a
    // TPM+PIN one needs its PIN for that, so ask while someone is there.
    if (clear_key == ClearKeyUse::kCounted && vol.clear_key()->remaining == 1 &&
        !o.pin && HasTpmProtector(vol, /*with_pin=*/true) && CanPrompt()) {
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes pin,
          PromptSecret("This unlock ends the suspension of " + vol.device() +
                       "; TPM PIN to reseal its TPM+PIN protector (Enter to "
                       "skip): "));
      if (!pin.empty()) o.pin = std::move(pin);
    }
    auto r =
        vol.UnlockWithClearKey(clear_key == ClearKeyUse::kCounted, o.Reseal());
    if (r.ok()) {
      if (r->resumed) {
        std::fprintf(stderr,
                     "volmgr: that was the last unlock the suspension "
                     "allowed: protection of %s is resumed\n",
                     vol.device().c_str());
        PrintResealOutcomes(r->resealed);
      }
      return std::move(r->unlock);
    }
    std::fprintf(stderr, "volmgr: warning: %s; trying the protectors\n",
                 TerminalSafe(r.status().message()).c_str());
  }
  Credentials creds;
  if (o.UsesPkcs11()) {
    // An explicit request: the customer keys alone, no TPM and no prompt
    // for a passphrase afterwards, so a failing HSM is reported as such.
    creds.use_pkcs11 = true;
    creds.skip_tpm = true;
    creds.pkcs11_module = o.pkcs11_module;
    VOLMGR_RETURN_IF_ERROR(LoadTokenPin(o, vol.device(), creds));
    std::vector<volume::UnlockFailure> failures;
    auto r = vol.Unlock(creds, &failures);
    if (r.ok() || failures.empty()) return r;
    // The answer is the failure the user can act on: a wrong PIN (or a
    // locked or PIN-less token) that is here outranks "no token matching"
    // for an HSM that is not plugged in, which is what a second customer
    // key is for. One customer key tried: its own reason.
    const volume::UnlockFailure* answer = &failures.front();
    for (const auto& f : failures) {
      const StatusCode c = f.status.code();
      if (c == StatusCode::kAuthFailed || c == StatusCode::kPinRequired) {
        answer = &f;
        break;
      }
    }
    if (failures.size() > 1 &&
        answer->status.code() != StatusCode::kAuthFailed &&
        answer->status.code() != StatusCode::kPinRequired) {
      answer = nullptr;  // nothing stands out: the summary, after each reason
    }
    // The others once each, then the answer (printed by the caller).
    const std::string said =
        answer != nullptr ? answer->status.message() : r.status().message();
    for (const auto& f : failures) {
      if (&f == answer || f.status.message() == said) continue;
      std::fprintf(stderr, "volmgr: %s\n",
                   TerminalSafe(f.status.message()).c_str());
    }
    if (answer != nullptr) return answer->status;
    return r;
  }
  creds.startup_key_files = o.startup_keys;
  if (!o.recovery_id.empty()) creds.recovery_id = o.recovery_id;
  creds.tcti = ResolveTcti(o.tcti);
  VOLMGR_RETURN_IF_ERROR(o.LoadPin());
  auto copy_pin = [&]() -> Status {
    if (!o.pin) return Status::Ok();
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes p,
                            SecretBytes::CopyOf(o.pin->Reveal()));
    creds.pin = std::move(p);
    return Status::Ok();
  };
  VOLMGR_RETURN_IF_ERROR(copy_pin());
  const bool try_tpm = !creds.recovery_id && HasTpmProtector(vol);
  if ((try_tpm || !creds.startup_key_files.empty()) && !o.key.has()) {
    std::vector<volume::UnlockFailure> failures;
    auto r = vol.Unlock(creds, &failures);
    auto pin_needed = [&] {
      return std::any_of(failures.begin(), failures.end(), [](const auto& f) {
        return f.status.code() == StatusCode::kPinRequired;
      });
    };
    if (!r.ok() && pin_needed() && !creds.pin && CanPrompt()) {
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes pin, PromptSecret("TPM PIN for " + vol.device() + ": "));
      o.pin = std::move(pin);
      VOLMGR_RETURN_IF_ERROR(copy_pin());
      failures.clear();
      r = vol.Unlock(creds, &failures);
    }
    if (r.ok()) return r;
    if (!CanPrompt()) {
      if (r.status().code() == StatusCode::kPinRequired) {
        return PinRequiredError(r.status().message() +
                                "; pass it with --pin-file or --pin-fd");
      }
      return r;  // keeps the TPM's reason and exit code
    }
    ReportTpmFallback(failures);
    creds.skip_tpm = true;
  } else if (!o.key.has() && !CanPrompt()) {
    return FailedPreconditionError(
        "no credential given and no terminal to ask on: pass --key-file, "
        "--key-fd or --startup-key");
  }
  std::string prompt = "Passphrase or recovery password for " + vol.device();
  if (creds.recovery_id) {
    prompt = "Recovery password for " + vol.device() + " (ID " +
             *creds.recovery_id + ")";
  }
  // The file --recovery-password-file wrote reads back as its password,
  // narrowed to its recovery ID (issue 17, item 16).
  VOLMGR_ASSIGN_OR_RETURN(KeyInput typed, ReadKey(o.key, prompt + ": "));
  if (!typed.recovery_id.empty() && !creds.recovery_id) {
    creds.recovery_id = typed.recovery_id;
  }
  creds.secrets.push_back(std::move(typed.secret));
  std::vector<volume::UnlockFailure> failures;
  auto r = vol.Unlock(creds, &failures);
  // A TPM that refused before a key opened the volume: say so, since the
  // next boot will need the key again until the TPM is resealed.
  if (r.ok()) ReportTpmFallback(failures);
  return r;
}

Status LoadTokenPin(const UnlockOptions& o, const std::string& what,
                    Credentials& creds) {
  if (o.token_pin_source.has()) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes pin,
                            ReadSecret(o.token_pin_source, ""));
    creds.token_pin = std::move(pin);
    return Status::Ok();
  }
  if (!CanPrompt()) {
    return PinRequiredError(
        "the PKCS#11 token needs its PIN: pass --token-pin-file or "
        "--token-pin-fd");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes pin,
                          PromptSecret("PKCS#11 token PIN for " + what + ": "));
  creds.token_pin = std::move(pin);
  return Status::Ok();
}

// Writes "Recovery ID / Recovery password" to a new file (mode 0400).
Status SaveRecoveryPassword(const std::string& path,
                            const volume::NewProtector& p) {
  std::string head =
      "volmgr recovery password\nVolume protector ID: " + p.record.id +
      "\nRecovery password: ";
  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes buf,
      SecretBytes::Allocate(0, head.size() + p.shown_secret->size() + 1));
  buf.Resize(buf.capacity());
  auto b = buf.RevealMutable();
  std::copy(head.begin(), head.end(), b.begin());
  std::copy(p.shown_secret->Reveal().begin(), p.shown_secret->Reveal().end(),
            b.begin() + static_cast<ptrdiff_t>(head.size()));
  b.back() = '\n';
  return WriteNewSecretFile(path, buf, 0400);
}

void PrintKeyPackageNote(const std::string& device, std::FILE* to) {
  std::fprintf(
      to,
      "Key packages exported from %s before this rotation still open it "
      "together with the old recovery password: a package holds the "
      "volume's key, which a rotation does not change. Destroy every copy "
      "of them and export a new one (volmgr keypackage export %s --out "
      "FILE), and header backups made before, which still hold the old "
      "password's keyslot; only re-encrypting the data (volmgr decrypt, then "
      "volmgr encrypt) retires the key itself.\n",
      device.c_str(), device.c_str());
}

// Shows a new recovery password once, with its ID.
Status ShowRecoveryPassword(const volume::NewProtector& p, bool json_mode) {
  if (json_mode) return Status::Ok();  // JSON callers get it in the document
  return ShowRecoveryPassword(p.record.id, *p.shown_secret);
}

Status ShowRecoveryPassword(const std::string& id, const SecretBytes& text) {
  std::printf("\nRecovery password (ID %s):\n\n    ", id.c_str());
  std::fflush(stdout);
  VOLMGR_RETURN_IF_ERROR(WriteSecret(STDOUT_FILENO, text));
  std::printf(
      "\n\nStore it away from this computer. It opens the volume when every "
      "other\nprotector fails, also with stock `cryptsetup open` (type it "
      "with the dashes).\n");
  return Status::Ok();
}

const volume::NewProtector* ShownRecoveryPassword(
    const std::vector<volume::NewProtector>& created) {
  const volume::NewProtector* rp = nullptr;
  for (const auto& p : created) {
    if (p.shown_secret) rp = &p;
  }
  return rp;
}

nlohmann::json NewProtectorsJson(
    const std::vector<volume::NewProtector>& created) {
  nlohmann::json prot = nlohmann::json::array();
  for (const auto& p : created) prot.push_back(ProtectorJson(p.record));
  return prot;
}

void PrintNewProtectors(const std::vector<volume::NewProtector>& created) {
  for (const auto& p : created) {
    std::printf(
        "  protector %s  %s\n", p.record.id.c_str(),
        protectors::FindHandler(p.record.kind)->Describe(p.record).c_str());
  }
}

// Prints a JSON document in which a recovery password appears; the secret is
// streamed into the output, never into a std::string.
Status PrintJsonWithSecret(nlohmann::json doc, const SecretBytes* secret) {
  static const std::string kMarker = "@@volmgr-secret@@";
  if (secret == nullptr) {
    std::cout << doc.dump(2) << std::endl;
    return Status::Ok();
  }
  doc["recovery_password"] = kMarker;
  std::string text = doc.dump(2);
  size_t at = text.find(kMarker);
  std::cout << text.substr(0, at) << std::flush;
  VOLMGR_RETURN_IF_ERROR(WriteSecret(STDOUT_FILENO, *secret));
  std::cout << text.substr(at + kMarker.size()) << std::endl;
  return Status::Ok();
}

}  // namespace volmgr::cli
