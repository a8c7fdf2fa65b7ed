// Known-answer tests for AES-256-XTS: IEEE Std 1619-2007 Annex B vectors
// 10-14 and a subset of NIST CAVP XTSGenAES256.rsp (tests/vectors/xts/),
// through OpenSSL EVP directly and, where the tweak is a plain64 sector
// number, through XtsSectorTransform.
#include <gcrypt.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "backend_under_test.h"
#include "dmtarget/sector_transform.h"
#include "evp_xts_reference.h"
#include "tests/unit/testing/vector_file.h"
#include "volmgr/base/secret_bytes.h"

namespace volmgr::dmtarget {
namespace {

using testing::EvpXts;
using testing::TestOptions;
using testing::Tweak;

using XtsRecord = ::volmgr::testing::VectorRecord;

// The records of tests/vectors/xts/NAME (never empty: a load failure is one
// record with load_error set).
std::vector<XtsRecord> LoadXtsFile(const std::string& name) {
  return ::volmgr::testing::LoadVectorFile(std::string(VOLMGR_VECTORS_DIR) +
                                           "/xts/" + name);
}

// CAVP's bare [ENCRYPT] / [DECRYPT] header in effect, "" if none.
std::string Direction(const XtsRecord& r) {
  for (const char* d : {"ENCRYPT", "DECRYPT"}) {
    if (r.section.count(d) != 0) return d;
  }
  return "";
}

// One XTS data unit straight through libgcrypt, a fresh handle per call: the
// default backend's library held to the CAVP records on its own, with tweaks
// that are not plain64 sector numbers.
std::vector<uint8_t> GcryptXts(bool encrypt, const std::vector<uint8_t>& key,
                               const Tweak& tweak,
                               const std::vector<uint8_t>& in) {
  EXPECT_NE(gcry_check_version("1.9.0"), nullptr);
  gcry_cipher_hd_t h = nullptr;
  std::vector<uint8_t> out(in.size());
  if (gcry_cipher_open(&h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_XTS, 0) != 0 ||
      gcry_cipher_setkey(h, key.data(), key.size()) != 0 ||
      gcry_cipher_setiv(h, tweak.data(), tweak.size()) != 0 ||
      (encrypt ? gcry_cipher_encrypt(h, out.data(), out.size(), in.data(),
                                     in.size())
               : gcry_cipher_decrypt(h, out.data(), out.size(), in.data(),
                                     in.size())) != 0) {
    ADD_FAILURE() << "libgcrypt AES-256-XTS failed";
    out.clear();
  }
  gcry_cipher_close(h);
  return out;
}

SecretBytes Secret(const std::vector<uint8_t>& bytes) {
  return std::move(SecretBytes::CopyOf(bytes)).value();
}

// ---------------------------------------------------------------------------
// IEEE 1619-2007 Annex B, vectors 10-14.

class Ieee1619VectorTest : public ::testing::TestWithParam<XtsRecord> {
 protected:
  void SetUp() override {
    const XtsRecord& r = GetParam();
    ASSERT_TRUE(r.load_error.empty()) << r.load_error;
    key_ = r.Hex("Key");
    ptx_ = r.Hex("PTX");
    ctx_ = r.Hex("CTX");
    ASSERT_EQ(key_.size(), 64u) << r.Where();
    ASSERT_EQ(ptx_.size(), 512u) << r.Where();
    ASSERT_EQ(ctx_.size(), 512u) << r.Where();
    seq_no_ = std::stoull(r.Field("DataUnitSeqNo"), nullptr, 16);
  }

