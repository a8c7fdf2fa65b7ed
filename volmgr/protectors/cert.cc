// Certificate protector (data recovery agent): the VMK wrapped to an X.509
// certificate's public key, so that whoever holds the matching private key
// (a PEM file or a key in a PKCS#11 token) can recover the volume with
// `volmgr-recover --agent-key`. One agent certificate can be enrolled on
// every volume of a fleet; `volmgr open` never uses it.
//
//   (KEK, encapsulation) = x509::Encapsulate(certificate public key,
//                            info = "volmgr cert v1" || protector ID (16))
//   wrapped_vmk = AES-GCM(KEK, VMK), bound like every kind (protector.h)
//
// Token params (docs/FORMAT.md "volmgr-cert"):
//   {"certificate": base64(DER), "fingerprint": hex SHA-256 of the DER,
//    "subject", "not_after", "algorithm": "rsa-oaep-sha256" |
//    "ecdh-p256-hkdf-sha256" | "ecdh-p384-hkdf-sha256",
//    "encapsulation": base64}
#include "volmgr/base/uuid.h"
#include "volmgr/crypto/hkdf.h"
#include "volmgr/pkcs11/pkcs11.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/x509/certificate.h"
#include "volmgr/x509/public_key_wrap.h"

namespace volmgr::protectors {
namespace {

constexpr std::string_view kInfo = "volmgr cert v1";

struct Params {
  std::vector<uint8_t> der;
  std::string fingerprint, subject, not_after;
  x509::Encapsulation enc;
};

StatusOr<Params> ParamsOf(const ProtectorRecord& r) {
  const JsonReader j = ParamsReader(r);
  auto bad = [&](std::string_view what) {
    return CorruptionError("certificate protector " + r.id + ": " +
                           std::string(what));
  };
  Params p;
  VOLMGR_ASSIGN_OR_RETURN(std::string certificate, j.String("certificate"));
  VOLMGR_ASSIGN_OR_RETURN(p.fingerprint, j.String("fingerprint"));
  VOLMGR_ASSIGN_OR_RETURN(p.subject, j.String("subject"));
  VOLMGR_ASSIGN_OR_RETURN(p.not_after, j.String("not_after"));
  VOLMGR_ASSIGN_OR_RETURN(std::string algorithm, j.String("algorithm"));
  VOLMGR_ASSIGN_OR_RETURN(std::string encapsulation, j.String("encapsulation"));
  auto der = FromBase64(certificate);
  if (!der.ok() || der->empty()) return bad("certificate is not base64");
  p.der = std::move(der).value();
  auto alg = x509::ParseAlgorithmName(algorithm);
  if (!alg.ok()) return bad(alg.status().message());
  p.enc.algorithm = *alg;
  auto data = FromBase64(encapsulation);
  if (!data.ok() || data->empty()) return bad("encapsulation is not base64");
  p.enc.data = std::move(data).value();
  return p;
}

// An agent private key inside a PKCS#11 token.
class TokenPrivateKey final : public x509::PrivateKeyOps {
 public:
  TokenPrivateKey(const pkcs11::Session& s, CK_OBJECT_HANDLE k)
      : s_(s), k_(k) {}
  StatusOr<SecretBytes> RsaOaepSha256Decrypt(
      std::span<const uint8_t> ciphertext) const override {
    pkcs11::Oaep oaep(true);
    auto out = s_.Decrypt(oaep.mech, k_, ciphertext);
    if (!out.ok() && pkcs11::IsUnsupportedParams(out.status())) {
      return UnsupportedError(
          "token \"" + s_.token().label() +
          "\" does not decrypt RSA-OAEP with SHA-256 (SoftHSM2 before 2.7 "
          "only does SHA-1); recover with the agent's PEM key, or keep an EC "
          "agent key in this token");
    }
    return out;
  }
  StatusOr<SecretBytes> Ecdh(std::span<const uint8_t> peer,
                             size_t len) const override {
    return s_.EcdhDerive(k_, peer, len);
  }

 private:
  const pkcs11::Session& s_;
  CK_OBJECT_HANDLE k_;
};

StatusOr<SecretBytes> KekFromToken(const std::string& uri_text,
                                   const Credentials& c, const Params& p,
                                   std::span<const uint8_t> info) {
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Uri uri, pkcs11::Uri::Parse(uri_text));
  const std::string path =
      c.pkcs11_module.empty() ? uri.module_path() : c.pkcs11_module;
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Module m, pkcs11::Module::Load(path));
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Token t, m.FindToken(uri));
  VOLMGR_ASSIGN_OR_RETURN(pkcs11::Session s, pkcs11::Session::Open(t));
  SecretBytes none;
  VOLMGR_RETURN_IF_ERROR(s.Login(c.token_pin ? *c.token_pin : none));
  std::vector<CK_ATTRIBUTE> attrs;
  for (const CK_ATTRIBUTE& a : uri.ObjectAttributes()) {
    if (a.type != CKA_CLASS) attrs.push_back(a);
  }
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  attrs.push_back({CKA_CLASS, &cls, sizeof(cls)});
  VOLMGR_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys, s.Find(attrs));
  if (keys.empty()) {
    return NotFoundError("no private key matching " + uri_text +
                         " on token \"" + t.label() + "\"");
  }
  if (keys.size() > 1) {
    return InvalidArgumentError(std::to_string(keys.size()) +
                                " private keys match " + uri_text);
  }
  // An agent key of the other type belongs to another certificate: say
  // so (kNotFound) instead of letting the token refuse the operation.
  VOLMGR_ASSIGN_OR_RETURN(CK_ULONG type,
                          s.GetUlong(keys.front(), CKA_KEY_TYPE));
  const bool rsa = p.enc.algorithm == x509::KemAlgorithm::kRsaOaepSha256;
  if (type != (rsa ? CKK_RSA : CKK_EC)) {
    return NotFoundError("the agent key " + uri_text + " is not " +
                         (rsa ? "an RSA" : "an EC") + " key");
  }
  TokenPrivateKey key(s, keys.front());
  return x509::Decapsulate(key, p.enc, info);
}

