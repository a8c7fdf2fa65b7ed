#include "volmgr/recover/keyslot_check.h"

#include <libcryptsetup.h>

#include <algorithm>
#include <optional>

#include "volmgr/keys/recovery_password.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume.h"

namespace volmgr::recover {

StatusOr<KeyslotCheckReport> CheckKeyslots(const std::string& device,
                                           const SecretBytes& credential) {
  KeyslotCheckReport rep;
  auto vol = volume::Volume::Load(device);
  if (!vol.ok() && vol.status().code() != StatusCode::kFailedPrecondition) {
    return vol.status();
  }
  if (!vol.ok()) {
    // Not a volmgr volume: stock cryptsetup's path is the only one.
    VOLMGR_ASSIGN_OR_RETURN(volume::LuksDevice luks,
                            volume::LuksDevice::Load(device));
    auto slot = luks.CheckKeyslot(CRYPT_ANY_SLOT, credential);
    if (!slot.ok()) {
      if (slot.status().code() == StatusCode::kAuthFailed) {
        return AuthFailedError("the credential opens no keyslot of " + device);
      }
      return slot.status();
    }
    rep.opened.push_back("keyslot " + std::to_string(*slot) +
                         " opens with it (stock cryptsetup's path)");
    return rep;
  }
  const volume::LuksDevice& luks = vol->luks();
  protectors::Credentials creds;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes copy,
                          SecretBytes::CopyOf(credential.Reveal()));
  creds.secrets.push_back(std::move(copy));
  auto unlocked = vol->Unlock(creds);
  if (!unlocked.ok()) {
    // Maybe a passphrase of a keyslot that volmgr's tokens do not know.
    auto slot = luks.CheckKeyslot(CRYPT_ANY_SLOT, credential);
    if (slot.ok()) {
      rep.opened.push_back("keyslot " + std::to_string(*slot) +
                           " opens with it (stock cryptsetup's path; no "
                           "volmgr protector knows this credential)");
      return rep;
    }
    if (unlocked.status().code() == StatusCode::kAuthFailed ||
        unlocked.status().code() == StatusCode::kNotFound) {
      return AuthFailedError(
          "the credential opens neither a keyslot nor a volmgr protector of " +
          device);
    }
    return unlocked.status();
  }
  const protectors::ProtectorRecord& used = unlocked->used;
  const int vmk_slot = vol->vmk_keyslot();
  const std::string who = used.kind + " " + used.id.substr(0, 8);
  // The protector's own keyslots (a recovery password's): the passphrase of
  // such a keyslot is the canonical text stock cryptsetup is given.
  std::optional<SecretBytes> typed;
  if (used.kind == "recovery-password") {
    auto rp = keys::RecoveryPassword::Parse(credential);
    if (rp.ok()) {
      auto text = rp->Format();
      if (text.ok()) typed = std::move(*text);
    }
  }
  for (int slot : used.keyslots) {
    if (slot == vmk_slot) continue;
    const SecretBytes& pass = typed ? *typed : credential;
    auto opened = luks.CheckKeyslot(slot, pass);
    if (opened.ok()) {
      rep.opened.push_back("keyslot " + std::to_string(slot) + " (" + who +
                           ") opens with stock cryptsetup");
    } else {
      rep.problems.push_back(
          "keyslot " + std::to_string(slot) + " (" + who +
          ") does not open with this credential although its protector "
          "does: the keyslot's key material is damaged. volmgr still opens "
          "through its token, but stock cryptsetup (`cryptsetup open`) no "
          "longer does: add a new recovery password (`volmgr "
          "recovery-password rotate`) and export a new key package");
    }
  }
  if (vmk_slot >= 0) {
    if (!luks.KeyslotActive(vmk_slot)) {
      rep.problems.push_back("the VMK keyslot " + std::to_string(vmk_slot) +
                             " named by the volmgr-volume token is not active");
    } else if (luks.CheckKeyslot(vmk_slot, unlocked->vmk).ok()) {
      rep.opened.push_back("the VMK keyslot " + std::to_string(vmk_slot) +
                           " opens with the VMK (" + who + ")");
    } else {
      rep.problems.push_back(
          "the VMK keyslot " + std::to_string(vmk_slot) +
          " does not open with the VMK that " + who +
          " unwraps: its key material is damaged; volmgr opens only through "
          "the wrapped FVEK of its volmgr-volume token now");
    }
  }
  return rep;
}

}  // namespace volmgr::recover
