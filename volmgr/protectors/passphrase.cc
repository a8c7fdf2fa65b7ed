// Passphrase protector: KEK = Argon2id(passphrase, salt, calibrated cost).
// Token params: {"kdf":"argon2id","time_cost","memory_kib","parallelism",
// "salt"(base64, 32 bytes)}; docs/FORMAT.md "volmgr-passphrase".
#include <limits>

#include "volmgr/protectors/protector.h"

namespace volmgr::protectors {
namespace {

constexpr size_t kSaltBytes = 32;
// Interactive unlock budget: about one second, up to 1 GiB (the same order
// as cryptsetup's defaults) unless the caller fixes the parameters.
constexpr uint32_t kTargetMs = 1000;
constexpr uint32_t kMaxMemoryKib = 1024 * 1024;

class PassphraseProtector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "passphrase"; }
  int version() const override { return 1; }
  std::string_view display_name() const override { return "passphrase"; }

  Status Validate(const ProtectorRecord& r) const override {
    return ParamsOf(r).status();
  }

  bool CanTry(const ProtectorRecord&, const Credentials& c) const override {
    return !c.secrets.empty();
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(Params p, ParamsOf(r));
    Status last = AuthFailedError("no passphrase given");
    for (const SecretBytes& secret : c.secrets) {
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes kek,
          crypto::DeriveArgon2id(secret, p.salt, p.argon2, 32));
      auto vmk = UnwrapVmkFrom(r, kek, b);
      if (vmk.ok() || vmk.status().code() != StatusCode::kAuthFailed) {
        return vmk;
      }
      last = AuthFailedError("wrong passphrase");
    }
    return last;
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    if (req.passphrase == nullptr || req.passphrase->empty()) {
      return InvalidArgumentError("a passphrase protector needs a passphrase");
    }
    if (req.passphrase->size() < 8) {
      return InvalidArgumentError(
          "the passphrase is shorter than 8 characters");
    }
    crypto::Argon2Params a = req.argon2;
    if (a.time_cost == 0) {
      VOLMGR_ASSIGN_OR_RETURN(
          a, crypto::CalibrateArgon2id(kTargetMs, kMaxMemoryKib, 4));
    }
    VOLMGR_RETURN_IF_ERROR(a.Validate());
    std::vector<uint8_t> salt(kSaltBytes);
    {
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes rnd, SecretBytes::Random(kSaltBytes));
      std::copy(rnd.Reveal().begin(), rnd.Reveal().end(), salt.begin());
    }
    CreateResult out;
    VOLMGR_ASSIGN_OR_RETURN(out.record,
                            NewRecord(kind(), version(), req.description));
    out.record.params = {{"kdf", "argon2id"},
                         {"time_cost", a.time_cost},
                         {"memory_kib", a.memory_kib},
                         {"parallelism", a.parallelism},
                         {"salt", ToBase64(salt)}};
    VOLMGR_ASSIGN_OR_RETURN(
        SecretBytes kek, crypto::DeriveArgon2id(*req.passphrase, salt, a, 32));
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, kek, vmk, b));
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    auto p = ParamsOf(r);
    if (!p.ok()) return "passphrase (unreadable parameters)";
    return "passphrase (argon2id, " + std::to_string(p->argon2.memory_kib) +
           " KiB, " + std::to_string(p->argon2.time_cost) + " passes, " +
           std::to_string(p->argon2.parallelism) + " lanes)";
  }

 private:
  struct Params {
    crypto::Argon2Params argon2;
    std::vector<uint8_t> salt;
  };

  static StatusOr<Params> ParamsOf(const ProtectorRecord& r) {
    const JsonReader j = ParamsReader(r);
    const StatusOr<std::string> kdf = j.String("kdf");
    if (!kdf.ok()) return kdf.status();
    if (kdf->compare("argon2id") != 0) {
      return j.FieldError("kdf", "is \"" + *kdf + "\", not \"argon2id\"");
    }
    constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
    Params p;
    VOLMGR_ASSIGN_OR_RETURN(p.argon2.time_cost, j.Unsigned("time_cost", kU32));
    VOLMGR_ASSIGN_OR_RETURN(p.argon2.memory_kib,
                            j.Unsigned("memory_kib", kU32));
    VOLMGR_ASSIGN_OR_RETURN(p.argon2.parallelism,
                            j.Unsigned("parallelism", kU32));
    if (Status s = p.argon2.Validate(); !s.ok()) {
      return CorruptionError(j.what() +
                             ": Argon2id parameters: " + s.message());
    }
    VOLMGR_ASSIGN_OR_RETURN(p.salt, SaltParam(r, kSaltBytes));
    return p;
  }
};

VOLMGR_REGISTER_PROTECTOR(PassphraseProtector);

}  // namespace
}  // namespace volmgr::protectors
