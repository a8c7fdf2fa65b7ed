// Startup-key protector (BitLocker's .BEK idea): 32 random bytes in a file,
// usually on removable media. KEK = HKDF-SHA256(file key, salt,
// "volmgr startup-key v1" || protector ID).
//
// File layout (56 bytes, docs/FORMAT.md "Startup key file"):
//   "VMGRSK01" (8) || protector ID (16, UUID bytes) || key (32)
// The ID lets volmgr say which protector a file belongs to.
#include "volmgr/base/uuid.h"
#include "volmgr/crypto/hkdf.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/protectors/startup_key_file.h"

namespace volmgr::protectors {
namespace {

constexpr size_t kSaltBytes = 32;
constexpr std::string_view kInfo = "volmgr startup-key v1";

StatusOr<SecretBytes> DeriveKek(const SecretBytes& file,
                                std::span<const uint8_t> salt, const Uuid& id) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key, StartupKeyOf(file));
  const std::vector<uint8_t> info = crypto::HkdfInfo(kInfo, id.bytes());
  return crypto::HkdfSha256(key, salt, info, 32);
}

class StartupKeyProtector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "startup-key"; }
  int version() const override { return 1; }
  std::string_view display_name() const override { return "startup key"; }

  Status Validate(const ProtectorRecord& r) const override {
    VOLMGR_RETURN_IF_ERROR(
        ParamsReader(r).OptionalString("file_hint").status());
    return SaltParam(r, kSaltBytes).status();
  }

  bool CanTry(const ProtectorRecord&, const Credentials& c) const override {
    return !c.startup_key_files.empty();
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> salt,
                            SaltParam(r, kSaltBytes));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(r.id));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes file,
                            ReadStartupKey(c.startup_key_files, id, r.id));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(file, salt, id));
    return UnwrapVmkFrom(r, kek, b);
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    if (req.startup_key_file.empty()) {
      return InvalidArgumentError("a startup-key protector needs a file path");
    }
    CreateResult out;
    VOLMGR_ASSIGN_OR_RETURN(out.record,
                            NewRecord(kind(), version(), req.description));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(out.record.id));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes file, NewStartupKeyFile(id));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes salt_bytes,
                            SecretBytes::Random(kSaltBytes));
    std::vector<uint8_t> salt(salt_bytes.Reveal().begin(),
                              salt_bytes.Reveal().end());
    out.record.params = {{"salt", ToBase64(salt)}};
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(file, salt, id));
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, kek, vmk, b));
    // Written before the token: if the file cannot be written, nothing on
    // the volume has changed. A directory gets BitLocker's "<ID>.BEK".
    VOLMGR_ASSIGN_OR_RETURN(
        std::string path,
        WriteStartupKeyFile(req.startup_key_file, out.record.id, file));
    out.record.params["file_hint"] = path.substr(path.find_last_of('/') + 1);
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    auto hint = ParamsReader(r).OptionalString("file_hint");
    if (!hint.ok()) return "startup key (unreadable file hint)";
    return "startup key" + (hint->empty() ? "" : ", file " + *hint);
  }
};

VOLMGR_REGISTER_PROTECTOR(StartupKeyProtector);

}  // namespace
}  // namespace volmgr::protectors
