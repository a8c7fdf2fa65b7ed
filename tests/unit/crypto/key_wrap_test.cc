#include "volmgr/crypto/key_wrap.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/testing/vector_file.h"
#include "volmgr/crypto/aead.h"
#include "volmgr/crypto/internal/aes_gcm.h"

namespace volmgr::crypto {
namespace {

using testing::LoadVectorFile;
using testing::VectorRecord;

SecretBytes Secret(std::span<const uint8_t> bytes) {
  return std::move(SecretBytes::CopyOf(bytes)).value();
}

SecretBytes Filled(size_t n, uint8_t v) {
  return Secret(std::vector<uint8_t>(n, v));
}

WrapContext VmkContext() {
  return {"vmk", "7d444840-9dc0-11d1-b245-5ffdce74fad2", "slot-0",
          "passphrase"};
}

struct Fixture {
  SecretBytes kek = Filled(32, 0x11);
  SecretBytes key = Filled(32, 0x22);
  WrapContext ctx = VmkContext();
  WrappedKey wrapped = std::move(WrapKey(kek, key, ctx)).value();
};

TEST(KeyWrapTest, RoundTripsEveryWrappableKeySize) {
  const SecretBytes kek = Filled(32, 1);
  for (size_t n : {16, 32, 48, 64}) {
    const SecretBytes key = SecretBytes::Random(n).value();
    auto wrapped = WrapKey(kek, key, VmkContext());
    ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
    EXPECT_EQ(wrapped->bytes().size(), WrappedKey::kOverhead + n);
    EXPECT_EQ(wrapped->version(), kWrappedKeyVersion1);
    EXPECT_EQ(wrapped->key_size(), n);
    auto back = UnwrapKey(kek, *wrapped, VmkContext());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(back->ConstantTimeEquals(key));
  }
}

TEST(KeyWrapTest, WrappingTwiceGivesDifferentBlobs) {
  Fixture f;
  auto again = WrapKey(f.kek, f.key, f.ctx);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->bytes(), f.wrapped.bytes());
  EXPECT_NE(
      std::vector<uint8_t>(again->nonce().begin(), again->nonce().end()),
      std::vector<uint8_t>(f.wrapped.nonce().begin(), f.wrapped.nonce().end()));
}

TEST(KeyWrapTest, CiphertextDoesNotContainKey) {
  Fixture f;
  EXPECT_FALSE(f.key.ConstantTimeEquals(f.wrapped.ciphertext()));
}

// Every bit of the serialized blob is covered: the version byte by the
// parser (kCorruption), all others by the GCM tag (kAuthFailed).
TEST(KeyWrapTest, EveryTamperedBitIsRejected) {
  Fixture f;
  const std::vector<uint8_t>& good = f.wrapped.bytes();
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> bad = good;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      auto r = UnwrapKey(f.kek, bad, f.ctx);
      ASSERT_FALSE(r.ok()) << "byte " << i << " bit " << bit;
      EXPECT_EQ(r.status().code(),
                i == 0 ? StatusCode::kCorruption : StatusCode::kAuthFailed)
          << "byte " << i << " bit " << bit << ": " << r.status().ToString();
    }
  }
}

TEST(KeyWrapTest, WrongKekFailsAuth) {
  Fixture f;
  for (uint8_t v : {0x00, 0x12, 0xff}) {
    EXPECT_EQ(UnwrapKey(Filled(32, v), f.wrapped, f.ctx).status().code(),
              StatusCode::kAuthFailed);
  }
  // One bit of difference in the KEK is enough.
  std::vector<uint8_t> near(32, 0x11);
  near[31] ^= 1;
  EXPECT_EQ(UnwrapKey(Secret(near), f.wrapped, f.ctx).status().code(),
            StatusCode::kAuthFailed);
}

TEST(KeyWrapTest, EachContextFieldIsBound) {
  Fixture f;
  std::string WrapContext::*const fields[] = {
      &WrapContext::purpose, &WrapContext::volume_uuid,
      &WrapContext::protector_id, &WrapContext::protector_kind};
  for (auto field : fields) {
    for (const char* change : {"x", "suffix", "\0"}) {
      WrapContext other = f.ctx;
      (other.*field).append(change, change[0] == '\0' ? 1 : strlen(change));
      EXPECT_EQ(UnwrapKey(f.kek, f.wrapped, other).status().code(),
                StatusCode::kAuthFailed)
          << other.purpose << "|" << other.volume_uuid << "|"
          << other.protector_id << "|" << other.protector_kind;
    }
    WrapContext emptied = f.ctx;
    (emptied.*field).clear();
    const StatusCode code =
        UnwrapKey(f.kek, f.wrapped, emptied).status().code();
    // An empty purpose is refused before decryption.
    EXPECT_EQ(code, field == &WrapContext::purpose
                        ? StatusCode::kInvalidArgument
                        : StatusCode::kAuthFailed);
  }
}

