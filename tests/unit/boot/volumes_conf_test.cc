#include "volmgr/boot/volumes_conf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace volmgr::boot {
namespace {

using ::testing::HasSubstr;

constexpr const char* kUuid = "5d1c2a10-8f3e-4c55-9e0b-3a1f7c6d2e44";

TEST(VolumesConfTest, ParsesEntriesOptionsAndDefaultsLine) {
  auto c = VolumesConf::Parse(
      "# a comment\n"
      "\n"
      "data  UUID=5D1C2A10-8F3E-4C55-9E0B-3A1F7C6D2E44  discard,nofail  # x\n"
      "backup\t/dev/disk/by-id/usb-B-0:0\ttpm-only,readonly,timeout=0\n"
      "plain /dev/vdc\n"
      "*     *   timeout=30,tries=5,console=/dev/tty1,tcti=device:/dev/tpm0\n",
      "test.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->entries().size(), 3u);
  const auto& d = c->entries()[0];
  EXPECT_EQ(d.name, "data");
  EXPECT_EQ(d.match, VolumeEntry::Match::kUuid);
  EXPECT_EQ(d.device, kUuid);  // lower-cased
  EXPECT_TRUE(d.options.discard);
  EXPECT_TRUE(d.options.nofail);
  EXPECT_FALSE(d.options.tpm_only);
  EXPECT_EQ(d.line, 3);
  const auto& b = c->entries()[1];
  EXPECT_EQ(b.match, VolumeEntry::Match::kPath);
  EXPECT_EQ(b.device, "/dev/disk/by-id/usb-B-0:0");
  EXPECT_TRUE(b.options.tpm_only);
  EXPECT_TRUE(b.options.read_only);
  EXPECT_EQ(b.options.timeout_s, 0u);
  ASSERT_TRUE(c->defaults().has_value());
  EXPECT_EQ(c->defaults()->options.timeout_s, 30u);
  EXPECT_EQ(c->defaults()->options.tries, 5u);
  EXPECT_EQ(c->defaults()->options.console, "/dev/tty1");
  EXPECT_EQ(c->defaults()->options.tcti, "device:/dev/tpm0");

  // Entry options win; unset ones come from the defaults line.
  BootOptions eb = EffectiveOptions(*c, &b);
  EXPECT_EQ(eb.timeout_s, 0u);
  EXPECT_EQ(eb.tries, 5u);
  EXPECT_EQ(eb.console, "/dev/tty1");
  BootOptions ed = EffectiveOptions(*c, &d);
  EXPECT_EQ(ed.timeout_s, 30u);
  BootOptions none = EffectiveOptions(*c, nullptr);
  EXPECT_EQ(none.timeout_s, 30u);
  EXPECT_FALSE(none.discard);
}

TEST(VolumesConfTest, EmptyTextAndDashOptionsAreFine) {
  auto c = VolumesConf::Parse("", "x");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->entries().empty());
  EXPECT_FALSE(c->defaults().has_value());
  auto d = VolumesConf::Parse("a /dev/vda -\r\n", "x");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->entries()[0].options.discard);
}

struct BadCase {
  const char* text;
  const char* message;
};

class VolumesConfRejectTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(VolumesConfRejectTest, NamesTheLineAndTheProblem) {
  auto c = VolumesConf::Parse(GetParam().text, "v.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadLines, VolumesConfRejectTest,
    ::testing::Values(
        BadCase{"onlyname\n", "v.conf:1: expected 'NAME DEVICE [OPTIONS]'"},
        BadCase{"a /dev/x discard extra\n", "got 4 field(s)"},
        BadCase{"\n\na /dev/x bogus\n", "v.conf:3: unknown option 'bogus'"},
        BadCase{"a /dev/x discard=1\n", "'discard' takes no value"},
        BadCase{"a /dev/x timeout\n", "'timeout' needs a value"},
        BadCase{"a /dev/x timeout=abc\n", "timeout 'abc' is not a number"},
        BadCase{"a /dev/x timeout=-1\n", "is not a number"},
        BadCase{"a /dev/x tries=0\n", "tries '0'"},
        BadCase{"a /dev/x discard,,nofail\n", "empty option"},
        BadCase{"a /dev/x console=tty1\n", "not an absolute path"},
        BadCase{"a/b /dev/x\n", "not a valid mapping name"},
        BadCase{"a UUID=1234\n", "'1234' is not a UUID"},
        BadCase{"a vda\n", "must be UUID=<LUKS UUID> or an absolute path"},
        BadCase{"a /dev/x\na /dev/y\n",
                "v.conf:2: mapping name 'a' is already "
                "used on line 1"},
        BadCase{"a /dev/x\nb /dev/x\n", "already listed on line 1"},
        BadCase{"* /dev/x\n", "the defaults line is '* * OPTIONS'"},
        BadCase{"* * timeout=1\n* * timeout=2\n", "a second '* *' line"}));

TEST(VolumesConfTest, FindsByUuidAndBySameFileThroughALink) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("volumes_conf_test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto disk = dir / "disk.img";
  std::ofstream(disk) << "x";
  std::filesystem::create_symlink(disk, dir / "by-id-link");
  auto c = VolumesConf::Parse(std::string("u UUID=") + kUuid + "\np " +
                                  (dir / "by-id-link").string() + "\n",
                              "x");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const VolumeEntry* e = c->Find("5D1C2A10-8F3E-4C55-9E0B-3A1F7C6D2E44", "");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name, "u");
  e = c->Find("00000000-0000-0000-0000-000000000000", disk.string());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name, "p");
  EXPECT_EQ(
      c->Find("00000000-0000-0000-0000-000000000000", (dir / "other").string()),
      nullptr);
  std::filesystem::remove_all(dir);
}

TEST(VolumesConfTest, LoadOfAMissingFileIsEmptyAndErrorsNameThePath) {
  auto c = VolumesConf::Load("/nonexistent/volmgr/volumes.conf");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->entries().empty());
  const auto path = std::filesystem::temp_directory_path() /
                    ("volumes_conf_bad." + std::to_string(getpid()));
  std::ofstream(path) << "ok /dev/x\nbad\n";
  auto bad = VolumesConf::Load(path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(path.string() + ":2:"));
  std::filesystem::remove(path);
}

TEST(VolumesConfTest, DerivedNameIsTheLabelWhenValidElseTheUuid) {
  EXPECT_EQ(DerivedMappingName(kUuid, "data"), "data");
  EXPECT_EQ(DerivedMappingName("5D1C2A10-8F3E-4C55-9E0B-3A1F7C6D2E44", ""),
            std::string("volmgr-") + kUuid);
  EXPECT_EQ(DerivedMappingName(kUuid, "my disk"),
            std::string("volmgr-") + kUuid);
  EXPECT_EQ(DerivedMappingName(kUuid, ".."), std::string("volmgr-") + kUuid);
  EXPECT_TRUE(IsValidMappingName("a.b_c-d+e"));
  EXPECT_FALSE(IsValidMappingName(std::string(128, 'a')));
  EXPECT_TRUE(IsValidMappingName(std::string(127, 'a')));
}

}  // namespace
}  // namespace volmgr::boot
