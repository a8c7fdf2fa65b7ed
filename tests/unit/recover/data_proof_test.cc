// The key package's data proof (data_proof.h): a match proves the device
// holds the package's volume; blank ciphertext proves nothing, whatever it
// decrypts to (issue 17, item 9).
#include "volmgr/recover/data_proof.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "dmtarget/sector_transform.h"

namespace volmgr::recover {
namespace {

constexpr uint32_t kSector = 512;
constexpr uint32_t kCheck = 4096;
constexpr uint64_t kOffset = 8192;

class DataProofTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volmgr-recover-proof.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
    auto k = SecretBytes::Random(64);
    ASSERT_TRUE(k.ok());
    fvek_ = std::move(*k);
  }
  void TearDown() override { unlink(path_.c_str()); }

  // Writes `data` as the data area (after kOffset bytes of header).
  void WriteData(const std::vector<uint8_t>& data) {
    FILE* f = fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::vector<uint8_t> header(kOffset, 0x5a);
    ASSERT_EQ(fwrite(header.data(), 1, header.size(), f), header.size());
    ASSERT_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
    fclose(f);
  }
  // What a key package made over `ciphertext` would hold: SHA-256 of its
  // decryption under fvek_.
  std::array<uint8_t, 32> PackageSum(std::vector<uint8_t> ciphertext) {
    auto xts = dmtarget::XtsSectorTransform::Create(fvek_, kSector, 0);
    EXPECT_TRUE(xts.ok());
    ciphertext.resize(kCheck);
    EXPECT_TRUE(xts->Decrypt(0, ciphertext, ciphertext).ok());
    std::array<uint8_t, 32> sum{};
    SHA256(ciphertext.data(), ciphertext.size(), sum.data());
    return sum;
  }
  StatusOr<DataProofResult> Prove(const std::array<uint8_t, 32>& sum) {
    DataSegment seg{"u",         "", "aes-xts-plain64", kSector, kOffset,
                    8 * kSector, 0};
    auto reader = SegmentReader::Open(path_, seg);
    if (!reader.ok()) return reader.status();
    return ProveData(*reader, fvek_, kCheck, sum);
  }

  std::string path_;
  SecretBytes fvek_;
};

TEST_F(DataProofTest, WrittenDataThatDecryptsToTheChecksumMatches) {
  std::vector<uint8_t> data(8 * kSector);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 13 + 1);
  WriteData(data);
  auto r = Prove(PackageSum(data));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->result, DataProof::kMatch);
  EXPECT_EQ(r->bytes, kCheck);
}

TEST_F(DataProofTest, OtherDataDiffers) {
  std::vector<uint8_t> data(8 * kSector, 0x11);
  data[100] = 0x12;
  WriteData(data);
  std::vector<uint8_t> other(data);
  other[7] ^= 1;
  auto r = Prove(PackageSum(other));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result, DataProof::kDiffers);
}

// The bug: a package made over its own never-written (zero) data area
// "matched" any other zero data area under the same FVEK.
TEST_F(DataProofTest, AllZeroCiphertextIsBlankNeverAMatch) {
  std::vector<uint8_t> zeros(8 * kSector, 0);
  WriteData(zeros);
  auto r = Prove(PackageSum(zeros));  // would be a checksum match
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result, DataProof::kBlank);
  EXPECT_EQ(r->blank_value, 0);
  EXPECT_NE(BlankDataMessage("dev", *r).find("all zeros"), std::string::npos);
}

TEST_F(DataProofTest, ErasedFlashIsBlankToo) {
  std::vector<uint8_t> ff(8 * kSector, 0xff);
  WriteData(ff);
  auto r = Prove(PackageSum(ff));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result, DataProof::kBlank);
  EXPECT_EQ(r->blank_value, 0xff);
}

TEST_F(DataProofTest, RequireDataProofRefusesBlankUnlessForced) {
  std::vector<uint8_t> zeros(8 * kSector, 0);
  WriteData(zeros);
  const auto sum = PackageSum(zeros);
  DataSegment seg{"u", "", "aes-xts-plain64", kSector, kOffset, 8 * kSector, 0};
  auto reader = SegmentReader::Open(path_, seg);
  ASSERT_TRUE(reader.ok());
  auto refused = RequireDataProof("dev", "volume u", *reader, fvek_, kCheck,
                                  sum, false, "--force");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  auto forced = RequireDataProof("dev", "volume u", *reader, fvek_, kCheck, sum,
                                 true, "--force");
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->result, DataProof::kBlank);
}

}  // namespace
}  // namespace volmgr::recover
