#include "volmgr/volume/volume.h"

#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "volmgr/base/clock.h"
#include "volmgr/base/json_reader.h"
#include "volmgr/volume/device_probe.h"
#include "volmgr/volume/volume_lock.h"

namespace volmgr::volume {
namespace {

using protectors::Credentials;
using protectors::ProtectorRecord;
using Json = nlohmann::json;

}  // namespace

std::string VolumeTokenJson(int vmk_keyslot, const std::string& created,
                            const std::string& wrapped_fvek) {
  Json j = {{"type", std::string(protectors::kVolumeTokenType)},
            {"keyslots", Json::array({std::to_string(vmk_keyslot)})},
            {"version", wrapped_fvek.empty() ? 1 : 2},
            {"vmk_keyslot", vmk_keyslot},
            {"created", created}};
  if (!wrapped_fvek.empty()) j["wrapped_fvek"] = wrapped_fvek;
  return j.dump();
}

crypto::WrapContext FvekWrapContext(const std::string& volume_uuid) {
  crypto::WrapContext ctx;
  ctx.purpose = "fvek";
  ctx.volume_uuid = volume_uuid;
  return ctx;
}

namespace {

// Unlock order: what needs no typing first, then the cheapest, most
// specific proof. The TPM needs nothing (or a PIN it asks for); a startup key
// names its protector; a recovery password is checked by HKDF; a passphrase
// costs a calibrated Argon2id run per protector.
int UnlockRank(std::string_view kind) {
  if (kind == "tpm") return -1;
  if (kind == "startup-key") return 0;
  if (kind == "recovery-password") return 1;
  if (kind == "passphrase") return 2;
  return 3;
}

// Wipes a std::string that held key material (base64 of a VMK) before it
// is destroyed.
struct WipeString {
  std::string& s;
  ~WipeString() { OPENSSL_cleanse(s.data(), s.size()); }
};

}  // namespace

namespace {

// Whether `spec.device` may be formatted as it is now.
StatusOr<DeviceFacts> ProbeForFormat(const FormatSpec& spec) {
  VOLMGR_ASSIGN_OR_RETURN(DeviceFacts facts, ProbeDevice(spec.device));
  if (facts.size_bytes < kMinDeviceBytes) {
    return InvalidArgumentError(spec.device + " is too small: " +
                                std::to_string(facts.size_bytes >> 20) +
                                " MiB; a volume needs at "
                                "least " +
                                std::to_string(kMinDeviceBytes >> 20) +
                                " MiB (16 MiB LUKS2 header + 1 MiB of data)");
  }
  if (!facts.in_use.empty()) {
    return BusyError(spec.device + " is " + facts.in_use +
                     "; close or unmount it first");
  }
  if (!facts.content.empty() && !spec.force) {
    return FailedPreconditionError(
        spec.device + " holds " + facts.content +
        "; formatting would destroy it. Use --force to overwrite it");
  }
  return facts;
}

}  // namespace

StatusOr<FormatResult> Volume::Format(const FormatSpec& spec) {
  // A first look refuses early, before a TPM is asked or a lock waited for.
  VOLMGR_RETURN_IF_ERROR(ProbeForFormat(spec).status());
  if (spec.sector_size != 512 && spec.sector_size != 4096) {
    return InvalidArgumentError("--sector-size must be 512 or 4096, not " +
                                std::to_string(spec.sector_size));
  }
  if (!spec.recovery_password && spec.passphrase == nullptr &&
      spec.startup_key_file.empty() && !spec.tpm) {
    return InvalidArgumentError(
        "no protector requested: a volume needs a recovery password, a "
        "passphrase or a startup key");
  }
  if (spec.passphrase != nullptr && spec.passphrase->size() < 8) {
    return InvalidArgumentError("the passphrase is shorter than 8 characters");
  }
  struct stat sk {};
  if (!spec.startup_key_file.empty() &&
      stat(spec.startup_key_file.c_str(), &sk) == 0 && !S_ISDIR(sk.st_mode)) {
    return AlreadyExistsError(spec.startup_key_file +
                              " exists; volmgr never overwrites a key file");
  }
  crypto::Argon2Params argon2 = spec.argon2;
  if (spec.passphrase != nullptr && argon2.time_cost != 0) {
    VOLMGR_RETURN_IF_ERROR(argon2.Validate());
  }
  if (spec.tpm) {
    if (!spec.tpm->startup_key_file.empty() &&
        stat(spec.tpm->startup_key_file.c_str(), &sk) == 0 &&
        !S_ISDIR(sk.st_mode)) {
      return AlreadyExistsError(spec.tpm->startup_key_file +
                                " exists; volmgr never overwrites a key file");
    }
    const protectors::ProtectorHandler* h = protectors::FindHandler("tpm");
    if (h == nullptr) return UnsupportedError("this build has no TPM support");
    VOLMGR_RETURN_IF_ERROR(h->CheckCreate(*spec.tpm).WithContext(
        "the TPM protector cannot be created; nothing was written to " +
        spec.device));
  }

  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(spec.device));
  // Look again under the lock: another format may have finished while this
  // one waited, and its volume must not be overwritten without --force.
  VOLMGR_ASSIGN_OR_RETURN(DeviceFacts facts, ProbeForFormat(spec));
  if (!facts.content.empty()) {
    VOLMGR_RETURN_IF_ERROR(WipeSignatures(spec.device));
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes vmk, SecretBytes::Random(kVmkBytes));
  int vmk_slot = -1;
  {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek, SecretBytes::Random(kFvekBytes));
    FormatOptions opts;
    opts.sector_size = spec.sector_size;
    opts.label = spec.label;
    opts.subsystem = std::string(kSubsystem);
    VOLMGR_ASSIGN_OR_RETURN(LuksDevice luks,
                            LuksDevice::Format(spec.device, fvek, opts));
    VOLMGR_ASSIGN_OR_RETURN(
        vmk_slot, luks.AddKeyslotByVolumeKey(fvek, vmk, KeyslotKdf::kMinimal));
    // The FVEK wrapped under the VMK (as BitLocker keeps it): an unlock then
    // costs one AES-GCM unwrap and the header's digest check instead of the
    // keyslot's PBKDF2 and anti-forensic merge. The keyslot stays, for
    // version 1 readers and as the fallback if this token is damaged.
    VOLMGR_ASSIGN_OR_RETURN(
        crypto::WrappedKey wrapped_fvek,
        crypto::WrapKey(vmk, fvek, FvekWrapContext(luks.uuid())));
    VOLMGR_RETURN_IF_ERROR(
        luks.SetToken(-1, VolumeTokenJson(vmk_slot, NowRfc3339Utc(),
                                          wrapped_fvek.ToBase64()))
            .status());
  }  // the FVEK is wiped here; from now on only the VMK opens the volume

  VOLMGR_ASSIGN_OR_RETURN(Volume vol, Load(spec.device));
  FormatResult result;
  result.uuid = vol.uuid();
  auto add = [&](std::string_view kind,
                 const protectors::CreateRequest& req) -> Status {
    auto p = vol.AddProtectorLocked(vmk, kind, req);
    if (!p.ok()) {
      return p.status().WithContext("format of " + spec.device +
                                    " is incomplete (adding the " +
                                    std::string(kind) + " protector)");
    }
    result.protectors.push_back(std::move(p).value());
    return Status::Ok();
  };
  if (spec.recovery_password) {
    VOLMGR_RETURN_IF_ERROR(add("recovery-password", {}));
  }
  if (spec.passphrase != nullptr) {
    protectors::CreateRequest req;
    req.passphrase = spec.passphrase;
    req.argon2 = argon2;
    VOLMGR_RETURN_IF_ERROR(add("passphrase", req));
  }
  if (!spec.startup_key_file.empty()) {
    protectors::CreateRequest req;
    req.startup_key_file = spec.startup_key_file;
    VOLMGR_RETURN_IF_ERROR(add("startup-key", req));
  }
  if (spec.tpm) VOLMGR_RETURN_IF_ERROR(add("tpm", *spec.tpm));
  return result;
}

