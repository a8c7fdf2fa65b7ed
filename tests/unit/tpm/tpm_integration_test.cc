// Integration tests against a private swtpm per test suite. Label
// "integration;tpm". tpm2-tools acts as an independent client where a test
// needs someone other than volmgr to touch the TPM.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/tpm/swtpm_fixture.h"
#include "tests/unit/tpm/swtpm_harness.h"
#include "tpm/internal/unseal_testing.h"
#include "tpm/pcr_policy.h"
#include "tpm/seal.h"
#include "tpm/sealed_blob.h"
#include "tpm/srk.h"
#include "tpm/tpm_context.h"
#include "volmgr/base/secret_bytes.h"

namespace volmgr::tpm {
namespace {

using testing::BusMessage;
using testing::Swtpm;

SecretBytes Pin(std::string_view s) { return *SecretBytes::CopyOf(s); }

std::vector<uint8_t> Bytes(const SecretBytes& s) {
  return {s.Reveal().begin(), s.Reveal().end()};
}

std::string Hex(std::span<const uint8_t> b, bool upper) {
  std::string h = DigestHex(b);
  if (upper) std::transform(h.begin(), h.end(), h.begin(), ::toupper);
  return h;
}

PcrSelection Sel(std::vector<uint32_t> pcrs) {
  return *PcrSelection::Sha256(pcrs);
}

// TPMA_SESSION of the first session in a TPM2_Unseal command: tag, size,
// code (10) + itemHandle (4) + authorizationSize (4) + sessionHandle (4) +
// nonceCaller (2 + n), then the attribute octet (Part 1 §18.6).
int UnsealSessionAttributes(const BusMessage& m) {
  if (m.bytes.size() < 26) return -1;
  size_t nonce = static_cast<size_t>(m.bytes[22]) << 8 | m.bytes[23];
  if (m.bytes.size() <= 24 + nonce) return -1;
  return m.bytes[24 + nonce];
}

// responseCode of a response (bytes 6-9).
uint32_t ResponseCode(const BusMessage& m) {
  if (m.is_command || m.bytes.size() < 10) return 0xFFFFFFFF;
  return static_cast<uint32_t>(m.bytes[6]) << 24 |
         static_cast<uint32_t>(m.bytes[7]) << 16 |
         static_cast<uint32_t>(m.bytes[8]) << 8 | m.bytes[9];
}

class SwtpmSuite : public testing::SharedSwtpmTest {
 protected:
  void SetUp() override {
    SharedSwtpmTest::SetUp();
    if (HasFatalFailure()) return;
    auto t = Tpm::Open(swtpm_->tcti());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tpm_ = std::make_unique<Tpm>(std::move(*t));
  }
  // Everything volmgr loaded into the TPM must be flushed by the time the
  // objects that own it are gone.
  void TearDown() override {
    tpm_.reset();
    std::string out;
    ASSERT_EQ(swtpm_->RawTool("tpm2_getcap handles-transient && "
                              "tpm2_getcap handles-loaded-session",
                              &out),
              0)
        << out;
    EXPECT_EQ(out.find("0x"), std::string::npos)
        << "handles left loaded in the TPM:\n"
        << out;
  }

  std::vector<BusMessage> BusSince(size_t offset) {
    std::vector<BusMessage> msgs;
    std::string err;
    EXPECT_TRUE(testing::ParseSwtpmLog(swtpm_->ReadLog(offset), &msgs, &err))
        << err;
    return msgs;
  }

  std::unique_ptr<Tpm> tpm_;
};

class TpmSealTest : public SwtpmSuite {};
class TpmLockoutTest : public SwtpmSuite {};
class TpmPersistentSrkTest : public SwtpmSuite {};

TEST(TpmOpenTest, ClosedPortIsUnavailableWithClearMessage) {
  std::string tcti =
      "swtpm:host=127.0.0.1,port=" + std::to_string(testing::ClosedPort());
  auto t = Tpm::Open(tcti);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnavailable)
      << t.status().ToString();
  EXPECT_NE(t.status().message().find("no TPM at " + tcti), std::string::npos)
      << t.status().message();
  EXPECT_EQ(t.status().foreign().source, ForeignSource::kTss2);
}

TEST(TpmOpenTest, MissingDeviceIsUnavailable) {
  auto t = Tpm::Open("device:/nonexistent/tpmrm0");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnavailable)
      << t.status().ToString();
  EXPECT_NE(t.status().message().find("no TPM at device:/nonexistent/tpmrm0"),
            std::string::npos);
}

