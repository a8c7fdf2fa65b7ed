// PKCS#11 protector (Customer Key / availability key): the VMK's KEK comes
// from a secret that only a key inside an HSM can recover.
//
//   S   = 32 random bytes (the HSM secret)
//   E   = HSM-Encrypt(S): CKM_AES_GCM under an AES key in the token (IV 12
//         random bytes, AAD = "volmgr pkcs11 v1" || protector ID (16 bytes),
//         128-bit tag), or CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256) under
//         the public half of an RSA key pair whose private half is in the
//         token
//   KEK = HKDF-SHA256(IKM = S, salt, "volmgr pkcs11 v1" || protector ID, 32)
//   wrapped_vmk = AES-GCM(KEK, VMK), bound like every kind (protector.h)
//
// Unlock asks the token to decrypt E (C_Decrypt, after C_Login): the key
// never leaves the HSM, and revoking it there (or losing the token) ends
// this protector. Enrolment proves the decrypt round trip before the token
// is written.
//
// Token params (docs/FORMAT.md "volmgr-pkcs11"):
//   {"uri": RFC 7512 URI without PIN, "module": path or "",
//    "mechanism": "aes-gcm" | "rsa-oaep-sha256",
//    "role": "customer" | "availability",
//    "token_label", "token_serial", "iv": base64(12) (aes-gcm only),
//    "encrypted_secret": base64(E), "salt": base64(32)}
#include "volmgr/pkcs11/pkcs11.h"

#include <cstring>

#include "volmgr/base/uuid.h"
#include "volmgr/crypto/hkdf.h"
#include "volmgr/protectors/customer_key_policy.h"
#include "volmgr/protectors/protector.h"

