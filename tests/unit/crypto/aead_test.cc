#include "volmgr/crypto/aead.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <set>
#include <string>
#include <vector>

#include "tests/unit/testing/vector_file.h"
#include "volmgr/crypto/internal/aes_gcm.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::crypto {
namespace {

using testing::LoadVectorFile;
using testing::VectorRecord;

SecretBytes Key(std::span<const uint8_t> bytes) {
  return std::move(SecretBytes::CopyOf(bytes)).value();
}

SecretBytes TestKey(uint8_t fill) {
  std::vector<uint8_t> k(kAesGcmKeySize, fill);
  return Key(k);
}

std::string CavpName(const ::testing::TestParamInfo<VectorRecord>& p) {
  const VectorRecord& r = p.param;
  if (!r.load_error.empty()) return "LoadError";
  auto attr = [&](const std::string& n) {
    auto it = r.section.find(n);
    return it == r.section.end() ? std::string("x") : it->second;
  };
  return testing::SanitizeTestName("PT" + attr("PTlen") + "_AAD" +
                                   attr("AADlen") + "_Count" +
                                   r.Field("Count"));
}

// Checks the record's lengths against its section header (bits), so a
// mistyped value shows up as a length error, not only as a tag mismatch.
void ExpectLengthsMatchSection(const VectorRecord& r, size_t key, size_t iv,
                               size_t text, size_t aad, size_t tag) {
  auto bits = [&](const char* name) {
    return static_cast<size_t>(std::stoul(r.section.at(name)));
  };
  EXPECT_EQ(key * 8, bits("Keylen")) << r.Where();
  EXPECT_EQ(iv * 8, bits("IVlen")) << r.Where();
  EXPECT_EQ(text * 8, bits("PTlen")) << r.Where();
  EXPECT_EQ(aad * 8, bits("AADlen")) << r.Where();
  EXPECT_EQ(tag * 8, bits("Taglen")) << r.Where();
}

// NIST CAVP gcmEncryptExtIV256.rsp: encryption with an external IV must
// reproduce CT and Tag.
class CavpGcmEncryptTest : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(CavpGcmEncryptTest, ReproducesCiphertextAndTag) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const SecretBytes key = Key(r.Hex("Key"));
  const auto iv = r.Hex("IV"), pt = r.Hex("PT"), aad = r.Hex("AAD"),
             ct = r.Hex("CT"), tag = r.Hex("Tag");
  ExpectLengthsMatchSection(r, key.size(), iv.size(), pt.size(), aad.size(),
                            tag.size());
  std::vector<uint8_t> got_ct(pt.size()), got_tag(kAesGcmTagSize);
  ASSERT_TRUE(
      internal::AesGcmEncryptWithNonce(key, iv, pt, aad, got_ct, got_tag).ok());
  EXPECT_EQ(got_ct, ct) << r.Where();
  EXPECT_EQ(got_tag, tag) << r.Where();

  std::vector<uint8_t> back(ct.size());
  ASSERT_TRUE(
      internal::AesGcmDecryptWithNonce(key, iv, ct, aad, tag, back).ok());
  EXPECT_EQ(back, pt);
}

INSTANTIATE_TEST_SUITE_P(
    GcmEncryptExtIV256, CavpGcmEncryptTest,
    ::testing::ValuesIn(LoadVectorFile(VOLMGR_VECTORS_DIR
                                       "/aes_gcm/gcmEncryptExtIV256.rsp")),
    CavpName);

// NIST CAVP gcmDecrypt256.rsp: PASS records decrypt to PT; FAIL records are
// rejected as kAuthFailed with nothing left in the output buffer.
class CavpGcmDecryptTest : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(CavpGcmDecryptTest, DecryptsOrRejects) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const SecretBytes key = Key(r.Hex("Key"));
  const auto iv = r.Hex("IV"), ct = r.Hex("CT"), aad = r.Hex("AAD"),
             tag = r.Hex("Tag");
  ExpectLengthsMatchSection(r, key.size(), iv.size(), ct.size(), aad.size(),
                            tag.size());
  std::vector<uint8_t> out(ct.size(), 0xAA);
  const Status s = internal::AesGcmDecryptWithNonce(key, iv, ct, aad, tag, out);
  if (r.fail) {
    EXPECT_EQ(s.code(), StatusCode::kAuthFailed) << r.Where();
    EXPECT_EQ(out, std::vector<uint8_t>(ct.size(), 0)) << "plaintext leaked";
    EXPECT_EQ(ERR_peek_error(), 0u) << "auth failure left an OpenSSL error";
  } else {
    ASSERT_TRUE(s.ok()) << r.Where() << ": " << s.ToString();
    EXPECT_EQ(out, r.Hex("PT")) << r.Where();
  }
}

