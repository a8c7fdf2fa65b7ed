#include "volmgr/files/chunk_format.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <set>
#include <string>
#include <vector>

#include "tests/unit/files/test_util.h"
#include "tests/unit/testing/vector_file.h"

namespace volmgr::files {
namespace {

using ::volmgr::files::testing::Secret;
using ::volmgr::testing::EncodeHex;
using ::volmgr::testing::LoadVectorFile;
using ::volmgr::testing::VectorRecord;

std::vector<VectorRecord> ContainerVectors() {
  std::vector<VectorRecord> out;
  for (auto& r : LoadVectorFile(std::string(VOLMGR_VECTORS_DIR) +
                                "/files/files_v1.txt")) {
    if (!r.load_error.empty() || !r.Field("Key").empty()) out.push_back(r);
  }
  return out;
}

// Builds the container exactly as the format says, with the vector's fixed
// nonces, from volmgr's code.
std::vector<uint8_t> Build(const VectorRecord& r,
                           const std::vector<uint8_t>& pt) {
  FileHeader h;
  h.chunk_size = static_cast<uint32_t>(std::stoul(r.Field("ChunkSize")));
  auto id = r.Hex("FileId");
  std::copy(id.begin(), id.end(), h.file_id.begin());
  auto c = ChunkCipher::Create(Secret(r.Hex("Key")), h);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  const auto nonces = r.Hex("Nonces");
  const ChunkLayout l = c->layout();
  const auto hdr = h.Encode();
  std::vector<uint8_t> out(hdr.begin(), hdr.end());
  const uint64_t n = l.ChunkCount(pt.size());
  for (uint64_t i = 0; i < n; ++i) {
    size_t from = i * h.chunk_size;
    size_t len = std::min<size_t>(h.chunk_size, pt.size() - from);
    std::vector<uint8_t> sealed(len + kChunkOverhead);
    EXPECT_TRUE(
        c->SealWithNonceForTesting(
             i, i == n - 1,
             std::span(nonces).subspan(i * kChunkNonceSize, kChunkNonceSize),
             std::span(pt).subspan(from, len), sealed)
            .ok());
    out.insert(out.end(), sealed.begin(), sealed.end());
  }
  return out;
}

std::vector<uint8_t> Plaintext(const VectorRecord& r) {
  if (!r.Field("PlaintextPattern").empty()) {
    std::vector<uint8_t> pt(std::stoul(r.Field("PlaintextPattern")));
    for (size_t i = 0; i < pt.size(); ++i) pt[i] = (i * 31 + 5) % 251;
    return pt;
  }
  return r.Hex("Plaintext");
}

class ContainerKat : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(ContainerKat, SealMatchesIndependentImplementation) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const auto pt = Plaintext(r);
  const auto ct = Build(r, pt);
  if (!r.Field("Ciphertext").empty()) {
    EXPECT_EQ(EncodeHex(ct.data(), ct.size()), r.Field("Ciphertext"))
        << r.Where();
  } else {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(ct.data(), ct.size(), d);
    EXPECT_EQ(std::to_string(ct.size()), r.Field("CiphertextLength"));
    EXPECT_EQ(EncodeHex(d, sizeof d), r.Field("CiphertextSha256")) << r.Where();
  }
  // The size mapping agrees with the vector.
  ChunkLayout l{static_cast<uint32_t>(std::stoul(r.Field("ChunkSize")))};
  EXPECT_EQ(l.CiphertextSize(pt.size()), ct.size());
  auto back = l.PlaintextSize(ct.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, pt.size());
}

TEST_P(ContainerKat, OpensVectorChunks) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  // A digest-only vector (too long to print) is opened from our own seal,
  // whose SHA-256 must be the vector's.
  const bool digest_only = r.Field("Ciphertext").empty();
  const auto expected_pt = Plaintext(r);
  const auto ct = digest_only ? Build(r, expected_pt) : r.Hex("Ciphertext");
  if (digest_only) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(ct.data(), ct.size(), d);
    ASSERT_EQ(EncodeHex(d, sizeof d), r.Field("CiphertextSha256")) << r.Where();
  }
  auto h = FileHeader::Parse(ct);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  auto c = ChunkCipher::Create(Secret(r.Hex("Key")), *h);
  ASSERT_TRUE(c.ok());
  auto size = c->layout().PlaintextSize(ct.size());
  ASSERT_TRUE(size.ok());
  const uint64_t n = c->layout().ChunkCount(*size);
  std::vector<uint8_t> pt;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t off = c->layout().ChunkOffset(i);
    const uint64_t len =
        (i == n - 1 ? ct.size() - off : c->layout().sealed_chunk_size());
    std::vector<uint8_t> out(len - kChunkOverhead);
    ASSERT_TRUE(
        c->Open(i, i == n - 1, std::span(ct).subspan(off, len), out).ok());
    pt.insert(pt.end(), out.begin(), out.end());
  }
  EXPECT_EQ(pt, expected_pt);
}

