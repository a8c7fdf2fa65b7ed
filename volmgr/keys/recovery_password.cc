#include "volmgr/keys/recovery_password.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string>
#include <vector>

#include "volmgr/crypto/hkdf.h"

namespace volmgr::keys {
namespace {

constexpr uint32_t kGroupFactor = 11;
// 65535 * 11: the largest group that decodes to a 16-bit word.
constexpr uint32_t kMaxGroupValue = 0xffff * kGroupFactor;
// How many bad characters a message lists before summarising the rest.
constexpr size_t kMaxListedCharacters = 8;

// Wipes a local that held part of the key when it goes out of scope.
template <typename T>
class ScopedCleanse {
 public:
  explicit ScopedCleanse(T& value) : value_(value) {}
  ~ScopedCleanse() { OPENSSL_cleanse(&value_, sizeof(value_)); }
  ScopedCleanse(const ScopedCleanse&) = delete;
  ScopedCleanse& operator=(const ScopedCleanse&) = delete;

 private:
  T& value_;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

bool IsSeparator(char c) { return c == '-' || IsWhitespace(c); }

// What is wrong with a 6-digit group's value, as a predicate completing
// "group N must ...", or empty when the value is valid.
std::string_view GroupValueRequirement(uint32_t value) {
  const bool multiple = value % kGroupFactor == 0;
  const bool in_range = value <= kMaxGroupValue;
  if (multiple && in_range) return {};
  if (!in_range && !multiple) {
    return "be a multiple of 11 no greater than 720885 (65535 x 11)";
  }
  if (!multiple) return "be a multiple of 11";
  return "be no greater than 720885 (65535 x 11)";
}

std::string GroupName(int group) { return "group " + std::to_string(group); }

Status InvalidGroupError(int group, std::string_view requirement) {
  return InvalidArgumentError(GroupName(group) +
                              " is not a valid recovery-password group: "
                              "it must " +
                              std::string(requirement));
}

// "1", "1 and 2", "1, 2 and 3".
std::string JoinNumbers(const std::vector<int>& numbers) {
  std::string s;
  for (size_t i = 0; i < numbers.size(); ++i) {
    if (i > 0) s += i + 1 == numbers.size() ? " and " : ", ";
    s += std::to_string(numbers[i]);
  }
  return s;
}

// Decimal value of six ASCII digits. REQUIRES: all six are digits.
uint32_t GroupValue(std::string_view six_digits) {
  uint32_t value = 0;
  for (char c : six_digits) value = value * 10 + static_cast<uint32_t>(c - '0');
  return value;
}

}  // namespace

Status ValidateRecoveryPasswordGroup(int group, std::string_view six_digits) {
  if (group < 1 || group > kRecoveryPasswordGroups) {
    return InvalidArgumentError("recovery-password group number " +
                                std::to_string(group) +
                                " is out of range; groups are numbered 1-8");
  }
  if (six_digits.size() != kRecoveryPasswordGroupDigits) {
    return InvalidArgumentError(
        GroupName(group) + " has " + std::to_string(six_digits.size()) +
        " characters; each recovery-password group has 6 digits");
  }
  for (size_t i = 0; i < six_digits.size(); ++i) {
    if (!IsDigit(six_digits[i])) {
      return InvalidArgumentError(GroupName(group) + ": character " +
                                  std::to_string(i + 1) +
                                  " is not a digit; recovery-password groups "
                                  "contain only the digits 0-9");
    }
  }
  uint32_t value = GroupValue(six_digits);
  ScopedCleanse wipe_value(value);
  const std::string_view requirement = GroupValueRequirement(value);
  if (!requirement.empty()) return InvalidGroupError(group, requirement);
  return Status::Ok();
}

StatusOr<RecoveryPassword> RecoveryPassword::Generate() {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key,
                          SecretBytes::Random(kRecoveryKeySize));
  return RecoveryPassword(std::move(key));
}

StatusOr<RecoveryPassword> RecoveryPassword::FromKey(SecretBytes key) {
  if (key.size() != kRecoveryKeySize) {
    return InvalidArgumentError("a recovery-password key has 16 bytes, not " +
                                std::to_string(key.size()));
  }
  return RecoveryPassword(std::move(key));
}

bool LooksLikeRecoveryPassword(const SecretBytes& text) {
  size_t digits = 0, others = 0;
  std::vector<size_t> runs;  // characters per separator-delimited run
  bool in_run = false;
  for (char c : text.RevealAsString()) {
    if (IsSeparator(c) || IsWhitespace(c)) {
      in_run = false;
      continue;
    }
    if (!in_run) {
      runs.push_back(0);
      in_run = true;
    }
    ++runs.back();
    if (IsDigit(c)) {
      ++digits;
    } else {
      ++others;
    }
  }
  if (digits < 36) return false;
  if (others == 0) return true;
  if (runs.size() == 1) return runs[0] == kRecoveryPasswordDigits;
  return runs.size() == static_cast<size_t>(kRecoveryPasswordGroups) &&
         std::all_of(runs.begin(), runs.end(), [](size_t n) {
           return n == kRecoveryPasswordGroupDigits;
         });
}

StatusOr<RecoveryPassword> RecoveryPassword::Parse(const SecretBytes& text) {
  const std::string_view s = text.RevealAsString();
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && IsWhitespace(s[begin])) ++begin;
  while (end > begin && IsWhitespace(s[end - 1])) --end;
  if (begin == end) {
    return InvalidArgumentError(
        "the recovery password is empty; expected 48 digits (8 groups of 6)");
  }

