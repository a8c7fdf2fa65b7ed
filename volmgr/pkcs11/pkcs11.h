// PKCS#11 (OASIS PKCS#11 v2.40) through p11-kit: every handle volmgr uses,
// one owning wrapper each, and the one CK_RV -> Status conversion.
//
//   Uri      an RFC 7512 "pkcs11:" URI, parsed by p11_kit_uri_parse
//   Module   the loaded module(s): one --module path (p11_kit_module_load),
//            or every module registered with p11-kit (p11-kit's
//            modules/*.module files), initialised and finalised once
//   Token    a slot whose token matches a URI
//   Session  an open session on a token, logged out and closed on
//            destruction
//
// Libraries never print: p11-kit is told to be quiet and its last message is
// folded into the Status. libp11-kit itself is loaded on first use
// (p11kit_api.h); without it, Uri::Parse and Module::Load fail with
// kUnavailable.
//
// Thread-safety: none; one Module per thread.
#ifndef VOLMGR_PKCS11_PKCS11_H_
#define VOLMGR_PKCS11_PKCS11_H_

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::pkcs11 {

// The one conversion from a CK_RV to a Status ("what: CKR_PIN_INCORRECT
// (...)", ForeignSource::kPkcs11). kAuthFailed for a wrong PIN or a
// ciphertext the key does not open; kUnavailable for an absent or removed
// token, a locked PIN or a failing device; kInvalidArgument for a key of the
// wrong type or usage; kInternal otherwise.
Status Pkcs11Error(CK_RV rv, std::string_view what);

// An RFC 7512 PKCS#11 URI. A URI carrying "pin-value" is refused: it would
// put a secret into argv and the LUKS2 header.
class Uri {
 public:
  // kInvalidArgument naming the problem (p11_kit_uri_message) for a bad URI.
  static StatusOr<Uri> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  // The "module-path" query attribute, or empty.
  std::string module_path() const;
  bool MatchesModule(const CK_INFO& info) const;
  bool MatchesToken(const CK_TOKEN_INFO& info) const;
  // The object attributes the URI names (CKA_CLASS, CKA_ID, CKA_LABEL), for
  // C_FindObjectsInit.
  std::vector<CK_ATTRIBUTE> ObjectAttributes() const;
  std::optional<CK_OBJECT_CLASS> object_class() const;

 private:
  struct Free {
    void operator()(P11KitUri* u) const;  // p11_kit_uri_free
  };
  std::string text_;
  std::unique_ptr<P11KitUri, Free> uri_;
};

// A token found by URI: the function list of its module and its slot.
struct Token {
  CK_FUNCTION_LIST* functions = nullptr;
  CK_SLOT_ID slot = 0;
  CK_TOKEN_INFO info{};
  std::string module_name;

  // Label and serial number without the blank padding.
  std::string label() const;
  std::string serial() const;
};

class Module {
 public:
  // Loads and initialises the module at `path`, or (empty path) every
  // module registered with p11-kit. kUnavailable when the file is absent or
  // is no PKCS#11 module (no C_GetFunctionList), or when C_Initialize fails.
  static StatusOr<Module> Load(const std::string& path);
  // For unit tests: a function list the caller owns (a fake module). It is
  // initialised here and finalised on destruction.
  static StatusOr<Module> FromFunctionList(CK_FUNCTION_LIST* functions);

  Module(Module&&) noexcept;
  Module& operator=(Module&&) noexcept;
  ~Module();

  // The token the URI names among tokens present. kUnavailable when none
  // matches (the HSM is absent), kInvalidArgument when several do.
  StatusOr<Token> FindToken(const Uri& uri) const;

  const std::string& description() const { return description_; }

 private:
  enum class Kind { kPath, kRegistered, kBorrowed };
  Module() = default;
  void Release();
  Kind kind_ = Kind::kBorrowed;
  std::vector<CK_FUNCTION_LIST*> modules_;
  CK_FUNCTION_LIST** registered_ = nullptr;
  std::string description_;
};

// An open session on a token. Logs out (if logged in) and closes on
// destruction.
class Session {
 public:
  static StatusOr<Session> Open(const Token& token);
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // C_Login as the user. kPinRequired for an empty PIN on a token that
  // needs one; kAuthFailed for a wrong PIN; kUnavailable for a locked PIN.
  Status Login(const SecretBytes& pin);

  // Objects matching `attrs`.
  StatusOr<std::vector<CK_OBJECT_HANDLE>> Find(
      std::span<const CK_ATTRIBUTE> attrs) const;
  StatusOr<CK_ULONG> GetUlong(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t) const;
  StatusOr<bool> GetBool(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t) const;
  StatusOr<std::vector<uint8_t>> GetBytes(CK_OBJECT_HANDLE obj,
                                          CK_ATTRIBUTE_TYPE t) const;

  // Single-part C_Encrypt / C_Decrypt.
  StatusOr<std::vector<uint8_t>> Encrypt(CK_MECHANISM& mech,
                                         CK_OBJECT_HANDLE key,
                                         std::span<const uint8_t> in) const;
  StatusOr<SecretBytes> Decrypt(CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                                std::span<const uint8_t> in) const;
  // ECDH (CKM_ECDH1_DERIVE, CKD_NULL): the raw shared secret Z with the
  // peer's uncompressed point, through a session-only extractable generic
  // secret that is destroyed again.
  StatusOr<SecretBytes> EcdhDerive(CK_OBJECT_HANDLE priv,
                                   std::span<const uint8_t> peer_point,
                                   size_t secret_len) const;

  const Token& token() const { return token_; }

 private:
  Session(Token token, CK_SESSION_HANDLE h)
      : token_(std::move(token)), handle_(h) {}
  void Close();
  Token token_;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
  bool open_ = false;
  bool logged_in_ = false;
};

// The mechanisms volmgr uses, with their parameters kept alive.
// RSA-OAEP, no label, MGF1 with the same hash. SHA-256 is what volmgr
// asks for; SHA-1 only for tokens that refuse SHA-256 OAEP (SoftHSM2 before
// 2.7 accepts only SHA-1). OAEP's security does not rest on the hash's
// collision resistance, so OAEP-SHA1 is still sound for key transport.
struct Oaep {
  explicit Oaep(bool sha256 = true)
      : params{sha256 ? CKM_SHA256 : CKM_SHA_1,
               sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED,
               nullptr, 0} {}
  CK_RSA_PKCS_OAEP_PARAMS params;
  CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &params, sizeof(params)};
};

// True for the CK_RVs a token gives when it does not support a mechanism's
// parameters (e.g. OAEP with SHA-256).
bool IsUnsupportedParams(const Status& s);
struct AesGcm {
  AesGcm(std::span<uint8_t> iv, std::span<const uint8_t> aad);
  CK_GCM_PARAMS params{};
  CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof(params)};
};

}  // namespace volmgr::pkcs11

#endif  // VOLMGR_PKCS11_PKCS11_H_
