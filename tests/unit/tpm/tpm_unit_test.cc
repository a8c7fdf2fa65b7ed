// Unit tests for the TPM code that need no TPM: TSS2_RC decoding, PCR
// selections, the software policy digest, sealed-blob parsing, and the
// swtpm log parser the integration tests rely on.
#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

#include <array>
#include <vector>

#include "tests/unit/tpm/swtpm_harness.h"
#include "tpm/pcr_policy.h"
#include "tpm/sealed_blob.h"
#include "tpm/tss_handles.h"

namespace volmgr::tpm {
namespace {

Sha256Digest FromHex(std::string_view hex) {
  Sha256Digest d{};
  for (size_t i = 0; i < 32; ++i) {
    d[i] = static_cast<uint8_t>(
        std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  }
  return d;
}

TEST(TssErrorTest, MasksParameterHandleAndSessionNumbers) {
  EXPECT_EQ(TssBaseCode(TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_1),
            TPM2_RC_AUTH_FAIL);
  EXPECT_EQ(TssBaseCode(TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1), TPM2_RC_VALUE);
  EXPECT_EQ(TssBaseCode(TPM2_RC_HANDLE + TPM2_RC_H + (TPM2_RC_1 * 2)),
            TPM2_RC_HANDLE);
  EXPECT_EQ(TssBaseCode(TPM2_RC_LOCKOUT), TPM2_RC_LOCKOUT);
}

TEST(TssErrorTest, WrongPinIsAuthFailedWithAnySessionNumber) {
  for (TSS2_RC n = 1; n <= 3; ++n) {
    Status s = TssError(TPM2_RC_AUTH_FAIL + TPM2_RC_S + n * TPM2_RC_1,
                        "TPM2_Unseal", TssOp::kObjectAuth);
    EXPECT_EQ(s.code(), StatusCode::kAuthFailed) << s.ToString();
    EXPECT_NE(s.message().find("wrong PIN"), std::string::npos);
    EXPECT_EQ(s.foreign().source, ForeignSource::kTss2);
  }
  EXPECT_EQ(TssError(TPM2_RC_BAD_AUTH + TPM2_RC_S + TPM2_RC_1, "x").code(),
            StatusCode::kAuthFailed);
}

TEST(TssErrorTest, LockoutIsUnavailable) {
  Status s = TssError(TPM2_RC_LOCKOUT, "TPM2_Unseal", TssOp::kObjectAuth);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("dictionary-attack lockout"), std::string::npos);
  EXPECT_EQ(s.foreign().value, TPM2_RC_LOCKOUT);
}

TEST(TssErrorTest, PolicyFailuresAreAuthFailed) {
  EXPECT_EQ(TssError(TPM2_RC_POLICY_FAIL + TPM2_RC_S + TPM2_RC_1, "x").code(),
            StatusCode::kAuthFailed);
  Status s = TssError(TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1, "TPM2_PolicyPCR",
                      TssOp::kPolicy);
  EXPECT_EQ(s.code(), StatusCode::kAuthFailed);
  EXPECT_NE(s.message().find("PCR policy not satisfied"), std::string::npos);
  // The same code outside a policy command is not an auth failure.
  EXPECT_EQ(TssError(TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1, "x").code(),
            StatusCode::kInternal);
}

TEST(TssErrorTest, OwnerAuthFailureIsFailedPrecondition) {
  Status s = TssError(TPM2_RC_BAD_AUTH + TPM2_RC_S + TPM2_RC_1, "creating SRK",
                      TssOp::kOwnerAuth);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("owner hierarchy auth is set"), std::string::npos);
  EXPECT_EQ(TssError(TPM2_RC_HIERARCHY + TPM2_RC_H + TPM2_RC_1, "x").code(),
            StatusCode::kFailedPrecondition);
}

TEST(TssErrorTest, TctiAndIoErrorsAreUnavailable) {
  Status s = TssError(TSS2_TCTI_RC_IO_ERROR, "no TPM at device:/dev/tpmrm0");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no TPM at device:/dev/tpmrm0"),
            std::string::npos);
  EXPECT_EQ(TssError(TSS2_RC_LAYER(7) | TSS2_BASE_RC_NO_CONNECTION, "x").code(),
            StatusCode::kUnavailable);
}

TEST(TssErrorTest, LoadOfForgedObjectIsCorruption) {
  EXPECT_EQ(TssError(TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1, "x").code(),
            StatusCode::kCorruption);
  EXPECT_EQ(TssError(TPM2_RC_ATTRIBUTES + TPM2_RC_P + TPM2_RC_2, "x",
                     TssOp::kLoadSealed)
                .code(),
            StatusCode::kCorruption);
}

