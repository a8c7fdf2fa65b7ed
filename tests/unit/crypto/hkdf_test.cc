#include "volmgr/crypto/hkdf.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <vector>

#include "tests/unit/testing/vector_file.h"

namespace volmgr::crypto {
namespace {

using testing::LoadVectorFile;
using testing::VectorRecord;

SecretBytes Secret(std::span<const uint8_t> bytes) {
  return std::move(SecretBytes::CopyOf(bytes)).value();
}

std::vector<uint8_t> ToVector(const SecretBytes& s) {
  return {s.Reveal().begin(), s.Reveal().end()};
}

// RFC 5869 Appendix A, test cases 1-3 (SHA-256).
class Rfc5869Test : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(Rfc5869Test, DerivesOkm) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  ASSERT_EQ(r.section.at("Hash"), "SHA-256");
  const SecretBytes ikm = Secret(r.Hex("IKM"));
  const auto salt = r.Hex("salt"), info = r.Hex("info"), okm = r.Hex("OKM");
  const size_t len = std::stoul(r.Field("L"));
  ASSERT_EQ(okm.size(), len);
  auto got = HkdfSha256(ikm, salt, info, len);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(ToVector(*got), okm) << r.Where();
}

// The PRK is internal to HkdfSha256; checking the file's PRK as
// HMAC-SHA256(salt, IKM) (RFC 5869 section 2.2) proves the file's values.
TEST_P(Rfc5869Test, PrkIsHmacOfSaltAndIkm) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const auto ikm = r.Hex("IKM"), prk = r.Hex("PRK");
  auto salt = r.Hex("salt");
  if (salt.empty()) salt.assign(32, 0);  // section 2.2: HashLen zeros
  uint8_t out[32];
  size_t out_len = 0;
  ASSERT_NE(
      EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, salt.data(),
                salt.size(), ikm.data(), ikm.size(), out, sizeof out, &out_len),
      nullptr);
  EXPECT_EQ(std::vector<uint8_t>(out, out + out_len), prk) << r.Where();
}

INSTANTIATE_TEST_SUITE_P(Sha256, Rfc5869Test,
                         ::testing::ValuesIn(LoadVectorFile(
                             VOLMGR_VECTORS_DIR "/hkdf/rfc5869_sha256.txt")),
                         testing::NameFromField("Case", "Case"));

TEST(HkdfSha256Test, EmptySaltEqualsZeroSalt) {
  const std::vector<uint8_t> ikm_bytes(22, 0x0b), zeros(32, 0), info = {1};
  const SecretBytes ikm = Secret(ikm_bytes);
  auto a = HkdfSha256(ikm, {}, info, 32);
  auto b = HkdfSha256(ikm, zeros, info, 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->ConstantTimeEquals(*b));
}

TEST(HkdfSha256Test, InfoSeparatesOutputs) {
  const std::vector<uint8_t> ikm_bytes(32, 7), i1 = {'a'}, i2 = {'b'};
  const SecretBytes ikm = Secret(ikm_bytes);
  auto a = HkdfSha256(ikm, {}, i1, 32);
  auto b = HkdfSha256(ikm, {}, i2, 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->ConstantTimeEquals(*b));
}

TEST(HkdfSha256Test, OutputLengthBounds) {
  const std::vector<uint8_t> ikm_bytes(32, 7);
  const SecretBytes ikm = Secret(ikm_bytes);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 255 * 32 + 1).status().code(),
            StatusCode::kInvalidArgument);
  auto max = HkdfSha256(ikm, {}, {}, 255 * 32);
  ASSERT_TRUE(max.ok()) << max.status().ToString();
  EXPECT_EQ(max->size(), 255u * 32);
}

TEST(HkdfSha256Test, EmptyIkmIsInvalidArgument) {
  EXPECT_EQ(HkdfSha256(SecretBytes(), {}, {}, 32).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volmgr::crypto
