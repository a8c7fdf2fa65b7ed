#include "volmgr/keys/recovery_password.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/uuid.h"

namespace volmgr::keys {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

SecretBytes Secret(std::string_view text) {
  auto s = SecretBytes::CopyOf(text);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

SecretBytes SecretOfBytes(std::span<const uint8_t> bytes) {
  auto s = SecretBytes::CopyOf(bytes);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// Test-only copy of a formatted password, so tests can edit the text.
std::string FormatToString(const RecoveryPassword& p) {
  auto f = p.Format();
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return std::string(f->RevealAsString());
}

StatusOr<RecoveryPassword> ParseString(std::string_view text) {
  return RecoveryPassword::Parse(Secret(text));
}

// The group numbers a message names as "group N" (not "groups ...").
std::set<int> NamedGroups(std::string_view message) {
  std::set<int> groups;
  constexpr std::string_view kWord = "group ";
  for (size_t at = message.find(kWord); at != std::string_view::npos;
       at = message.find(kWord, at + 1)) {
    const size_t d = at + kWord.size();
    if (d < message.size() && message[d] >= '0' && message[d] <= '9') {
      groups.insert(message[d] - '0');
    }
  }
  return groups;
}

RecoveryPassword FromKeyBytes(std::span<const uint8_t> bytes) {
  auto p = RecoveryPassword::FromKey(SecretOfBytes(bytes));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// Reproducible random keys for the property tests.
std::vector<std::array<uint8_t, kRecoveryKeySize>> SeededKeys(size_t n) {
  std::mt19937 rng(0x5eed);
  std::vector<std::array<uint8_t, kRecoveryKeySize>> keys(n);
  for (auto& k : keys) {
    for (auto& b : k) b = static_cast<uint8_t>(rng());
  }
  return keys;
}

constexpr std::string_view kSequentialPassword =
    "002816-008470-014124-019778-025432-031086-036740-042394";

// Key bytes 00 01 02 ... 0f. Group i is 11 * (little-endian word i):
//   word 1 = 0x0100 =  256 ->  256 * 11 =  2816 -> "002816"
//   word 2 = 0x0302 =  770 ->  770 * 11 =  8470 -> "008470"
//   word 3 = 0x0504 = 1284 -> 1284 * 11 = 14124 -> "014124"
//   word 4 = 0x0706 = 1798 -> 1798 * 11 = 19778 -> "019778"
//   word 5 = 0x0908 = 2312 -> 2312 * 11 = 25432 -> "025432"
//   word 6 = 0x0b0a = 2826 -> 2826 * 11 = 31086 -> "031086"
//   word 7 = 0x0d0c = 3340 -> 3340 * 11 = 36740 -> "036740"
//   word 8 = 0x0f0e = 3854 -> 3854 * 11 = 42394 -> "042394"
constexpr std::array<uint8_t, 16> kSequentialKey = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

TEST(RecoveryPasswordTest, GenerateFormatParseRoundTripsFor1000Keys) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto p = RecoveryPassword::Generate();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_EQ(p->key().size(), kRecoveryKeySize);
    auto text = p->Format();
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    auto parsed = RecoveryPassword::Parse(*text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_TRUE(parsed->key().ConstantTimeEquals(p->key()));
    seen.insert(std::string(text->RevealAsString()));
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RecoveryPasswordTest, FormatIsEightDashSeparatedGroupsOfSixDigits) {
  auto p = RecoveryPassword::Generate();
  ASSERT_TRUE(p.ok());
  const std::string text = FormatToString(*p);
  ASSERT_EQ(text.size(), kRecoveryPasswordFormattedSize);
  for (size_t i = 0; i < text.size(); ++i) {
    if (i % 7 == 6) {
      EXPECT_EQ(text[i], '-') << i;
    } else {
      EXPECT_TRUE(text[i] >= '0' && text[i] <= '9') << i;
    }
  }
}

TEST(RecoveryPasswordTest, KnownAnswerSequentialKey) {
  RecoveryPassword p = FromKeyBytes(kSequentialKey);
  EXPECT_EQ(FormatToString(p), kSequentialPassword);
  auto parsed = ParseString(kSequentialPassword);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->key().ConstantTimeEquals(kSequentialKey));
}

TEST(RecoveryPasswordTest, KnownAnswerByteOrderIsLittleEndian) {
  // 0x0201 = 513 = 5643 / 11: byte 0 is the low byte of group 1.
  std::array<uint8_t, 16> key{};
  key[0] = 0x01;
  key[1] = 0x02;
  EXPECT_EQ(FormatToString(FromKeyBytes(key)),
            "005643-000000-000000-000000-000000-000000-000000-000000");
}

TEST(RecoveryPasswordTest, KnownAnswerExtremes) {
  std::array<uint8_t, 16> zeros{};
  EXPECT_EQ(FormatToString(FromKeyBytes(zeros)),
            "000000-000000-000000-000000-000000-000000-000000-000000");
  std::array<uint8_t, 16> ones;
  ones.fill(0xff);
  // 65535 * 11 = 720885, the largest valid group.
  EXPECT_EQ(FormatToString(FromKeyBytes(ones)),
            "720885-720885-720885-720885-720885-720885-720885-720885");
  auto parsed =
      ParseString("720885-720885-720885-720885-720885-720885-720885-720885");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->key().ConstantTimeEquals(ones));
}

TEST(RecoveryPasswordTest, FromKeyWithWrongSizeFails) {
  std::array<uint8_t, 15> short_key{};
  auto p = RecoveryPassword::FromKey(SecretOfBytes(short_key));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("15"));
}

TEST(RecoveryPasswordTest, ParseAcceptsSeparatorVariants) {
  const std::vector<std::string> inputs = {
      std::string(kSequentialPassword),
      "002816 008470 014124 019778 025432 031086 036740 042394",
      "002816008470014124019778025432031086036740042394",
      "  002816-008470-014124-019778-025432-031086-036740-042394\n",
      "\t002816008470014124019778025432031086036740042394 \r\n",
      "002816 - 008470 - 014124 - 019778 - 025432 - 031086 - 036740 - 042394",
      "002816-008470-014124-019778\n025432-031086-036740-042394",
  };
  for (const std::string& input : inputs) {
    auto p = ParseString(input);
    ASSERT_TRUE(p.ok()) << "input \"" << input
                        << "\": " << p.status().ToString();
    EXPECT_TRUE(p->key().ConstantTimeEquals(kSequentialKey)) << input;
  }
}

TEST(RecoveryPasswordTest, ParseEmptyInputFails) {
  for (std::string_view input : {"", "   ", "\n\t "}) {
    auto p = ParseString(input);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr("empty"));
  }
}

