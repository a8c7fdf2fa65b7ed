#include "volmgr/recover/key_package.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::recover {
namespace {

keys::RecoveryPassword MakePassword(uint8_t fill) {
  std::vector<uint8_t> k(16, fill);
  return *keys::RecoveryPassword::FromKey(*SecretBytes::CopyOf(k));
}

KeyPackageSecret MakeSecret() {
  KeyPackageSecret s;
  std::vector<uint8_t> fvek(64);
  for (size_t i = 0; i < fvek.size(); ++i) fvek[i] = static_cast<uint8_t>(i);
  s.fvek = *SecretBytes::CopyOf(fvek);
  s.sector_size = 4096;
  s.data_offset_bytes = 16u << 20;
  s.payload_bytes = 48u << 20;
  s.iv_offset = 0;
  s.check_bytes = 1u << 20;
  s.check_sha256.fill(0xab);
  return s;
}

KeyPackageHeader MakeHeader() {
  KeyPackageHeader h;
  h.volume_uuid = *Uuid::Parse("7d444840-9dc0-11d1-b245-5ffdce74fad2");
  h.recovery_id = *Uuid::Parse("00112233-4455-6677-8899-aabbccddeeff");
  h.created_unix = 1700000000;
  h.label = "payroll";
  return h;
}

TEST(KeyPackageTest, SealThenOpenRoundTrips) {
  auto rp = MakePassword(7);
  auto file = SealKeyPackage(MakeHeader(), MakeSecret(), rp);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto h = ReadKeyPackageHeader(*file);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->volume_uuid.ToString(), "7d444840-9dc0-11d1-b245-5ffdce74fad2");
  EXPECT_EQ(h->recovery_id.ToString(), "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(h->label, "payroll");
  EXPECT_EQ(h->created_unix, 1700000000);
  auto s = OpenKeyPackage(*file, rp);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->fvek.ConstantTimeEquals(MakeSecret().fvek));
  EXPECT_EQ(s->cipher, "aes-xts-plain64");
  EXPECT_EQ(s->sector_size, 4096u);
  EXPECT_EQ(s->data_offset_bytes, 16u << 20);
  EXPECT_EQ(s->payload_bytes, 48u << 20);
  EXPECT_EQ(s->check_bytes, 1u << 20);
  EXPECT_EQ(s->check_sha256, MakeSecret().check_sha256);
}

