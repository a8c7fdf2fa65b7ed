#include "volmgr/cli/verb_filter.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace volmgr::cli {
namespace {

constexpr std::string_view kKnown[] = {"format", "open", "protector", "files"};

// argv from words, program name first.
class Argv {
 public:
  explicit Argv(std::vector<std::string> words) : words_(std::move(words)) {
    for (std::string& w : words_) ptrs_.push_back(w.data());
  }
  int argc() { return static_cast<int>(ptrs_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> words_;
  std::vector<char*> ptrs_;
};

VerbFilter Filter(std::vector<std::string> words) {
  Argv a(std::move(words));
  return VerbFilter(a.argc(), a.argv(), kKnown);
}

TEST(VerbFilterTest, KnownVerbSelectsOnlyItself) {
  VerbFilter f = Filter({"volmgr", "open", "/dev/sdb", "data"});
  EXPECT_EQ(f.selected(), "open");
  EXPECT_TRUE(f("open"));
  EXPECT_FALSE(f("format"));
  EXPECT_TRUE(f({"format", "open"}));
  EXPECT_FALSE(f({"format", "files"}));
}

TEST(VerbFilterTest, OptionsBeforeTheVerbAreSkipped) {
  VerbFilter f = Filter({"volmgr", "--json", "-v", "protector", "list"});
  EXPECT_EQ(f.selected(), "protector");
  EXPECT_FALSE(f("open"));
}

TEST(VerbFilterTest, NoVerbWantsEverything) {
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"volmgr"}, {"volmgr", "--help"}, {"volmgr", "--version"}}) {
    VerbFilter f = Filter(words);
    EXPECT_EQ(f.selected(), "");
    EXPECT_TRUE(f("open"));
    EXPECT_TRUE(f("files"));
  }
}

TEST(VerbFilterTest, UnknownVerbWantsEverything) {
  // A typo must get CLI11's answer for the whole tree, not "no verbs".
  VerbFilter f = Filter({"volmgr", "opne", "/dev/sdb"});
  EXPECT_EQ(f.selected(), "");
  EXPECT_TRUE(f("open"));
  EXPECT_TRUE(f("format"));
}

TEST(VerbFilterTest, OnlyTheFirstPositionalArgumentCounts) {
  // "open" as a later word (a device named "open") selects nothing.
  VerbFilter f = Filter({"volmgr", "status", "open"});
  EXPECT_EQ(f.selected(), "");
  VerbFilter g = Filter({"volmgr", "files", "open"});
  EXPECT_EQ(g.selected(), "files");
  EXPECT_FALSE(g("open"));
}

TEST(VerbFilterTest, EmptyArgumentIsNotAVerb) {
  VerbFilter f = Filter({"volmgr", "", "format"});
  EXPECT_EQ(f.selected(), "format");
}

}  // namespace
}  // namespace volmgr::cli