INSTANTIATE_TEST_SUITE_P(GcmDecrypt256, CavpGcmDecryptTest,
                         ::testing::ValuesIn(LoadVectorFile(
                             VOLMGR_VECTORS_DIR "/aes_gcm/gcmDecrypt256.rsp")),
                         CavpName);

TEST(CavpGcmDecryptFileTest, HasFailRecords) {
  int fails = 0;
  for (const auto& r :
       LoadVectorFile(VOLMGR_VECTORS_DIR "/aes_gcm/gcmDecrypt256.rsp")) {
    fails += r.fail;
  }
  EXPECT_GE(fails, 1);
}

TEST(AesGcmTest, SealOpenRoundTrip) {
  const SecretBytes key = TestKey(7);
  const std::vector<uint8_t> pt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<uint8_t> aad = {'v', 'o', 'l'};
  auto sealed = AesGcmSeal(key, pt, aad);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->size(), pt.size() + kAesGcmOverhead);
  auto opened = AesGcmOpen(key, *sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->ConstantTimeEquals(pt));
}

TEST(AesGcmTest, EmptyPlaintextAndAssociatedDataRoundTrip) {
  const SecretBytes key = TestKey(1);
  auto sealed = AesGcmSeal(key, {}, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kAesGcmOverhead);
  auto opened = AesGcmOpen(key, *sealed, {});
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

TEST(AesGcmTest, SealUsesFreshNonces) {
  const SecretBytes key = TestKey(2);
  const std::vector<uint8_t> pt(32, 0);
  std::set<std::vector<uint8_t>> nonces;
  for (int i = 0; i < 16; ++i) {
    auto sealed = AesGcmSeal(key, pt, {});
    ASSERT_TRUE(sealed.ok());
    nonces.emplace(sealed->begin(), sealed->begin() + kAesGcmNonceSize);
  }
  EXPECT_EQ(nonces.size(), 16u);
}

TEST(AesGcmTest, OpenWithAnyFlippedBitFailsAuth) {
  const SecretBytes key = TestKey(3);
  const std::vector<uint8_t> pt(20, 0x5c), aad = {9, 9};
  auto sealed = AesGcmSeal(key, pt, aad);
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> bad = *sealed;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_EQ(AesGcmOpen(key, bad, aad).status().code(),
                StatusCode::kAuthFailed)
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(AesGcmTest, OpenWithWrongKeyOrAssociatedDataFailsAuth) {
  const SecretBytes key = TestKey(4);
  const std::vector<uint8_t> pt(16, 1), aad = {1, 2, 3};
  auto sealed = AesGcmSeal(key, pt, aad);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AesGcmOpen(TestKey(5), *sealed, aad).status().code(),
            StatusCode::kAuthFailed);
  const std::vector<uint8_t> other_aad = {1, 2, 4};
  EXPECT_EQ(AesGcmOpen(key, *sealed, other_aad).status().code(),
            StatusCode::kAuthFailed);
  EXPECT_EQ(AesGcmOpen(key, *sealed, {}).status().code(),
            StatusCode::kAuthFailed);
}

TEST(AesGcmTest, OpenTooShortIsCorruption) {
  const SecretBytes key = TestKey(6);
  const std::vector<uint8_t> short_msg(kAesGcmOverhead - 1, 0);
  EXPECT_EQ(AesGcmOpen(key, short_msg, {}).status().code(),
            StatusCode::kCorruption);
}

TEST(AesGcmTest, WrongKeySizeIsInvalidArgument) {
  const std::vector<uint8_t> k16(16, 0);
  const SecretBytes key = Key(k16);
  EXPECT_EQ(AesGcmSeal(key, {}, {}).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<uint8_t> msg(kAesGcmOverhead, 0);
  EXPECT_EQ(AesGcmOpen(key, msg, {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(OpenSslErrorTest, DrainsQueueIntoStatus) {
  ERR_clear_error();
  // Provoke a real OpenSSL error: fetch an algorithm no provider has.
  EvpCipherPtr none(EVP_CIPHER_fetch(nullptr, "NO-SUCH-CIPHER", nullptr));
  ASSERT_TRUE(none == nullptr);
  ASSERT_NE(ERR_peek_error(), 0u);
  const Status s = OpenSslError("fetching cipher");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.foreign().source, ForeignSource::kOpenSsl);
  EXPECT_NE(s.foreign().value, 0);
  EXPECT_EQ(s.message().rfind("fetching cipher: ", 0), 0u) << s.message();
  EXPECT_EQ(ERR_peek_error(), 0u) << "queue not drained";
}

TEST(OpenSslErrorTest, EmptyQueueStillFails) {
  ERR_clear_error();
  const Status s = OpenSslError("step");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.foreign().source, ForeignSource::kOpenSsl);
}

}  // namespace
}  // namespace volmgr::crypto
