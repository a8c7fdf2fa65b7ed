// The TPM protector kind (volmgr/protectors/tpm.cc) through Volume, against
// a private swtpm: `format --tpm` end to end, the pre-flight that keeps a
// device untouched when the TPM cannot be used, and the kind's checks of its
// own token parameters.
#include <gtest/gtest.h>
#include <libcryptsetup.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/unit/tpm/swtpm_fixture.h"
#include "volmgr/protectors/protector.h"
#include "volmgr/volume/volume.h"

namespace volmgr::volume {
namespace {

namespace fs = std::filesystem;
using volmgr::tpm::testing::Swtpm;

SecretBytes Secret(std::string_view s) {
  return std::move(SecretBytes::CopyOf(s)).value();
}

class TpmProtectorTest : public volmgr::tpm::testing::SharedSwtpmTest {
 protected:
  void SetUp() override {
    SharedSwtpmTest::SetUp();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/volmgr-tpm-protector-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    setenv("VOLMGR_LOCK_DIR", (dir_ / "locks").c_str(), 1);
    SilenceCryptsetupDefaultLog();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Image(const std::string& name) {
    std::string p = dir_ / name;
    std::ofstream(p).close();
    fs::resize_file(p, 32u << 20);
    return p;
  }

  static bool AllZero(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::istreambuf_iterator<char> it(in), end;
    return std::all_of(it, end, [](char c) { return c == 0; });
  }

  fs::path dir_;
};

TEST_F(TpmProtectorTest, FormatWithTpmOpensThroughTheTpmAlone) {
  std::string img = Image("a.img");
  FormatSpec spec;
  spec.device = img;
  protectors::CreateRequest tpm;
  tpm.tcti = swtpm_->tcti();
  tpm.pcrs = {7, 16};
  spec.tpm = tpm;
  auto r = Volume::Format(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->protectors.size(), 2u);
  EXPECT_EQ(r->protectors[0].record.kind, "recovery-password");
  EXPECT_EQ(r->protectors[1].record.kind, "tpm");
  EXPECT_EQ(r->protectors[1].record.params["pcrs"],
            nlohmann::json::array({7, 16}));

  auto vol = Volume::Load(img);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  protectors::Credentials creds;
  creds.tcti = swtpm_->tcti();
  auto u = vol->Unlock(creds);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->used.kind, "tpm");
  // The VMK from the TPM reaches the same FVEK as stock cryptsetup does
  // with the recovery password.
  auto fvek = vol->ReadFvek(u->vmk);
  ASSERT_TRUE(fvek.ok());
  auto stock =
      vol->luks().GetVolumeKey(CRYPT_ANY_SLOT, *r->protectors[0].shown_secret);
  ASSERT_TRUE(stock.ok());
  EXPECT_TRUE(fvek->ConstantTimeEquals(*stock));

  // PCR 16 moves: the TPM path is refused, naming the PCR.
  std::string out;
  ASSERT_EQ(
      swtpm_->RunTool("tpm2_pcrextend 16:sha256=" + std::string(64, 'a'), &out),
      0)
      << out;
  std::vector<UnlockFailure> failures;
  auto refused = vol->Unlock(creds, &failures);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAuthFailed);
  EXPECT_NE(refused.status().message().find("PCR 16 changed"),
            std::string::npos)
      << refused.status().message();
}

TEST_F(TpmProtectorTest, FormatWithUnreachableTpmWritesNothing) {
  std::string img = Image("a.img");
  FormatSpec spec;
  spec.device = img;
  protectors::CreateRequest tpm;
  tpm.tcti = "swtpm:host=127.0.0.1,port=" +
             std::to_string(volmgr::tpm::testing::ClosedPort());
  spec.tpm = tpm;
  auto r = Volume::Format(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("nothing was written"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(AllZero(img));
}

TEST_F(TpmProtectorTest, FormatWithShortPinOrBadPcrWritesNothing) {
  std::string img = Image("a.img");
  SecretBytes pin = Secret("12345");
  FormatSpec spec;
  spec.device = img;
  protectors::CreateRequest tpm;
  tpm.tcti = swtpm_->tcti();
  tpm.pin = &pin;
  spec.tpm = tpm;
  auto r = Volume::Format(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("shorter than 6"), std::string::npos)
      << r.status().message();

  spec.tpm->pin = nullptr;
  spec.tpm->pcrs = {24};
  r = Volume::Format(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
      << r.status().ToString();
  EXPECT_TRUE(AllZero(img));
}

// The kind's own checks of stored parameters need no TPM.
TEST(TpmProtectorKindTest, MalformedParametersAreCorruption) {
  const protectors::ProtectorHandler* h = protectors::FindHandler("tpm");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->kind(), "tpm");
  auto rec = protectors::NewRecord("tpm", h->version(), "");
  ASSERT_TRUE(rec.ok());
  rec->wrapped_vmk = "AQ==";
  EXPECT_EQ(h->Validate(*rec).code(), StatusCode::kCorruption);
  rec->params = {{"sealed", "not base64!"}, {"pcrs", {7}}, {"bank", "sha256"}};
  EXPECT_EQ(h->Validate(*rec).code(), StatusCode::kCorruption);
  // A TPM protector is not tried again once the TPM was asked.
  protectors::Credentials c;
  c.skip_tpm = true;
  EXPECT_FALSE(h->CanTry(*rec, c));
}

}  // namespace
}  // namespace volmgr::volume