StatusOr<Volume> Volume::Load(const std::string& device, Access access) {
  VOLMGR_ASSIGN_OR_RETURN(LuksDevice luks, LuksDevice::Load(device, access));
  Volume vol(std::move(luks));
  VOLMGR_RETURN_IF_ERROR(vol.ParseTokens());
  if (vol.luks_.header_needs_repair()) {
    vol.warnings_.insert(
        vol.warnings_.begin(),
        "a LUKS2 header copy of " + device +
            " is damaged or outdated; libcryptsetup can rebuild it from the "
            "intact copy, which this command, since it only reads, did not "
            "do. Run `volmgr-recover check " +
            device +
            "` to see which copy and why; any change to the volume (or "
            "`cryptsetup repair`) then rewrites it");
  }
  return vol;
}

Status Volume::Reload() {
  VOLMGR_ASSIGN_OR_RETURN(LuksDevice luks, LuksDevice::Load(device()));
  luks_ = std::move(luks);
  return ParseTokens();
}

Status Volume::ParseTokens() {
  volume_token_ = -1;
  vmk_keyslot_ = -1;
  wrapped_fvek_.clear();
  created_.clear();
  protectors_.clear();
  warnings_.clear();
  damaged_.clear();
  clear_key_.reset();
  // Every token is hostile input: its fields are read through JsonReader
  // (type-checked, never throwing), and a damaged one is skipped with a
  // warning that names it and says how to remove it.
  auto damaged = [&](int id, const std::string& type, const std::string& pid,
                     const Json& j, const std::string& why) {
    DamagedToken d{id, type, pid, {}};
    auto slots = protectors::KeyslotsOf(JsonReader(j, ""));
    if (slots.ok()) d.keyslots = *slots;
    damaged_.push_back(d);
    warnings_.push_back("token " + std::to_string(id) + " (" + type +
                        (pid.empty() ? "" : ", protector " + pid) +
                        ") is damaged and was skipped: " + why +
                        "; `volmgr protector remove " + device() + " " +
                        (pid.empty() ? "token:" + std::to_string(id) : pid) +
                        "` removes it");
  };
  for (const auto& [id, text] : luks_.ListTokens()) {
    const std::string name = "token " + std::to_string(id);
    Json j;
    // libcryptsetup validates that a token is an object with a string type;
    // anything else is not ours to judge.
    if (!JsonReader::ParseObject(text, name, j).ok()) continue;
    auto type_or = JsonReader(j, name).String("type");
    if (!type_or.ok()) continue;
    const std::string type = *type_or;
    const JsonReader r(j, name + " (" + type + ")");
    if (type == protectors::kVolumeTokenType) {
      auto slot = r.Integer("vmk_keyslot", 0, 31);
      if (!slot.ok()) {
        return CorruptionError("the volmgr-volume token of " + device() +
                               " is damaged: " + slot.status().message());
      }
      volume_token_ = id;
      vmk_keyslot_ = static_cast<int>(*slot);
      // Both are optional for opening: without the wrapped FVEK the VMK
      // keyslot opens the volume (docs/FORMAT.md), `created` is shown only.
      auto wrapped = r.OptionalString("wrapped_fvek");
      wrapped_fvek_ = wrapped.ok() ? *wrapped : "";
      if (!wrapped.ok()) {
        warnings_.push_back(wrapped.status().message() +
                            "; the volume opens through its VMK keyslot " +
                            std::to_string(vmk_keyslot_) + " instead");
      }
      auto created = r.OptionalString("created");
      created_ = created.ok() ? *created : "";
      if (!created.ok()) {
        warnings_.push_back(created.status().message() + "; ignored");
      }
      continue;
    }
    if (type == kClearKeyTokenType) {
      // Only the count is read here, and the key's type checked; the key
      // itself is read when it is used.
      Status bad = r.Unsigned("remaining", UINT32_MAX).status();
      if (bad.ok()) bad = r.OptionalString("created").status();
      const Json* vmk = r.Has("vmk") ? &j["vmk"] : nullptr;
      if (bad.ok() && (vmk == nullptr || !vmk->is_string())) {
        bad = r.String("vmk").status();
      }
      if (vmk != nullptr && vmk->is_string()) {
        auto* b64 = j["vmk"].get_ptr<std::string*>();
        OPENSSL_cleanse(b64->data(), b64->size());
      }
      if (bad.ok() && clear_key_) {
        bad = CorruptionError("a second clear key (the first is token " +
                              std::to_string(clear_key_->token_id) + ")");
      }
      if (!bad.ok()) {
        damaged(id, type, "", j, bad.message());
        continue;
      }
      clear_key_ = ClearKeyInfo{
          id, static_cast<uint32_t>(*r.Unsigned("remaining", UINT32_MAX)),
          *r.OptionalString("created")};
      continue;
    }
    if (type.rfind(protectors::kTokenTypePrefix, 0) != 0) continue;  // foreign
    // The kind decides how the rest is read: a kind this build does not know
    // may have a layout of its own, so it is reported before any parsing.
    const std::string kind = type.substr(protectors::kTokenTypePrefix.size());
    const protectors::ProtectorHandler* h = protectors::FindHandler(kind);
    if (h == nullptr) {
      warnings_.push_back("token " + std::to_string(id) + " (" + type +
                          ") is a protector kind unknown to this volmgr "
                          "(made by a newer version?); it was skipped and "
                          "left untouched");
      continue;
    }
    auto pid = r.String("id");
    const std::string protector_id = pid.ok() ? *pid : "";
    auto rec = ProtectorRecord::FromTokenJson(id, text);
    if (!rec.ok()) {
      damaged(id, type, protector_id, j, rec.status().message());
      continue;
    }
    if (rec->version > h->version()) {
      warnings_.push_back("protector " + rec->id + " (" + rec->kind +
                          ") has token version " +
                          std::to_string(rec->version) +
                          ", newer than this volmgr reads; skipped");
      continue;
    }
    if (Status s = h->Validate(*rec); !s.ok()) {
      damaged(id, type, protector_id, j, s.message());
      continue;
    }
    protectors_.push_back(std::move(rec).value());
  }
  if (volume_token_ < 0) {
    const std::string sub = luks_.subsystem();
    if (sub.rfind(kPurgedSubsystemPrefix, 0) == 0) {
      return FailedPreconditionError(
          device() + " was purged (`volmgr purge`) on " +
          sub.substr(kPurgedSubsystemPrefix.size()) +
          ": every keyslot and protector is destroyed and nothing opens it "
          "any more");
    }
    return FailedPreconditionError(
        device() +
        " is a LUKS2 volume that volmgr did not create (it has "
        "no volmgr-volume token); open it with cryptsetup");
  }
  if (!luks_.KeyslotActive(vmk_keyslot_)) {
    return CorruptionError("the VMK keyslot " + std::to_string(vmk_keyslot_) +
                           " of " + device() + " is missing");
  }
  std::stable_sort(protectors_.begin(), protectors_.end(),
                   [](const ProtectorRecord& a, const ProtectorRecord& b) {
                     return UnlockRank(a.kind) < UnlockRank(b.kind);
                   });
  return Status::Ok();
}