TEST(KeyPackageTest, TwoSealsDifferInSaltAndCiphertext) {
  auto rp = MakePassword(7);
  auto a = SealKeyPackage(MakeHeader(), MakeSecret(), rp);
  auto b = SealKeyPackage(MakeHeader(), MakeSecret(), rp);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(KeyPackageTest, WrongPasswordFailsAuthentication) {
  auto file = SealKeyPackage(MakeHeader(), MakeSecret(), MakePassword(7));
  ASSERT_TRUE(file.ok());
  auto s = OpenKeyPackage(*file, MakePassword(8));
  EXPECT_EQ(s.status().code(), StatusCode::kAuthFailed);
  EXPECT_NE(s.status().message().find("00112233-4455-6677-8899-aabbccddeeff"),
            std::string::npos);
}

// Every single-bit change anywhere in the file is rejected: the clear header
// is the AAD, the rest is the GCM message.
TEST(KeyPackageTest, EveryFlippedBitIsRejected) {
  auto rp = MakePassword(7);
  auto file = SealKeyPackage(MakeHeader(), MakeSecret(), rp);
  ASSERT_TRUE(file.ok());
  for (size_t i = 0; i < file->size(); ++i) {
    std::vector<uint8_t> bad = *file;
    bad[i] ^= 0x01;
    auto s = OpenKeyPackage(bad, rp);
    ASSERT_FALSE(s.ok()) << "byte " << i;
  }
}

TEST(KeyPackageTest, EveryTruncationIsRejected) {
  auto rp = MakePassword(7);
  auto file = SealKeyPackage(MakeHeader(), MakeSecret(), rp);
  ASSERT_TRUE(file.ok());
  for (size_t n = 0; n < file->size(); ++n) {
    std::span<const uint8_t> cut(file->data(), n);
    ASSERT_FALSE(OpenKeyPackage(cut, rp).ok()) << "length " << n;
  }
}

TEST(KeyPackageTest, UnknownVersionIsUnsupported) {
  auto file = SealKeyPackage(MakeHeader(), MakeSecret(), MakePassword(7));
  ASSERT_TRUE(file.ok());
  (*file)[9] = 3;
  EXPECT_EQ(ReadKeyPackageHeader(*file).status().code(),
            StatusCode::kUnsupported);
}

TEST(KeyPackageTest, SealRejectsShortFvek) {
  KeyPackageSecret s = MakeSecret();
  s.fvek = *SecretBytes::Allocate(32);
  EXPECT_EQ(SealKeyPackage(MakeHeader(), s, MakePassword(7)).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- packages sealed to a data recovery agent certificate (version 2) ----

struct AgentKey {
  crypto::EvpPkeyPtr key;
  x509::Certificate cert;
};

// A self-signed agent certificate for a fresh key of `type` ("RSA" or "EC").
AgentKey MakeAgent(const char* type, const char* cn) {
  crypto::EvpPkeyPtr key(
      std::string(type) == "RSA"
          ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_NE(key, nullptr);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);
  EXPECT_GT(X509_sign(x.get(), key.get(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  const int n = i2d_X509(x.get(), &der);
  EXPECT_GT(n, 0);
  std::vector<uint8_t> bytes(der, der + n);
  OPENSSL_free(der);
  auto cert = x509::Certificate::FromDer(bytes);
  EXPECT_TRUE(cert.ok()) << cert.status().ToString();
  return {std::move(key), std::move(cert).value()};
}

class AgentKeyPackageTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AgentKeyPackageTest, SealToCertificateThenOpenWithPrivateKey) {
  AgentKey agent = MakeAgent(GetParam(), "fleet recovery agent");
  auto file = SealKeyPackageForAgent(MakeHeader(), MakeSecret(), agent.cert);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto h = ReadKeyPackageHeader(*file);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->version, kKeyPackageAgentVersion);
  EXPECT_EQ(h->sealer, KeyPackageSealer::kCertificate);
  EXPECT_TRUE(h->recovery_id.IsNil());
  EXPECT_EQ(h->cert_sha256, agent.cert.Sha256Fingerprint());
  EXPECT_NE(h->cert_subject.find("fleet recovery agent"), std::string::npos);
  EXPECT_EQ(h->label, "payroll");

  x509::PemPrivateKey pem(std::move(agent.key));
  auto s = OpenKeyPackageWithAgent(*file, pem);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->fvek.ConstantTimeEquals(MakeSecret().fvek));
  EXPECT_EQ(s->data_offset_bytes, MakeSecret().data_offset_bytes);
  EXPECT_EQ(s->check_sha256, MakeSecret().check_sha256);
}

TEST_P(AgentKeyPackageTest, AnotherAgentsKeyFailsAuthentication) {
  AgentKey agent = MakeAgent(GetParam(), "agent A");
  AgentKey other = MakeAgent(GetParam(), "agent B");
  auto file = SealKeyPackageForAgent(MakeHeader(), MakeSecret(), agent.cert);
  ASSERT_TRUE(file.ok());
  x509::PemPrivateKey pem(std::move(other.key));
  EXPECT_EQ(OpenKeyPackageWithAgent(*file, pem).status().code(),
            StatusCode::kAuthFailed);
}

TEST_P(AgentKeyPackageTest, EveryFlippedByteAndTruncationIsRejected) {
  AgentKey agent = MakeAgent(GetParam(), "agent");
  auto file = SealKeyPackageForAgent(MakeHeader(), MakeSecret(), agent.cert);
  ASSERT_TRUE(file.ok());
  x509::PemPrivateKey pem(std::move(agent.key));
  ASSERT_TRUE(OpenKeyPackageWithAgent(*file, pem).ok());
  for (size_t i = 0; i < file->size(); ++i) {
    std::vector<uint8_t> bad = *file;
    bad[i] ^= 0x40;
    ASSERT_FALSE(OpenKeyPackageWithAgent(bad, pem).ok()) << "byte " << i;
  }
  for (size_t n = 0; n < file->size(); n += 7) {
    std::span<const uint8_t> cut(file->data(), n);
    ASSERT_FALSE(OpenKeyPackageWithAgent(cut, pem).ok()) << "length " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, AgentKeyPackageTest,
                         ::testing::Values("RSA", "EC"));

TEST(KeyPackageTest, EachSealerRefusesTheOthersOpener) {
  AgentKey agent = MakeAgent("EC", "agent");
  auto v2 = SealKeyPackageForAgent(MakeHeader(), MakeSecret(), agent.cert);
  auto v1 = SealKeyPackage(MakeHeader(), MakeSecret(), MakePassword(7));
  ASSERT_TRUE(v1.ok() && v2.ok());
  x509::PemPrivateKey pem(std::move(agent.key));
  EXPECT_EQ(OpenKeyPackage(*v2, MakePassword(7)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenKeyPackageWithAgent(*v1, pem).status().code(),
            StatusCode::kInvalidArgument);
  // A recovery-password package stays version 1, readable by older tools.
  EXPECT_EQ(ReadKeyPackageHeader(*v1)->version, kKeyPackageVersion);
}

}  // namespace
}  // namespace volmgr::recover