namespace volmgr::protectors {
namespace {

constexpr size_t kSaltBytes = 32;
constexpr size_t kSecretBytes = 32;
constexpr size_t kIvBytes = 12;
constexpr std::string_view kInfo = "volmgr pkcs11 v1";

struct Params {
  std::string uri;
  std::string module;
  std::string mechanism;  // "aes-gcm" | "rsa-oaep-sha256" | "rsa-oaep-sha1"
  std::string role;
  std::string token_label, token_serial;
  std::vector<uint8_t> iv, encrypted, salt;
};

StatusOr<Params> ParamsOf(const ProtectorRecord& r) {
  const JsonReader j = ParamsReader(r);
  auto bad = [&](std::string_view what) {
    return CorruptionError("PKCS#11 protector " + r.id + ": " +
                           std::string(what));
  };
  Params p;
  VOLMGR_ASSIGN_OR_RETURN(p.uri, j.String("uri"));
  VOLMGR_ASSIGN_OR_RETURN(p.module, j.String("module"));
  VOLMGR_ASSIGN_OR_RETURN(p.mechanism, j.String("mechanism"));
  VOLMGR_ASSIGN_OR_RETURN(p.role, j.String("role"));
  VOLMGR_ASSIGN_OR_RETURN(p.token_label, j.String("token_label"));
  VOLMGR_ASSIGN_OR_RETURN(p.token_serial, j.String("token_serial"));
  VOLMGR_ASSIGN_OR_RETURN(std::string encrypted, j.String("encrypted_secret"));
  if (p.mechanism != "aes-gcm" && p.mechanism != "rsa-oaep-sha256" &&
      p.mechanism != "rsa-oaep-sha1") {
    return bad("unknown mechanism \"" + p.mechanism + "\"");
  }
  if (p.role != kRoleCustomer && p.role != kRoleAvailability) {
    return bad("unknown role \"" + p.role + "\"");
  }
  VOLMGR_ASSIGN_OR_RETURN(p.salt, SaltParam(r, kSaltBytes));
  auto e = FromBase64(encrypted);
  if (!e.ok() || e->empty()) return bad("encrypted_secret is not base64");
  p.encrypted = std::move(e).value();
  if (p.mechanism == "aes-gcm") {
    VOLMGR_ASSIGN_OR_RETURN(std::string iv_text, j.String("iv"));
    auto iv = FromBase64(iv_text);
    if (!iv.ok() || iv->size() != kIvBytes) return bad("malformed iv");
    p.iv = std::move(iv).value();
    if (p.encrypted.size() != kSecretBytes + 16) {
      return bad("encrypted_secret has the wrong length");
    }
  }
  return p;
}

std::string KeyTypeName(CK_KEY_TYPE t) {
  switch (t) {
    case CKK_RSA:
      return "RSA";
    case CKK_EC:
      return "EC";
    case CKK_AES:
      return "AES";
    case CKK_DES3:
      return "DES3";
    case CKK_GENERIC_SECRET:
      return "generic secret";
    default:
      return "type " + std::to_string(t);
  }
}

// The one object of class `cls` that the URI's attributes name.
// kNotFound for none, kInvalidArgument for several.
StatusOr<CK_OBJECT_HANDLE> FindObject(const pkcs11::Session& s,
                                      const pkcs11::Uri& uri,
                                      CK_OBJECT_CLASS cls, bool allow_none) {
  std::vector<CK_ATTRIBUTE> attrs;
  for (const CK_ATTRIBUTE& a : uri.ObjectAttributes()) {
    if (a.type != CKA_CLASS) attrs.push_back(a);
  }
  attrs.push_back({CKA_CLASS, &cls, sizeof(cls)});
  VOLMGR_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> objs, s.Find(attrs));
  if (objs.size() > 1) {
    return InvalidArgumentError(
        std::to_string(objs.size()) + " keys on token \"" + s.token().label() +
        "\" match " + uri.text() + "; add object= or id= to name one");
  }
  if (objs.empty()) {
    if (allow_none) return CK_INVALID_HANDLE;
    return NotFoundError("no key matching " + uri.text() + " on token \"" +
                         s.token().label() + "\"");
  }
  return objs.front();
}

// The decrypting key for `mechanism`: an AES secret key or an RSA private
// key, checked for type and CKA_DECRYPT.
StatusOr<CK_OBJECT_HANDLE> DecryptKey(const pkcs11::Session& s,
                                      const pkcs11::Uri& uri,
                                      const std::string& mechanism) {
  const bool aes = mechanism == "aes-gcm";
  VOLMGR_ASSIGN_OR_RETURN(
      CK_OBJECT_HANDLE k,
      FindObject(s, uri, aes ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, false));
  VOLMGR_ASSIGN_OR_RETURN(CK_ULONG type, s.GetUlong(k, CKA_KEY_TYPE));
  if (type != (aes ? CKK_AES : CKK_RSA)) {
    return InvalidArgumentError("the key " + uri.text() + " is a " +
                                KeyTypeName(type) + " key, not " +
                                (aes ? "AES" : "RSA"));
  }
  VOLMGR_ASSIGN_OR_RETURN(bool can_decrypt, s.GetBool(k, CKA_DECRYPT));
  if (!can_decrypt) {
    return InvalidArgumentError("the key " + uri.text() +
                                " may not decrypt (CKA_DECRYPT is false)");
  }
  return k;
}

struct Opened {
  pkcs11::Module module;
  pkcs11::Session session;
};

StatusOr<Opened> OpenToken(const pkcs11::Uri& uri, const std::string& module,
                           const SecretBytes* pin) {
  std::string path = module.empty() ? uri.module_path() : module;
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Module m, pkcs11::Module::Load(path));
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Token t, m.FindToken(uri));
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Session s, pkcs11::Session::Open(t));
  SecretBytes none;
  VOLMGR_RETURN_IF_ERROR(s.Login(pin != nullptr ? *pin : none));
  return Opened{std::move(m), std::move(s)};
}

StatusOr<SecretBytes> HsmDecrypt(const pkcs11::Session& s,
                                 const pkcs11::Uri& uri, const Params& p,
                                 std::span<const uint8_t> aad) {
  VOLMGR_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE k, DecryptKey(s, uri, p.mechanism));
  StatusOr<SecretBytes> out = InternalError("unreachable");
  if (p.mechanism == "aes-gcm") {
    std::vector<uint8_t> iv = p.iv;
    pkcs11::AesGcm gcm(iv, aad);
    out = s.Decrypt(gcm.mech, k, p.encrypted);
  } else {
    pkcs11::Oaep oaep(p.mechanism == "rsa-oaep-sha256");
    out = s.Decrypt(oaep.mech, k, p.encrypted);
  }
  if (!out.ok()) return out;
  if (out->size() != kSecretBytes) {
    return AuthFailedError("the HSM returned a secret of the wrong length");
  }
  return out;
}

std::string TokenText(const Params& p) {
  return "token \"" + p.token_label + "\" serial " + p.token_serial;
}