StatusOr<UnlockResult> Volume::Unlock(
    const Credentials& creds, std::vector<UnlockFailure>* failures) const {
  const protectors::Binding binding{uuid()};
  // The most telling failure wins over "opened nothing": a malformed
  // recovery password (names the group), then a key file that cannot be
  // read or belongs elsewhere. A TPM failure is kept apart: it explains why
  // the user is asked for something, and is the answer when nothing else
  // could be tried.
  std::optional<Status> typo, other, tpm_failure, not_mine;
  std::vector<std::string> tried;
  bool refused = false;  // a non-TPM protector said "wrong key"
  for (const ProtectorRecord& p : protectors_) {
    const protectors::ProtectorHandler* h = protectors::FindHandler(p.kind);
    // --recovery-id narrows the search to that recovery password.
    if (creds.recovery_id && p.kind != "recovery-password") continue;
    if (!h->CanTry(p, creds)) continue;
    const bool is_tpm = p.kind == "tpm";
    if (!is_tpm) {
      tried.push_back(h->DisplayNameOf(p) + " " + p.id.substr(0, 8));
    }
    auto vmk = h->UnwrapVmk(p, creds, binding);
    if (vmk.ok()) {
      // The wrap is authenticated, but prove the VMK against the keyslot
      // too: a header restored from an older backup could disagree.
      Status slot = CheckVmk(*vmk);
      if (!slot.ok()) {
        return CorruptionError("protector " + p.id +
                               " unwrapped a VMK that does not open the "
                               "volume's keyslot " +
                               std::to_string(vmk_keyslot_));
      }
      return UnlockResult{std::move(vmk).value(), p};
    }
    if (failures != nullptr) {
      failures->push_back({p.id, p.kind, vmk.status()});
    }
    const StatusCode code = vmk.status().code();
    if (is_tpm) {
      // kPinRequired outranks the rest: it is the one the caller can fix by
      // asking.
      if (!tpm_failure || (code == StatusCode::kPinRequired &&
                           tpm_failure->code() != StatusCode::kPinRequired)) {
        tpm_failure = vmk.status();
      }
    } else if (code == StatusCode::kInvalidArgument) {
      if (!typo) typo = vmk.status();
    } else if (code == StatusCode::kNotFound) {
      // "This key file belongs to another protector": says least.
      if (!not_mine) not_mine = vmk.status();
    } else if (code == StatusCode::kAuthFailed) {
      refused = true;
    } else if (!other) {
      other = vmk.status();
    }
  }
  if (typo) return *typo;
  if (other) return *other;
  if (!refused && tpm_failure) return *tpm_failure;
  if (!refused && not_mine) return *not_mine;
  if (tried.empty()) {
    if (creds.recovery_id) {
      std::string ids;
      for (const auto& p : protectors_) {
        if (p.kind == "recovery-password") ids += " " + p.id;
      }
      return NotFoundError(
          "no recovery password with ID " + *creds.recovery_id + " on " +
          device() +
          (ids.empty() ? " (it has none)" : " (it has:" + ids + ")"));
    }
    // What is on the volume now, each name once ("customer key" only while
    // one is left: the availability key is named as such).
    std::vector<std::string> names;
    for (const auto& p : protectors_) {
      std::string n = protectors::FindHandler(p.kind)->DisplayNameOf(p);
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        names.push_back(std::move(n));
      }
    }
    std::string kinds;
    for (const auto& n : names) kinds += (kinds.empty() ? "" : ", ") + n;
    return NotFoundError("no protector of " + device() +
                         " accepts the credential given (it has: " +
                         (kinds.empty() ? "none" : kinds) + ")");
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  return AuthFailedError(
      "the credential given opened no protector (tried " + list + ")" +
      (tpm_failure ? "; TPM: " + tpm_failure->message() : ""));
}

