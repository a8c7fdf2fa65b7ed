// The recovery-password file round trip (issue 17, item 16): what
// --recovery-password-file writes, --key-file reads as the password.
#include "volmgr/cli/secret_input.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace volmgr::cli {
namespace {

using ::testing::HasSubstr;

SecretBytes Secret(std::string_view text) {
  auto s = SecretBytes::CopyOf(text);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

constexpr std::string_view kPassword =
    "123456-234567-345678-456789-567890-678901-789012-890123";
constexpr std::string_view kId = "5d1c2a10-1234-4abc-8def-0123456789ab";

TEST(UnpackRecoveryPasswordFileTest, FileReadsAsItsPasswordAndId) {
  // As SaveRecoveryPassword writes it, less the newline ReadSecret drops.
  SecretBytes s = Secret(
      "volmgr recovery password\nVolume protector ID: " + std::string(kId) +
      "\nRecovery password: " + std::string(kPassword));
  auto id = UnpackRecoveryPasswordFile(s);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, kId);
  EXPECT_EQ(s.RevealAsString(), kPassword);
}

TEST(UnpackRecoveryPasswordFileTest, TrailingNewlineAndCrlfAreDropped) {
  SecretBytes s = Secret(
      "volmgr recovery password\r\nVolume protector ID: " + std::string(kId) +
      "\r\nRecovery password: " + std::string(kPassword) + "\r\n");
  // The magic line must be exact; a CRLF copy is not recognised...
  auto id = UnpackRecoveryPasswordFile(s);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "");
  // ...but an LF file with CR-terminated value lines is.
  SecretBytes t = Secret(
      "volmgr recovery password\nVolume protector ID: " + std::string(kId) +
      "\r\nRecovery password: " + std::string(kPassword) + "\r\n");
  id = UnpackRecoveryPasswordFile(t);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, kId);
  EXPECT_EQ(t.RevealAsString(), kPassword);
}

TEST(UnpackRecoveryPasswordFileTest, OtherInputIsLeftAlone) {
  for (std::string_view text :
       {std::string_view("correct horse battery staple"), kPassword,
        std::string_view("Recovery password: 123")}) {
    SecretBytes s = Secret(text);
    auto id = UnpackRecoveryPasswordFile(s);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(*id, "");
    EXPECT_EQ(s.RevealAsString(), text);
  }
}

TEST(UnpackRecoveryPasswordFileTest, FileWithoutPasswordLineIsRefused) {
  SecretBytes s = Secret("volmgr recovery password\nVolume protector ID: x\n");
  auto id = UnpackRecoveryPasswordFile(s);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("Recovery password:"));
}

TEST(UnpackRecoveryPasswordFileTest, ABadIdIsNotUsed) {
  SecretBytes s = Secret(
      "volmgr recovery password\nVolume protector ID: not an id!\n"
      "Recovery password: " +
      std::string(kPassword));
  auto id = UnpackRecoveryPasswordFile(s);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "");
  EXPECT_EQ(s.RevealAsString(), kPassword);
}

}  // namespace
}  // namespace volmgr::cli