TEST_F(TpmSealTest, SrkIsTransientEccPrimary) {
  auto srk = Srk::LoadOrCreate(*tpm_);
  ASSERT_TRUE(srk.ok()) << srk.status().ToString();
  EXPECT_FALSE(srk->info().persistent);
  EXPECT_EQ(srk->info().algorithm, SrkAlgorithm::kEccP256);
  EXPECT_EQ(srk->info().name.size(), 34u);
  // The owner seed makes the template deterministic: same name again.
  auto again = Srk::CreatePrimary(*tpm_, SrkAlgorithm::kEccP256);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->info().name, srk->info().name);
  auto rsa = Srk::CreatePrimary(*tpm_, SrkAlgorithm::kRsa2048);
  ASSERT_TRUE(rsa.ok()) << rsa.status().ToString();
  EXPECT_NE(rsa->info().name, srk->info().name);
}

// Srk computes a transient SRK's Name itself (tpm/srk.cc); it must be the
// Name ESYS and the TPM agree on, for both key types.
TEST_F(TpmSealTest, SrkNameEqualsEsysName) {
  for (SrkAlgorithm alg : {SrkAlgorithm::kEccP256, SrkAlgorithm::kRsa2048}) {
    auto srk = Srk::CreatePrimary(*tpm_, alg);
    ASSERT_TRUE(srk.ok()) << srk.status().ToString();
    TPM2B_NAME* raw = nullptr;
    ASSERT_EQ(Esys_TR_GetName(tpm_->esys(), srk->handle(), &raw),
              TSS2_RC_SUCCESS);
    std::vector<uint8_t> esys(raw->name, raw->name + raw->size);
    Esys_Free(raw);
    EXPECT_EQ(srk->info().name, esys);
  }
}

TEST_F(TpmSealTest, SealUnsealRoundTrip) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  for (auto pcrs : {std::vector<uint32_t>{7},
                    std::vector<uint32_t>{0, 2, 4, 7, 9, 11, 12, 14, 16, 23}}) {
    auto blob = Seal(*tpm_, *secret, Sel(pcrs), std::nullopt);
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    EXPECT_FALSE(blob->has_pin);
    EXPECT_EQ(blob->pcr_values.size(), pcrs.size());
    // Through the serialised form, as a token would store it.
    std::vector<uint8_t> bytes = SerializeSealedBlob(*blob);
    auto parsed = ParseSealedBlob(bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(SerializeSealedBlob(*parsed), bytes);
    auto back = Unseal(*tpm_, *parsed, std::nullopt);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(back->ConstantTimeEquals(*secret));
  }
}

TEST_F(TpmSealTest, SealAndVerifyReturnsUsableBlob) {
  auto secret = SecretBytes::Random(64);
  ASSERT_TRUE(secret.ok());
  std::optional<SecretBytes> pin = Pin("2468");
  auto blob = SealAndVerify(*tpm_, *secret, Sel({7}), pin);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto back = Unseal(*tpm_, *blob, pin);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->ConstantTimeEquals(*secret));
}