Status Volume::Activate(const std::string& name, const SecretBytes& vmk,
                        const ActivateOptions& options) {
  if (wrapped_fvek_.empty()) {
    return luks_.Activate(name, vmk_keyslot_, vmk, options);
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek, ReadFvek(vmk));
  return luks_.ActivateByVolumeKey(name, fvek, options);
}

StatusOr<NewProtector> Volume::AddProtector(
    const SecretBytes& vmk, std::string_view kind,
    const protectors::CreateRequest& req) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  return AddProtectorLocked(vmk, kind, req);
}

StatusOr<NewProtector> Volume::AddProtectorLocked(
    const SecretBytes& vmk, std::string_view kind,
    const protectors::CreateRequest& req) {
  const protectors::ProtectorHandler* h = protectors::FindHandler(kind);
  if (h == nullptr) {
    return InvalidArgumentError("unknown protector kind \"" +
                                std::string(kind) + "\"");
  }
  VOLMGR_RETURN_IF_ERROR(CheckVmk(vmk));
  VOLMGR_ASSIGN_OR_RETURN(protectors::CreateResult created,
                          h->Create(vmk, req, protectors::Binding{uuid()}));
  int added_slot = -1;
  if (created.keyslot_passphrase) {
    VOLMGR_ASSIGN_OR_RETURN(
        added_slot, luks_.AddKeyslotByPassphrase(vmk_keyslot_, vmk,
                                                 *created.keyslot_passphrase,
                                                 KeyslotKdf::kMinimal));
    // The keyslot is the promise that stock cryptsetup opens the volume with
    // the text shown to the user; volmgr itself never reads it. Prove it the
    // way `cryptsetup open` does (the keyslot read back from the device and
    // opened by that text) before the protector exists, so a device that
    // lost the write is an error now, not a surprise on the day of recovery.
    Status proof =
        luks_.CheckKeyslot(added_slot, *created.keyslot_passphrase).status();
    if (!proof.ok()) {
      luks_.DestroyKeyslot(added_slot).IgnoreError();
      return IoError(
          "the new " + std::string(h->display_name()) + "'s keyslot " +
          std::to_string(added_slot) + " on " + device() +
          " does not open with stock cryptsetup after it was written (" +
          proof.message() +
          "): the device lost or changed the write. The protector was not "
          "added; check the device (volmgr-recover check)");
    }
    created.record.keyslots = {added_slot};
  } else {
    created.record.keyslots = {vmk_keyslot_};
  }
  auto token = luks_.SetToken(-1, created.record.ToTokenJson());
  if (!token.ok()) {
    if (added_slot >= 0) luks_.DestroyKeyslot(added_slot).IgnoreError();
    return token.status();
  }
  created.record.token_id = *token;
  NewProtector out{created.record, std::move(created.shown_secret)};
  VOLMGR_RETURN_IF_ERROR(Reload());
  return out;
}