TEST(RecoveryPasswordTest, ParseWithMissingDigitFailsCountingDigits) {
  // Group 2 lost a digit.
  auto p =
      ParseString("002816-00847-014124-019778-025432-031086-036740-042394");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("has 47 digits"));
  EXPECT_THAT(p.status().message(), HasSubstr("expected 48"));
  EXPECT_THAT(p.status().message(), HasSubstr("group 2 has 5 digits"));

  auto q = ParseString("00281600847001412401977802543203108603674004239");
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("has 47 digits"));
}

TEST(RecoveryPasswordTest, ParseWithExtraDigitFailsCountingDigits) {
  auto p =
      ParseString("002816-008470-014124-019778-025432-031086-036740-0423944");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("has 49 digits"));
  EXPECT_THAT(p.status().message(), HasSubstr("group 8 has 7 digits"));

  auto q =
      ParseString("002816-008470-014124-019778-025432-031086-036740-042394-1");
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("has 49 digits"));
  EXPECT_THAT(q.status().message(), HasSubstr("into 9 groups, not 8"));
}

TEST(RecoveryPasswordTest, ParseWithMisplacedSeparatorFails) {
  // 48 digits, but group 1 has 7 and group 2 has 5.
  auto p =
      ParseString("0028160-08470-014124-019778-025432-031086-036740-042394");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("group 1 has 7 digits"));
  EXPECT_THAT(p.status().message(), HasSubstr("group 2 has 5 digits"));

  auto q = ParseString("002816008470014124019778-025432031086036740042394");
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("into 2 groups, not 8"));
}

TEST(RecoveryPasswordTest, ParseWithLetterFailsNamingPositionAndGroup) {
  // Letter O typed for the digit 0 as the first character of group 3.
  auto p =
      ParseString("002816-008470-O14124-019778-025432-031086-036740-042394");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(),
              HasSubstr("character 15 (in group 3) is not a digit"));

  // Without separators the group is counted in digits; the position counts
  // the leading whitespace the user typed.
  auto q = ParseString(" 00281600847001412401977802543203108603674004239x");
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(),
              HasSubstr("character 49 (in group 8) is not a digit"));

  auto r = ParseString("abc");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("characters 1 (in group 1), 2 "
                                              "(in group 1), 3 (in group 1) "
                                              "are not digits"));
}

