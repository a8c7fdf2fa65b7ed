// TPM protector (BitLocker's TPM, TPM+PIN, TPM+startup key), on tpm/.
//
// The TPM never holds the VMK. It seals a fresh random 32-byte *TPM secret*
// to PCR values (and a PIN) with tpm::SealAndVerify, and
//   KEK = HKDF-SHA256(IKM = TPM secret [|| startup key], salt,
//                     "volmgr tpm v1" || protector ID (16 bytes), 32)
// wraps the VMK exactly as every other kind does (AES-GCM bound to volume,
// protector ID and kind). Why not seal the VMK itself:
//  * the VMK never crosses the TPM bus, not even parameter-encrypted;
//  * TPM+startup key needs a KEK that depends on both factors, which a
//    sealed VMK cannot give;
//  * a token edited to point at another sealed blob, volume or protector
//    still fails the AES-GCM check (the same binding for every kind);
//  * reseal replaces only the TPM secret: nothing of the VMK is re-exported.
//
// Token params (docs/FORMAT.md "volmgr-tpm"):
//   {"sealed": base64(tpm sealed blob v1), "bank": "sha256", "pcrs": [7],
//    "pin": bool, "startup_key": bool, "salt": base64(32 bytes),
//    "srk": "ecc-p256,transient" (informational; the blob is authoritative),
//    "file_hint": "ID.BEK" (TPM+startup key only)}
#include <algorithm>
#include <cstring>

#include "tpm/pcr_policy.h"
#include "tpm/seal.h"
#include "tpm/sealed_blob.h"
#include "tpm/tpm_context.h"
#include "volmgr/base/uuid.h"
#include "volmgr/crypto/hkdf.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/protectors/startup_key_file.h"