TEST_F(TpmSealTest, SecretSizeLimits) {
  auto big = SecretBytes::Random(kMaxSealedSecretSize + 1);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(Seal(*tpm_, *big, Sel({7}), std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  auto max = SecretBytes::Random(kMaxSealedSecretSize);
  ASSERT_TRUE(max.ok());
  auto blob = SealAndVerify(*tpm_, *max, Sel({7}), std::nullopt);
  EXPECT_TRUE(blob.ok()) << blob.status().ToString();
}

TEST_F(TpmSealTest, SoftwarePolicyDigestEqualsTrialSessionAndTpm2Tools) {
  // Give PCRs 1 and 16 non-trivial values first (via tpm2-tools).
  ASSERT_EQ(swtpm_->RunTool("tpm2_pcrextend 16:sha256=" + std::string(64, 'a')),
            0);
  ASSERT_EQ(swtpm_->RunTool("tpm2_pcrextend 1:sha256=" + std::string(64, 'b')),
            0);
  for (auto pcrs : {std::vector<uint32_t>{7}, std::vector<uint32_t>{1, 16},
                    std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 16}}) {
    PcrSelection sel = Sel(pcrs);
    auto values = ReadPcrs(*tpm_, sel);
    ASSERT_TRUE(values.ok()) << values.status().ToString();
    ASSERT_EQ(values->size(), pcrs.size());
    for (bool pin : {false, true}) {
      auto sw = ComputePolicyDigest(sel, *values, pin);
      auto trial = TrialPolicyDigest(*tpm_, sel, pin);
      ASSERT_TRUE(sw.ok());
      ASSERT_TRUE(trial.ok()) << trial.status().ToString();
      EXPECT_EQ(DigestHex(*sw), DigestHex(*trial))
          << sel.ToString() << " pin=" << pin;
    }
    // tpm2-tools computes PolicyPCR in its own trial session (it takes at
    // most 8 PCRs).
    if (pcrs.size() > 8) continue;
    std::string list;
    for (uint32_t i : pcrs)
      list += (list.empty() ? "" : ",") + std::to_string(i);
    std::string out;
    ASSERT_EQ(swtpm_->RunTool("tpm2_createpolicy --policy-pcr -l sha256:" +
                                  list + " -L " + swtpm_->dir() +
                                  "/pol.bin &&"
                                  " xxd -p -c 64 " +
                                  swtpm_->dir() + "/pol.bin",
                              &out),
              0)
        << out;
    auto sw = ComputePolicyDigest(sel, *values, false);
    EXPECT_NE(out.find(DigestHex(*sw)), std::string::npos)
        << "tpm2-tools: " << out << " ours: " << DigestHex(*sw);
  }
}

TEST_F(TpmSealTest, ExtendedPcrRefusesAndNamesIt) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  auto blob = Seal(*tpm_, *secret, Sel({7, 16}), std::nullopt);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  std::string sealed16 = DigestHex(blob->pcr_values[1].digest, 4);

  // Someone else (tpm2-tools) extends PCR 16.
  ASSERT_EQ(swtpm_->RunTool("tpm2_pcrextend 16:sha256=" + std::string(64, 'c')),
            0);
  auto now = ReadPcrs(*tpm_, Sel({16}));
  ASSERT_TRUE(now.ok());
  std::string now16 = DigestHex((*now)[0].digest, 4);

  auto back = Unseal(*tpm_, *blob, std::nullopt);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kAuthFailed);
  const std::string m = back.status().message();
  EXPECT_NE(
      m.find("PCR 16 changed (sealed " + sealed16 + ", now " + now16 + ")"),
      std::string::npos)
      << m;
  EXPECT_EQ(m.find("PCR 7 "), std::string::npos) << m;
  RecordProperty("pcr_refusal_message", m);
}

TEST_F(TpmSealTest, PinRightWrongAndMissing) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  std::optional<SecretBytes> pin = Pin("123456");
  auto blob = Seal(*tpm_, *secret, Sel({7}), pin);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_TRUE(blob->has_pin);

  auto missing = Unseal(*tpm_, *blob, std::nullopt);
  EXPECT_EQ(missing.status().code(), StatusCode::kPinRequired);

  auto wrong = Unseal(*tpm_, *blob, Pin("654321"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kAuthFailed)
      << wrong.status().ToString();
  EXPECT_NE(wrong.status().message().find("wrong PIN"), std::string::npos);

  auto right = Unseal(*tpm_, *blob, pin);
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_TRUE(right->ConstantTimeEquals(*secret));
  // Leave the DA counter as we found it for the other tests.
  EXPECT_EQ(swtpm_->RunTool("tpm2_dictionarylockout --clear-lockout"), 0);
}