TEST(RecoveryPasswordTest, ParseListsAtMostEightBadCharacters) {
  auto p = ParseString(std::string(20, 'z'));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("and 12 more are not digits"));
}

TEST(RecoveryPasswordTest, ParseGroupNotMultipleOf11FailsNamingGroup) {
  auto p =
      ParseString("002816-008470-123457-019778-025432-031086-036740-042394");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "group 3 is not a valid recovery-password group: it must be a "
            "multiple of 11");
}

TEST(RecoveryPasswordTest, ParseGroupAtOrAbove65536Times11Fails) {
  // 720896 = 65536 * 11: a multiple of 11 that does not fit 16 bits.
  auto p =
      ParseString("002816-008470-014124-019778-720896-031086-036740-042394");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NamedGroups(p.status().message()), std::set<int>{5});
  EXPECT_THAT(p.status().message(), HasSubstr("no greater than 720885"));
  EXPECT_THAT(p.status().message(), Not(HasSubstr("multiple of 11")));

  // 999999 = 90909 * 11 is also a multiple of 11, and far out of range.
  auto q = ParseString(
      "999999"
      "008470014124019778025432031086036740042394");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(NamedGroups(q.status().message()), std::set<int>{1});

  // 720897 fails both checks.
  auto r =
      ParseString("002816-008470-014124-019778-025432-031086-036740-720897");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("group 8 is not a valid recovery-password group: it "
                        "must be a multiple of 11 no greater than 720885"));
}

TEST(RecoveryPasswordTest, ParseNamesEveryBadGroup) {
  auto p =
      ParseString("002816-008471-014124-019778-025432-031086-036741-720896");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NamedGroups(p.status().message()), (std::set<int>{2, 7, 8}));
  EXPECT_THAT(p.status().message(), HasSubstr("groups 2, 7 and 8"));
  EXPECT_THAT(p.status().message(),
              HasSubstr("group 2 must be a multiple of 11"));
  EXPECT_THAT(p.status().message(),
              HasSubstr("group 8 must be no greater than 720885"));
}

// A single-digit substitution changes a group by d * 10^k with 0 < |d| <= 9.
// 11 is prime and divides neither d nor 10^k, so the group stops being a
// multiple of 11: the change is always caught, and in the group it is in.
// (50 keys x 48 positions x 9 digits = 21600 typos; secret memory is one
// mmap per allocation, so the typed text reuses one buffer.)
TEST(RecoveryPasswordTest, EverySingleDigitSubstitutionIsCaughtInItsGroup) {
  SecretBytes typo = Secret(std::string(kRecoveryPasswordFormattedSize, ' '));
  for (const auto& key : SeededKeys(50)) {
    const std::string good = FormatToString(FromKeyBytes(key));
    for (size_t pos = 0; pos < good.size(); ++pos) {
      if (good[pos] == '-') continue;
      const int group = static_cast<int>(pos / 7) + 1;
      for (char digit = '0'; digit <= '9'; ++digit) {
        if (digit == good[pos]) continue;
        std::copy(good.begin(), good.end(), typo.RevealMutable().begin());
        typo.RevealMutable()[pos] = static_cast<uint8_t>(digit);
        auto p = RecoveryPassword::Parse(typo);
        ASSERT_FALSE(p.ok()) << typo.RevealAsString();
        ASSERT_EQ(p.status().code(), StatusCode::kInvalidArgument);
        ASSERT_EQ(NamedGroups(p.status().message()), std::set<int>{group})
            << typo.RevealAsString() << ": " << p.status().message();
      }
    }
  }
}

// Swapping adjacent digits a, b at positions k+1, k changes a group by
// (a - b) * 9 * 10^k, which 11 divides only when a == b.
TEST(RecoveryPasswordTest, AdjacentTranspositionInGroupCaughtUnlessEqual) {
  int caught = 0;
  int harmless = 0;
  for (const auto& key : SeededKeys(100)) {
    const std::string good = FormatToString(FromKeyBytes(key));
    for (int group = 1; group <= 8; ++group) {
      const size_t start = static_cast<size_t>(group - 1) * 7;
      for (size_t i = start; i + 1 < start + 6; ++i) {
        std::string swapped = good;
        std::swap(swapped[i], swapped[i + 1]);
        auto p = ParseString(swapped);
        if (good[i] == good[i + 1]) {
          ASSERT_TRUE(p.ok()) << swapped;
          EXPECT_TRUE(p->key().ConstantTimeEquals(key));
          ++harmless;
        } else {
          ASSERT_FALSE(p.ok()) << swapped;
          ASSERT_EQ(NamedGroups(p.status().message()), std::set<int>{group})
              << swapped << ": " << p.status().message();
          ++caught;
        }
      }
    }
  }
  EXPECT_GT(caught, 0);
  EXPECT_GT(harmless, 0);
}