StatusOr<const ProtectorRecord*> Volume::FindProtector(
    const std::string& id) const {
  std::string want;
  for (char c : id)
    want += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const ProtectorRecord* found = nullptr;
  for (const auto& p : protectors_) {
    if (p.id == want || (want.size() >= 8 && p.id.rfind(want, 0) == 0)) {
      if (found != nullptr) {
        return InvalidArgumentError("protector ID " + id +
                                    " is ambiguous; give more of it");
      }
      found = &p;
    }
  }
  if (found == nullptr) {
    return NotFoundError("no protector with ID " + id + " on " + device());
  }
  return found;
}

Status Volume::RemoveProtector(const std::string& id) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  if (const DamagedToken* d = FindDamagedToken(id)) {
    const DamagedToken copy = *d;  // Reload() clears damaged_
    return RemoveDamagedTokenLocked(copy);
  }
  VOLMGR_ASSIGN_OR_RETURN(const ProtectorRecord* p, FindProtector(id));
  if (protectors_.size() <= 1) {
    return FailedPreconditionError(
        "refusing to remove protector " + p->id +
        ": it is the last one that can unlock " + device() +
        ", and without it the data is lost. Add another protector first");
  }
  ProtectorRecord copy = *p;
  return RemoveProtectorLocked(copy);
}