  // The digits are gathered in secret memory. Everything else recorded here
  // (run lengths, positions of non-digits) is shape, not content.
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes digits,
                          SecretBytes::Allocate(end - begin));
  size_t digit_count = 0;
  std::vector<size_t> run_digits;  // digits in each separator-delimited run
  struct BadCharacter {
    size_t position;  // 1-based, in `text`
    size_t run;
    size_t digits_before;
  };
  std::vector<BadCharacter> bad_characters;
  bool in_run = false;
  for (size_t i = begin; i < end; ++i) {
    const char c = s[i];
    if (IsSeparator(c)) {
      in_run = false;
      continue;
    }
    if (!in_run) {
      run_digits.push_back(0);
      in_run = true;
    }
    if (IsDigit(c)) {
      digits.RevealMutable()[digit_count++] = static_cast<uint8_t>(c);
      ++run_digits.back();
    } else {
      bad_characters.push_back({i + 1, run_digits.size() - 1, digit_count});
    }
  }
  digits.Resize(digit_count);
  const bool separated = run_digits.size() > 1;

  if (!bad_characters.empty()) {
    std::string m =
        "the recovery password may contain only digits, dashes and "
        "whitespace: ";
    m += bad_characters.size() == 1 ? "character " : "characters ";
    for (size_t i = 0; i < bad_characters.size() && i < kMaxListedCharacters;
         ++i) {
      const BadCharacter& b = bad_characters[i];
      if (i > 0) m += ", ";
      m += std::to_string(b.position);
      // With separators the user's own grouping says which group this is;
      // without, count 6 digits per group.
      const size_t group =
          separated ? b.run + 1
                    : b.digits_before / kRecoveryPasswordGroupDigits + 1;
      if (group <= kRecoveryPasswordGroups) {
        m += " (in group " + std::to_string(group) + ")";
      }
    }
    if (bad_characters.size() > kMaxListedCharacters) {
      m += " and " +
           std::to_string(bad_characters.size() - kMaxListedCharacters) +
           " more";
    }
    m += bad_characters.size() == 1 ? " is not a digit" : " are not digits";
    return InvalidArgumentError(std::move(m));
  }

  // With separators, the user's groups must be exactly 8 runs of 6 digits;
  // describe how they differ, naming groups, since that locates the typo.
  std::string grouping_problem;
  if (separated) {
    if (run_digits.size() != static_cast<size_t>(kRecoveryPasswordGroups)) {
      grouping_problem = "dashes or spaces divide it into " +
                         std::to_string(run_digits.size()) + " groups, not 8";
    } else {
      for (size_t g = 0; g < run_digits.size(); ++g) {
        if (run_digits[g] == kRecoveryPasswordGroupDigits) continue;
        if (!grouping_problem.empty()) grouping_problem += ", ";
        grouping_problem += GroupName(static_cast<int>(g + 1)) + " has " +
                            std::to_string(run_digits[g]) +
                            (run_digits[g] == 1 ? " digit" : " digits");
      }
    }
  }
  if (digit_count != kRecoveryPasswordDigits) {
    std::string m = "the recovery password has " + std::to_string(digit_count) +
                    (digit_count == 1 ? " digit" : " digits") +
                    "; expected 48 (8 groups of 6)";
    if (!grouping_problem.empty()) m += ": " + grouping_problem;
    return InvalidArgumentError(std::move(m));
  }
  if (!grouping_problem.empty()) {
    return InvalidArgumentError(
        "the recovery password's 48 digits must be written as 8 groups of 6 "
        "(or with no separators), but " +
        grouping_problem);
  }

  // Check every group before decoding, so that all bad groups are named.
  const std::string_view all = digits.RevealAsString();
  const auto group_digits = [&all](int g) {
    return all.substr(g * kRecoveryPasswordGroupDigits,
                      kRecoveryPasswordGroupDigits);
  };
  std::vector<int> bad_groups;
  std::vector<std::string_view> requirements;
  uint32_t value = 0;
  ScopedCleanse wipe_value(value);
  for (int g = 0; g < kRecoveryPasswordGroups; ++g) {
    value = GroupValue(group_digits(g));
    const std::string_view requirement = GroupValueRequirement(value);
    if (!requirement.empty()) {
      bad_groups.push_back(g + 1);
      requirements.push_back(requirement);
    }
  }
  if (bad_groups.size() == 1) {
    return InvalidGroupError(bad_groups[0], requirements[0]);
  }
  if (!bad_groups.empty()) {
    std::string m = "recovery-password groups " + JoinNumbers(bad_groups) +
                    " are not valid: ";
    for (size_t i = 0; i < bad_groups.size(); ++i) {
      if (i > 0) m += "; ";
      m += GroupName(bad_groups[i]) + " must " + std::string(requirements[i]);
    }
    return InvalidArgumentError(std::move(m));
  }

  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key,
                          SecretBytes::Allocate(kRecoveryKeySize));
  for (int g = 0; g < kRecoveryPasswordGroups; ++g) {
    // Group g is 11 times the little-endian word at key bytes 2g, 2g+1, as
    // BitLocker stores it.
    value = GroupValue(group_digits(g)) / kGroupFactor;
    key.RevealMutable()[2 * g] = static_cast<uint8_t>(value & 0xff);
    key.RevealMutable()[2 * g + 1] = static_cast<uint8_t>(value >> 8);
  }
  return RecoveryPassword(std::move(key));
}

