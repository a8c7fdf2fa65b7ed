#include "volmgr/base/terminal_text.h"

#include <gtest/gtest.h>

namespace volmgr {
namespace {

TEST(TerminalSafeTest, PrintableAsciiIsUnchanged) {
  EXPECT_EQ(TerminalSafe("data volume 01 (backup)"), "data volume 01 (backup)");
  EXPECT_EQ(TerminalSafe(""), "");
}

TEST(TerminalSafeTest, EscapeSequencesAreDefused) {
  EXPECT_EQ(TerminalSafe("ok\x1b]0;PWNED\a\x1b[2J"),
            "ok\\x1b]0;PWNED\\x07\\x1b[2J");
  EXPECT_EQ(TerminalSafe("a\rb\tc\x7f"), "a\\x0db\\x09c\\x7f");
  EXPECT_EQ(TerminalSafe(std::string_view("a\0b", 3)), "a\\x00b");
}

TEST(TerminalSafeTest, BackslashIsDoubledSoEscapesAreUnambiguous) {
  EXPECT_EQ(TerminalSafe("\\x1b"), "\\\\x1b");
}

TEST(TerminalSafeTest, NewlinesOnlyWhenAsked) {
  EXPECT_EQ(TerminalSafe("one\ntwo"), "one\\x0atwo");
  EXPECT_EQ(TerminalSafe("one\ntwo", /*keep_newlines=*/true), "one\ntwo");
  EXPECT_EQ(TerminalSafe("one\r\n", true), "one\\x0d\n");
}

TEST(TerminalSafeTest, PrintableUtf8IsKept) {
  EXPECT_EQ(TerminalSafe("Donn\xc3\xa9"
                         "es \xe2\x82\xac \xf0\x9f\x94\x91"),
            "Donn\xc3\xa9"
            "es \xe2\x82\xac \xf0\x9f\x94\x91");
  EXPECT_EQ(TerminalSafe("\xc2\xa0"), "\xc2\xa0");  // NBSP is printable
}

TEST(TerminalSafeTest, C1ControlsAndBidiOverridesAreEscaped) {
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "2J"),
            "\\xc2\\x9b2J");  // U+009B CSI
  EXPECT_EQ(TerminalSafe("\x9b"
                         "2J"),
            "\\x9b2J");  // raw 8-bit CSI
  EXPECT_EQ(TerminalSafe("a\xe2\x80\xaeZ"), "a\\xe2\\x80\\xaeZ");  // RLO
  EXPECT_EQ(TerminalSafe("\xe2\x80\x8b"), "\\xe2\\x80\\x8b");      // ZWSP
  EXPECT_EQ(TerminalSafe("\xef\xbb\xbf"), "\\xef\\xbb\\xbf");      // BOM
}

TEST(TerminalSafeTest, MalformedUtf8IsEscapedByteByByte) {
  EXPECT_EQ(TerminalSafe("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(TerminalSafe("\xf4\x90\x80\x80"),
            "\\xf4\\x90\\x80\\x80");                  // > U+10FFFF
  EXPECT_EQ(TerminalSafe("\xe2\x82"), "\\xe2\\x82");  // truncated
  // A broken lead byte does not swallow the valid sequence after it.
  EXPECT_EQ(TerminalSafe("\xe2\xc3\xa9"), "\\xe2\xc3\xa9");
}

TEST(TerminalSafeTest, OutputNeverHoldsAControlByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (int i = 0; i < 256; ++i) {
    all += '\xc2';
    all += static_cast<char>(i);
  }
  const std::string out = TerminalSafe(all);
  for (char ch : out) {
    const auto c = static_cast<unsigned char>(ch);
    EXPECT_FALSE(c < 0x20 || c == 0x7f) << static_cast<int>(c);
  }
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos);
}

}  // namespace
}  // namespace volmgr
