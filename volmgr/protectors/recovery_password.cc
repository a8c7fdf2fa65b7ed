// Recovery-password protector (BitLocker's 48-digit numerical password).
//
// Two paths open the volume with it, by design:
//  * volmgr: KEK = HKDF-SHA256 of the password's 128-bit key, bound to the
//    recovery ID (keys/recovery_password.h) unwraps the VMK; any typing
//    (dashes, spaces, none) works and typos name the group.
//  * stock cryptsetup: a LUKS2 keyslot whose passphrase is the canonical
//    55-character text (digits with dashes) opens the FVEK directly, so an
//    admin with only a live USB can recover the data.
// Token params: {"salt": base64 32 bytes}; the protector ID is the recovery
// ID. docs/FORMAT.md "volmgr-recovery-password".
#include "volmgr/keys/recovery_password.h"

#include "volmgr/base/uuid.h"
#include "volmgr/protectors/protector.h"

namespace volmgr::protectors {
namespace {

constexpr size_t kSaltBytes = 32;

// A secret is taken for a recovery password when it has the shape of one
// (keys::LooksLikeRecoveryPassword); then a malformed one is reported as a
// recovery-password typo instead of a wrong passphrase.
using keys::LooksLikeRecoveryPassword;

class RecoveryPasswordProtector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "recovery-password"; }
  int version() const override { return 1; }
  std::string_view display_name() const override { return "recovery password"; }

  Status Validate(const ProtectorRecord& r) const override {
    VOLMGR_RETURN_IF_ERROR(SaltParam(r, kSaltBytes).status());
    if (!Uuid::Parse(r.id).ok()) {
      return CorruptionError("recovery password protector has a bad ID");
    }
    if (r.keyslots.size() != 1) {
      return CorruptionError("recovery password protector " + r.id +
                             " must name exactly one keyslot");
    }
    return Status::Ok();
  }

  bool CanTry(const ProtectorRecord& r, const Credentials& c) const override {
    if (c.recovery_id && !IdMatches(*c.recovery_id, r.id)) return false;
    for (const auto& s : c.secrets) {
      if (LooksLikeRecoveryPassword(s)) return true;
    }
    return false;
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> salt,
                            SaltParam(r, kSaltBytes));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(r.id));
    Status last = AuthFailedError("no recovery password given");
    for (const SecretBytes& secret : c.secrets) {
      if (!LooksLikeRecoveryPassword(secret)) continue;
      auto rp = keys::RecoveryPassword::Parse(secret);
      if (!rp.ok()) return rp.status();
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, rp->DeriveWrappingKey(salt, id));
      auto vmk = UnwrapVmkFrom(r, kek, b);
      if (vmk.ok() || vmk.status().code() != StatusCode::kAuthFailed) {
        return vmk;
      }
      last = AuthFailedError(
          "the recovery password does not match recovery "
          "ID " +
          r.id);
    }
    return last;
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(keys::RecoveryPassword rp,
                            keys::RecoveryPassword::Generate());
    CreateResult out;
    VOLMGR_ASSIGN_OR_RETURN(out.record,
                            NewRecord(kind(), version(), req.description));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(out.record.id));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes salt_bytes,
                            SecretBytes::Random(kSaltBytes));
    std::vector<uint8_t> salt(salt_bytes.Reveal().begin(),
                              salt_bytes.Reveal().end());
    out.record.params = {{"salt", ToBase64(salt)}};
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, rp.DeriveWrappingKey(salt, id));
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, kek, vmk, b));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes text, rp.Format());
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes keyslot_text, rp.Format());
    out.shown_secret = std::move(text);
    out.keyslot_passphrase = std::move(keyslot_text);
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    std::string s = "recovery password, ID " + r.id;
    if (!r.keyslots.empty()) {
      s += ", keyslot " + std::to_string(r.keyslots.front()) +
           " (opens with stock cryptsetup)";
    }
    return s;
  }

  // A user may give the full ID or its first group, as BitLocker prints.
  static bool IdMatches(const std::string& given, const std::string& id) {
    if (given.size() > id.size()) return false;
    for (size_t i = 0; i < given.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(given[i])) != id[i]) {
        return false;
      }
    }
    return given.size() >= 8;
  }
};

VOLMGR_REGISTER_PROTECTOR(RecoveryPasswordProtector);

}  // namespace
}  // namespace volmgr::protectors
