#include "volmgr/base/uuid.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <string_view>

namespace volmgr {
namespace {

using ::testing::HasSubstr;

TEST(UuidTest, DefaultIsNil) {
  Uuid u;
  EXPECT_TRUE(u.IsNil());
  EXPECT_EQ(u.ToString(), "00000000-0000-0000-0000-000000000000");
}

TEST(UuidTest, ParseKnownValueKeepsNetworkByteOrder) {
  auto u = Uuid::Parse("00112233-4455-6677-8899-aabbccddeeff");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  const std::array<uint8_t, 16> expected = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                            0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                            0xcc, 0xdd, 0xee, 0xff};
  EXPECT_EQ(u->bytes(), expected);
  EXPECT_EQ(*u, Uuid::FromBytes(expected));
  EXPECT_EQ(u->version(), 6);
}

TEST(UuidTest, ParseIsCaseInsensitiveAndToStringIsLowerCase) {
  auto upper = Uuid::Parse("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0");
  auto lower = Uuid::Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  ASSERT_TRUE(upper.ok()) << upper.status().ToString();
  ASSERT_TRUE(lower.ok()) << lower.status().ToString();
  EXPECT_EQ(*upper, *lower);
  EXPECT_EQ(upper->ToString(), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
}

TEST(UuidTest, RandomHasVersion4AndRfcVariant) {
  for (int i = 0; i < 1000; ++i) {
    auto u = Uuid::Random();
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    EXPECT_EQ(u->version(), 4);
    EXPECT_EQ(u->bytes()[6] & 0xf0, 0x40);
    EXPECT_EQ(u->bytes()[8] & 0xc0, 0x80);
    const std::string s = u->ToString();
    EXPECT_EQ(s[14], '4');
    EXPECT_NE(std::string_view("89ab").find(s[19]), std::string_view::npos);
  }
}

TEST(UuidTest, RandomUuidsDifferAndRoundTrip) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto u = Uuid::Random();
    ASSERT_TRUE(u.ok());
    const std::string s = u->ToString();
    auto parsed = Uuid::Parse(s);
    ASSERT_TRUE(parsed.ok()) << s << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, *u);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(UuidTest, ParseBadInputFailsNamingTheProblem) {
  struct Case {
    std::string_view text;
    std::string_view expected;
  };
  const Case cases[] = {
      {"", "has 0 characters; expected 36"},
      {"00112233-4455-6677-8899-aabbccddeef", "has 35 characters"},
      {"00112233-4455-6677-8899-aabbccddeeff0", "has 37 characters"},
      {"{00112233-4455-6677-8899-aabbccddee}", "character 1 is not a hex"},
      {" 00112233-4455-6677-8899-aabbccddeef", "character 1 is not a hex"},
      {"001122334-455-6677-8899-aabbccddeeff", "character 9 must be '-'"},
      {"00112233-4455-6677-8899_aabbccddeeff", "character 24 must be '-'"},
      {"00112233-4455-6677-8899-aabbccddeefg", "character 36 is not a hex"},
      {"urn:uuid:00112233-4455-6677-8899-aabbccddeeff", "has 45 characters"},
      {"0011223344556677-8899-aabbccddeeff00", "character 9 must be '-'"},
  };
  for (const Case& c : cases) {
    auto u = Uuid::Parse(c.text);
    ASSERT_FALSE(u.ok()) << c.text;
    EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(u.status().message(), HasSubstr(c.expected)) << c.text;
  }
}

TEST(UuidTest, EqualityComparesAllBytes) {
  auto a = Uuid::Parse("00112233-4455-6677-8899-aabbccddeeff");
  auto b = Uuid::Parse("00112233-4455-6677-8899-aabbccddeefe");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(a->IsNil());
}

}  // namespace
}  // namespace volmgr