TEST_F(TpmLockoutTest, WrongPinsEndInLockoutReportedAsUnavailable) {
  ASSERT_EQ(swtpm_->RunTool("tpm2_dictionarylockout --setup-parameters "
                            "--max-tries=3 --recovery-time=600 "
                            "--lockout-recovery-time=600"),
            0);
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  std::optional<SecretBytes> pin = Pin("correct horse");
  auto blob = Seal(*tpm_, *secret, Sel({7}), pin);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto no_pin_blob = Seal(*tpm_, *secret, Sel({7}), std::nullopt);
  ASSERT_TRUE(no_pin_blob.ok());

  int auth_failures = 0;
  Status last;
  for (int i = 0; i < 10; ++i) {
    auto r = Unseal(*tpm_, *blob, Pin("guess" + std::to_string(i)));
    ASSERT_FALSE(r.ok());
    last = r.status();
    if (last.code() != StatusCode::kAuthFailed) break;
    ++auth_failures;
  }
  EXPECT_EQ(auth_failures, 3);
  EXPECT_EQ(last.code(), StatusCode::kUnavailable) << last.ToString();
  EXPECT_NE(last.message().find("lockout"), std::string::npos);

  // Now even the right PIN is refused...
  auto right = Unseal(*tpm_, *blob, pin);
  EXPECT_EQ(right.status().code(), StatusCode::kUnavailable);
  // ...but a noDA object (no PIN: nothing to guess) still unseals.
  auto plain = Unseal(*tpm_, *no_pin_blob, std::nullopt);
  EXPECT_TRUE(plain.ok()) << plain.status().ToString();

  ASSERT_EQ(swtpm_->RunTool("tpm2_dictionarylockout --clear-lockout"), 0);
  auto after = Unseal(*tpm_, *blob, pin);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(after->ConstantTimeEquals(*secret));
}

void ExpectRefused(const StatusOr<SecretBytes>& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " unsealed!";
  EXPECT_TRUE(r.status().code() == StatusCode::kCorruption ||
              r.status().code() == StatusCode::kAuthFailed)
      << what << ": " << r.status().ToString();
}

TEST_F(TpmSealTest, TamperedBlobFieldsAreRefused) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  auto sealed = Seal(*tpm_, *secret, Sel({7}), std::nullopt);
  ASSERT_TRUE(sealed.ok());
  const SealedBlob& good = *sealed;

  // Every byte of the private area (TPM integrity HMAC, Part 1 §23.3).
  for (size_t i = 2; i < good.private_area.size(); ++i) {
    SealedBlob b = good;
    b.private_area[i] ^= 0x01;
    ExpectRefused(Unseal(*tpm_, b, std::nullopt),
                  "private byte " + std::to_string(i));
  }
  // Every byte of the public area past its size prefix.
  for (size_t i = 2; i < good.public_area.size(); ++i) {
    SealedBlob b = good;
    b.public_area[i] ^= 0x01;
    ExpectRefused(Unseal(*tpm_, b, std::nullopt),
                  "public byte " + std::to_string(i));
  }
  for (size_t i = 0; i < 32; ++i) {
    SealedBlob b = good;
    b.policy_digest[i] ^= 0x80;
    ExpectRefused(Unseal(*tpm_, b, std::nullopt), "policy digest");
    b = good;
    b.pcr_digest[i] ^= 0x80;
    ExpectRefused(Unseal(*tpm_, b, std::nullopt), "pcr digest");
    b = good;
    b.pcr_values[0].digest[i] ^= 0x80;
    ExpectRefused(Unseal(*tpm_, b, std::nullopt), "pcr value");
  }
  {
    // Claiming "no PIN" for a PIN object, or the reverse, is caught.
    SealedBlob b = good;
    b.has_pin = true;
    ExpectRefused(Unseal(*tpm_, b, Pin("1")), "has_pin flipped");
  }
  {
    SealedBlob b = good;
    b.srk.name[10] ^= 1;
    auto r = Unseal(*tpm_, b, std::nullopt);
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition)
        << r.status().ToString();
  }
  auto ok = Unseal(*tpm_, good, std::nullopt);
  ASSERT_TRUE(ok.ok());
}