const DamagedToken* Volume::FindDamagedToken(const std::string& id) const {
  std::string want;
  for (char c : id)
    want += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const DamagedToken* found = nullptr;
  for (const auto& d : damaged_) {
    const bool match =
        want == "token:" + std::to_string(d.token_id) ||
        (!d.id.empty() &&
         (d.id == want || (want.size() >= 8 && d.id.rfind(want, 0) == 0)));
    if (!match) continue;
    if (found != nullptr) return nullptr;  // ambiguous: FindProtector says so
    found = &d;
  }
  return found;
}

Status Volume::RemoveDamagedTokenLocked(const DamagedToken& d) {
  // The keyslots a damaged token names are not trusted: only a recovery
  // password's own keyslot goes, and only when neither the VMK nor an intact
  // protector uses it. Otherwise the keyslot stays (harmless: it opens with
  // a secret the token no longer describes).
  if (d.type == "volmgr-recovery-password") {
    for (int slot : d.keyslots) {
      bool used = slot == vmk_keyslot_;
      for (const auto& p : protectors_) {
        used |= std::find(p.keyslots.begin(), p.keyslots.end(), slot) !=
                p.keyslots.end();
      }
      if (!used && luks_.KeyslotActive(slot)) {
        VOLMGR_RETURN_IF_ERROR(luks_.DestroyKeyslot(slot));
      }
    }
  }
  VOLMGR_RETURN_IF_ERROR(luks_.RemoveToken(d.token_id));
  return Reload();
}

Status Volume::RemoveProtectorLocked(const ProtectorRecord& p) {
  // A recovery password's own keyslot goes first: once the token is gone
  // nothing would show that the keyslot still opens the volume.
  for (int slot : p.keyslots) {
    if (slot != vmk_keyslot_ && luks_.KeyslotActive(slot)) {
      VOLMGR_RETURN_IF_ERROR(luks_.DestroyKeyslot(slot));
    }
  }
  VOLMGR_RETURN_IF_ERROR(luks_.RemoveToken(p.token_id));
  return Reload();
}

StatusOr<NewProtector> Volume::RotateRecoveryPassword(const SecretBytes& vmk,
                                                      const std::string& id) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  const ProtectorRecord* old = nullptr;
  if (id.empty()) {
    for (const auto& p : protectors_) {
      if (p.kind != "recovery-password") continue;
      if (old != nullptr) {
        return InvalidArgumentError(
            device() + " has several recovery passwords; name one with --id");
      }
      old = &p;
    }
    if (old == nullptr) {
      return NotFoundError(device() + " has no recovery password to rotate");
    }
  } else {
    VOLMGR_ASSIGN_OR_RETURN(old, FindProtector(id));
    if (old->kind != "recovery-password") {
      return InvalidArgumentError("protector " + old->id + " is a " +
                                  old->kind + ", not a recovery password");
    }
  }
  ProtectorRecord old_copy = *old;
  protectors::CreateRequest req;
  req.description = old_copy.description;
  VOLMGR_ASSIGN_OR_RETURN(NewProtector fresh,
                          AddProtectorLocked(vmk, "recovery-password", req));
  // Reload() in AddProtectorLocked refreshed protectors_; find the old one
  // again by ID before removing it.
  for (const auto& p : protectors_) {
    if (p.id == old_copy.id) {
      ProtectorRecord again = p;
      VOLMGR_RETURN_IF_ERROR(RemoveProtectorLocked(again));
      break;
    }
  }
  return fresh;
}