class CertProtector final : public ProtectorHandler {
 public:
  std::string_view kind() const override { return "cert"; }
  int version() const override { return 1; }
  std::string_view display_name() const override {
    return "data recovery agent certificate";
  }

  Status Validate(const ProtectorRecord& r) const override {
    VOLMGR_ASSIGN_OR_RETURN(Params p, ParamsOf(r));
    return x509::Certificate::FromDer(p.der).status();
  }

  bool CanTry(const ProtectorRecord&, const Credentials& c) const override {
    return !c.agent_keys.empty();
  }

  StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& r,
                                  const Credentials& c,
                                  const Binding& b) const override {
    VOLMGR_ASSIGN_OR_RETURN(Params p, ParamsOf(r));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(r.id));
    VOLMGR_ASSIGN_OR_RETURN(x509::Certificate cert,
                            x509::Certificate::FromDer(p.der));
    const std::vector<uint8_t> info = crypto::HkdfInfo(kInfo, id.bytes());
    Status last =
        NotFoundError("no agent key matches certificate " + p.subject +
                      " (SHA-256 " + p.fingerprint.substr(0, 16) + "...)");
    for (const std::string& key_ref : c.agent_keys) {
      StatusOr<SecretBytes> kek = InternalError("unreachable");
      if (key_ref.rfind("pkcs11:", 0) == 0) {
        kek = KekFromToken(key_ref, c, p, info);
      } else {
        VOLMGR_ASSIGN_OR_RETURN(x509::PemPrivateKey key,
                                x509::PemPrivateKey::Load(key_ref));
        // Another agent's key: skip without trying, it says nothing.
        if (EVP_PKEY_eq(key.pkey(), cert.public_key()) != 1) continue;
        kek = x509::Decapsulate(key, p.enc, info);
      }
      if (!kek.ok()) {
        // "Not this agent's key" says least; any other failure says more.
        if (kek.status().code() != StatusCode::kNotFound ||
            last.code() == StatusCode::kNotFound) {
          last = kek.status();
        }
        continue;
      }
      auto vmk = UnwrapVmkFrom(r, *kek, b);
      if (vmk.ok() || vmk.status().code() != StatusCode::kAuthFailed) {
        return vmk;
      }
      last = AuthFailedError("the agent key " + key_ref +
                             " does not open certificate protector " +
                             r.id.substr(0, 8));
    }
    return last;
  }

  StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                const CreateRequest& req,
                                const Binding& b) const override {
    if (req.certificate_file.empty()) {
      return InvalidArgumentError(
          "a certificate protector needs --certificate FILE");
    }
    VOLMGR_ASSIGN_OR_RETURN(x509::Certificate cert,
                            x509::Certificate::Load(req.certificate_file));
    std::vector<std::string> problems = cert.Problems();
    if (!problems.empty()) {
      std::string msg = "refusing to enrol " + req.certificate_file + ": ";
      for (size_t i = 0; i < problems.size(); ++i) {
        msg += (i ? "; " : "") + problems[i];
      }
      return FailedPreconditionError(msg);
    }
    CreateResult out;
    VOLMGR_ASSIGN_OR_RETURN(out.record,
                            NewRecord(kind(), version(), req.description));
    VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Parse(out.record.id));
    VOLMGR_ASSIGN_OR_RETURN(
        x509::Encapsulated e,
        x509::Encapsulate(cert.public_key(),
                          crypto::HkdfInfo(kInfo, id.bytes())));
    out.record.params = {
        {"certificate", ToBase64(cert.Der())},
        {"fingerprint", cert.Sha256Fingerprint()},
        {"subject", cert.Subject()},
        {"not_after", cert.NotAfter()},
        {"algorithm", x509::AlgorithmName(e.encapsulation.algorithm)},
        {"encapsulation", ToBase64(e.encapsulation.data)},
    };
    VOLMGR_RETURN_IF_ERROR(WrapVmkInto(out.record, e.kek, vmk, b));
    return out;
  }

  std::string Describe(const ProtectorRecord& r) const override {
    auto p = ParamsOf(r);
    if (!p.ok()) return "data recovery agent (unreadable parameters)";
    std::string s = "data recovery agent (" + p->subject + ", " +
                    std::string(x509::AlgorithmName(p->enc.algorithm)) +
                    ", SHA-256 " + p->fingerprint.substr(0, 16) +
                    "..., valid until " + p->not_after + ")";
    auto cert = x509::Certificate::FromDer(p->der);
    if (cert.ok() && !cert->Problems().empty()) s += " [certificate problem]";
    return s + ", volmgr-recover only";
  }
};

VOLMGR_REGISTER_PROTECTOR(CertProtector);

}  // namespace
}  // namespace volmgr::protectors