TEST(RecoveryPasswordTest, ErrorMessagesDoNotQuoteTypedDigits) {
  for (const auto& key : SeededKeys(20)) {
    std::string text = FormatToString(FromKeyBytes(key));
    text[9] = text[9] == '9' ? '0' : static_cast<char>(text[9] + 1);
    auto p = ParseString(text);
    ASSERT_FALSE(p.ok());
    for (size_t g = 0; g < 8; ++g) {
      EXPECT_THAT(p.status().message(), Not(HasSubstr(text.substr(g * 7, 6))));
    }
  }
}

TEST(RecoveryPasswordTest, ValidateGroupAcceptsValidGroups) {
  for (std::string_view g : {"000000", "000011", "002816", "720885"}) {
    EXPECT_TRUE(ValidateRecoveryPasswordGroup(1, g).ok()) << g;
  }
}

TEST(RecoveryPasswordTest, ValidateGroupRejectsBadGroupsNamingThem) {
  struct Case {
    int group;
    std::string_view text;
    std::string_view expected;
  };
  const Case cases[] = {
      {3, "123457",
       "group 3 is not a valid recovery-password group: it must be a "
       "multiple of 11"},
      {4, "720896",
       "group 4 is not a valid recovery-password group: it must be no "
       "greater than 720885 (65535 x 11)"},
      {8, "12345", "group 8 has 5 characters"},
      {8, "1234567", "group 8 has 7 characters"},
      {2, "12a456", "group 2: character 3 is not a digit"},
      {1, "", "group 1 has 0 characters"},
      {0, "000000", "group number 0 is out of range"},
      {9, "000000", "group number 9 is out of range"},
  };
  for (const Case& c : cases) {
    Status s = ValidateRecoveryPasswordGroup(c.group, c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(c.expected));
  }
}

TEST(RecoveryPasswordTest, ValidateGroupAgreesWithParse) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> value(0, 999999);
  std::uniform_int_distribution<int> group(1, 8);
  for (int i = 0; i < 500; ++i) {
    char six[7];
    std::snprintf(six, sizeof six, "%06d", value(rng));
    const int g = group(rng);
    std::string text(kSequentialPassword);
    text.replace(static_cast<size_t>(g - 1) * 7, 6, six);
    Status validated = ValidateRecoveryPasswordGroup(g, six);
    auto parsed = ParseString(text);
    ASSERT_EQ(validated.ok(), parsed.ok()) << text;
    if (!validated.ok()) {
      EXPECT_EQ(validated.message(), parsed.status().message());
    }
  }
}

class DeriveWrappingKeyTest : public ::testing::Test {
 protected:
  static std::array<uint8_t, kRecoveryPasswordSaltSize> Salt(uint8_t first) {
    std::array<uint8_t, kRecoveryPasswordSaltSize> salt;
    for (size_t i = 0; i < salt.size(); ++i) {
      salt[i] = static_cast<uint8_t>(first + i);
    }
    return salt;
  }
  static Uuid Id(std::string_view text) {
    auto id = Uuid::Parse(text);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return *id;
  }
  static SecretBytes Derive(const RecoveryPassword& p,
                            std::span<const uint8_t> salt, const Uuid& id) {
    auto k = p.DeriveWrappingKey(salt, id);
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    if (!k.ok()) return SecretBytes();
    EXPECT_EQ(k->size(), kRecoveryWrappingKeySize);
    return std::move(k).value();
  }

  const Uuid id_ = Id("00112233-4455-6677-8899-aabbccddeeff");
  const Uuid other_id_ = Id("00112233-4455-6677-8899-aabbccddeef0");
};

// Pins the on-disk KDF: computed independently with Python's hmac/hashlib
// (RFC 5869 extract-then-expand) as
//   HKDF-SHA256(ikm  = bytes 00..0f,
//               salt = bytes 20..3f,
//               info = b"volmgr recovery-password v1" +
//                      bytes.fromhex("00112233445566778899aabbccddeeff"),
//               L    = 32).
TEST_F(DeriveWrappingKeyTest, KnownAnswer) {
  constexpr std::array<uint8_t, 32> kExpected = {
      0x8d, 0xff, 0xb6, 0x95, 0xff, 0x8c, 0x07, 0x16, 0x0d, 0xef, 0x9e,
      0x11, 0x10, 0xe8, 0xb1, 0x84, 0x08, 0x0d, 0xb7, 0xfe, 0x6f, 0xc4,
      0xcb, 0x35, 0x84, 0xcb, 0x55, 0x59, 0xa6, 0xe3, 0x74, 0xfc};
  const SecretBytes k = Derive(FromKeyBytes(kSequentialKey), Salt(0x20), id_);
  EXPECT_TRUE(k.ConstantTimeEquals(kExpected));
}