class Pkcs11Protector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "pkcs11"; }
  int version() const override { return 1; }
  std::string_view display_name() const override {
    return "customer key (PKCS#11)";
  }
  std::string DisplayNameOf(const ProtectorRecord& r) const override {
    auto role = r.params.is_object() ? r.params.find("role") : r.params.end();
    if (role != r.params.end() && role->is_string() &&
        role->get_ref<const std::string&>() == kRoleAvailability) {
      return "availability key (PKCS#11)";
    }
    return std::string(display_name());
  }

  Status Validate(const ProtectorRecord& r) const override {
    return ParamsOf(r).status();
  }

  // Only when asked (--token-pin-*, --pkcs11): an HSM login is not free
  // and a wrong PIN counts towards the token's lockout. The availability
  // key only in volmgr-recover.
  bool CanTry(const ProtectorRecord& r, const Credentials& c) const override {
    if (!c.use_pkcs11) return false;
    return StringParamOr(r, "role") == kRoleCustomer ||
           c.allow_availability_key;
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(Params p, ParamsOf(r));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(r.id));
    VOLMGR_ASSIGN_OR_RETURN(pkcs11::Uri uri, pkcs11::Uri::Parse(p.uri));
    const std::string& module =
        c.pkcs11_module.empty() ? p.module : c.pkcs11_module;
    auto opened = OpenToken(uri, module, c.token_pin ? &*c.token_pin : nullptr);
    if (!opened.ok()) {
      return opened.status().WithContext(
          "PKCS#11 protector " + r.id.substr(0, 8) + " (" + TokenText(p) + ")");
    }
    const std::vector<uint8_t> info = crypto::HkdfInfo(kInfo, id.bytes());
    auto secret = HsmDecrypt(opened->session, uri, p, info);
    if (!secret.ok()) {
      if (secret.status().code() == StatusCode::kAuthFailed) {
        return AuthFailedError("PKCS#11 protector " + r.id.substr(0, 8) +
                               ": the key " + p.uri +
                               " does not open it (was the key replaced?)");
      }
      return secret.status().WithContext("PKCS#11 protector " +
                                         r.id.substr(0, 8));
    }
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek,
                            crypto::HkdfSha256(*secret, p.salt, info, 32));
    auto vmk = UnwrapVmkFrom(r, kek, b);
    if (!vmk.ok() && vmk.status().code() == StatusCode::kAuthFailed) {
      return CorruptionError("PKCS#11 protector " + r.id +
                             ": the HSM released its secret, but the wrapped "
                             "VMK does not open with it (token altered)");
    }
    return vmk;
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    if (req.pkcs11_uri.empty()) {
      return InvalidArgumentError(
          "a PKCS#11 protector needs the key's URI (--uri pkcs11:...)");
    }
    const std::string role =
        req.role.empty() ? std::string(kRoleCustomer) : req.role;
    if (role != kRoleCustomer && role != kRoleAvailability) {
      return InvalidArgumentError(
          "--role must be customer or availability, "
          "not \"" +
          role + "\"");
    }
    VOLMGR_ASSIGN_OR_RETURN(pkcs11::Uri uri,
                            pkcs11::Uri::Parse(req.pkcs11_uri));
    VOLMGR_ASSIGN_OR_RETURN(Opened o,
                            OpenToken(uri, req.pkcs11_module, req.token_pin));
    const pkcs11::Session& s = o.session;

    // Which kind of key the URI names: an AES secret key, else an RSA key
    // pair. A URI with type= decides by itself.
    std::string mechanism;
    const auto cls = uri.object_class();
    if (!cls || *cls == CKO_SECRET_KEY) {
      VOLMGR_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE k,
                              FindObject(s, uri, CKO_SECRET_KEY, true));
      if (k != CK_INVALID_HANDLE) mechanism = "aes-gcm";
    }
    if (mechanism.empty() && (!cls || *cls != CKO_SECRET_KEY)) {
      VOLMGR_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE k,
                              FindObject(s, uri, CKO_PRIVATE_KEY, true));
      if (k != CK_INVALID_HANDLE) mechanism = "rsa-oaep";
    }
    if (mechanism.empty()) {
      return NotFoundError("no AES key or RSA private key matching " +
                           uri.text() + " on token \"" + s.token().label() +
                           "\"");
    }
    // Type and usage checks happen here, before anything is encrypted.
    VOLMGR_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE dec,
                            DecryptKey(s, uri, mechanism));

    CreateResult out;
    VOLMGR_ASSIGN_OR_RETURN(out.record,
                            NewRecord(kind(), version(), req.description));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(out.record.id));
    const std::vector<uint8_t> info = crypto::HkdfInfo(kInfo, id.bytes());
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret,
                            SecretBytes::Random(kSecretBytes));
    Params p;
    p.mechanism = mechanism;
    if (mechanism == "aes-gcm") {
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes iv, SecretBytes::Random(kIvBytes));
      p.iv.assign(iv.Reveal().begin(), iv.Reveal().end());
      std::vector<uint8_t> ivc = p.iv;
      pkcs11::AesGcm gcm(ivc, info);
      VOLMGR_ASSIGN_OR_RETURN(p.encrypted,
                              s.Encrypt(gcm.mech, dec, secret.Reveal()));
    } else {
      VOLMGR_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub,
                              FindObject(s, uri, CKO_PUBLIC_KEY, true));
      if (pub == CK_INVALID_HANDLE) {
        return NotFoundError("the RSA key " + uri.text() +
                             " has no public key object on token \"" +
                             s.token().label() + "\" to encrypt with");
      }
      // RSA-OAEP-SHA256; SHA-1 only if the token refuses SHA-256 for
      // decryption (pkcs11.h, Oaep). Both directions are tried in the HSM
      // so the choice reflects what C_Decrypt will accept at unlock.
      p.mechanism = "rsa-oaep-sha256";
      pkcs11::Oaep oaep(true);
      auto enc = s.Encrypt(oaep.mech, pub, secret.Reveal());
      bool sha256_refused =
          !enc.ok() && pkcs11::IsUnsupportedParams(enc.status());
      if (enc.ok()) {
        Params trial;
        trial.mechanism = p.mechanism;
        trial.encrypted = *enc;
        auto probe = HsmDecrypt(s, uri, trial, info);
        sha256_refused =
            !probe.ok() && pkcs11::IsUnsupportedParams(probe.status());
      }
      if (!enc.ok() && !sha256_refused) return enc.status();
      if (sha256_refused) {
        p.mechanism = "rsa-oaep-sha1";
        pkcs11::Oaep sha1(false);
        enc = s.Encrypt(sha1.mech, pub, secret.Reveal());
      }
      if (!enc.ok()) return enc.status();
      p.encrypted = std::move(enc).value();
      mechanism = p.mechanism;
    }
    // Prove the round trip before anything is written: a key that encrypts
    // but cannot decrypt would make a protector that never opens.
    auto back = HsmDecrypt(s, uri, p, info);
    if (!back.ok()) {
      return back.status().WithContext(
          "the HSM could not decrypt its own "
          "test secret");
    }
    if (!back->ConstantTimeEquals(secret)) {
      return InternalError("the HSM's decrypt round trip gave another secret");
    }
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes salt, SecretBytes::Random(kSaltBytes));
    p.salt.assign(salt.Reveal().begin(), salt.Reveal().end());
    out.record.params = {
        {"uri", uri.text()},
        {"module", req.pkcs11_module},
        {"mechanism", mechanism},
        {"role", role},
        {"token_label", s.token().label()},
        {"token_serial", s.token().serial()},
        {"encrypted_secret", ToBase64(p.encrypted)},
        {"salt", ToBase64(p.salt)},
    };
    if (mechanism == "aes-gcm") out.record.params["iv"] = ToBase64(p.iv);
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek,
                            crypto::HkdfSha256(secret, p.salt, info, 32));
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, kek, vmk, b));
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    auto p = ParamsOf(r);
    if (!p.ok()) return "PKCS#11 key (unreadable parameters)";
    const bool customer = p->role == kRoleCustomer;
    return std::string(customer ? "customer key" : "availability key") +
           " (PKCS#11 " +
           (p->mechanism == "aes-gcm"           ? "AES-GCM"
            : p->mechanism == "rsa-oaep-sha256" ? "RSA-OAEP-SHA256"
                                                : "RSA-OAEP-SHA1") +
           ", " + TokenText(*p) + ", " + p->uri + ")" +
           (customer ? "" : ", volmgr-recover only");
  }
};

VOLMGR_REGISTER_PROTECTOR(Pkcs11Protector);

}  // namespace

StatusOr<std::string> Pkcs11TokenIdentity(const std::string& uri_text,
                                          const std::string& module) {
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Uri uri, pkcs11::Uri::Parse(uri_text));
  std::string path = module.empty() ? uri.module_path() : module;
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Module m, pkcs11::Module::Load(path));
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Token t, m.FindToken(uri));
  return TokenIdentity(t.label(), t.serial());
}

}  // namespace volmgr::protectors
