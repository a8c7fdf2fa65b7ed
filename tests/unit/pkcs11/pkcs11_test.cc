// The PKCS#11 wrapper against a fake module: the failures SoftHSM2 cannot
// produce (a locked PIN: SoftHSM2 has no retry counter; a removed device)
// and the CK_RV -> Status mapping. The real twin is
// tests/integration/pkcs11_customer_key.sh (wrong PIN, absent token, absent
// and non-PKCS#11 modules against SoftHSM2).
#include "volmgr/pkcs11/pkcs11.h"

#include <gtest/gtest.h>

#include <cstring>

namespace volmgr::pkcs11 {
namespace {

// What the fake module answers.
struct FakeState {
  CK_FLAGS token_flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED;
  CK_RV open_session = CKR_OK;
  CK_RV login = CKR_OK;
  int logins = 0;
  int closes = 0;
};
FakeState g;

CK_RV Initialize(void*) { return CKR_OK; }
CK_RV Finalize(void*) { return CKR_OK; }
CK_RV GetInfo(CK_INFO* info) {
  std::memset(info, 0, sizeof(*info));
  std::memset(info->manufacturerID, ' ', sizeof(info->manufacturerID));
  std::memset(info->libraryDescription, ' ', sizeof(info->libraryDescription));
  return CKR_OK;
}
CK_RV GetSlotList(CK_BBOOL, CK_SLOT_ID* list, CK_ULONG* n) {
  if (list != nullptr) list[0] = 7;
  *n = 1;
  return CKR_OK;
}
CK_RV GetTokenInfo(CK_SLOT_ID, CK_TOKEN_INFO* info) {
  std::memset(info, 0, sizeof(*info));
  std::memset(info->label, ' ', sizeof(info->label));
  std::memcpy(info->label, "fake", 4);
  std::memset(info->manufacturerID, ' ', sizeof(info->manufacturerID));
  std::memset(info->model, ' ', sizeof(info->model));
  std::memset(info->serialNumber, ' ', sizeof(info->serialNumber));
  std::memcpy(info->serialNumber, "0042", 4);
  info->flags = g.token_flags;
  return CKR_OK;
}
CK_RV OpenSession(CK_SLOT_ID, CK_FLAGS, void*, CK_NOTIFY,
                  CK_SESSION_HANDLE* h) {
  *h = 1;
  return g.open_session;
}
CK_RV CloseSession(CK_SESSION_HANDLE) {
  ++g.closes;
  return CKR_OK;
}
CK_RV Login(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR*, CK_ULONG) {
  ++g.logins;
  return g.login;
}
CK_RV Logout(CK_SESSION_HANDLE) { return CKR_OK; }

CK_FUNCTION_LIST* FakeModule() {
  static CK_FUNCTION_LIST f = [] {
    CK_FUNCTION_LIST l{};
    l.version = {2, 40};
    l.C_Initialize = Initialize;
    l.C_Finalize = Finalize;
    l.C_GetInfo = GetInfo;
    l.C_GetSlotList = GetSlotList;
    l.C_GetTokenInfo = GetTokenInfo;
    l.C_OpenSession = OpenSession;
    l.C_CloseSession = CloseSession;
    l.C_Login = Login;
    l.C_Logout = Logout;
    return l;
  }();
  return &f;
}

class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override { g = FakeState{}; }
  SecretBytes Pin() { return std::move(SecretBytes::CopyOf("123456")).value(); }
  StatusOr<Session> OpenFake() {
    auto m = Module::FromFunctionList(FakeModule());
    if (!m.ok()) return m.status();
    module_.emplace(std::move(m).value());
    auto uri = Uri::Parse("pkcs11:token=fake");
    if (!uri.ok()) return uri.status();
    auto t = module_->FindToken(*uri);
    if (!t.ok()) return t.status();
    return Session::Open(*t);
  }
  std::optional<Module> module_;
};

TEST_F(Pkcs11Test, FindsTheTokenByUriAndTrimsLabelAndSerial) {
  auto m = Module::FromFunctionList(FakeModule());
  ASSERT_TRUE(m.ok());
  auto t = m->FindToken(*Uri::Parse("pkcs11:token=fake;serial=0042"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->label(), "fake");
  EXPECT_EQ(t->serial(), "0042");
}

TEST_F(Pkcs11Test, AbsentTokenIsUnavailable) {
  auto m = Module::FromFunctionList(FakeModule());
  auto t = m->FindToken(*Uri::Parse("pkcs11:token=other"));
  EXPECT_EQ(t.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(t.status().message().find("no token matching"), std::string::npos);
}

TEST_F(Pkcs11Test, LockedPinFlagIsUnavailableWithoutTryingTheToken) {
  g.token_flags |= CKF_USER_PIN_LOCKED;
  auto s = OpenFake();
  ASSERT_TRUE(s.ok());
  Status st = s->Login(Pin());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("PIN is locked"), std::string::npos);
  EXPECT_EQ(g.logins, 0);  // no further wrong-PIN count on a locked token
}

TEST_F(Pkcs11Test, LoginLockedPinIsUnavailable) {
  g.login = CKR_PIN_LOCKED;
  auto s = OpenFake();
  ASSERT_TRUE(s.ok());
  Status st = s->Login(Pin());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.foreign().source, ForeignSource::kPkcs11);
  EXPECT_EQ(st.foreign().value, static_cast<int64_t>(CKR_PIN_LOCKED));
}

TEST_F(Pkcs11Test, WrongPinIsAuthFailed) {
  g.login = CKR_PIN_INCORRECT;
  auto s = OpenFake();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Login(Pin()).code(), StatusCode::kAuthFailed);
}