namespace volmgr::protectors {
namespace {

constexpr size_t kSaltBytes = 32;
constexpr size_t kTpmSecretBytes = 32;
constexpr std::string_view kInfo = "volmgr tpm v1";
// PCR 7 alone, as systemd-cryptenroll: the Secure Boot policy (PK, KEK, db,
// dbx and the authority that verified each boot component). It survives
// firmware and boot-loader updates signed by the same authority; 0/2/4 do
// not. docs/SECURITY.md "Which PCRs" has the full reasoning.
constexpr uint32_t kDefaultPcrs[] = {7};
// BitLocker's default minimum PIN length since Windows 10 1703. Guessing is
// limited by the TPM's dictionary-attack lockout, not by length.
constexpr size_t kMinPinBytes = 6;

struct Params {
  tpm::SealedBlob blob;
  std::vector<uint8_t> salt;
  bool pin = false;
  bool startup_key = false;
};

StatusOr<Params> ParamsOf(const ProtectorRecord& r) {
  const JsonReader j = ParamsReader(r);
  auto bad = [&](std::string_view what) {
    return CorruptionError("TPM protector " + r.id + ": " + std::string(what));
  };
  VOLMGR_ASSIGN_OR_RETURN(std::string sealed, j.String("sealed"));
  const StatusOr<std::string> bank = j.String("bank");
  if (!bank.ok()) return bank.status();
  VOLMGR_ASSIGN_OR_RETURN(const nlohmann::json* pcrs, j.Array("pcrs"));
  VOLMGR_RETURN_IF_ERROR(j.OptionalString("file_hint").status());
  if (bank->compare("sha256") != 0) {
    return bad("PCR bank \"" + *bank + "\" is not supported (sha256 only)");
  }
  Params p;
  VOLMGR_ASSIGN_OR_RETURN(p.pin, j.Bool("pin"));
  VOLMGR_ASSIGN_OR_RETURN(p.startup_key, j.Bool("startup_key"));
  VOLMGR_ASSIGN_OR_RETURN(p.salt, SaltParam(r, kSaltBytes));
  auto raw = FromBase64(sealed);
  if (!raw.ok()) return bad("sealed blob is not base64");
  auto blob = tpm::ParseSealedBlob(*raw);
  if (!blob.ok()) return bad("sealed blob: " + blob.status().message());
  p.blob = std::move(blob).value();
  // The JSON copies of what the blob says must agree with it: a reader of
  // the token (status, luksDump) must not be told another PCR set.
  std::vector<uint32_t> listed;
  for (size_t i = 0; i < pcrs->size(); ++i) {
    const auto& v = (*pcrs)[i];
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 23) {
      return j.ArrayElementError("pcrs", i, "must be a PCR index 0..23");
    }
    listed.push_back(v.get<uint32_t>());
  }
  if (listed != p.blob.pcrs.Indices()) {
    return bad("the PCR list differs from the sealed blob's (" +
               p.blob.pcrs.ToString() + ")");
  }
  if (p.pin != p.blob.has_pin) {
    return bad("\"pin\" differs from the sealed blob's policy");
  }
  return p;
}

std::string SrkText(const tpm::SrkInfo& srk) {
  return std::string(srk.algorithm == tpm::SrkAlgorithm::kEccP256
                         ? "ecc-p256"
                         : "rsa-2048") +
         (srk.persistent ? ",persistent" : ",transient");
}

std::string PcrListText(const std::vector<uint32_t>& pcrs) {
  std::string s;
  for (uint32_t i : pcrs) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

StatusOr<SecretBytes> DeriveKek(const SecretBytes& tpm_secret,
                                const SecretBytes* startup_key,
                                std::span<const uint8_t> salt, const Uuid& id) {
  const size_t sk = startup_key != nullptr ? startup_key->size() : 0;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes ikm,
                          SecretBytes::Allocate(tpm_secret.size() + sk));
  auto out = ikm.RevealMutable();
  std::memcpy(out.data(), tpm_secret.Reveal().data(), tpm_secret.size());
  if (sk != 0) {
    std::memcpy(out.data() + tpm_secret.size(), startup_key->Reveal().data(),
                sk);
  }
  const std::vector<uint8_t> info = crypto::HkdfInfo(kInfo, id.bytes());
  return crypto::HkdfSha256(ikm, salt, info, 32);
}

std::string_view TctiOr(const std::string& tcti) {
  return tcti.empty() ? tpm::kDefaultTcti : std::string_view{tcti};
}

Status CheckNewPin(const SecretBytes& pin) {
  if (pin.empty()) return InvalidArgumentError("the PIN is empty");
  if (pin.size() < kMinPinBytes) {
    return InvalidArgumentError("the PIN is shorter than " +
                                std::to_string(kMinPinBytes) + " characters");
  }
  return Status::Ok();
}

// The sha256 PCRs to seal to: those asked for, else those of the protector
// being resealed, else the default set (docs/SECURITY.md).
StatusOr<tpm::PcrSelection> SelectionFor(std::vector<uint32_t> pcrs,
                                         const tpm::PcrSelection* old) {
  if (pcrs.empty()) {
    pcrs = old ? old->Indices()
               : std::vector<uint32_t>(std::begin(kDefaultPcrs),
                                       std::end(kDefaultPcrs));
  }
  std::sort(pcrs.begin(), pcrs.end());
  pcrs.erase(std::unique(pcrs.begin(), pcrs.end()), pcrs.end());
  return tpm::PcrSelection::Sha256(pcrs);
}

class TpmProtector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "tpm"; }
  int version() const override { return 1; }
  std::string_view display_name() const override { return "TPM"; }

  Status Validate(const ProtectorRecord& r) const override {
    return ParamsOf(r).status();
  }

  // Tried first, with whatever was given: it needs no typing unless it has a
  // PIN, and then says so (kPinRequired) without asking the TPM.
  bool CanTry(const ProtectorRecord&, const Credentials& c) const override {
    return !c.skip_tpm;
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(Params p, ParamsOf(r));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(r.id));
    std::optional<SecretBytes> sk;
    if (p.startup_key) {
      if (c.startup_key_files.empty()) {
        return NotFoundError("TPM+startup key protector " + r.id.substr(0, 8) +
                             " needs its startup key file (--startup-key)");
      }
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes file,
                              ReadStartupKey(c.startup_key_files, id, r.id));
      VOLMGR_ASSIGN_OR_RETURN(sk, StartupKeyOf(file));
    }
    VOLMGR_ASSIGN_OR_RETURN(tpm::Tpm t, tpm::Tpm::Open(TctiOr(c.tcti)));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret, tpm::Unseal(t, p.blob, c.pin));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek,
                            DeriveKek(secret, sk ? &*sk : nullptr, p.salt, id));
    auto vmk = UnwrapVmkFrom(r, kek, b);
    if (!vmk.ok() && vmk.status().code() == StatusCode::kAuthFailed) {
      // The TPM released the secret, so policy and PIN were right: either
      // the startup key file was altered, or the token was.
      if (p.startup_key) {
        return AuthFailedError("TPM+startup key protector " + r.id +
                               ": the startup key does not open it");
      }
      return CorruptionError("TPM protector " + r.id +
                             ": the TPM released its secret, but the wrapped "
                             "VMK does not open with it (token altered or "
                             "damaged)");
    }
    return vmk;
  }

  Status CheckCreate(const CreateRequest& req) const override {
    if (req.reseal != nullptr) return Status::Ok();
    if (req.pin != nullptr) VOLMGR_RETURN_IF_ERROR(CheckNewPin(*req.pin));
    VOLMGR_ASSIGN_OR_RETURN(tpm::PcrSelection sel,
                            SelectionFor(req.pcrs, nullptr));
    // Reaching the TPM and reading the PCRs to seal to is what fails when
    // there is no TPM, it is in lockout, or the bank is not allocated.
    VOLMGR_ASSIGN_OR_RETURN(tpm::Tpm t, tpm::Tpm::Open(TctiOr(req.tcti)));
    return tpm::ReadPcrs(t, sel).status();
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    const ProtectorRecord* old = req.reseal;
    std::optional<Params> old_params;
    if (old != nullptr) {
      VOLMGR_ASSIGN_OR_RETURN(old_params, ParamsOf(*old));
    }
    const bool want_pin = old ? old_params->pin : req.pin != nullptr;
    const bool want_sk =
        old ? old_params->startup_key : !req.startup_key_file.empty();
    if (want_pin && (req.pin == nullptr || req.pin->empty())) {
      if (old) {
        return PinRequiredError("resealing TPM+PIN protector " + old->id +
                                " needs its PIN");
      }
      return InvalidArgumentError("the PIN is empty");
    }
    if (!old && want_pin) VOLMGR_RETURN_IF_ERROR(CheckNewPin(*req.pin));
    VOLMGR_ASSIGN_OR_RETURN(
        tpm::PcrSelection sel,
        SelectionFor(req.pcrs, old ? &old_params->blob.pcrs : nullptr));

    CreateResult out;
    if (old) {
      out.record = *old;
      out.record.version = version();
    } else {
      VOLMGR_ASSIGN_OR_RETURN(out.record,
                              NewRecord(kind(), version(), req.description));
    }
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(out.record.id));
    std::optional<SecretBytes> sk_file, sk;
    if (want_sk) {
      if (old) {
        auto file = ReadStartupKey(req.startup_key_files, id, old->id);
        if (!file.ok()) {
          return file.status().WithContext(
              "resealing TPM+startup key protector " + old->id +
              " needs its startup key (--startup-key)");
        }
        sk_file = std::move(file).value();
      } else {
        VOLMGR_ASSIGN_OR_RETURN(sk_file, NewStartupKeyFile(id));
      }
      VOLMGR_ASSIGN_OR_RETURN(sk, StartupKeyOf(*sk_file));
    }
    std::optional<SecretBytes> pin;
    if (want_pin) {
      VOLMGR_ASSIGN_OR_RETURN(pin, SecretBytes::CopyOf(req.pin->Reveal()));
    }

    VOLMGR_ASSIGN_OR_RETURN(tpm::Tpm t, tpm::Tpm::Open(TctiOr(req.tcti)));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret,
                            SecretBytes::Random(kTpmSecretBytes));
    // Seal, unseal, compare: a token whose secret the TPM will not give
    // back is never written.
    VOLMGR_ASSIGN_OR_RETURN(tpm::SealedBlob blob,
                            tpm::SealAndVerify(t, secret, sel, pin));
    std::vector<uint8_t> salt(kSaltBytes);
    {
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes rnd, SecretBytes::Random(kSaltBytes));
      std::copy(rnd.Reveal().begin(), rnd.Reveal().end(), salt.begin());
    }
    nlohmann::json pcr_list = nlohmann::json::array();
    for (uint32_t i : blob.pcrs.Indices()) pcr_list.push_back(i);
    std::string hint;
    if (old) {
      VOLMGR_ASSIGN_OR_RETURN(hint,
                              ParamsReader(*old).OptionalString("file_hint"));
    }
    out.record.params = {{"sealed", ToBase64(tpm::SerializeSealedBlob(blob))},
                         {"bank", "sha256"},
                         {"pcrs", pcr_list},
                         {"pin", want_pin},
                         {"startup_key", want_sk},
                         {"salt", ToBase64(salt)},
                         {"srk", SrkText(blob.srk)}};
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek,
                            DeriveKek(secret, sk ? &*sk : nullptr, salt, id));
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, kek, vmk, b));
    if (want_sk && !old) {
      // Written before the token, as for the startup-key kind.
      VOLMGR_ASSIGN_OR_RETURN(
          std::string path,
          WriteStartupKeyFile(req.startup_key_file, out.record.id, *sk_file));
      hint = path.substr(path.find_last_of('/') + 1);
    }
    if (want_sk) out.record.params["file_hint"] = hint;
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    auto p = ParamsOf(r);
    if (!p.ok()) return "TPM (unreadable parameters)";
    std::string s = "TPM";
    if (p->pin) s += "+PIN";
    if (p->startup_key) s += "+startup key";
    auto pcrs = p->blob.pcrs.Indices();
    s += std::string(pcrs.size() == 1 ? " (PCR " : " (PCRs ") +
         PcrListText(pcrs) + ", sha256)";
    auto hint = ParamsReader(r).OptionalString("file_hint");
    if (hint.ok() && !hint->empty()) s += ", file " + *hint;
    return s;
  }
};

VOLMGR_REGISTER_PROTECTOR(TpmProtector);

}  // namespace
}  // namespace volmgr::protectors