TEST_F(TpmSealTest, FlippingAnySerializedByteNeverUnseals) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  auto sealed = Seal(*tpm_, *secret, Sel({7}), std::nullopt);
  ASSERT_TRUE(sealed.ok());
  std::vector<uint8_t> bytes = SerializeSealedBlob(*sealed);
  std::map<StatusCode, int> codes;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> t = bytes;
    t[i] ^= 0x04;
    auto parsed = ParseSealedBlob(t);
    if (!parsed.ok()) {
      ++codes[parsed.status().code()];
      continue;
    }
    auto r = Unseal(*tpm_, *parsed, std::nullopt);
    ASSERT_FALSE(r.ok()) << "byte " << i << " flipped still unseals";
    ++codes[r.status().code()];
  }
  // Truncations are rejected at parse time.
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = ParseSealedBlob(std::span(bytes.data(), n));
    ASSERT_FALSE(parsed.ok()) << "truncated to " << n;
  }
  std::string summary;
  for (auto [c, n] : codes) {
    summary += std::string(StatusCodeName(c)) + "=" + std::to_string(n) + " ";
  }
  RecordProperty("flip_results", summary);
  std::cout << "[ tpm ] " << bytes.size()
            << "-byte blob, single-bit flips: " << summary << "\n";
}

// The bus proof. swtpm's level-20 log holds every byte that crossed the
// TPM interface. After seal + unseal of a recognisable random secret, the
// secret, its hex, and the PIN's authValue appear nowhere in it; unsealing
// without parameter encryption (the control) does expose the secret, so
// the scan demonstrably works.
TEST_F(TpmSealTest, SecretNeverCrossesTheBusInPlaintext) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  std::vector<uint8_t> s = Bytes(*secret);
  std::optional<SecretBytes> pin = Pin("bus-proof-pin");

  for (bool with_pin : {false, true}) {
    const std::optional<SecretBytes> none;
    const std::optional<SecretBytes>& p = with_pin ? pin : none;
    size_t start = swtpm_->LogSize();
    auto blob = Seal(*tpm_, *secret, Sel({7}), p);
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    auto back = Unseal(*tpm_, *blob, p);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_TRUE(back->ConstantTimeEquals(*secret));

    std::vector<BusMessage> bus = BusSince(start);
    // Successful Unseals only: a fresh swtpm answers the first one with
    // TPM_RC_RETRY (0x922) and ESYS resubmits it.
    size_t unseal_commands = 0;
    for (size_t i = 0; i + 1 < bus.size(); ++i) {
      const BusMessage& m = bus[i];
      if (!m.is_command || m.CommandCode() != TPM2_CC_Unseal) continue;
      EXPECT_NE(UnsealSessionAttributes(m) & TPMA_SESSION_ENCRYPT, 0)
          << "Unseal session without response encryption";
      if (ResponseCode(bus[i + 1]) == 0) ++unseal_commands;
    }
    ASSERT_EQ(unseal_commands, 1u) << "log does not show the Unseal";
    ASSERT_GT(bus.size(), 10u);
    for (size_t i = 0; i < bus.size(); ++i) {
      EXPECT_FALSE(testing::ContainsBytes(bus[i].bytes, s))
          << "secret on the bus in message " << i << " (pin=" << with_pin
          << ")";
      // 16-byte windows too: a partial leak is a leak.
      EXPECT_FALSE(testing::ContainsBytes(
          bus[i].bytes, std::vector<uint8_t>(s.begin(), s.begin() + 16)));
      EXPECT_FALSE(testing::ContainsBytes(
          bus[i].bytes, std::vector<uint8_t>(s.begin() + 16, s.end())));
    }
    std::string text = swtpm_->ReadLog(start);
    EXPECT_EQ(text.find(Hex(s, false)), std::string::npos);
    EXPECT_EQ(text.find(Hex(s, true)), std::string::npos);
    if (with_pin) {
      std::vector<uint8_t> pin_bytes = Bytes(*pin);
      for (const BusMessage& m : bus) {
        EXPECT_FALSE(testing::ContainsBytes(m.bytes, pin_bytes));
      }
    }
  }

  // Control: the same scan on an unencrypted Unseal finds the secret.
  auto blob = Seal(*tpm_, *secret, Sel({7}), std::nullopt);
  ASSERT_TRUE(blob.ok());
  size_t start = swtpm_->LogSize();
  auto back = internal::UnsealWithoutParameterEncryptionForTesting(
      *tpm_, *blob, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  bool exposed = false;
  for (const BusMessage& m : BusSince(start)) {
    if (m.is_command && m.CommandCode() == TPM2_CC_Unseal) {
      EXPECT_EQ(UnsealSessionAttributes(m) & TPMA_SESSION_ENCRYPT, 0);
    }
    if (!m.is_command && testing::ContainsBytes(m.bytes, s)) exposed = true;
  }
  EXPECT_TRUE(exposed) << "control: unencrypted Unseal should expose the "
                          "secret in the log, or the scan proves nothing";
}