TEST(KeyWrapTest, FieldsAreCaseSensitive) {
  Fixture f;
  WrapContext upper = f.ctx;
  upper.volume_uuid = "7D444840-9DC0-11D1-B245-5FFDCE74FAD2";
  EXPECT_EQ(UnwrapKey(f.kek, f.wrapped, upper).status().code(),
            StatusCode::kAuthFailed);
}

TEST(KeyWrapTest, MovingToAnotherVolumeFails) {
  Fixture f;
  WrapContext other = f.ctx;
  other.volume_uuid = "0f3c2a7e-1b4d-4c8e-9a6f-2d5e7b9c1a3f";
  EXPECT_EQ(UnwrapKey(f.kek, f.wrapped, other).status().code(),
            StatusCode::kAuthFailed);
  // ...even after a base64 round trip through a token.
  auto copied = WrappedKey::FromBase64(f.wrapped.ToBase64());
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(UnwrapKey(f.kek, *copied, other).status().code(),
            StatusCode::kAuthFailed);
  EXPECT_TRUE(UnwrapKey(f.kek, *copied, f.ctx).ok());
}

TEST(KeyWrapTest, FieldBoundariesCannotShift) {
  // Without length prefixes these two would both be "vmk" + "ab" + ...
  const WrapContext a{"vmk", "ab", "c", "k"};
  const WrapContext b{"vmk", "a", "bc", "k"};
  auto ea = EncodeWrapContext(a), eb = EncodeWrapContext(b);
  ASSERT_TRUE(ea.ok() && eb.ok());
  EXPECT_NE(*ea, *eb);
  const SecretBytes kek = Filled(32, 3), key = Filled(32, 4);
  auto wrapped = WrapKey(kek, key, a);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(UnwrapKey(kek, *wrapped, b).status().code(),
            StatusCode::kAuthFailed);
}

TEST(KeyWrapTest, TruncatedBlobIsRejected) {
  Fixture f;
  const std::vector<uint8_t>& good = f.wrapped.bytes();
  for (size_t n = 0; n < good.size(); ++n) {
    const std::span<const uint8_t> cut(good.data(), n);
    auto r = UnwrapKey(f.kek, cut, f.ctx);
    ASSERT_FALSE(r.ok()) << n;
    // 45 = 29 + a 16-byte key: a valid length for some other blob, so it
    // reaches (and fails) authentication; every other length is malformed.
    EXPECT_EQ(r.status().code(), n == WrappedKey::kOverhead + 16
                                     ? StatusCode::kAuthFailed
                                     : StatusCode::kCorruption)
        << n;
  }
}

TEST(KeyWrapTest, ExtendedBlobIsRejected) {
  Fixture f;
  for (size_t extra = 1; extra <= 40; ++extra) {
    std::vector<uint8_t> longer = f.wrapped.bytes();
    longer.resize(longer.size() + extra, 0);
    auto r = UnwrapKey(f.kek, longer, f.ctx);
    ASSERT_FALSE(r.ok()) << extra;
    EXPECT_EQ(r.status().code(), extra % 16 == 0 ? StatusCode::kAuthFailed
                                                 : StatusCode::kCorruption)
        << extra;
  }
}

TEST(KeyWrapTest, UnknownVersionIsCorruption) {
  Fixture f;
  for (int v : {0, 2, 0x81, 0xff}) {
    std::vector<uint8_t> bad = f.wrapped.bytes();
    bad[0] = static_cast<uint8_t>(v);
    EXPECT_EQ(WrappedKey::FromBytes(bad).status().code(),
              StatusCode::kCorruption)
        << v;
  }
}