TEST_F(DeriveWrappingKeyTest, SameInputsGiveSameKey) {
  RecoveryPassword p = FromKeyBytes(kSequentialKey);
  auto parsed = ParseString(kSequentialPassword);
  ASSERT_TRUE(parsed.ok());
  const SecretBytes a = Derive(p, Salt(1), id_);
  const SecretBytes b = Derive(p, Salt(1), id_);
  const SecretBytes c = Derive(*parsed, Salt(1), id_);
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  EXPECT_TRUE(a.ConstantTimeEquals(c));
}

TEST_F(DeriveWrappingKeyTest, DifferentSaltIdOrPasswordGiveDifferentKeys) {
  RecoveryPassword p = FromKeyBytes(kSequentialKey);
  auto other = RecoveryPassword::Generate();
  ASSERT_TRUE(other.ok());
  const SecretBytes base = Derive(p, Salt(1), id_);
  EXPECT_FALSE(base.ConstantTimeEquals(Derive(p, Salt(2), id_)));
  EXPECT_FALSE(base.ConstantTimeEquals(Derive(p, Salt(1), other_id_)));
  EXPECT_FALSE(base.ConstantTimeEquals(Derive(*other, Salt(1), id_)));
}

TEST_F(DeriveWrappingKeyTest, WrongSaltSizeFails) {
  RecoveryPassword p = FromKeyBytes(kSequentialKey);
  for (size_t size : {0, 16, 31, 33}) {
    std::vector<uint8_t> salt(size, 7);
    auto k = p.DeriveWrappingKey(salt, id_);
    ASSERT_FALSE(k.ok()) << size;
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(k.status().message(),
                HasSubstr(std::to_string(size) + " bytes; expected 32"));
  }
}

// Issue 17, item 11: a letter typed for a digit keeps the text a recovery
// password (so Parse names the group), a passphrase stays a passphrase.
TEST(LooksLikeRecoveryPasswordTest, OneLetterForADigitStillLooksLikeOne) {
  const std::string rp =
      "000000-111111-222222-333333-444444-555555-666666-777777";
  EXPECT_TRUE(LooksLikeRecoveryPassword(Secret(rp)));
  std::string o = rp;
  o[2] = 'O';
  EXPECT_TRUE(LooksLikeRecoveryPassword(Secret(o)));
  std::string l = rp;
  l[8] = 'l';
  l[9] = 'I';
  EXPECT_TRUE(LooksLikeRecoveryPassword(Secret(l)));
  std::string plain;
  for (char c : o) {
    if (c != '-') plain += c;
  }
  EXPECT_TRUE(LooksLikeRecoveryPassword(Secret(plain)));
  EXPECT_TRUE(LooksLikeRecoveryPassword(Secret(" " + o + "\n")));
}

TEST(LooksLikeRecoveryPasswordTest, PassphrasesDoNotLookLikeOne) {
  for (const char* p : {
           "correct horse battery staple",
           "abcdef-123456-ghijkl-654321-mnopqr-111111-stuvwx-222222",
           "",
           "12345678",
           // Right shape but too few digits.
           "OOOOOO-OOOOOO-OOOOOO-OOOOOO-OOOOOO-OOOOOO-OOOOOO-OOOOOO",
           // Enough digits, wrong shape, letters.
           "000000-111111-222222-333333-444444-555555-666666-777777-x",
           "000000111111222222333333444444555555666666777777x",
       }) {
    EXPECT_FALSE(LooksLikeRecoveryPassword(Secret(p))) << p;
  }
}

TEST(LooksLikeRecoveryPasswordTest, TheTypoIsReportedByParseWithItsGroup) {
  const std::string rp =
      "000000-111111-222222-333333-444444-555555-666666-777777";
  std::string o = rp;
  o[16] = 'O';  // group 3, character 17
  ASSERT_TRUE(LooksLikeRecoveryPassword(Secret(o)));
  auto parsed = ParseString(o);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(),
              HasSubstr("character 17 (in group 3)"));
}

}  // namespace
}  // namespace volmgr::keys