StatusOr<SecretBytes> Volume::ReadFvek(const SecretBytes& vmk) const {
  if (!wrapped_fvek_.empty()) {
    auto w = crypto::WrappedKey::FromBase64(wrapped_fvek_);
    if (w.ok()) {
      auto fvek = crypto::UnwrapKey(vmk, *w, FvekWrapContext(uuid()));
      if (fvek.ok() && luks_.VerifyVolumeKey(*fvek).ok()) return fvek;
    }
    // A wrong VMK, a damaged token, or a token that disagrees with the
    // header (restored from another backup): the VMK keyslot decides.
  }
  return luks_.GetVolumeKey(vmk_keyslot_, vmk);
}

Status Volume::CheckVmk(const SecretBytes& vmk) const {
  if (wrapped_fvek_.empty()) {
    return luks_.CheckKeyslot(vmk_keyslot_, vmk).status();
  }
  return ReadFvek(vmk).status();
}

std::vector<std::string> Volume::ActiveMappingNames() const {
  // libcryptsetup gives its mappings the DM UUID
  // "CRYPT-LUKS2-<uuid without dashes>-<name>".
  std::string prefix = "CRYPT-LUKS2-";
  for (char c : uuid()) {
    if (c != '-') prefix += c;
  }
  prefix += '-';
  std::vector<std::string> names;
  for (const ActiveMapping& m : OpenLuks2Mappings()) {
    if (m.dm_uuid.rfind(prefix, 0) == 0) names.push_back(m.name);
  }
  return names;
}

}  // namespace volmgr::volume

namespace volmgr::volume {

StatusOr<SecretBytes> Volume::ClearKeyVmk() const {
  if (!clear_key_) {
    return NotFoundError("protection of " + device() + " is not suspended");
  }
  for (auto& [id, text] : luks_.ListTokens()) {
    if (id != clear_key_->token_id) continue;
    WipeString wipe_text{text};
    Json j = Json::parse(text, nullptr, false);
    // Type-checked in ParseTokens(), and again here: the header may have been
    // reloaded since.
    std::string b64;
    WipeString wipe_b64{b64};
    if (j.is_object()) {
      auto v = j.find("vmk");
      if (v != j.end() && v->is_string()) {
        b64 = v->get_ref<const std::string&>();
        OPENSSL_cleanse(v->get_ptr<std::string*>()->data(),
                        v->get_ptr<std::string*>()->size());
      }
    }
    auto raw = protectors::FromBase64(b64);
    if (!raw.ok() || raw->size() != kVmkBytes) {
      if (raw.ok()) OPENSSL_cleanse(raw->data(), raw->size());
      return CorruptionError("the clear key (token " + std::to_string(id) +
                             ") of " + device() + " is damaged");
    }
    auto vmk = SecretBytes::CopyOf(*raw);
    OPENSSL_cleanse(raw->data(), raw->size());
    if (!vmk.ok()) return vmk.status();
    if (!CheckVmk(*vmk).ok()) {
      return CorruptionError("the clear key of " + device() +
                             " does not open its VMK keyslot");
    }
    return std::move(vmk).value();
  }
  return NotFoundError("protection of " + device() + " is not suspended");
}

StatusOr<ClearKeyUnlock> Volume::UnlockWithClearKey(
    bool count, const ResealRequest& reseal) {
  std::optional<VolumeLock> lock;
  if (count) {
    VOLMGR_ASSIGN_OR_RETURN(VolumeLock acquired, VolumeLock::Acquire(device()));
    lock.emplace(std::move(acquired));
    VOLMGR_RETURN_IF_ERROR(Reload());
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes vmk, ClearKeyVmk());
  // ResealLocked() reloads the header: keep what is needed of clear_key_.
  const int token = clear_key_->token_id;
  ClearKeyUnlock out;
  out.until_resume = clear_key_->remaining == 0;
  out.remaining = clear_key_->remaining;
  if (count && !out.until_resume) {
    out.remaining = clear_key_->remaining - 1;
    if (out.remaining > 0) {
      // Rewrite in place with the count decremented: one header write.
      for (auto& [id, text] : luks_.ListTokens()) {
        if (id != token) continue;
        WipeString wipe_text{text};
        Json j = Json::parse(text, nullptr, false);
        if (!j.is_object()) continue;  // ClearKeyVmk() parsed it just now
        j["remaining"] = out.remaining;
        std::string updated = j.dump();
        WipeString wipe_updated{updated};
        if (auto* b64 = j["vmk"].get_ptr<std::string*>()) {
          OPENSSL_cleanse(b64->data(), b64->size());
        }
        VOLMGR_RETURN_IF_ERROR(luks_.SetToken(id, updated).status());
      }
    } else {
      // The last allowed unlock: protection resumes now. The reseal is best
      // effort (the TPM may be absent, a PIN protector needs its PIN), but
      // the clear key goes regardless: the count is a promise to the owner.
      out.resealed = ResealLocked(vmk, reseal);
      VOLMGR_RETURN_IF_ERROR(luks_.RemoveToken(token));
      out.resumed = true;
    }
    VOLMGR_RETURN_IF_ERROR(Reload());
  }
  out.unlock.vmk = std::move(vmk);
  out.unlock.used.kind = std::string(kClearKeyKind);
  out.unlock.used.id = std::string(kClearKeyKind);
  return out;
}

Status Volume::Suspend(const SecretBytes& vmk, uint32_t unlocks) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  VOLMGR_RETURN_IF_ERROR(CheckVmk(vmk));
  bool has_tpm =
      std::any_of(protectors_.begin(), protectors_.end(),
                  [](const ProtectorRecord& p) { return p.kind == "tpm"; });
  if (!has_tpm) {
    return FailedPreconditionError(
        device() +
        " has no TPM protector: suspending protection would only "
        "leave its key in clear");
  }
  std::string b64 = protectors::ToBase64(vmk.Reveal());
  WipeString wipe_b64{b64};
  Json j = {{"type", std::string(kClearKeyTokenType)},
            {"keyslots", Json::array({std::to_string(vmk_keyslot_)})},
            {"version", 1},
            {"created", NowRfc3339Utc()},
            {"remaining", unlocks},
            {"vmk", b64}};
  std::string text = j.dump();
  WipeString wipe_text{text};
  OPENSSL_cleanse(j["vmk"].get_ptr<std::string*>()->data(), b64.size());
  // Replacing an existing clear key in place keeps a single one.
  VOLMGR_RETURN_IF_ERROR(
      luks_.SetToken(clear_key_ ? clear_key_->token_id : -1, text).status());
  return Reload();
}