StatusOr<SecretBytes> RecoveryPassword::Format() const {
  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes out, SecretBytes::Allocate(kRecoveryPasswordFormattedSize));
  const std::span<const uint8_t> k = key_.Reveal();
  const std::span<uint8_t> o = out.RevealMutable();
  uint32_t value = 0;
  ScopedCleanse wipe_value(value);
  for (int g = 0; g < kRecoveryPasswordGroups; ++g) {
    value = (static_cast<uint32_t>(k[2 * g]) |
             static_cast<uint32_t>(k[2 * g + 1]) << 8) *
            kGroupFactor;
    // Each group starts after g groups of 6 digits and g dashes.
    const size_t start = g * (kRecoveryPasswordGroupDigits + 1);
    for (size_t d = kRecoveryPasswordGroupDigits; d-- > 0;) {
      o[start + d] = static_cast<uint8_t>('0' + value % 10);
      value /= 10;
    }
    if (g + 1 < kRecoveryPasswordGroups) {
      o[start + kRecoveryPasswordGroupDigits] = '-';
    }
  }
  return out;
}

StatusOr<SecretBytes> RecoveryPassword::DeriveWrappingKey(
    std::span<const uint8_t> salt, const Uuid& recovery_id) const {
  if (salt.size() != kRecoveryPasswordSaltSize) {
    return InvalidArgumentError("recovery-password salt has " +
                                std::to_string(salt.size()) +
                                " bytes; expected 32");
  }
  std::vector<uint8_t> info(kRecoveryPasswordKdfLabel.begin(),
                            kRecoveryPasswordKdfLabel.end());
  info.insert(info.end(), recovery_id.bytes().begin(),
              recovery_id.bytes().end());
  StatusOr<SecretBytes> wrapping_key =
      crypto::HkdfSha256(key_, salt, info, kRecoveryWrappingKeySize);
  if (!wrapping_key.ok()) {
    return wrapping_key.status().WithContext(
        "deriving the recovery-password wrapping key");
  }
  return wrapping_key;
}

}  // namespace volmgr::keys
