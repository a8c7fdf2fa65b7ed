#include "volmgr/recover/plaintext_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "dmtarget/sector_transform.h"

namespace volmgr::recover {
namespace {

// A data segment at `kOffset` of a temp file: random plaintext encrypted by
// the (vector-checked) transform, so any range read back must equal it.
class PlaintextReaderTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  static constexpr uint64_t kOffset = 8192;
  static constexpr uint64_t kSectors = 40;

  void SetUp() override {
    ss_ = GetParam();
    std::mt19937 rng(ss_);
    std::vector<uint8_t> k(64);
    for (auto& b : k) b = static_cast<uint8_t>(rng());
    auto key = SecretBytes::CopyOf(k);
    ASSERT_TRUE(key.ok());
    key_ = std::move(*key);
    plain_.resize(kSectors * ss_);
    for (auto& b : plain_) b = static_cast<uint8_t>(rng());
    auto xts = dmtarget::XtsSectorTransform::Create(key_, ss_, 7);
    ASSERT_TRUE(xts.ok());
    std::vector<uint8_t> file(kOffset, 0xaa), cipher(plain_.size());
    ASSERT_TRUE(xts->Encrypt(0, plain_, cipher).ok());
    file.insert(file.end(), cipher.begin(), cipher.end());
    char tmpl[] = "/tmp/volmgr-plaintext-reader.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path_ = tmpl;
    ASSERT_EQ(write(fd, file.data(), file.size()),
              static_cast<ssize_t>(file.size()));
    close(fd);
  }
  void TearDown() override { unlink(path_.c_str()); }

  StatusOr<PlaintextReader> Open(uint64_t payload) {
    DataSegment seg{"u", "", "aes-xts-plain64", ss_, kOffset, payload, 7};
    VOLMGR_ASSIGN_OR_RETURN(SegmentReader r, SegmentReader::Open(path_, seg));
    return PlaintextReader::Create(std::move(r), key_, 2);
  }

  uint32_t ss_ = 0;
  SecretBytes key_;
  std::vector<uint8_t> plain_;
  std::string path_;
};

TEST_P(PlaintextReaderTest, UnalignedRangesEqualThePlaintext) {
  auto pr = Open(plain_.size());
  ASSERT_TRUE(pr.ok()) << pr.status().ToString();
  EXPECT_EQ(pr->size(), plain_.size());
  const uint64_t n = plain_.size();
  const std::vector<std::pair<uint64_t, size_t>> ranges = {
      {0, 1},
      {0, n},
      {1, 511},
      {511, 2},
      {ss_ - 1, ss_ + 2},
      {3 * ss_ + 17, 5 * ss_},
      {n - 3, 3},
      {n - 1, 100}};
  for (auto [off, len] : ranges) {
    std::vector<uint8_t> out(len, 0xee);
    auto got = pr->Read(off, out);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const size_t want = std::min<uint64_t>(len, n - off);
    ASSERT_EQ(*got, want) << off << "+" << len;
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + want,
                           plain_.begin() + static_cast<ptrdiff_t>(off)))
        << off << "+" << len;
  }
  std::vector<uint8_t> out(10);
  auto past = pr->Read(n, out);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
}

// The segment claims more sectors than the file holds: reads inside the file
// work, a read touching the missing part fails with kIoError and names it.
TEST_P(PlaintextReaderTest, MissingSectorsFailWithIoErrorNotNoise) {
  auto pr = Open(plain_.size() + 4 * ss_);
  ASSERT_TRUE(pr.ok());
  std::vector<uint8_t> out(ss_ + 10);
  std::vector<ByteRange> bad;
  auto ok = pr->Read(0, out, &bad);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(bad.empty());
  auto r = pr->Read(plain_.size() - 5, out, &bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(
      r.status().message().find("data sectors " + std::to_string(kSectors)),
      std::string::npos)
      << r.status().message();
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].begin, plain_.size());
}

INSTANTIATE_TEST_SUITE_P(SectorSizes, PlaintextReaderTest,
                         ::testing::Values(512u, 4096u));

}  // namespace
}  // namespace volmgr::recover