StatusOr<std::vector<ResealOutcome>> Volume::Resume(
    const ResealRequest& reseal) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  if (!clear_key_) {
    return FailedPreconditionError("protection of " + device() +
                                   " is not suspended");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes vmk, ClearKeyVmk());
  const int token = clear_key_->token_id;  // ResealLocked() reloads
  std::vector<ResealOutcome> out = ResealLocked(vmk, reseal);
  VOLMGR_RETURN_IF_ERROR(luks_.RemoveToken(token));
  VOLMGR_RETURN_IF_ERROR(Reload());
  return out;
}

StatusOr<std::vector<ResealOutcome>> Volume::Reseal(const SecretBytes& vmk,
                                                    const ResealRequest& req) {
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, VolumeLock::Acquire(device()));
  VOLMGR_RETURN_IF_ERROR(Reload());
  VOLMGR_RETURN_IF_ERROR(CheckVmk(vmk));
  std::vector<ResealOutcome> out = ResealLocked(vmk, req);
  if (out.empty()) {
    return NotFoundError(device() + " has no TPM protector to reseal");
  }
  return out;
}

std::vector<ResealOutcome> Volume::ResealLocked(const SecretBytes& vmk,
                                                const ResealRequest& req) {
  std::vector<ProtectorRecord> tpms;
  for (const auto& p : protectors_) {
    if (p.kind == "tpm") tpms.push_back(p);
  }
  const protectors::ProtectorHandler* h = protectors::FindHandler("tpm");
  std::vector<ResealOutcome> out;
  for (const ProtectorRecord& p : tpms) {
    protectors::CreateRequest cr;
    cr.reseal = &p;
    cr.pcrs = req.pcrs;
    cr.pin = req.pin;
    cr.tcti = req.tcti;
    cr.startup_key_files = req.startup_key_files;
    ResealOutcome o{p.id, Status::Ok(), ""};
    auto created = h->Create(vmk, cr, protectors::Binding{uuid()});
    if (created.ok()) {
      created->record.keyslots = p.keyslots;
      // One header write replaces the token: a crash leaves the old
      // protector or the new one, never neither.
      o.status =
          luks_.SetToken(p.token_id, created->record.ToTokenJson()).status();
      o.summary = h->Describe(created->record);
    } else {
      o.status = created.status();
    }
    out.push_back(std::move(o));
  }
  if (Status s = Reload(); !s.ok() && !out.empty()) out.back().status = s;
  return out;
}

}  // namespace volmgr::volume
