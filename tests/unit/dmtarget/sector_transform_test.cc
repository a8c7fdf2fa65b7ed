#include "dmtarget/sector_transform.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "backend_under_test.h"
#include "evp_xts_reference.h"
#include "volmgr/base/secret_bytes.h"

namespace volmgr::dmtarget {
namespace {

using testing::DmCryptReference;
using testing::EvpXts;
using testing::KernelPlain64;
using testing::TestOptions;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

std::vector<uint8_t> RandomBytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

SecretBytes Secret(const std::vector<uint8_t>& bytes) {
  return std::move(SecretBytes::CopyOf(bytes)).value();
}

std::vector<uint8_t> TestKey(uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  return RandomBytes(XtsSectorTransform::kKeySize, rng);
}

XtsSectorTransform MakeOrDie(const std::vector<uint8_t>& key,
                             uint32_t sector_size, uint64_t iv_offset,
                             unsigned threads = 1) {
  auto xts = XtsSectorTransform::Create(Secret(key), sector_size, iv_offset,
                                        TestOptions(threads));
  EXPECT_TRUE(xts.ok()) << xts.status().ToString();
  return std::move(xts).value();
}

// ---------------------------------------------------------------------------
// Factory validation.

TEST(XtsSectorTransformCreate, CreateWithMismatchedKeySizeFails) {
  for (size_t size : {0u, 16u, 32u, 48u, 63u, 65u, 128u}) {
    std::vector<uint8_t> key(size);
    for (size_t i = 0; i < size; ++i) key[i] = static_cast<uint8_t>(i);
    auto xts = XtsSectorTransform::Create(Secret(key), 512, 0, TestOptions());
    ASSERT_FALSE(xts.ok()) << size;
    EXPECT_EQ(xts.status().code(), StatusCode::kInvalidArgument) << size;
    EXPECT_NE(xts.status().message().find(std::to_string(size)),
              std::string::npos)
        << xts.status().message();
  }
}

TEST(XtsSectorTransformCreate, CreateWithEqualKeyHalvesFails) {
  std::vector<uint8_t> key = TestKey();
  std::memcpy(key.data() + 32, key.data(), 32);
  auto xts = XtsSectorTransform::Create(Secret(key), 4096, 0, TestOptions());
  ASSERT_FALSE(xts.ok());
  EXPECT_EQ(xts.status().code(), StatusCode::kInvalidArgument);
  // One differing byte in either half is enough.
  key[63] ^= 1;
  EXPECT_TRUE(
      XtsSectorTransform::Create(Secret(key), 4096, 0, TestOptions()).ok());
}

TEST(XtsSectorTransformCreate, CreateWithBadSectorSizeFails) {
  for (uint32_t size : {0u, 1u, 256u, 520u, 3072u, 8192u, 65536u}) {
    auto xts =
        XtsSectorTransform::Create(Secret(TestKey()), size, 0, TestOptions());
    ASSERT_FALSE(xts.ok()) << size;
    EXPECT_EQ(xts.status().code(), StatusCode::kInvalidArgument) << size;
  }
}

TEST(XtsSectorTransformCreate, CreateWithBadThreadCountFails) {
  for (unsigned threads : {0u, XtsSectorTransform::kMaxThreads + 1}) {
    auto xts = XtsSectorTransform::Create(Secret(TestKey()), 512, 0,
                                          TestOptions(threads));
    ASSERT_FALSE(xts.ok()) << threads;
    EXPECT_EQ(xts.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(XtsSectorTransformCreate, AcceptsEveryLuks2SectorSize) {
  for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
    auto xts =
        XtsSectorTransform::Create(Secret(TestKey()), size, 7, TestOptions(3));
    ASSERT_TRUE(xts.ok()) << xts.status().ToString();
    EXPECT_EQ(xts->sector_size(), size);
    EXPECT_EQ(xts->iv_offset(), 7u);
    EXPECT_EQ(xts->threads(), 3u);
  }
}

TEST(XtsSectorTransformCreate, KeyMayBeDestroyedAfterCreate) {
  std::mt19937_64 rng(5);
  const std::vector<uint8_t> key = TestKey();
  std::optional<XtsSectorTransform> xts;
  {
    SecretBytes secret = Secret(key);
    auto created = XtsSectorTransform::Create(secret, 512, 0, TestOptions());
    ASSERT_TRUE(created.ok());
    xts.emplace(std::move(created).value());
  }
  const std::vector<uint8_t> pt = RandomBytes(1024, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(xts->Encrypt(3, pt, ct).ok());
  EXPECT_EQ(ct, DmCryptReference(true, key, 512, 0, 3, pt));
}

// ---------------------------------------------------------------------------
// Buffer validation.

TEST(XtsSectorTransformBuffers, MisalignedLengthRejected) {
  XtsSectorTransform xts = MakeOrDie(TestKey(), 4096, 0, 2);
  for (size_t len : {1u, 16u, 512u, 4095u, 4097u, 8192u + 512u}) {
    std::vector<uint8_t> in(len), out(len);
    Status enc = xts.Encrypt(0, in, out);
    Status dec = xts.Decrypt(0, in, out);
    EXPECT_EQ(enc.code(), StatusCode::kInvalidArgument) << len;
    EXPECT_EQ(dec.code(), StatusCode::kInvalidArgument) << len;
  }
}

TEST(XtsSectorTransformBuffers, MismatchedInputOutputSizesRejected) {
  XtsSectorTransform xts = MakeOrDie(TestKey(), 512, 0);
  std::vector<uint8_t> in(1024), out(512);
  EXPECT_EQ(xts.Encrypt(0, in, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(xts.Decrypt(0, out, in).code(), StatusCode::kInvalidArgument);
}

TEST(XtsSectorTransformBuffers, PartialOverlapRejected) {
  XtsSectorTransform xts = MakeOrDie(TestKey(), 512, 0);
  std::vector<uint8_t> buf(4096);
  std::span<const uint8_t> in(buf.data(), 2048);
  std::span<uint8_t> out(buf.data() + 512, 2048);
  EXPECT_EQ(xts.Encrypt(0, in, out).code(), StatusCode::kInvalidArgument);
  // Adjacent, non-overlapping halves are fine.
  std::span<uint8_t> after(buf.data() + 2048, 2048);
  EXPECT_TRUE(xts.Encrypt(0, in, after).ok());
}

TEST(XtsSectorTransformBuffers, EmptyBufferIsNoop) {
  XtsSectorTransform xts = MakeOrDie(TestKey(), 4096, 0, 2);
  EXPECT_TRUE(xts.Encrypt(kU64Max, {}, {}).ok());
  EXPECT_TRUE(xts.Decrypt(0, {}, {}).ok());
}

TEST(XtsSectorTransformBuffers, SectorNumberOverflowRejected) {
  std::vector<uint8_t> one(512), two(1024), big(4096);
  XtsSectorTransform s512 = MakeOrDie(TestKey(), 512, 0);
  // The last 512-byte sector number itself is representable...
  EXPECT_TRUE(s512.Encrypt(kU64Max, one, one).ok());
  // ...one past it is not.
  EXPECT_EQ(s512.Encrypt(kU64Max, two, two).code(),
            StatusCode::kInvalidArgument);
  XtsSectorTransform s4096 = MakeOrDie(TestKey(), 4096, 0);
  EXPECT_TRUE(s4096.Encrypt(kU64Max / 8, big, big).ok());
  EXPECT_EQ(s4096.Encrypt(kU64Max / 8 + 1, big, big).code(),
            StatusCode::kInvalidArgument);
}

TEST(XtsSectorTransformBuffers, InPlaceMatchesOutOfPlace) {
  std::mt19937_64 rng(11);
  XtsSectorTransform xts = MakeOrDie(TestKey(), 4096, 2048, 2);
  const std::vector<uint8_t> pt = RandomBytes(64 * 4096, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(xts.Encrypt(99, pt, ct).ok());
  std::vector<uint8_t> buf = pt;
  ASSERT_TRUE(xts.Encrypt(99, buf, buf).ok());
  EXPECT_EQ(buf, ct);
  ASSERT_TRUE(xts.Decrypt(99, buf, buf).ok());
  EXPECT_EQ(buf, pt);
}

// ---------------------------------------------------------------------------
// dm-crypt equivalence, without the kernel: the reference builds each tweak
// as crypt_iv_plain64_gen does and runs EVP once per data sector.

class DmCryptEquivalenceTest
    : public ::testing::TestWithParam<std::tuple<uint32_t, uint64_t>> {};

TEST_P(DmCryptEquivalenceTest, MatchesKernelPlain64) {
  const auto [sector_size, iv_offset] = GetParam();
  std::mt19937_64 rng(sector_size ^ iv_offset);
  const std::vector<uint8_t> key = TestKey(3);
  const std::vector<uint8_t> pt = RandomBytes(24 * sector_size, rng);
  for (uint64_t first : {uint64_t{0}, uint64_t{1}, uint64_t{1000003}}) {
    for (unsigned threads : {1u, 2u}) {
      XtsSectorTransform xts = MakeOrDie(key, sector_size, iv_offset, threads);
      std::vector<uint8_t> ct(pt.size());
      ASSERT_TRUE(xts.Encrypt(first, pt, ct).ok());
      EXPECT_EQ(ct,
                DmCryptReference(true, key, sector_size, iv_offset, first, pt));
      std::vector<uint8_t> back(pt.size());
      ASSERT_TRUE(xts.Decrypt(first, ct, back).ok());
      EXPECT_EQ(back, pt);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    SectorSizesAndIvOffsets, DmCryptEquivalenceTest,
    ::testing::Combine(::testing::Values(512u, 1024u, 2048u, 4096u),
                       // 32768 = a typical LUKS2 16 MiB data offset / 512.
                       ::testing::Values(uint64_t{0}, uint64_t{1},
                                         uint64_t{32768}, kU64Max - 5)),
    [](const ::testing::TestParamInfo<std::tuple<uint32_t, uint64_t>>& p) {
      return "Sector" + std::to_string(std::get<0>(p.param)) + "_IvOffset" +
             std::to_string(std::get<1>(p.param));
    });

// The dm-crypt fact that bites: with 4096-byte sectors the whole 4096 bytes
// is ONE XTS data unit whose tweak is the 512-byte sector number of its
// start plus iv_offset -- not eight 512-byte units.
TEST(DmCrypt4096, SectorIsOneDataUnitWithTweakIn512ByteUnits) {
  std::mt19937_64 rng(4096);
  const std::vector<uint8_t> key = TestKey(9);
  const uint64_t iv_offset = 777;
  XtsSectorTransform xts = MakeOrDie(key, 4096, iv_offset);
  const std::vector<uint8_t> pt = RandomBytes(3 * 4096, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(xts.Encrypt(5, pt, ct).ok());

  for (uint64_t k = 0; k < 3; ++k) {
    const std::span<const uint8_t> sector(pt.data() + k * 4096, 4096);
    const std::vector<uint8_t> got(ct.begin() + k * 4096,
                                   ct.begin() + (k + 1) * 4096);
    // Data sector 5+k starts at 512-byte sector (5+k)*8.
    const uint64_t iv = (5 + k) * 8 + iv_offset;
    EXPECT_EQ(got, EvpXts(true, key, KernelPlain64(iv), sector)) << k;

    // Wrong models: the 4096-byte sector number as the IV
    // (iv_large_sectors), and eight 512-byte units with IVs iv..iv+7.
    EXPECT_NE(got, EvpXts(true, key, KernelPlain64(5 + k + iv_offset), sector));
    std::vector<uint8_t> eight;
    for (uint64_t j = 0; j < 8; ++j) {
      std::vector<uint8_t> unit = EvpXts(true, key, KernelPlain64(iv + j),
                                         sector.subspan(j * 512, 512));
      eight.insert(eight.end(), unit.begin(), unit.end());
    }
    EXPECT_NE(got, eight) << k;
    // The first 512 bytes agree (same key, same tweak, XTS is a block-wise
    // mode): only the later blocks reveal the data-unit size.
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + 512, eight.begin()));
  }
}

TEST(DmCrypt4096, IvOffsetCountsIn512ByteSectors) {
  std::mt19937_64 rng(8);
  const std::vector<uint8_t> key = TestKey(2);
  const std::vector<uint8_t> pt = RandomBytes(4096, rng);
  std::vector<uint8_t> a(4096), b(4096);
  // Data sector 1 with iv_offset 0 has IV 8; so has sector 0 with offset 8.
  ASSERT_TRUE(MakeOrDie(key, 4096, 0).Encrypt(1, pt, a).ok());
  ASSERT_TRUE(MakeOrDie(key, 4096, 8).Encrypt(0, pt, b).ok());
  EXPECT_EQ(a, b);
  ASSERT_TRUE(MakeOrDie(key, 4096, 1).Encrypt(0, pt, b).ok());
  EXPECT_NE(a, b);
}

TEST(DmCrypt4096, IvOffsetWrapsModulo2To64LikeTheKernel) {
  std::mt19937_64 rng(64);
  const std::vector<uint8_t> key = TestKey(4);
  const std::vector<uint8_t> pt = RandomBytes(2 * 4096, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(MakeOrDie(key, 4096, kU64Max - 3).Encrypt(0, pt, ct).ok());
  // Sector 1: 8 + (2^64 - 4) = 4 (mod 2^64).
  EXPECT_TRUE(std::equal(ct.begin() + 4096, ct.end(),
                         EvpXts(true, key, KernelPlain64(4),
                                std::span<const uint8_t>(pt).subspan(4096))
                             .begin()));
}

// ---------------------------------------------------------------------------
// Backends: libgcrypt and OpenSSL give the same bytes (each is also held to
// the vectors and to the EVP reference on its own, see backend_under_test.h).

TEST(XtsSectorTransformBackends, LibgcryptAndOpenSslAgree) {
  using Backend = XtsSectorTransform::Backend;
  std::mt19937_64 rng(1619);
  const std::vector<uint8_t> key = TestKey(12);
  for (uint32_t sector_size : {512u, 1024u, 2048u, 4096u}) {
    for (uint64_t iv_offset : {uint64_t{0}, uint64_t{32768}, kU64Max - 3}) {
      auto gcrypt = XtsSectorTransform::Create(
          Secret(key), sector_size, iv_offset,
          {.threads = 2, .backend = Backend::kLibgcrypt});
      auto openssl = XtsSectorTransform::Create(
          Secret(key), sector_size, iv_offset,
          {.threads = 1, .backend = Backend::kOpenSsl});
      ASSERT_TRUE(gcrypt.ok()) << gcrypt.status().ToString();
      ASSERT_TRUE(openssl.ok()) << openssl.status().ToString();
      const std::vector<uint8_t> pt = RandomBytes(40 * sector_size, rng);
      const uint64_t first = rng() >> 24;
      std::vector<uint8_t> a(pt.size()), b(pt.size());
      ASSERT_TRUE(gcrypt->Encrypt(first, pt, a).ok());
      ASSERT_TRUE(openssl->Encrypt(first, pt, b).ok());
      EXPECT_EQ(a, b) << sector_size << " " << iv_offset;
      EXPECT_NE(a, pt);
      // Cross-direction: each decrypts what the other encrypted.
      ASSERT_TRUE(openssl->Decrypt(first, a, a).ok());
      ASSERT_TRUE(gcrypt->Decrypt(first, b, b).ok());
      EXPECT_EQ(a, pt);
      EXPECT_EQ(b, pt);
    }
  }
}

// ---------------------------------------------------------------------------
// Threads.

TEST(XtsSectorTransformThreads, MultiThreadMatchesSingleThread) {
  std::mt19937_64 rng(2024);
  const std::vector<uint8_t> key = TestKey(6);
  for (uint32_t sector_size : {512u, 4096u}) {
    XtsSectorTransform single = MakeOrDie(key, sector_size, 16);
    std::vector<XtsSectorTransform> multi;
    for (unsigned t : {2u, 3u, 4u, 8u}) {
      multi.push_back(MakeOrDie(key, sector_size, 16, t));
    }
    // Sizes straddle kMinBytesPerLane so both the inline and split paths
    // run, with uneven splits.
    for (size_t sectors : {1u, 2u, 7u, 17u, 129u, 255u, 256u, 257u, 1023u,
                           2047u, 2048u, 2049u, 4097u, 8191u}) {
      const std::vector<uint8_t> pt = RandomBytes(sectors * sector_size, rng);
      const uint64_t first = rng() >> 20;
      std::vector<uint8_t> want(pt.size());
      ASSERT_TRUE(single.Encrypt(first, pt, want).ok());
      for (const XtsSectorTransform& m : multi) {
        std::vector<uint8_t> got(pt.size());
        ASSERT_TRUE(m.Encrypt(first, pt, got).ok());
        EXPECT_EQ(got, want)
            << sector_size << "x" << sectors << " threads " << m.threads();
        ASSERT_TRUE(m.Decrypt(first, got, got).ok());
        EXPECT_EQ(got, pt) << sector_size << "x" << sectors << " threads "
                           << m.threads();
      }
    }
  }
}

TEST(XtsSectorTransformThreads, ConcurrentCallersOnOneObject) {
  const std::vector<uint8_t> key = TestKey(7);
  XtsSectorTransform xts = MakeOrDie(key, 4096, 0, 2);
  std::mt19937_64 rng(1);
  // Large enough for the workers to take part (> 2 * kMinBytesPerLane).
  const std::vector<uint8_t> pt = RandomBytes(1024 * 4096, rng);
  const std::vector<uint8_t> want = DmCryptReference(true, key, 4096, 0, 0, pt);
  std::vector<std::thread> callers;
  std::vector<int> ok(4, 0);
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      std::vector<uint8_t> out(pt.size());
      bool all = true;
      for (int i = 0; i < 20; ++i) {
        all = all && xts.Encrypt(0, pt, out).ok() && out == want;
      }
      ok[c] = all ? 1 : 0;
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST(XtsSectorTransformThreads, MovedTransformKeepsWorking) {
  std::mt19937_64 rng(3);
  const std::vector<uint8_t> key = TestKey(8);
  XtsSectorTransform a = MakeOrDie(key, 512, 0, 4);
  XtsSectorTransform b = std::move(a);
  // 4 MiB: the moved object's workers run (> 2 * kMinBytesPerLane).
  const std::vector<uint8_t> pt = RandomBytes(8192 * 512, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(b.Encrypt(0, pt, ct).ok());
  EXPECT_EQ(ct, DmCryptReference(true, key, 512, 0, 0, pt));
}

// ---------------------------------------------------------------------------
// Tampering: XTS has no integrity, but damage stays where it was done.

TEST(XtsSectorTransformTamper, BitFlipGarblesOnlyItsBlockInItsSector) {
  std::mt19937_64 rng(77);
  XtsSectorTransform xts = MakeOrDie(TestKey(10), 4096, 0, 2);
  const std::vector<uint8_t> pt = RandomBytes(64 * 4096, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(xts.Encrypt(0, pt, ct).ok());
  const size_t flip = 33 * 4096 + 1000;  // inside the second lane's run
  ct[flip] ^= 0x01;
  std::vector<uint8_t> back(pt.size());
  ASSERT_TRUE(xts.Decrypt(0, ct, back).ok());
  const size_t block = flip / 16 * 16;
  for (size_t i = 0; i < pt.size(); i += 16) {
    const bool same =
        std::equal(back.begin() + i, back.begin() + i + 16, pt.begin() + i);
    EXPECT_EQ(same, i != block) << "block at " << i;
  }
}

TEST(XtsSectorTransformTamper, SwappedSectorsDoNotDecrypt) {
  std::mt19937_64 rng(78);
  XtsSectorTransform xts = MakeOrDie(TestKey(11), 4096, 0);
  const std::vector<uint8_t> pt = RandomBytes(2 * 4096, rng);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(xts.Encrypt(10, pt, ct).ok());
  std::swap_ranges(ct.begin(), ct.begin() + 4096, ct.begin() + 4096);
  std::vector<uint8_t> back(pt.size());
  ASSERT_TRUE(xts.Decrypt(10, ct, back).ok());
  EXPECT_FALSE(
      std::equal(back.begin(), back.begin() + 4096, pt.begin() + 4096));
  EXPECT_FALSE(std::equal(back.begin() + 4096, back.end(), pt.begin()));
}

TEST(XtsSectorTransformTamper, WrongSectorNumberDoesNotDecrypt) {
  std::mt19937_64 rng(79);
  XtsSectorTransform xts = MakeOrDie(TestKey(12), 512, 0);
  const std::vector<uint8_t> pt = RandomBytes(512, rng);
  std::vector<uint8_t> ct(512), back(512);
  ASSERT_TRUE(xts.Encrypt(41, pt, ct).ok());
  ASSERT_TRUE(xts.Decrypt(42, ct, back).ok());
  EXPECT_NE(back, pt);
  ASSERT_TRUE(xts.Decrypt(41, ct, back).ok());
  EXPECT_EQ(back, pt);
}

}  // namespace
}  // namespace volmgr::dmtarget