INSTANTIATE_TEST_SUITE_P(Files, ContainerKat,
                         ::testing::ValuesIn(ContainerVectors()),
                         ::volmgr::testing::NameFromField("", "Name"));

TEST(FileHeaderTest, RejectsBadMagicVersionReservedAndChunkSize) {
  FileHeader h;
  auto b = h.Encode();
  EXPECT_TRUE(FileHeader::Parse(b).ok());
  auto bad = b;
  bad[0] ^= 1;
  EXPECT_EQ(FileHeader::Parse(bad).status().code(), StatusCode::kCorruption);
  bad = b;
  bad[9] = 2;
  EXPECT_EQ(FileHeader::Parse(bad).status().code(), StatusCode::kUnsupported);
  bad = b;
  bad[11] = 1;
  EXPECT_EQ(FileHeader::Parse(bad).status().code(), StatusCode::kCorruption);
  bad = b;
  bad[15] = 0x01;  // 16385: not a power of two
  EXPECT_EQ(FileHeader::Parse(bad).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(FileHeader::Parse(std::span(b).first(31)).status().code(),
            StatusCode::kCorruption);
}

TEST(ChunkLayoutTest, SizeMappingRoundTripsAndRejectsImpossibleSizes) {
  ChunkLayout l{64};
  for (uint64_t n = 0; n < 400; ++n) {
    auto back = l.PlaintextSize(l.CiphertextSize(n));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, n);
  }
  // Header only; a partial chunk shorter than nonce + tag; an extra empty
  // chunk after full ones.
  EXPECT_FALSE(l.PlaintextSize(32).ok());
  EXPECT_FALSE(l.PlaintextSize(32 + 92 + 10).ok());
  EXPECT_FALSE(l.PlaintextSize(32 + 92 + 28).ok());
}

TEST(ChunkCipherTest, OpenFailsForWrongIndexLastFlagFileIdOrKey) {
  FileHeader h;
  h.chunk_size = 64;
  h.file_id.fill(7);
  auto key = testing::Filled(32, 1);
  auto c = std::move(ChunkCipher::Create(key, h)).value();
  std::vector<uint8_t> pt(64, 0x5a), sealed(64 + kChunkOverhead), out(64);
  ASSERT_TRUE(c.Seal(3, false, pt, sealed).ok());
  ASSERT_TRUE(c.Open(3, false, sealed, out).ok());
  EXPECT_EQ(out, pt);
  EXPECT_EQ(c.Open(4, false, sealed, out).code(), StatusCode::kCorruption);
  EXPECT_EQ(c.Open(3, true, sealed, out).code(), StatusCode::kCorruption);
  EXPECT_EQ(out, std::vector<uint8_t>(64, 0)) << "plaintext wiped on failure";
  FileHeader other = h;
  other.file_id[0] ^= 1;
  auto c2 = std::move(ChunkCipher::Create(key, other)).value();
  EXPECT_EQ(c2.Open(3, false, sealed, out).code(), StatusCode::kCorruption);
  auto c3 = std::move(ChunkCipher::Create(testing::Filled(32, 2), h)).value();
  EXPECT_EQ(c3.Open(3, false, sealed, out).code(), StatusCode::kCorruption);
  for (size_t i = 0; i < sealed.size(); i += 13) {
    auto t = sealed;
    t[i] ^= 0x80;
    EXPECT_EQ(c.Open(3, false, t, out).code(), StatusCode::kCorruption) << i;
  }
}

TEST(ChunkCipherTest, SealUsesFreshNonces) {
  FileHeader h;
  auto c = std::move(ChunkCipher::Create(testing::Filled(32, 1), h)).value();
  std::vector<uint8_t> pt(100, 1), a(128), b(128);
  ASSERT_TRUE(c.Seal(0, true, pt, a).ok());
  ASSERT_TRUE(c.Seal(0, true, pt, b).ok());
  EXPECT_NE(a, b);
}

// Nonces come from a pool refilled 32 at a time: across several refills
// and across a move of the cipher, no nonce repeats and every chunk opens.
TEST(ChunkCipherTest, PooledNoncesNeverRepeatAcrossRefillsAndMoves) {
  FileHeader h;
  auto c = std::move(ChunkCipher::Create(testing::Filled(32, 1), h)).value();
  std::set<std::vector<uint8_t>> seen;
  std::vector<uint8_t> pt(64, 7), out(64 + kChunkOverhead), back(64);
  for (int i = 0; i < 200; ++i) {
    if (i == 45) {
      ChunkCipher moved = std::move(c);
      c = std::move(moved);
    }
    ASSERT_TRUE(c.Seal(i, false, pt, out).ok()) << i;
    EXPECT_TRUE(seen.emplace(out.begin(), out.begin() + kChunkNonceSize).second)
        << "nonce repeated at chunk " << i;
    ASSERT_TRUE(c.Open(i, false, out, back).ok()) << i;
    EXPECT_EQ(back, pt);
  }
}

TEST(ChunkCipherTest, CreateRejectsShortKey) {
  EXPECT_EQ(
      ChunkCipher::Create(testing::Filled(16, 1), FileHeader{}).status().code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volmgr::files