TEST_F(Pkcs11Test, EmptyPinIsPinRequired) {
  auto s = OpenFake();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Login(SecretBytes()).code(), StatusCode::kPinRequired);
  EXPECT_EQ(g.logins, 0);
}

TEST_F(Pkcs11Test, RemovedDeviceIsUnavailableAndSessionsClose) {
  g.open_session = CKR_DEVICE_REMOVED;
  EXPECT_EQ(OpenFake().status().code(), StatusCode::kUnavailable);
  g.open_session = CKR_OK;
  {
    auto s = OpenFake();
    ASSERT_TRUE(s.ok());
  }
  EXPECT_EQ(g.closes, 1);
}

TEST(UriTest, PinValueIsRefused) {
  auto u = Uri::Parse("pkcs11:token=a;object=k?pin-value=1234");
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(u.status().message().find("never in a URI"), std::string::npos);
}

TEST(UriTest, MalformedUriIsInvalidArgument) {
  EXPECT_EQ(Uri::Parse("http://example.com").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(UriTest, ObjectAttributesAndModulePath) {
  auto u = Uri::Parse(
      "pkcs11:token=a;object=vmk;type=secret-key?module-path=/x/lib.so");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->module_path(), "/x/lib.so");
  ASSERT_TRUE(u->object_class().has_value());
  EXPECT_EQ(*u->object_class(), static_cast<CK_OBJECT_CLASS>(CKO_SECRET_KEY));
  EXPECT_EQ(u->ObjectAttributes().size(), 2u);  // CKA_LABEL, CKA_CLASS
}

TEST(Pkcs11ErrorTest, MapsReturnValues) {
  EXPECT_EQ(Pkcs11Error(CKR_ENCRYPTED_DATA_INVALID, "x").code(),
            StatusCode::kAuthFailed);
  EXPECT_EQ(Pkcs11Error(CKR_KEY_TYPE_INCONSISTENT, "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Pkcs11Error(CKR_TOKEN_NOT_PRESENT, "x").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(Pkcs11Error(CKR_HOST_MEMORY, "x").code(), StatusCode::kInternal);
  EXPECT_NE(Pkcs11Error(CKR_PIN_INCORRECT, "login").message().find("login: "),
            std::string::npos);
}

}  // namespace
}  // namespace volmgr::pkcs11