TEST(PcrSelectionTest, RejectsBadInput) {
  EXPECT_EQ(PcrSelection::Sha256(std::vector<uint32_t>{24}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PcrSelection::Sha256(std::vector<uint32_t>{}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PcrSelection::Create(TPM2_ALG_SHA1, std::vector<uint32_t>{7})
                .status()
                .code(),
            StatusCode::kUnsupported);
  auto sel = PcrSelection::Sha256(std::vector<uint32_t>{7, 0, 16});
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(sel->ToString(), "sha256:0,7,16");
  TPML_PCR_SELECTION t = sel->ToTpml();
  EXPECT_EQ(t.count, 1u);
  EXPECT_EQ(t.pcrSelections[0].sizeofSelect, 3);
  EXPECT_EQ(t.pcrSelections[0].pcrSelect[0], 0x81);
  EXPECT_EQ(t.pcrSelections[0].pcrSelect[1], 0x00);
  EXPECT_EQ(t.pcrSelections[0].pcrSelect[2], 0x01);
}

// Expected values computed independently (Python hashlib) from Part 3
// §23.7/§23.18: H(0^32 || 0000017F || 00000001 000B 03 800000 ||
// H(0^32)), then H(that || 0000016B).
TEST(PolicyDigestTest, KnownAnswerPcr7Zero) {
  auto sel = PcrSelection::Sha256(std::vector<uint32_t>{7});
  ASSERT_TRUE(sel.ok());
  std::vector<PcrValue> values = {PcrValue{7, Sha256Digest{}}};
  auto pcr_only = ComputePolicyDigest(*sel, values, false);
  ASSERT_TRUE(pcr_only.ok());
  EXPECT_EQ(*pcr_only, FromHex("8b5682d81b29435d08d79278150611dc"
                               "7e5923b2fefcce684a09577b40130a8b"));
  auto with_pin = ComputePolicyDigest(*sel, values, true);
  ASSERT_TRUE(with_pin.ok());
  EXPECT_EQ(*with_pin, FromHex("b8db92fae7c1e0c588e7352d2fc10f27"
                               "c7b384e32f706a520cb10bf7ffee8970"));
}

TEST(PolicyDigestTest, ValuesMustMatchSelection) {
  auto sel = PcrSelection::Sha256(std::vector<uint32_t>{0, 7});
  ASSERT_TRUE(sel.ok());
  std::vector<PcrValue> values = {PcrValue{7, {}}, PcrValue{0, {}}};
  EXPECT_EQ(ComputePolicyDigest(*sel, values, false).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SealedBlobTest, EvilInputsAreRejected) {
  EXPECT_EQ(ParseSealedBlob({}).status().code(), StatusCode::kCorruption);
  std::vector<uint8_t> junk = {'V', 'M', 'T', 'S', 0, 1, 0, 0};
  EXPECT_EQ(ParseSealedBlob(junk).status().code(), StatusCode::kCorruption);
  std::vector<uint8_t> future = {'V', 'M', 'T', 'S', 0, 2, 0, 0};
  EXPECT_EQ(ParseSealedBlob(future).status().code(), StatusCode::kUnsupported);
  std::vector<uint8_t> wrong_magic = {'L', 'U', 'K', 'S', 0, 1, 0, 0};
  EXPECT_EQ(ParseSealedBlob(wrong_magic).status().code(),
            StatusCode::kCorruption);
}

TEST(SwtpmLogParserTest, ParsesCommandsAndResponsesAndChecksLengths) {
  const char* log =
      " Ctrl Cmd: length 5\n"
      " 00 00 00 05 00 \n"
      " Ctrl Rsp: length 4\n"
      " 00 00 00 00 \n"
      " SWTPM_IO_Read: length 12\n"
      " 80 01 00 00 00 0C 00 00 01 7B 00 08 \n"
      " SWTPM_IO_Write: length 20\n"
      " 80 01 00 00 00 14 00 00 00 00 00 08 83 DE 1D 7D \n"
      " B5 3B 13 8B \n";
  std::vector<testing::BusMessage> msgs;
  std::string err;
  ASSERT_TRUE(testing::ParseSwtpmLog(log, &msgs, &err)) << err;
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(msgs[0].is_command);
  EXPECT_EQ(msgs[0].CommandCode(), TPM2_CC_GetRandom);
  EXPECT_FALSE(msgs[1].is_command);
  EXPECT_TRUE(testing::ContainsBytes(
      msgs[1].bytes, {0x83, 0xDE, 0x1D, 0x7D, 0xB5, 0x3B, 0x13, 0x8B}));

  std::string bad = " SWTPM_IO_Read: length 13\n 80 01 00 00 00 0C \n";
  msgs.clear();
  EXPECT_FALSE(testing::ParseSwtpmLog(bad, &msgs, &err));
}

}  // namespace
}  // namespace volmgr::tpm
