#include "volmgr/pkcs11/pkcs11.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "volmgr/pkcs11/p11kit_api.h"

namespace volmgr::pkcs11 {
namespace {

std::string Trimmed(const unsigned char* field, size_t n) {
  std::string s(reinterpret_cast<const char*>(field), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// The loaded table. REQUIRES: LoadP11Kit() has succeeded before (every Uri
// and Module holding p11-kit objects was made after it did).
const P11KitApi& Api() { return **LoadP11Kit(); }

// p11-kit's last message, if any, for a load failure.
std::string P11KitMessage() {
  const char* m = Api().message();
  return m != nullptr ? std::string(m) : std::string();
}

}  // namespace

Status Pkcs11Error(CK_RV rv, std::string_view what) {
  StatusOr<const P11KitApi*> api = LoadP11Kit();
  const char* name = api.ok() ? (*api)->strerror(rv) : nullptr;
  std::string msg = std::string(what) + ": " +
                    (name != nullptr ? name : "PKCS#11 error") + " (CK_RV 0x" +
                    [&] {
                      char buf[17];
                      std::snprintf(buf, sizeof(buf), "%lx", rv);
                      return std::string(buf);
                    }() +
                    ")";
  ForeignCode fc{ForeignSource::kPkcs11, static_cast<int64_t>(rv)};
  StatusCode code = StatusCode::kInternal;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      code = StatusCode::kAuthFailed;
      break;
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_SLOT_ID_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_GENERAL_ERROR:
    case CKR_FUNCTION_FAILED:
      code = StatusCode::kUnavailable;
      break;
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_SIZE_RANGE:
      code = StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  return Status(code, std::move(msg), fc);
}

// ---- Uri ---------------------------------------------------------------

void Uri::Free::operator()(P11KitUri* u) const { Api().uri_free(u); }

StatusOr<Uri> Uri::Parse(std::string_view text) {
  VOLMGR_RETURN_IF_ERROR(LoadP11Kit().status());
  Uri u;
  u.text_ = std::string(text);
  u.uri_.reset(Api().uri_new());
  if (!u.uri_) return InternalError("p11_kit_uri_new failed");
  int rc = Api().uri_parse(u.text_.c_str(), P11_KIT_URI_FOR_ANY, u.uri_.get());
  if (rc != P11_KIT_URI_OK) {
    return InvalidArgumentError(
        "\"" + u.text_ +
        "\" is not a PKCS#11 URI (RFC 7512): " + Api().uri_message(rc));
  }
  if (Api().uri_get_pin_value(u.uri_.get()) != nullptr) {
    return InvalidArgumentError(
        "the PKCS#11 URI carries pin-value; give the PIN with --token-pin-file "
        "or --token-pin-fd (or at the prompt), never in a URI");
  }
  return u;
}

std::string Uri::module_path() const {
  const char* p = Api().uri_get_module_path(uri_.get());
  return p != nullptr ? p : "";
}

bool Uri::MatchesModule(const CK_INFO& info) const {
  return Api().uri_match_module_info(uri_.get(), &info) == 1;
}

bool Uri::MatchesToken(const CK_TOKEN_INFO& info) const {
  return Api().uri_match_token_info(uri_.get(), &info) == 1;
}

std::vector<CK_ATTRIBUTE> Uri::ObjectAttributes() const {
  CK_ULONG n = 0;
  CK_ATTRIBUTE* a = Api().uri_get_attributes(uri_.get(), &n);
  return std::vector<CK_ATTRIBUTE>(a, a + n);
}

std::optional<CK_OBJECT_CLASS> Uri::object_class() const {
  CK_ATTRIBUTE* a = Api().uri_get_attribute(uri_.get(), CKA_CLASS);
  if (a == nullptr || a->ulValueLen != sizeof(CK_OBJECT_CLASS)) {
    return std::nullopt;
  }
  CK_OBJECT_CLASS c;
  std::memcpy(&c, a->pValue, sizeof(c));
  return c;
}

// ---- Token ---------------------------------------------------------------

std::string Token::label() const {
  return Trimmed(info.label, sizeof(info.label));
}
std::string Token::serial() const {
  return Trimmed(info.serialNumber, sizeof(info.serialNumber));
}

// ---- Module --------------------------------------------------------------

StatusOr<Module> Module::Load(const std::string& path) {
  VOLMGR_RETURN_IF_ERROR(LoadP11Kit().status());
  // p11-kit writes failures to stderr unless told not to; we report them
  // through the Status instead.
  Api().be_quiet();
  Module m;
  if (path.empty()) {
    m.kind_ = Kind::kRegistered;
    m.registered_ = Api().modules_load_and_initialize(0);
    if (m.registered_ == nullptr) {
      return UnavailableError(
          "no PKCS#11 module could be loaded through p11-kit" +
          (P11KitMessage().empty() ? "" : ": " + P11KitMessage()));
    }
    for (CK_FUNCTION_LIST** f = m.registered_; *f != nullptr; ++f) {
      m.modules_.push_back(*f);
    }
    m.description_ = "the PKCS#11 modules registered with p11-kit";
    return m;
  }
  if (path.find('/') != std::string::npos && access(path.c_str(), R_OK) != 0) {
    return UnavailableError("PKCS#11 module " + path + " does not exist");
  }
  CK_FUNCTION_LIST* f = Api().module_load(path.c_str(), 0);
  if (f == nullptr) {
    return UnavailableError("cannot load PKCS#11 module " + path +
                            (P11KitMessage().empty()
                                 ? " (not a PKCS#11 module?)"
                                 : ": " + P11KitMessage()));
  }
  CK_RV rv = Api().module_initialize(f);
  if (rv != CKR_OK) {
    Api().module_release(f);
    return Pkcs11Error(rv, "PKCS#11 module " + path + ": C_Initialize");
  }
  m.kind_ = Kind::kPath;
  m.modules_.push_back(f);
  m.description_ = "PKCS#11 module " + path;
  return m;
}

StatusOr<Module> Module::FromFunctionList(CK_FUNCTION_LIST* functions) {
  CK_RV rv = functions->C_Initialize(nullptr);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return Pkcs11Error(rv, "C_Initialize");
  }
  Module m;
  m.kind_ = Kind::kBorrowed;
  m.modules_.push_back(functions);
  m.description_ = "PKCS#11 module (test)";
  return m;
}

Module::Module(Module&& o) noexcept
    : kind_(o.kind_),
      modules_(std::move(o.modules_)),
      registered_(o.registered_),
      description_(std::move(o.description_)) {
  o.modules_.clear();
  o.registered_ = nullptr;
}

Module& Module::operator=(Module&& o) noexcept {
  if (this != &o) {
    Release();
    kind_ = o.kind_;
    modules_ = std::move(o.modules_);
    registered_ = o.registered_;
    description_ = std::move(o.description_);
    o.modules_.clear();
    o.registered_ = nullptr;
  }
  return *this;
}

Module::~Module() { Release(); }

void Module::Release() {
  switch (kind_) {
    case Kind::kRegistered:
      if (registered_ != nullptr) {
        Api().modules_finalize_and_release(registered_);
      }
      break;
    case Kind::kPath:
      for (CK_FUNCTION_LIST* f : modules_) {
        Api().module_finalize(f);
        Api().module_release(f);
      }
      break;
    case Kind::kBorrowed:
      for (CK_FUNCTION_LIST* f : modules_) f->C_Finalize(nullptr);
      break;
  }
  modules_.clear();
  registered_ = nullptr;
}

StatusOr<Token> Module::FindToken(const Uri& uri) const {
  std::vector<Token> found;
  for (CK_FUNCTION_LIST* f : modules_) {
    CK_INFO info{};
    if (f->C_GetInfo(&info) != CKR_OK || !uri.MatchesModule(info)) continue;
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &n);
    if (rv != CKR_OK) {
      return Pkcs11Error(rv, description_ + ": C_GetSlotList");
    }
    std::vector<CK_SLOT_ID> slots(n);
    rv = f->C_GetSlotList(CK_TRUE, slots.data(), &n);
    if (rv != CKR_OK) {
      return Pkcs11Error(rv, description_ + ": C_GetSlotList");
    }
    slots.resize(n);
    for (CK_SLOT_ID s : slots) {
      Token t;
      t.functions = f;
      t.slot = s;
      if (f->C_GetTokenInfo(s, &t.info) != CKR_OK) continue;
      // An uninitialised token has no keys; skip it rather than match a
      // URI that names no token.
      if (!(t.info.flags & CKF_TOKEN_INITIALIZED)) continue;
      if (!uri.MatchesToken(t.info)) continue;
      t.module_name = Trimmed(info.manufacturerID, sizeof(info.manufacturerID));
      found.push_back(t);
    }
  }
  if (found.empty()) {
    return UnavailableError("no token matching " + uri.text() + " in " +
                            description_ + " (is the HSM connected?)");
  }
  if (found.size() > 1) {
    return InvalidArgumentError(
        std::to_string(found.size()) + " tokens match " + uri.text() +
        "; add token= or serial= to the URI to name one");
  }
  return found.front();
}

// ---- Session -------------------------------------------------------------

StatusOr<Session> Session::Open(const Token& token) {
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_RV rv = token.functions->C_OpenSession(token.slot, CKF_SERIAL_SESSION,
                                            nullptr, nullptr, &h);
  if (rv != CKR_OK) {
    return Pkcs11Error(rv, "token \"" + token.label() + "\": C_OpenSession");
  }
  Session s(token, h);
  s.open_ = true;
  return s;
}

Session::Session(Session&& o) noexcept
    : token_(std::move(o.token_)),
      handle_(o.handle_),
      open_(o.open_),
      logged_in_(o.logged_in_) {
  o.open_ = false;
  o.logged_in_ = false;
}

Session& Session::operator=(Session&& o) noexcept {
  if (this != &o) {
    Close();
    token_ = o.token_;
    handle_ = o.handle_;
    open_ = o.open_;
    logged_in_ = o.logged_in_;
    o.open_ = false;
    o.logged_in_ = false;
  }
  return *this;
}

Session::~Session() { Close(); }

void Session::Close() {
  if (!open_) return;
  if (logged_in_) token_.functions->C_Logout(handle_);
  token_.functions->C_CloseSession(handle_);
  open_ = false;
  logged_in_ = false;
}

Status Session::Login(const SecretBytes& pin) {
  const std::string who = "token \"" + token_.label() + "\"";
  if (token_.info.flags & CKF_USER_PIN_LOCKED) {
    return Status(StatusCode::kUnavailable,
                  who +
                      ": the user PIN is locked (too many wrong PINs); the "
                      "security officer must unblock it",
                  {ForeignSource::kPkcs11, CKR_PIN_LOCKED});
  }
  if (pin.empty() && !(token_.info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
    return PinRequiredError(who + " needs its PIN");
  }
  CK_RV rv = token_.functions->C_Login(
      handle_, CKU_USER,
      pin.empty() ? nullptr : const_cast<CK_UTF8CHAR*>(pin.Reveal().data()),
      pin.size());
  if (rv == CKR_USER_ALREADY_LOGGED_IN) return Status::Ok();
  if (rv == CKR_PIN_INCORRECT) {
    return Status(StatusCode::kAuthFailed, who + ": wrong PIN",
                  {ForeignSource::kPkcs11, static_cast<int64_t>(rv)});
  }
  if (rv == CKR_PIN_LOCKED) {
    return Status(StatusCode::kUnavailable,
                  who +
                      ": the user PIN is locked (too many wrong PINs); the "
                      "security officer must unblock it",
                  {ForeignSource::kPkcs11, static_cast<int64_t>(rv)});
  }
  if (rv != CKR_OK) return Pkcs11Error(rv, who + ": C_Login");
  logged_in_ = true;
  return Status::Ok();
}

StatusOr<std::vector<CK_OBJECT_HANDLE>> Session::Find(
    std::span<const CK_ATTRIBUTE> attrs) const {
  CK_FUNCTION_LIST* f = token_.functions;
  CK_RV rv = f->C_FindObjectsInit(
      handle_, const_cast<CK_ATTRIBUTE*>(attrs.data()), attrs.size());
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> out;
  for (;;) {
    CK_OBJECT_HANDLE batch[16];
    CK_ULONG n = 0;
    rv = f->C_FindObjects(handle_, batch, 16, &n);
    if (rv != CKR_OK) {
      f->C_FindObjectsFinal(handle_);
      return Pkcs11Error(rv, "C_FindObjects");
    }
    if (n == 0) break;
    out.insert(out.end(), batch, batch + n);
  }
  f->C_FindObjectsFinal(handle_);
  return out;
}

StatusOr<CK_ULONG> Session::GetUlong(CK_OBJECT_HANDLE obj,
                                     CK_ATTRIBUTE_TYPE t) const {
  CK_ULONG v = 0;
  CK_ATTRIBUTE a{t, &v, sizeof(v)};
  CK_RV rv = token_.functions->C_GetAttributeValue(handle_, obj, &a, 1);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue");
  return v;
}

StatusOr<bool> Session::GetBool(CK_OBJECT_HANDLE obj,
                                CK_ATTRIBUTE_TYPE t) const {
  CK_BBOOL v = CK_FALSE;
  CK_ATTRIBUTE a{t, &v, sizeof(v)};
  CK_RV rv = token_.functions->C_GetAttributeValue(handle_, obj, &a, 1);
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return false;
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue");
  return v == CK_TRUE;
}

StatusOr<std::vector<uint8_t>> Session::GetBytes(CK_OBJECT_HANDLE obj,
                                                 CK_ATTRIBUTE_TYPE t) const {
  CK_ATTRIBUTE a{t, nullptr, 0};
  CK_RV rv = token_.functions->C_GetAttributeValue(handle_, obj, &a, 1);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue");
  std::vector<uint8_t> v(a.ulValueLen);
  a.pValue = v.data();
  rv = token_.functions->C_GetAttributeValue(handle_, obj, &a, 1);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue");
  v.resize(a.ulValueLen);
  return v;
}

StatusOr<std::vector<uint8_t>> Session::Encrypt(
    CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
    std::span<const uint8_t> in) const {
  CK_FUNCTION_LIST* f = token_.functions;
  CK_RV rv = f->C_EncryptInit(handle_, &mech, key);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_EncryptInit");
  CK_ULONG n = 0;
  rv = f->C_Encrypt(handle_, const_cast<uint8_t*>(in.data()), in.size(),
                    nullptr, &n);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_Encrypt");
  std::vector<uint8_t> out(n);
  rv = f->C_Encrypt(handle_, const_cast<uint8_t*>(in.data()), in.size(),
                    out.data(), &n);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_Encrypt");
  out.resize(n);
  return out;
}

StatusOr<SecretBytes> Session::Decrypt(CK_MECHANISM& mech, CK_OBJECT_HANDLE key,
                                       std::span<const uint8_t> in) const {
  CK_FUNCTION_LIST* f = token_.functions;
  CK_RV rv = f->C_DecryptInit(handle_, &mech, key);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_DecryptInit");
  // The plaintext is never longer than the ciphertext for the mechanisms
  // used here (RSA-OAEP, AES-GCM), so one call into locked memory suffices
  // and no plaintext passes through unlocked buffers.
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes out,
                          SecretBytes::Allocate(in.size(), in.size()));
  CK_ULONG n = in.size();
  rv = f->C_Decrypt(handle_, const_cast<uint8_t*>(in.data()), in.size(),
                    out.RevealMutable().data(), &n);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_Decrypt");
  out.Resize(n);
  return out;
}

StatusOr<SecretBytes> Session::EcdhDerive(CK_OBJECT_HANDLE priv,
                                          std::span<const uint8_t> peer_point,
                                          size_t secret_len) const {
  CK_FUNCTION_LIST* f = token_.functions;
  CK_ECDH1_DERIVE_PARAMS p{CKD_NULL, 0, nullptr, peer_point.size(),
                           const_cast<uint8_t*>(peer_point.data())};
  CK_MECHANISM mech{CKM_ECDH1_DERIVE, &p, sizeof(p)};
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
  CK_ULONG len = secret_len;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
      {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &no, sizeof(no)},
      {CKA_SENSITIVE, &no, sizeof(no)},   {CKA_EXTRACTABLE, &yes, sizeof(yes)},
  };
  CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
  CK_RV rv = f->C_DeriveKey(handle_, &mech, priv, tmpl, 6, &derived);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_DeriveKey (ECDH)");
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes z,
                          SecretBytes::Allocate(secret_len, secret_len));
  CK_ATTRIBUTE a{CKA_VALUE, z.RevealMutable().data(), secret_len};
  rv = f->C_GetAttributeValue(handle_, derived, &a, 1);
  f->C_DestroyObject(handle_, derived);
  if (rv != CKR_OK) return Pkcs11Error(rv, "reading the ECDH secret");
  z.Resize(a.ulValueLen);
  return z;
}

bool IsUnsupportedParams(const Status& s) {
  if (s.foreign().source != ForeignSource::kPkcs11) return false;
  const auto rv = static_cast<CK_RV>(s.foreign().value);
  return rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID ||
         rv == CKR_MECHANISM_INVALID;
}

AesGcm::AesGcm(std::span<uint8_t> iv, std::span<const uint8_t> aad) {
  params.pIv = iv.data();
  params.ulIvLen = iv.size();
  params.ulIvBits = iv.size() * 8;
  params.pAAD = const_cast<uint8_t*>(aad.data());
  params.ulAADLen = aad.size();
  params.ulTagBits = 128;
}

}  // namespace volmgr::pkcs11