  std::vector<uint8_t> key_, ptx_, ctx_;
  uint64_t seq_no_ = 0;
};

TEST_P(Ieee1619VectorTest, EvpEncryptsAndDecrypts) {
  // IEEE 1619 5.1: the tweak is the sequence number, 128-bit little-endian.
  Tweak tweak{};
  for (int i = 0; i < 8; ++i) tweak[i] = static_cast<uint8_t>(seq_no_ >> 8 * i);
  EXPECT_EQ(EvpXts(true, key_, tweak, ptx_), ctx_) << GetParam().Where();
  EXPECT_EQ(EvpXts(false, key_, tweak, ctx_), ptx_) << GetParam().Where();
}

// The IEEE tweak is plain64 of a 512-byte sector numbered seq_no.
TEST_P(Ieee1619VectorTest, SectorTransformAt512ByteSectorSeqNo) {
  for (unsigned threads : {1u, 2u}) {
    auto xts =
        XtsSectorTransform::Create(Secret(key_), 512, 0, TestOptions(threads));
    ASSERT_TRUE(xts.ok()) << xts.status().ToString();
    std::vector<uint8_t> out(512);
    ASSERT_TRUE(xts->Encrypt(seq_no_, ptx_, out).ok());
    EXPECT_EQ(out, ctx_) << GetParam().Where();
    ASSERT_TRUE(xts->Decrypt(seq_no_, ctx_, out).ok());
    EXPECT_EQ(out, ptx_) << GetParam().Where();
  }
}

// Same tweak reached through iv_offset instead of the sector number.
TEST_P(Ieee1619VectorTest, SectorTransformViaIvOffset) {
  auto xts =
      XtsSectorTransform::Create(Secret(key_), 512, seq_no_, TestOptions());
  ASSERT_TRUE(xts.ok()) << xts.status().ToString();
  std::vector<uint8_t> buf = ptx_;
  ASSERT_TRUE(xts->Encrypt(0, buf, buf).ok());  // in place
  EXPECT_EQ(buf, ctx_) << GetParam().Where();
}

std::string IeeeName(const ::testing::TestParamInfo<XtsRecord>& p) {
  if (!p.param.load_error.empty()) return "LoadError";
  return "Vector" + p.param.Field("Vector");
}

INSTANTIATE_TEST_SUITE_P(
    Ieee1619_2007, Ieee1619VectorTest,
    ::testing::ValuesIn(LoadXtsFile("ieee1619_2007_xts_aes256.txt")), IeeeName);

// ---------------------------------------------------------------------------
// NIST CAVP XTSGenAES256.rsp subset.

class CavpXtsVectorTest : public ::testing::TestWithParam<XtsRecord> {};

TEST_P(CavpXtsVectorTest, EvpReproducesRecord) {
  const XtsRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  ASSERT_TRUE(Direction(r) == "ENCRYPT" || Direction(r) == "DECRYPT")
      << r.Where();
  const std::vector<uint8_t> key = r.Hex("Key");
  const std::vector<uint8_t> i = r.Hex("i");
  const std::vector<uint8_t> pt = r.Hex("PT");
  const std::vector<uint8_t> ct = r.Hex("CT");
  ASSERT_EQ(key.size(), 64u) << r.Where();
  ASSERT_EQ(i.size(), 16u) << r.Where();
  // A mistyped value shows up as a length error, not only a mismatch.
  ASSERT_EQ(pt.size() * 8, std::stoul(r.Field("DataUnitLen"))) << r.Where();
  ASSERT_EQ(ct.size(), pt.size()) << r.Where();
  Tweak tweak{};
  std::copy(i.begin(), i.end(), tweak.begin());
  // The record's own direction first, then the inverse.
  if (Direction(r) == "ENCRYPT") {
    EXPECT_EQ(EvpXts(true, key, tweak, pt), ct) << r.Where();
    EXPECT_EQ(EvpXts(false, key, tweak, ct), pt) << r.Where();
  } else {
    EXPECT_EQ(EvpXts(false, key, tweak, ct), pt) << r.Where();
    EXPECT_EQ(EvpXts(true, key, tweak, pt), ct) << r.Where();
  }
}

TEST_P(CavpXtsVectorTest, LibgcryptReproducesRecord) {
  const XtsRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const std::vector<uint8_t> key = r.Hex("Key");
  const std::vector<uint8_t> i = r.Hex("i");
  const std::vector<uint8_t> pt = r.Hex("PT");
  const std::vector<uint8_t> ct = r.Hex("CT");
  ASSERT_EQ(i.size(), 16u) << r.Where();
  Tweak tweak{};
  std::copy(i.begin(), i.end(), tweak.begin());
  EXPECT_EQ(GcryptXts(true, key, tweak, pt), ct) << r.Where();
  EXPECT_EQ(GcryptXts(false, key, tweak, ct), pt) << r.Where();
}

std::string CavpName(const ::testing::TestParamInfo<XtsRecord>& p) {
  if (!p.param.load_error.empty()) return "LoadError";
  return (Direction(p.param) == "ENCRYPT" ? "Encrypt" : "Decrypt") +
         std::string("_Bits") + p.param.Field("DataUnitLen") + "_Count" +
         p.param.Field("COUNT");
}

// CAVP tweaks are random 128-bit values, never a plain64 sector number
// (bytes 8..15 are non-zero), so these run through EVP and libgcrypt
// directly (the two backends' libraries); the transform
// is covered by the IEEE vectors and the dm-crypt equivalence tests.
INSTANTIATE_TEST_SUITE_P(XTSGenAES256, CavpXtsVectorTest,
                         ::testing::ValuesIn(LoadXtsFile("XTSGenAES256.rsp")),
                         CavpName);

TEST(CavpXtsVectorFile, HasBothSectionsAndBothLengths) {
  int encrypt = 0, decrypt = 0, bits256 = 0, bits384 = 0;
  for (const XtsRecord& r : LoadXtsFile("XTSGenAES256.rsp")) {
    ASSERT_TRUE(r.load_error.empty()) << r.load_error;
    encrypt += Direction(r) == "ENCRYPT";
    decrypt += Direction(r) == "DECRYPT";
    bits256 += r.Field("DataUnitLen") == "256";
    bits384 += r.Field("DataUnitLen") == "384";
  }
  EXPECT_GE(encrypt, 4);
  EXPECT_GE(decrypt, 2);
  EXPECT_GE(bits256, 3);
  EXPECT_GE(bits384, 3);
}

}  // namespace
}  // namespace volmgr::dmtarget
