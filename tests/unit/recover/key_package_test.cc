#include "volmgr/recover/key_package.h"

#include <gtest/gtest.h>

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
  (*file)[9] = 2;
  EXPECT_EQ(ReadKeyPackageHeader(*file).status().code(),
            StatusCode::kUnsupported);
}

TEST(KeyPackageTest, SealRejectsShortFvek) {
  KeyPackageSecret s = MakeSecret();
  s.fvek = *SecretBytes::Allocate(32);
  EXPECT_EQ(SealKeyPackage(MakeHeader(), s, MakePassword(7)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volmgr::recover
