#include "volmgr/x509/public_key_wrap.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <string>
#include <vector>

#include "tests/unit/testing/vector_file.h"
#include "volmgr/crypto/key_wrap.h"

namespace volmgr::x509 {
namespace {

using testing::LoadVectorFile;
using testing::VectorRecord;

std::vector<uint8_t> Info() {
  std::string s = "volmgr cert v1 test-protector-id";
  return {s.begin(), s.end()};
}

crypto::EvpPkeyPtr Generate(const char* type, const char* param) {
  if (std::string(type) == "RSA") {
    return crypto::EvpPkeyPtr(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  }
  return crypto::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param));
}

// An EC private key from raw scalar and public point (CAVP record).
crypto::EvpPkeyPtr EcKey(const std::string& curve,
                         const std::vector<uint8_t>& d,
                         const std::vector<uint8_t>& pub) {
  OSSL_PARAM_BLD* b = OSSL_PARAM_BLD_new();
  BIGNUM* priv = BN_bin2bn(d.data(), static_cast<int>(d.size()), nullptr);
  OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, curve.c_str(),
                                  0);
  OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub.data(),
                                   pub.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(b);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  BN_free(priv);
  OSSL_PARAM_BLD_free(b);
  return crypto::EvpPkeyPtr(key);
}

std::vector<uint8_t> Point(const VectorRecord& r, const std::string& x,
                           const std::string& y) {
  std::vector<uint8_t> p{0x04};
  auto xs = r.Hex(x), ys = r.Hex(y);
  p.insert(p.end(), xs.begin(), xs.end());
  p.insert(p.end(), ys.begin(), ys.end());
  return p;
}

// NIST CAVP ECC CDH primitive, COUNT 0 of P-256 and P-384.
class EcdhKatTest : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(EcdhKatTest, PemKeyEcdhGivesZiut) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const std::string curve = r.section.at("Curve");
  crypto::EvpPkeyPtr key =
      EcKey(curve, r.Hex("dIUT"), Point(r, "QIUTx", "QIUTy"));
  ASSERT_TRUE(key) << r.Where();
  PemPrivateKey pem(std::move(key));
  const auto z = r.Hex("ZIUT");
  auto got = pem.Ecdh(Point(r, "QCAVSx", "QCAVSy"), z.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(std::vector<uint8_t>(got->Reveal().begin(), got->Reveal().end()), z)
      << r.Where();
}

INSTANTIATE_TEST_SUITE_P(
    Cavp, EcdhKatTest,
    ::testing::ValuesIn(LoadVectorFile(std::string(VOLMGR_VECTORS_DIR) +
                                       "/ecdh/kas_ecc_cdh_count0.txt")),
    [](const auto& p) {
      if (!p.param.load_error.empty()) return std::string("LoadError");
      return testing::SanitizeTestName(p.param.section.at("Curve"));
    });

struct KeyCase {
  const char* type;
  const char* param;
  KemAlgorithm want;
};

class RoundTripTest : public ::testing::TestWithParam<KeyCase> {};

TEST_P(RoundTripTest, DecapsulateGivesTheSameKek) {
  crypto::EvpPkeyPtr key = Generate(GetParam().type, GetParam().param);
  ASSERT_TRUE(key);
  auto e = Encapsulate(key.get(), Info());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->encapsulation.algorithm, GetParam().want);
  EXPECT_EQ(e->kek.size(), 32u);
  PemPrivateKey pem(std::move(key));
  auto kek = Decapsulate(pem, e->encapsulation, Info());
  ASSERT_TRUE(kek.ok()) << kek.status().ToString();
  EXPECT_TRUE(kek->ConstantTimeEquals(e->kek));
}

TEST_P(RoundTripTest, WrappedVmkOpensOnlyWithTheRightKeyAndData) {
  crypto::EvpPkeyPtr key = Generate(GetParam().type, GetParam().param);
  auto e = Encapsulate(key.get(), Info());
  ASSERT_TRUE(e.ok());
  auto vmk = SecretBytes::Random(32);
  crypto::WrapContext ctx{"vmk", "uuid", "id", "cert"};
  auto wrapped = crypto::WrapKey(e->kek, *vmk, ctx);
  ASSERT_TRUE(wrapped.ok());

  // Another recipient's key: never the same KEK.
  PemPrivateKey other(Generate(GetParam().type, GetParam().param));
  auto wrong = Decapsulate(other, e->encapsulation, Info());
  if (wrong.ok()) {
    EXPECT_EQ(crypto::UnwrapKey(*wrong, *wrapped, ctx).status().code(),
              StatusCode::kAuthFailed);
  } else {
    EXPECT_EQ(wrong.status().code(), StatusCode::kAuthFailed);
  }

  PemPrivateKey pem(std::move(key));
  // Other info (another protector): another KEK.
  auto other_info = Decapsulate(pem, e->encapsulation, std::vector<uint8_t>{1});
  ASSERT_TRUE(other_info.ok());
  EXPECT_EQ(crypto::UnwrapKey(*other_info, *wrapped, ctx).status().code(),
            StatusCode::kAuthFailed);

  // A flipped bit in the stored encapsulation.
  Encapsulation tampered = e->encapsulation;
  tampered.data[tampered.data.size() / 2] ^= 0x01;
  auto t = Decapsulate(pem, tampered, Info());
  if (t.ok()) {
    EXPECT_EQ(crypto::UnwrapKey(*t, *wrapped, ctx).status().code(),
              StatusCode::kAuthFailed);
  } else {
    EXPECT_NE(t.status().code(), StatusCode::kOk);
  }

  auto right = Decapsulate(pem, e->encapsulation, Info());
  ASSERT_TRUE(right.ok());
  auto back = crypto::UnwrapKey(*right, *wrapped, ctx);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->ConstantTimeEquals(*vmk));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, RoundTripTest,
    ::testing::Values(KeyCase{"RSA", "", KemAlgorithm::kRsaOaepSha256},
                      KeyCase{"EC", "P-256", KemAlgorithm::kEcdhP256},
                      KeyCase{"EC", "P-384", KemAlgorithm::kEcdhP384}),
    [](const auto& p) {
      return std::string(p.param.type) +
             testing::SanitizeTestName(p.param.param);
    });

TEST(PublicKeyWrapTest, SmallRsaKeyIsRefused) {
  crypto::EvpPkeyPtr key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  auto e = Encapsulate(key.get(), Info());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("1024 bits"), std::string::npos);
}

TEST(PublicKeyWrapTest, UnsupportedCurveIsRefused) {
  crypto::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
  auto e = Encapsulate(key.get(), Info());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("secp521r1"), std::string::npos);
}

TEST(PublicKeyWrapTest, MalformedEphemeralPointIsCorruption) {
  PemPrivateKey pem(Generate("EC", "P-256"));
  Encapsulation enc{KemAlgorithm::kEcdhP256, std::vector<uint8_t>(33, 0x02)};
  EXPECT_EQ(Decapsulate(pem, enc, Info()).status().code(),
            StatusCode::kCorruption);
}

TEST(PublicKeyWrapTest, AlgorithmNamesRoundTrip) {
  for (KemAlgorithm a : {KemAlgorithm::kRsaOaepSha256, KemAlgorithm::kEcdhP256,
                         KemAlgorithm::kEcdhP384}) {
    auto back = ParseAlgorithmName(AlgorithmName(a));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, a);
  }
  EXPECT_EQ(ParseAlgorithmName("rsa-pkcs1").status().code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace volmgr::x509
