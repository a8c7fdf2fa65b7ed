#include "volmgr/base/secret_bytes.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// GCC defines __SANITIZE_ADDRESS__; clang (before 16) only has the feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VOLMGR_TEST_CLANG_ASAN 1
#endif
#endif
#ifndef VOLMGR_TEST_CLANG_ASAN
#define VOLMGR_TEST_CLANG_ASAN 0
#endif

TEST(SecretBytesTest, MemoryIsExcludedFromCoreDumps) {
  auto s = SecretBytes::Random(32);
  ASSERT_TRUE(s.ok());
  std::string flags = VmFlagsOf(s->Reveal().data());
  ASSERT_FALSE(flags.empty());
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;  // MADV_DONTDUMP
#if defined(__SANITIZE_ADDRESS__) || VOLMGR_TEST_CLANG_ASAN
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

// Small secrets come from the pool (volmgr/base/internal/secret_pool.h):
// their pages carry the same protections as a secret's own mapping.
TEST(SecretBytesTest, PooledSecretsKeepTheProtectionsAndDoNotOverlap) {
  auto a = SecretBytes::Random(32);
  auto b = SecretBytes::Random(64);
  auto c = SecretBytes::Allocate(0, 512);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (const uint8_t* p : std::initializer_list<const uint8_t*>{
           a->Reveal().data(), b->Reveal().data(), c->Reveal().data()}) {
    const std::string flags = VmFlagsOf(p);
    ASSERT_FALSE(flags.empty());
    EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;  // DONTDUMP
    EXPECT_NE(flags.find(" wf"), std::string::npos) << flags;  // WIPEONFORK
  }
  const uint8_t* pa = a->Reveal().data();
  const uint8_t* pb = b->Reveal().data();
  EXPECT_TRUE(pa + 32 <= pb || pb + 64 <= pa);
  c->Resize(512);
  std::memset(c->RevealMutable().data(), 0xff, 512);  // stays in its slot
  EXPECT_EQ(a->Reveal().size(), 32u);
  EXPECT_NE(std::count(pa, pa + 32, 0xff), 32);
}

TEST(SecretBytesTest, ReleasedPoolSlotIsWipedAndComesBackZeroed) {
  const uint8_t* where = nullptr;
  {
    auto s = SecretBytes::Allocate(48);
    ASSERT_TRUE(s.ok());
    std::memset(s->RevealMutable().data(), 0xa5, 48);
    where = s->Reveal().data();
  }
  // The slot's page stays mapped (the pool keeps it): read what is left.
  EXPECT_EQ(std::count(where, where + 64, 0), 64) << "slot not wiped";
  auto again = SecretBytes::Allocate(48);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Reveal().data(), where);  // reused first
  EXPECT_EQ(std::count(again->Reveal().begin(), again->Reveal().end(), 0), 48);
}

TEST(SecretBytesTest, ForkedChildSeesPooledAndLargeSecretsAsZeros) {
  auto small = SecretBytes::CopyOf(std::string_view("a pooled secret"));
  auto large = SecretBytes::Allocate(8192);
  ASSERT_TRUE(small.ok() && large.ok());
  std::memset(large->RevealMutable().data(), 0x5a, 8192);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const auto s = small->Reveal();
    const auto l = large->Reveal();
    const bool zero =
        std::all_of(s.begin(), s.end(), [](uint8_t b) { return b == 0; }) &&
        std::all_of(l.begin(), l.end(), [](uint8_t b) { return b == 0; });
    _exit(zero ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a secret survived fork()";
  EXPECT_EQ(small->RevealAsString(), "a pooled secret");  // parent intact
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
