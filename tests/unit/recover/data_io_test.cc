#include "volmgr/recover/data_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace volmgr::recover {
namespace {

class SegmentReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volmgr-recover-dataio.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path_ = tmpl;
    std::vector<uint8_t> bytes(8192 + 3 * 512 + 100);
    for (size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<uint8_t>(i * 7);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    close(fd);
    content_ = bytes;
  }
  void TearDown() override { unlink(path_.c_str()); }
  std::string path_;
  std::vector<uint8_t> content_;
};

// The file ends 100 bytes into data sector 3: a read of sectors 0-5 returns
// sectors 0-2, zero-fills 3-5 and reports them as one range.
TEST_F(SegmentReaderTest, ShortDeviceReportsTheMissingSectors) {
  DataSegment seg{"u", "", "aes-xts-plain64", 512, 8192, 6 * 512, 0};
  auto r = SegmentReader::Open(path_, seg);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(6 * 512, 0xee);
  std::vector<ByteRange> bad;
  ASSERT_TRUE(r->Read(0, buf, bad).ok());
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], (ByteRange{3 * 512, 6 * 512}));
  EXPECT_TRUE(
      std::equal(buf.begin(), buf.begin() + 3 * 512, content_.begin() + 8192));
  for (size_t i = 3 * 512; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0) << i;
  EXPECT_EQ(DescribeRange(seg, bad[0]),
            "data sectors 3-5 of 512 bytes (device bytes 9728-11263)");
}

TEST_F(SegmentReaderTest, MisalignedReadIsRejected) {
  DataSegment seg{"u", "", "aes-xts-plain64", 512, 8192, 3 * 512, 0};
  auto r = SegmentReader::Open(path_, seg);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(100);
  std::vector<ByteRange> bad;
  EXPECT_EQ(r->Read(0, buf, bad).code(), StatusCode::kInvalidArgument);
}

TEST(AppendRangeTest, MergesTouchingRanges) {
  std::vector<ByteRange> v;
  AppendRange(v, {0, 512});
  AppendRange(v, {512, 1024});
  AppendRange(v, {2048, 2560});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], (ByteRange{0, 1024}));
  EXPECT_EQ(v[1], (ByteRange{2048, 2560}));
}

}  // namespace
}  // namespace volmgr::recover
