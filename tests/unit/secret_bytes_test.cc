#include "volmgr/base/secret_bytes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>

namespace volmgr {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);

// Reads the VmFlags of the mapping that contains `p` from /proc/self/smaps.
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  bool in_region = false;
  while (std::getline(smaps, line)) {
    unsigned long lo, hi;
    // Region header lines look like "7f..-7f.. rw-p ..."; field lines do not
    // start with a hex range.
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 &&
        line.find(':') > line.find(' ')) {
      in_region = addr >= lo && addr < hi;
    }
    if (in_region && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(SecretBytesTest, RandomKeysDifferAndHaveRequestedSize) {
  auto a = SecretBytes::Random(64);
  auto b = SecretBytes::Random(64);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_FALSE(a->ConstantTimeEquals(*b));
}

TEST(SecretBytesTest, MemoryIsExcludedFromCoreDumps) {
  auto s = SecretBytes::Random(32);
  ASSERT_TRUE(s.ok());
  std::string flags = VmFlagsOf(s->Reveal().data());
  ASSERT_FALSE(flags.empty());
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;  // MADV_DONTDUMP
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer intercepts mlock() as a no-op that reports success, so
  // the kernel never marks the mapping locked in this build.
  GTEST_SKIP() << "mlock is a no-op under AddressSanitizer";
#else
  if (s->locked()) {
    EXPECT_NE(flags.find(" lo"), std::string::npos) << flags;  // mlock
  }
#endif
}

TEST(SecretBytesTest, MoveTransfersOwnershipAndEmptiesSource) {
  auto s = SecretBytes::CopyOf(std::string_view("correct horse"));
  ASSERT_TRUE(s.ok());
  const uint8_t* p = s->Reveal().data();
  SecretBytes moved = std::move(s).value();
  EXPECT_EQ(moved.Reveal().data(), p);
  EXPECT_EQ(moved.RevealAsString(), "correct horse");
}

TEST(SecretBytesTest, ConstantTimeEqualsComparesContentAndSize) {
  auto a = SecretBytes::CopyOf(std::string_view("abc"));
  auto b = SecretBytes::CopyOf(std::string_view("abc"));
  auto c = SecretBytes::CopyOf(std::string_view("abd"));
  auto d = SecretBytes::CopyOf(std::string_view("abcd"));
  EXPECT_TRUE(a->ConstantTimeEquals(*b));
  EXPECT_FALSE(a->ConstantTimeEquals(*c));
  EXPECT_FALSE(a->ConstantTimeEquals(*d));
}

TEST(SecretBytesTest, ResizeWipesTheDroppedTail) {
  auto s = SecretBytes::Allocate(0, 16);
  ASSERT_TRUE(s.ok());
  s->Resize(8);
  std::memset(s->RevealMutable().data(), 'x', 8);
  s->Resize(3);
  s->Resize(8);
  EXPECT_EQ(s->RevealAsString(), std::string("xxx\0\0\0\0\0", 8));
}

TEST(SecretBytesTest, SliceOutOfRangeIsRejected) {
  auto s = SecretBytes::Random(8);
  EXPECT_EQ(s->Slice(4, 5).status().code(), StatusCode::kInvalidArgument);
  auto ok = s->Slice(2, 6);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ConstantTimeEquals(s->Reveal().subspan(2, 6)));
}

template <typename T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};

// Compile-time properties: a secret cannot be streamed or copied by accident.
static_assert(!Streamable<SecretBytes>);
static_assert(Streamable<std::string>);  // the concept itself works

}  // namespace
}  // namespace volmgr
