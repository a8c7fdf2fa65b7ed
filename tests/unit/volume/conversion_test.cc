// In-place conversion: planning and refusals (pure), and the status line.
// The conversion itself needs dm-crypt: tests/vm/cases/volmgr_conversion.sh
// and the power-loss test tests/vm/powerloss.sh are its real twins.
#include "volmgr/volume/conversion.h"

#include <gtest/gtest.h>

namespace volmgr::volume {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

FilesystemFacts Ext4(uint64_t size, uint32_t block = 4096) {
  FilesystemFacts fs;
  fs.type = "ext4";
  fs.size_bytes = size;
  fs.block_size = block;
  return fs;
}

TEST(PlanEncryptionTest, ShrinksAnExt4ThatFillsTheDevice) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, Ext4(256 * kMiB), false, 0);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->shrink);
  EXPECT_EQ(p->fs_limit_bytes, 224 * kMiB);
  EXPECT_EQ(p->shrink_to_bytes, 224 * kMiB);
  EXPECT_EQ(p->sector_size, 4096u);
}

TEST(PlanEncryptionTest, NoShrinkWhenTheTailIsFree) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, Ext4(200 * kMiB), false, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->shrink);
}

TEST(PlanEncryptionTest, ShrinkTargetIsWholeBlocks) {
  auto p = PlanEncryption("/dev/x", 100 * kMiB + 1536, Ext4(100 * kMiB, 1024),
                          false, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->shrink_to_bytes % 1024, 0u);
  EXPECT_LE(p->shrink_to_bytes, p->fs_limit_bytes);
  EXPECT_EQ(p->sector_size, 512u);  // 1 KiB blocks cannot take 4 KiB sectors
}

TEST(PlanEncryptionTest, SectorSizeLargerThanBlocksIsRefused) {
  auto p =
      PlanEncryption("/dev/x", 256 * kMiB, Ext4(100 * kMiB, 1024), false, 4096);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("block size"), std::string::npos);
}

TEST(PlanEncryptionTest, TooSmallDeviceIsRefused) {
  auto p = PlanEncryption("/dev/x", 32 * kMiB, Ext4(32 * kMiB), true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("too small"), std::string::npos);
}

TEST(PlanEncryptionTest, MountedFilesystemIsRefused) {
  FilesystemFacts fs = Ext4(256 * kMiB);
  fs.mounted_at = "/srv";
  auto p = PlanEncryption("/dev/x", 256 * kMiB, fs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kBusy);
  EXPECT_NE(p.status().message().find("mounted at /srv"), std::string::npos);
}

TEST(PlanEncryptionTest, DeviceInUseIsRefused) {
  FilesystemFacts fs = Ext4(100 * kMiB);
  fs.in_use = true;
  fs.in_use_why = "held by a mapping";
  auto p = PlanEncryption("/dev/x", 256 * kMiB, fs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kBusy);
}

TEST(PlanEncryptionTest, UnknownFilesystemNeedsForce) {
  FilesystemFacts xfs;
  xfs.type = "xfs";
  xfs.size_bytes = 200 * kMiB;
  auto p = PlanEncryption("/dev/x", 256 * kMiB, xfs, false, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("--force"), std::string::npos);
  auto forced = PlanEncryption("/dev/x", 256 * kMiB, xfs, true, 0);
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->shrink);
}

TEST(PlanEncryptionTest, ForceDoesNotCutIntoAKnownLargeFilesystem) {
  FilesystemFacts xfs;
  xfs.type = "xfs";
  xfs.size_bytes = 256 * kMiB;
  auto p = PlanEncryption("/dev/x", 256 * kMiB, xfs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
}

TEST(PlanEncryptionTest, NoFilesystemNeedsForce) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, FilesystemFacts{}, false, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("volmgr format"), std::string::npos);
  auto forced =
      PlanEncryption("/dev/x", 256 * kMiB, FilesystemFacts{}, true, 0);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->sector_size, 512u);
}

TEST(ConversionStatusLineTest, RunningShowsPercentRateAndEta) {
  ConversionStatus s;
  s.in_progress = true;
  s.running = true;
  s.progress.size_bytes = 1000 * kMiB;
  s.progress.done_bytes = 370 * kMiB;
  s.progress.bytes_per_second = 210.0 * kMiB;
  s.progress.eta_seconds = 240;
  EXPECT_EQ(ConversionStatusLine(s),
            "Encryption in progress: 37 %, 210 MiB/s, ETA 4 min");
}

TEST(ConversionStatusLineTest, PausedAndNone) {
  ConversionStatus s;
  EXPECT_EQ(ConversionStatusLine(s), "");
  s.in_progress = true;
  s.direction = ConversionDirection::kDecrypt;
  s.progress.size_bytes = 100;
  s.progress.done_bytes = 50;
  EXPECT_EQ(ConversionStatusLine(s), "Decryption paused at 50 %");
}

TEST(DefaultDecryptHeaderPathTest, OneFilePerDevicePath) {
  EXPECT_NE(DefaultDecryptHeaderPath("/dev/sda1"),
            DefaultDecryptHeaderPath("/dev/sdb1"));
  EXPECT_EQ(
      DefaultDecryptHeaderPath("/dev/sda1").find('/', 1) != std::string::npos,
      true);
  EXPECT_NE(DefaultDecryptHeaderPath("/dev/sda1").find("decrypt-_dev_sda1"),
            std::string::npos);
}

}  // namespace
}  // namespace volmgr::volume