TEST_F(TpmSealTest, UnsealLatencyAndCommandCount) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  for (bool with_pin : {false, true}) {
    std::optional<SecretBytes> pin;
    if (with_pin) pin = Pin("1234");
    auto blob = Seal(*tpm_, *secret, Sel({0, 7}), pin);
    ASSERT_TRUE(blob.ok());

    std::vector<double> ms;
    size_t commands = 0;
    std::string sequence;
    for (int i = 0; i < 20; ++i) {
      size_t start = swtpm_->LogSize();
      auto t0 = std::chrono::steady_clock::now();
      auto tpm = Tpm::Open(swtpm_->tcti());
      ASSERT_TRUE(tpm.ok());
      auto back = Unseal(*tpm, *blob, pin);
      auto t1 = std::chrono::steady_clock::now();
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      if (i == 19) {  // steady state (the very first may see TPM_RC_RETRY)
        for (const BusMessage& m : BusSince(start)) {
          if (!m.is_command) continue;
          ++commands;
          sequence += (sequence.empty() ? "" : " ") +
                      testing::CommandName(m.CommandCode());
        }
      }
    }
    std::sort(ms.begin(), ms.end());
    double median = (ms[9] + ms[10]) / 2;
    std::string tag = with_pin ? "_pin" : "";
    RecordProperty("open_unseal_median_ms" + tag, std::to_string(median));
    RecordProperty("tpm_commands_per_unseal" + tag, static_cast<int>(commands));
    RecordProperty("tpm_command_sequence" + tag, sequence);
    std::cout << "[ tpm ] open+unseal" << (with_pin ? " (PIN)" : "")
              << ": median " << median << " ms (min " << ms.front() << ", max "
              << ms.back() << ") over 20; " << commands
              << " TPM commands: " << sequence << "\n";
    EXPECT_LE(commands, 12u);
  }
}

TEST_F(TpmPersistentSrkTest, UsesPersistentSrkAt81000001) {
  // Provision the SRK with tpm2-tools, spelling out the TCG template.
  std::string ctx = swtpm_->dir() + "/srk.ctx";
  std::string out;
  ASSERT_EQ(
      swtpm_->RunTool(
          "tpm2_createprimary -C o -g sha256 -G ecc256:null:aes128cfb "
          "-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
          "noda|restricted|decrypt' -c " +
              ctx + " && tpm2_evictcontrol -C o -c " + ctx + " 0x81000001",
          &out),
      0)
      << out;
  auto srk = Srk::LoadOrCreate(*tpm_);
  ASSERT_TRUE(srk.ok()) << srk.status().ToString();
  EXPECT_TRUE(srk->info().persistent);
  EXPECT_EQ(srk->info().algorithm, SrkAlgorithm::kEccP256);
  auto transient = Srk::CreatePrimary(*tpm_, SrkAlgorithm::kEccP256);
  ASSERT_TRUE(transient.ok());
  // Same template, same seed: tpm2-tools' SRK and ours are the same key.
  EXPECT_EQ(DigestHex(srk->info().name), DigestHex(transient->info().name));

  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  auto blob = SealAndVerify(*tpm_, *secret, Sel({7}), std::nullopt);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_TRUE(blob->srk.persistent);
}

}  // namespace
}  // namespace volmgr::tpm
