#include "volmgr/files/name_cipher.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/files/test_util.h"
#include "tests/unit/testing/vector_file.h"

namespace volmgr::files {
namespace {

using ::volmgr::testing::LoadVectorFile;
using ::volmgr::testing::VectorRecord;

std::vector<VectorRecord> NameVectors() {
  std::vector<VectorRecord> out;
  for (auto& r : LoadVectorFile(std::string(VOLMGR_VECTORS_DIR) +
                                "/files/files_v1.txt")) {
    if (!r.load_error.empty() || !r.Field("NameKey").empty()) out.push_back(r);
  }
  return out;
}

DirId ToDirId(const std::vector<uint8_t>& b) {
  DirId d{};
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

class NameKat : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(NameKat, EncryptMatchesIndependentAesSiv) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  auto c = NameCipher::Create(testing::Secret(r.Hex("NameKey")));
  ASSERT_TRUE(c.ok());
  const auto plain = r.Hex("Plain");
  const std::string name(plain.begin(), plain.end());
  auto enc = c->Encrypt(ToDirId(r.Hex("DirId")), name);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ(*enc, r.Field("Encoded")) << r.Where();
  auto dec = c->Decrypt(ToDirId(r.Hex("DirId")), r.Field("Encoded"));
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(*dec, name);
}

INSTANTIATE_TEST_SUITE_P(Files, NameKat, ::testing::ValuesIn(NameVectors()));

NameCipher Cipher() {
  return std::move(NameCipher::Create(testing::Filled(64, 5))).value();
}

TEST(NameCipherTest, DeterministicPerDirectoryDifferentAcross) {
  auto c = Cipher();
  DirId a{}, b{};
  b[0] = 1;
  EXPECT_EQ(*c.Encrypt(a, "x"), *c.Encrypt(a, "x"));
  EXPECT_NE(*c.Encrypt(a, "x"), *c.Encrypt(b, "x"));
  // A name moved to another directory does not decrypt there.
  EXPECT_EQ(c.Decrypt(b, *c.Encrypt(a, "x")).status().code(),
            StatusCode::kAuthFailed);
}

TEST(NameCipherTest, RejectsInvalidNames) {
  auto c = Cipher();
  DirId d{};
  const std::vector<std::string> bad_names = {
      "", ".", "..", "a/b", std::string("a\0b", 3), std::string(256, 'x')};
  for (const std::string& bad : bad_names) {
    EXPECT_FALSE(c.Encrypt(d, bad).ok()) << bad;
  }
  EXPECT_TRUE(c.Encrypt(d, std::string(255, 'x')).ok());
}

TEST(NameCipherTest, LongNamesGetAHashedEntryAndSidecar) {
  auto c = Cipher();
  DirId d{};
  auto shortn = *c.Encrypt(d, "short");
  EXPECT_EQ(NameCipher::EntryName(shortn), shortn);
  EXPECT_FALSE(NameCipher::IsLongEntry(shortn));
  auto longn = *c.Encrypt(d, std::string(200, 'y'));
  ASSERT_GT(longn.size(), kMaxEncodedNameLength);
  auto entry = NameCipher::EntryName(longn);
  EXPECT_TRUE(NameCipher::IsLongEntry(entry));
  EXPECT_EQ(entry.size(), 2u + 43u);
  EXPECT_EQ(NameCipher::SidecarFor(entry), ".N" + entry.substr(2));
}

TEST(NameCipherTest, SymlinkTargetsRoundTrip) {
  auto c = Cipher();
  auto e = c.EncryptTarget("../some/where");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*c.DecryptTarget(*e), "../some/where");
  std::string t = *e;
  t[3] = t[3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(c.DecryptTarget(t).ok());
}

TEST(Base64UrlTest, RoundTripsAndRejectsNonCanonical) {
  for (size_t n = 0; n < 40; ++n) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + n);
    auto s = Base64UrlEncode(b);
    EXPECT_EQ(s.find('='), std::string::npos);
    EXPECT_EQ(*Base64UrlDecode(s), b);
  }
  EXPECT_FALSE(Base64UrlDecode("AB").ok());  // low bits set
  EXPECT_FALSE(Base64UrlDecode("A+").ok());
  EXPECT_FALSE(Base64UrlDecode("A").ok());
}

}  // namespace
}  // namespace volmgr::files