TEST(KeyWrapTest, RejectsBadSizesAndContext) {
  const SecretBytes kek = Filled(32, 1), key = Filled(32, 2);
  EXPECT_EQ(WrapKey(Filled(16, 1), key, VmkContext()).status().code(),
            StatusCode::kInvalidArgument);
  for (size_t n : {0, 1, 15, 31, 33, 80}) {
    EXPECT_EQ(WrapKey(kek, Filled(n, 2), VmkContext()).status().code(),
              StatusCode::kInvalidArgument)
        << n;
  }
  WrapContext no_purpose = VmkContext();
  no_purpose.purpose.clear();
  EXPECT_EQ(WrapKey(kek, key, no_purpose).status().code(),
            StatusCode::kInvalidArgument);
  WrapContext huge = VmkContext();
  huge.protector_id.assign(kWrapContextMaxFieldSize + 1, 'a');
  EXPECT_EQ(WrapKey(kek, key, huge).status().code(),
            StatusCode::kInvalidArgument);
  auto wrapped = WrapKey(kek, key, VmkContext());
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(UnwrapKey(Filled(31, 1), *wrapped, VmkContext()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(KeyWrapTest, Base64RoundTrip) {
  Fixture f;
  const std::string text = f.wrapped.ToBase64();
  EXPECT_EQ(text.size(), (f.wrapped.bytes().size() + 2) / 3 * 4);
  auto parsed = WrappedKey::FromBase64(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, f.wrapped);
}

TEST(KeyWrapTest, Base64IsStrict) {
  Fixture f;
  // 61 bytes = 3 * 20 + 1: the text ends in "xY==".
  const std::string good = f.wrapped.ToBase64();
  ASSERT_EQ(good.substr(good.size() - 2), "==");
  std::vector<std::string> bad = {
      "",
      "A",
      good + "\n",
      " " + good,
      good.substr(0, good.size() - 1),  // missing padding
      good + "====",
      good.substr(0, 20) + "\n" + good.substr(20),
      good.substr(0, 10) + "*" + good.substr(11),
      good.substr(0, 10) + "=" + good.substr(11),  // '=' inside
      good.substr(0, 10) + "-" + good.substr(11),  // base64url alphabet
  };
  // Non-canonical: in "xY==", Y carries 2 data bits and 4 bits that must be
  // zero (RFC 4648 section 3.5). Setting one must be rejected, not decoded
  // to the same bytes.
  {
    std::string nc = good;
    const std::string alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t pos = nc.size() - 3;
    const size_t idx = alphabet.find(nc[pos]);
    nc[pos] = alphabet[idx ^ 1];
    bad.push_back(nc);
  }
  for (const auto& text : bad) {
    EXPECT_EQ(WrappedKey::FromBase64(text).status().code(),
              StatusCode::kCorruption)
        << "'" << text << "'";
  }
}

// The format pinned by a vector made with an independent implementation
// (tests/vectors/key_wrap/README.md).
class KeyWrapFormatTest : public ::testing::TestWithParam<VectorRecord> {};

TEST_P(KeyWrapFormatTest, MatchesIndependentEncoding) {
  const VectorRecord& r = GetParam();
  ASSERT_TRUE(r.load_error.empty()) << r.load_error;
  const WrapContext ctx{r.Field("Purpose"), r.Field("VolumeUuid"),
                        r.Field("ProtectorId"), r.Field("ProtectorKind")};
  auto aad = EncodeWrapContext(ctx);
  ASSERT_TRUE(aad.ok());
  EXPECT_EQ(*aad, r.Hex("AAD"));

  const SecretBytes kek = Secret(r.Hex("KEK"));
  const SecretBytes key = Secret(r.Hex("Key"));
  auto wrapped = WrappedKey::FromBase64(r.Field("Base64"));
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(wrapped->bytes(), r.Hex("Wrapped"));
  auto back = UnwrapKey(kek, *wrapped, ctx);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->ConstantTimeEquals(key));

  // Rebuild the blob from its parts with the vector's nonce.
  std::vector<uint8_t> blob = {kWrappedKeyVersion1};
  blob.insert(blob.end(), wrapped->nonce().begin(), wrapped->nonce().end());
  std::vector<uint8_t> ct(key.size()), tag(kAesGcmTagSize);
  ASSERT_TRUE(internal::AesGcmEncryptWithNonce(kek, wrapped->nonce(),
                                               key.Reveal(), *aad, ct, tag)
                  .ok());
  blob.insert(blob.end(), ct.begin(), ct.end());
  blob.insert(blob.end(), tag.begin(), tag.end());
  EXPECT_EQ(blob, r.Hex("Wrapped"));
}

INSTANTIATE_TEST_SUITE_P(
    V1, KeyWrapFormatTest,
    ::testing::ValuesIn(LoadVectorFile(VOLMGR_VECTORS_DIR
                                       "/key_wrap/volmgr_wrap_v1.txt")),
    testing::NameFromField("Case", "Case"));

}  // namespace
}  // namespace volmgr::crypto
