#include "volmgr/recover/rebuild.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "volmgr/base/clock.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/recover/data_io.h"
#include "volmgr/recover/data_proof.h"
#include "volmgr/recover/header_check.h"
#include "volmgr/recover/verify.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume.h"
#include "volmgr/volume/volume_lock.h"

namespace volmgr::recover {
namespace {

StatusOr<uint64_t> DeviceBytes(const std::string& device) {
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + device);
  off_t end = lseek(fd, 0, SEEK_END);
  close(fd);
  if (end < 0) return ErrnoToStatus(errno, "size of " + device);
  return static_cast<uint64_t>(end);
}

struct CryptFree {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};

// crypt_format with the package's UUID, volume key and data offset. The
// volmgr LuksDevice::Format cannot take a UUID or an offset, so this one
// call goes to libcryptsetup directly.
Status FormatWithKey(const std::string& device, const KeyPackageHeader& h,
                     const KeyPackageSecret& s) {
  crypt_device* raw = nullptr;
  int rc = crypt_init(&raw, device.c_str());
  if (rc < 0) return ErrnoToStatus(-rc, "crypt_init " + device);
  std::unique_ptr<crypt_device, CryptFree> cd(raw);
  crypt_pbkdf_type pbkdf{};
  pbkdf.type = CRYPT_KDF_PBKDF2;
  pbkdf.hash = "sha256";
  pbkdf.iterations = 1000;
  pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
  rc = crypt_set_pbkdf_type(cd.get(), &pbkdf);
  if (rc < 0) return ErrnoToStatus(-rc, "setting the PBKDF");
  // crypt_set_data_offset counts 512-byte sectors.
  rc = crypt_set_data_offset(cd.get(), s.data_offset_bytes / 512);
  if (rc < 0) return ErrnoToStatus(-rc, "setting the data offset");
  crypt_params_luks2 params{};
  params.sector_size = s.sector_size;
  const std::string uuid = h.volume_uuid.ToString();
  auto key = s.fvek.RevealAsString();
  rc = crypt_format(cd.get(), CRYPT_LUKS2, "aes", "xts-plain64", uuid.c_str(),
                    key.data(), key.size(), &params);
  if (rc < 0) return ErrnoToStatus(-rc, "writing the new LUKS2 header");
  rc = crypt_set_label(cd.get(), h.label.empty() ? nullptr : h.label.c_str(),
                       std::string(volume::kSubsystem).c_str());
  if (rc < 0) return ErrnoToStatus(-rc, "setting the LUKS2 label");
  if (crypt_get_data_offset(cd.get()) * 512 != s.data_offset_bytes) {
    return InternalError("libcryptsetup placed the data at another offset");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<RebuildPlan> PlanRebuild(const std::string& device,
                                  const KeyPackageHeader& h,
                                  const KeyPackageSecret& s, bool force) {
  if (s.cipher != "aes-xts-plain64") {
    return UnsupportedError("the key package's cipher " + s.cipher +
                            " cannot be rebuilt by this version");
  }
  if (s.iv_offset != 0) {
    return UnsupportedError("LUKS2 cannot store a non-zero iv_offset");
  }
  const std::string pkg_uuid = h.volume_uuid.ToString();
  const std::string whose =
      "volume " + pkg_uuid +
      (h.label.empty() ? "" : " (label \"" + h.label + "\")");
  RebuildPlan plan;
  plan.device = device;
  VOLMGR_ASSIGN_OR_RETURN(plan.device_bytes, DeviceBytes(device));
  if (plan.device_bytes < s.data_offset_bytes + s.payload_bytes) {
    return FailedPreconditionError(
        device + " is " + std::to_string(plan.device_bytes) + " bytes, but " +
        whose + " needs " +
        std::to_string(s.data_offset_bytes + s.payload_bytes) +
        ": wrong device, or it was truncated");
  }
  VOLMGR_ASSIGN_OR_RETURN(HeaderReport rep, CheckHeader(device));
  for (const HeaderCopyReport* c : {&rep.primary, &rep.secondary}) {
    if (c->magic_ok && !c->uuid.empty() && c->uuid != pkg_uuid) {
      return FailedPreconditionError(
          "the key package is for " + whose + ", but the " + c->name +
          " header of " + device + " names volume " + c->uuid +
          "; refusing to overwrite another volume's header");
    }
  }
  if (rep.usable() && !force) {
    return FailedPreconditionError(
        "the " + std::string(rep.primary.ok() ? "primary" : "secondary") +
        " header copy of " + device +
        " is intact; use `volmgr-recover restore` (or --force to replace the "
        "header anyway, which drops every other protector)");
  }
  // The proof that this is the package's volume: its data decrypts to the
  // checksum taken when the package was made (data_proof.h). Blank data
  // proves nothing: only --force goes on then.
  DataSegment seg{
      pkg_uuid,        h.label,    s.cipher, s.sector_size, s.data_offset_bytes,
      s.payload_bytes, s.iv_offset};
  VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                          SegmentReader::Open(device, seg));
  VOLMGR_ASSIGN_OR_RETURN(
      DataProofResult proof,
      RequireDataProof(device, whose, reader, s.fvek, s.check_bytes,
                       s.check_sha256, force, "--force"));
  const uint32_t used = proof.bytes;
  auto& c = plan.changes;
  c.push_back(
      "write a new LUKS2 header (both copies and keyslot area) in "
      "bytes 0.." +
      std::to_string(s.data_offset_bytes - 1) + " of " + device);
  c.push_back("  UUID " + pkg_uuid +
              ", aes-xts-plain64 with the package's "
              "512-bit FVEK, sector size " +
              std::to_string(s.sector_size) + ", data offset " +
              std::to_string(s.data_offset_bytes) + ", label \"" + h.label +
              "\", subsystem volmgr");
  c.push_back("add a VMK keyslot and the volmgr-volume token");
  c.push_back("add recovery password " + h.recovery_id.ToString() +
              " again (the same password): a keyslot for stock cryptsetup "
              "and a volmgr-recovery-password protector");
  c.push_back("leave the " +
              std::to_string(plan.device_bytes - s.data_offset_bytes) +
              " data bytes from offset " + std::to_string(s.data_offset_bytes) +
              " untouched (" +
              (proof.result == DataProof::kBlank
                   ? "the first " + std::to_string(used) +
                         " data bytes are blank: NOT proved to be this "
                         "volume's data, --force"
                   : "checksum of the first " + std::to_string(used) +
                         " plaintext bytes verified") +
              ")");
  return plan;
}

Status ExecuteRebuild(const RebuildPlan& plan, const KeyPackageHeader& h,
                      const KeyPackageSecret& s,
                      const keys::RecoveryPassword& rp,
                      const Uuid& recovery_id) {
  VOLMGR_ASSIGN_OR_RETURN(volume::VolumeLock lock,
                          volume::VolumeLock::Acquire(plan.device));
  VOLMGR_RETURN_IF_ERROR(FormatWithKey(plan.device, h, s));
  VOLMGR_ASSIGN_OR_RETURN(volume::LuksDevice luks,
                          volume::LuksDevice::Load(plan.device));
  const std::string uuid = h.volume_uuid.ToString();
  if (luks.uuid() != uuid) {
    return InternalError("the rebuilt header has UUID " + luks.uuid());
  }
  // The VMK keyslot and volume token, as Volume::Format writes them
  // (docs/FORMAT.md "volmgr-volume").
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes vmk,
                          SecretBytes::Random(volume::kVmkBytes));
  VOLMGR_ASSIGN_OR_RETURN(
      int vmk_slot,
      luks.AddKeyslotByVolumeKey(s.fvek, vmk, volume::KeyslotKdf::kMinimal));
  VOLMGR_RETURN_IF_ERROR(
      luks.SetToken(-1, volume::VolumeTokenJson(vmk_slot, NowRfc3339Utc()))
          .status());

  // The recovery password, with its own keyslot (stock cryptsetup) and its
  // protector token (fresh salt).
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes text, rp.Format());
  VOLMGR_ASSIGN_OR_RETURN(
      int rp_slot,
      luks.AddKeyslotByVolumeKey(s.fvek, text, volume::KeyslotKdf::kMinimal));
  VOLMGR_ASSIGN_OR_RETURN(
      protectors::ProtectorRecord rec,
      protectors::NewRecord("recovery-password", 1,
                            "restored by volmgr-recover rebuild"));
  rec.id = recovery_id.ToString();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes salt, SecretBytes::Random(32));
  std::vector<uint8_t> salt_bytes(salt.Reveal().begin(), salt.Reveal().end());
  rec.params = {{"salt", protectors::ToBase64(salt_bytes)}};
  rec.keyslots = {rp_slot};
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek,
                          rp.DeriveWrappingKey(salt_bytes, recovery_id));
  VOLMGR_RETURN_IF_ERROR(
      protectors::WrapVmkInto(rec, kek, vmk, protectors::Binding{uuid}));
  VOLMGR_RETURN_IF_ERROR(luks.SetToken(-1, rec.ToTokenJson()).status());

  // Prove the result the way a user will use it.
  VOLMGR_ASSIGN_OR_RETURN(volume::Volume vol,
                          volume::Volume::Load(plan.device));
  protectors::Credentials creds;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes typed, rp.Format());
  creds.secrets.push_back(std::move(typed));
  auto unlocked = vol.Unlock(creds);
  if (!unlocked.ok()) {
    return unlocked.status().WithContext("the rebuilt header does not unlock");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek, vol.ReadFvek(unlocked->vmk));
  if (!fvek.ConstantTimeEquals(s.fvek)) {
    return InternalError("the rebuilt header yields another FVEK");
  }
  return Status::Ok();
}

}  // namespace volmgr::recover
