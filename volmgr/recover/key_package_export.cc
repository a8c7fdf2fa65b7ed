#include "volmgr/recover/key_package_export.h"

#include <unistd.h>

#include <ctime>
#include <utility>

#include "volmgr/base/secret_io.h"
#include "volmgr/base/uuid.h"
#include "volmgr/keys/recovery_password.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/recover/data_io.h"
#include "volmgr/recover/data_proof.h"
#include "volmgr/recover/key_package.h"
#include "volmgr/recover/verify.h"
#include "volmgr/volume/volume.h"
#include "volmgr/x509/certificate.h"

namespace volmgr::recover {

namespace {

// The sealed part and the clear header of a package for an unlocked volume.
struct PackageParts {
  KeyPackageHeader header;
  KeyPackageSecret secret;
  bool data_blank = false;
};

StatusOr<PackageParts> PartsFor(const std::string& device,
                                const volume::Volume& vol,
                                const SecretBytes& vmk) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek, vol.ReadFvek(vmk));
  VOLMGR_ASSIGN_OR_RETURN(DataSegment seg, DescribeSegment(vol.luks()));
  VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                          SegmentReader::Open(device, seg));
  PackageParts p;
  KeyPackageSecret& s = p.secret;
  VOLMGR_ASSIGN_OR_RETURN(
      s.check_sha256,
      PlaintextChecksum(reader, fvek, kKeyPackageCheckBytes, &s.check_bytes));
  VOLMGR_ASSIGN_OR_RETURN(
      DataProofResult proof,
      ProveData(reader, fvek, s.check_bytes, s.check_sha256));
  p.data_blank = proof.result == DataProof::kBlank;
  s.fvek = std::move(fvek);
  s.cipher = seg.cipher;
  s.sector_size = seg.sector_size;
  s.data_offset_bytes = seg.data_offset_bytes;
  s.payload_bytes = seg.payload_bytes;
  s.iv_offset = seg.iv_offset;
  VOLMGR_ASSIGN_OR_RETURN(p.header.volume_uuid, Uuid::Parse(seg.uuid));
  p.header.created_unix = std::time(nullptr);
  p.header.label = seg.label;
  return p;
}

}  // namespace

StatusOr<ExportedKeyPackage> ExportKeyPackage(const std::string& device,
                                              SecretBytes typed,
                                              const std::string& recovery_id) {
  VOLMGR_ASSIGN_OR_RETURN(
      volume::Volume vol,
      volume::Volume::Load(device, volume::Access::kReadOnly));
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes text,
                          SecretBytes::CopyOf(typed.Reveal()));
  protectors::Credentials creds;
  if (!recovery_id.empty()) creds.recovery_id = recovery_id;
  creds.secrets.push_back(std::move(typed));
  VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult r, vol.Unlock(creds));
  if (r.used.kind != "recovery-password") {
    const auto* h = protectors::FindHandler(r.used.kind);
    return InvalidArgumentError(
        "a key package is sealed under a recovery password of the volume; "
        "the credential given is " +
        (h ? h->DisplayNameOf(r.used) : r.used.kind) + " " +
        r.used.id.substr(0, 8) +
        " (or seal it to an agent certificate with --certificate)");
  }
  VOLMGR_ASSIGN_OR_RETURN(keys::RecoveryPassword rp,
                          keys::RecoveryPassword::Parse(text));
  VOLMGR_ASSIGN_OR_RETURN(PackageParts p, PartsFor(device, vol, r.vmk));
  VOLMGR_ASSIGN_OR_RETURN(p.header.recovery_id, Uuid::Parse(r.used.id));
  ExportedKeyPackage out;
  VOLMGR_ASSIGN_OR_RETURN(out.file, SealKeyPackage(p.header, p.secret, rp));
  out.volume_uuid = p.header.volume_uuid.ToString();
  out.recovery_id = r.used.id;
  out.data_blank = p.data_blank;
  return out;
}

StatusOr<ExportedKeyPackage> ExportKeyPackageForAgent(
    const std::string& device, SecretBytes typed,
    const std::string& certificate_path) {
  VOLMGR_ASSIGN_OR_RETURN(x509::Certificate cert,
                          x509::Certificate::Load(certificate_path));
  const std::vector<std::string> problems = cert.Problems();
  if (!problems.empty()) {
    std::string msg =
        "refusing to seal a key package to " + certificate_path + ": ";
    for (size_t i = 0; i < problems.size(); ++i) {
      msg += (i ? "; " : "") + problems[i];
    }
    return InvalidArgumentError(msg);
  }
  VOLMGR_ASSIGN_OR_RETURN(
      volume::Volume vol,
      volume::Volume::Load(device, volume::Access::kReadOnly));
  protectors::Credentials creds;
  creds.secrets.push_back(std::move(typed));
  VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult r, vol.Unlock(creds));
  VOLMGR_ASSIGN_OR_RETURN(PackageParts p, PartsFor(device, vol, r.vmk));
  ExportedKeyPackage out;
  VOLMGR_ASSIGN_OR_RETURN(out.file,
                          SealKeyPackageForAgent(p.header, p.secret, cert));
  out.volume_uuid = p.header.volume_uuid.ToString();
  out.data_blank = p.data_blank;
  out.certificate_sha256 = cert.Sha256Fingerprint();
  out.certificate_subject = cert.Subject();
  return out;
}

Status WriteKeyPackage(const std::string& path,
                       const std::vector<uint8_t>& file) {
  if (access(path.c_str(), F_OK) == 0) {
    return AlreadyExistsError(path +
                              " exists; a key package is never "
                              "overwritten");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes blob, SecretBytes::CopyOf(file));
  return WriteNewSecretFile(path, blob, 0400);
}

}  // namespace volmgr::recover
