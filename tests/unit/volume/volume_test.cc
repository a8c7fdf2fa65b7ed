// Volume tests against the real libcryptsetup on image files (no
// device-mapper needed: nothing is activated).
#include "volmgr/volume/volume.h"

#include <gtest/gtest.h>
#include <libcryptsetup.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace volmgr::volume {
namespace {

namespace fs = std::filesystem;

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volmgr-volume-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    setenv("VOLMGR_LOCK_DIR", (dir_ / "locks").c_str(), 1);
    SilenceCryptsetupDefaultLog();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Image(const std::string& name, uint64_t mib = 32) {
    std::string p = dir_ / name;
    std::ofstream(p).close();
    fs::resize_file(p, mib << 20);
    return p;
  }

  static SecretBytes Secret(std::string_view s) {
    return std::move(SecretBytes::CopyOf(s)).value();
  }

  // Formats with a fast passphrase and a recovery password.
  FormatResult MakeVolume(const std::string& path, const SecretBytes& pass) {
    FormatSpec spec;
    spec.device = path;
    spec.passphrase = &pass;
    spec.argon2 = {1, 8192, 1};
    auto r = Volume::Format(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }

  fs::path dir_;
};

TEST_F(VolumeTest, FormatCreatesLuks2WithVmkKeyslotAndProtectors) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  ASSERT_EQ(r.protectors.size(), 2u);
  ASSERT_TRUE(r.protectors[0].shown_secret.has_value());  // recovery password

  auto vol = Volume::Load(img);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  EXPECT_EQ(vol->uuid(), r.uuid);
  EXPECT_EQ(vol->luks().cipher_spec(), "aes-xts-plain64");
  EXPECT_EQ(vol->luks().volume_key_bits(), 512);
  EXPECT_EQ(vol->luks().sector_size(), 4096u);
  EXPECT_EQ(vol->luks().subsystem(), "volmgr");
  EXPECT_EQ(vol->protectors().size(), 2u);
  EXPECT_TRUE(vol->warnings().empty());
}

TEST_F(VolumeTest, EachProtectorRecoversTheSameVmkAndFvek) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  auto vol = Volume::Load(img);
  ASSERT_TRUE(vol.ok());

  protectors::Credentials by_pass;
  by_pass.secrets.push_back(Secret("correct horse battery"));
  auto u1 = vol->Unlock(by_pass);
  ASSERT_TRUE(u1.ok()) << u1.status().ToString();
  EXPECT_EQ(u1->used.kind, "passphrase");

  protectors::Credentials by_rp;
  by_rp.secrets.push_back(
      std::move(SecretBytes::CopyOf(r.protectors[0].shown_secret->Reveal()))
          .value());
  auto u2 = vol->Unlock(by_rp);
  ASSERT_TRUE(u2.ok()) << u2.status().ToString();
  EXPECT_EQ(u2->used.kind, "recovery-password");
  EXPECT_TRUE(u1->vmk.ConstantTimeEquals(u2->vmk));

  auto fvek1 = vol->ReadFvek(u1->vmk);
  ASSERT_TRUE(fvek1.ok());
  EXPECT_EQ(fvek1->size(), kFvekBytes);

  // Stock libcryptsetup opens the recovery keyslot with the printed text.
  auto fvek2 = const_cast<LuksDevice&>(vol->luks())
                   .GetVolumeKey(CRYPT_ANY_SLOT, *r.protectors[0].shown_secret);
  ASSERT_TRUE(fvek2.ok()) << fvek2.status().ToString();
  EXPECT_TRUE(fvek1->ConstantTimeEquals(*fvek2));
}

// Format keeps the FVEK wrapped under the VMK in a version 2 volume token.
// That copy, the VMK keyslot and the recovery keyslot give the same FVEK;
// a damaged copy falls back to the keyslot; a copy from another volume, or
// a wrong VMK, gives nothing.
TEST_F(VolumeTest, WrappedFvekInTheVolumeTokenMatchesTheKeyslots) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  auto vol = Volume::Load(img);
  ASSERT_TRUE(vol.ok());
  int token_id = -1;
  nlohmann::json token;
  for (const auto& [id, text] : vol->luks().ListTokens()) {
    auto j = nlohmann::json::parse(text);
    if (j["type"] == "volmgr-volume") {
      token_id = id;
      token = j;
    }
  }
  ASSERT_GE(token_id, 0);
  EXPECT_EQ(token["version"], 2);
  ASSERT_TRUE(token.contains("wrapped_fvek"));
  auto wrapped =
      crypto::WrappedKey::FromBase64(token["wrapped_fvek"].get<std::string>());
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->key_size(), kFvekBytes);

  protectors::Credentials c;
  c.secrets.push_back(Secret("correct horse battery"));
  auto u = vol->Unlock(c);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  auto from_token = vol->ReadFvek(u->vmk);
  ASSERT_TRUE(from_token.ok()) << from_token.status().ToString();
  auto from_vmk_slot = vol->luks().GetVolumeKey(vol->vmk_keyslot(), u->vmk);
  ASSERT_TRUE(from_vmk_slot.ok());
  EXPECT_TRUE(from_token->ConstantTimeEquals(*from_vmk_slot));
  auto from_recovery_slot =
      vol->luks().GetVolumeKey(CRYPT_ANY_SLOT, *r.protectors[0].shown_secret);
  ASSERT_TRUE(from_recovery_slot.ok());
  EXPECT_TRUE(from_token->ConstantTimeEquals(*from_recovery_slot));
  EXPECT_TRUE(vol->luks().VerifyVolumeKey(*from_token).ok());

  // A wrong VMK: neither the wrap nor the keyslot opens.
  SecretBytes wrong = std::move(SecretBytes::Random(kVmkBytes)).value();
  EXPECT_EQ(vol->ReadFvek(wrong).status().code(), StatusCode::kAuthFailed);

  // The wrapped FVEK of another volume (another UUID, another key) in this
  // token: the AAD binding refuses it and the keyslot still answers.
  std::string other_img = Image("b.img");
  MakeVolume(other_img, pass);
  auto other = Volume::Load(other_img);
  ASSERT_TRUE(other.ok());
  for (const auto& [id, text] : other->luks().ListTokens()) {
    auto j = nlohmann::json::parse(text);
    if (j["type"] == "volmgr-volume") token["wrapped_fvek"] = j["wrapped_fvek"];
  }
  auto& luks = const_cast<LuksDevice&>(vol->luks());
  ASSERT_TRUE(luks.SetToken(token_id, token.dump()).ok());
  auto swapped = Volume::Load(img);
  ASSERT_TRUE(swapped.ok());
  auto fallback = swapped->ReadFvek(u->vmk);
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
  EXPECT_TRUE(fallback->ConstantTimeEquals(*from_vmk_slot));

  // A wrap that decrypts but disagrees with the header's digest (made under
  // this volume's VMK and UUID with a random key) is not believed either.
  SecretBytes bogus = std::move(SecretBytes::Random(kFvekBytes)).value();
  auto bad = crypto::WrapKey(u->vmk, bogus, FvekWrapContext(vol->uuid()));
  ASSERT_TRUE(bad.ok());
  token["wrapped_fvek"] = bad->ToBase64();
  ASSERT_TRUE(luks.SetToken(token_id, token.dump()).ok());
  auto disagreeing = Volume::Load(img);
  ASSERT_TRUE(disagreeing.ok());
  EXPECT_FALSE(disagreeing->luks().VerifyVolumeKey(bogus).ok());
  auto checked = disagreeing->ReadFvek(u->vmk);
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(checked->ConstantTimeEquals(*from_vmk_slot));
  EXPECT_TRUE(disagreeing->Unlock(c).ok());
}

TEST_F(VolumeTest, WrongPassphraseIsAuthFailed) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  MakeVolume(img, pass);
  auto vol = Volume::Load(img);
  protectors::Credentials c;
  c.secrets.push_back(Secret("incorrect horse"));
  EXPECT_EQ(vol->Unlock(c).status().code(), StatusCode::kAuthFailed);
}

TEST_F(VolumeTest, TokenMovedToAnotherVolumeDoesNotUnwrap) {
  SecretBytes pass = Secret("correct horse battery");
  std::string a = Image("a.img"), b = Image("b.img");
  MakeVolume(a, pass);
  SecretBytes other = Secret("another passphrase");
  MakeVolume(b, other);
  auto va = Volume::Load(a);
  auto vb = Volume::Load(b);
  ASSERT_TRUE(va.ok() && vb.ok());
  // Copy A's passphrase token into B.
  std::string token;
  for (const auto& p : va->protectors()) {
    if (p.kind == "passphrase") token = p.ToTokenJson();
  }
  // Keyslot 0 is B's VMK keyslot too, so the copy is well-formed for B.
  auto& lb = const_cast<LuksDevice&>(vb->luks());
  ASSERT_TRUE(lb.SetToken(-1, token).ok());
  auto vb2 = Volume::Load(b);
  protectors::Credentials c;
  c.secrets.push_back(Secret("correct horse battery"));
  // A's passphrase now meets A's token on B: the binding to B's UUID fails.
  EXPECT_EQ(vb2->Unlock(c).status().code(), StatusCode::kAuthFailed);
}

TEST_F(VolumeTest, EditingTheKindBreaksTheBinding) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatSpec spec;
  spec.device = img;
  spec.passphrase = &pass;
  spec.argon2 = {1, 8192, 1};
  spec.startup_key_file = dir_ / "k.bek";
  ASSERT_TRUE(Volume::Format(spec).ok());
  auto vol = Volume::Load(img);
  // Relabel the startup-key token as a passphrase-less "startup-key" copy
  // with another protector's ID: the AAD (ID, kind) no longer matches.
  for (const auto& p : vol->protectors()) {
    if (p.kind != "startup-key") continue;
    auto j = nlohmann::json::parse(p.ToTokenJson());
    j["id"] = "00000000-0000-4000-8000-000000000000";
    auto& l = const_cast<LuksDevice&>(vol->luks());
    ASSERT_TRUE(l.SetToken(p.token_id, j.dump()).ok());
  }
  auto again = Volume::Load(img);
  protectors::Credentials c;
  c.startup_key_files.push_back(dir_ / "k.bek");
  auto u = again->Unlock(c);
  EXPECT_FALSE(u.ok());
}

TEST_F(VolumeTest, LastProtectorCannotBeRemoved) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  auto vol = Volume::Load(img);
  ASSERT_TRUE(vol->RemoveProtector(r.protectors[0].record.id).ok());
  EXPECT_EQ(vol->protectors().size(), 1u);
  Status s = vol->RemoveProtector(r.protectors[1].record.id);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  protectors::Credentials c;
  c.secrets.push_back(Secret("correct horse battery"));
  EXPECT_TRUE(Volume::Load(img)->Unlock(c).ok());
}

TEST_F(VolumeTest, RotateRecoveryPasswordRevokesTheOldKeyslot) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  auto vol = Volume::Load(img);
  protectors::Credentials c;
  c.secrets.push_back(Secret("correct horse battery"));
  auto u = vol->Unlock(c);
  ASSERT_TRUE(u.ok());
  auto fresh = vol->RotateRecoveryPassword(u->vmk, "");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  const SecretBytes& old_text = *r.protectors[0].shown_secret;
  auto& l = const_cast<LuksDevice&>(vol->luks());
  EXPECT_EQ(l.CheckKeyslot(CRYPT_ANY_SLOT, old_text).status().code(),
            StatusCode::kAuthFailed);
  EXPECT_TRUE(l.CheckKeyslot(CRYPT_ANY_SLOT, *fresh->shown_secret).ok());
  EXPECT_EQ(vol->protectors().size(), 2u);
}

TEST_F(VolumeTest, FormatRefusesExistingContentAndSmallDevices) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  MakeVolume(img, pass);
  FormatSpec spec;
  spec.device = img;
  spec.passphrase = &pass;
  spec.argon2 = {1, 8192, 1};
  auto again = Volume::Format(spec);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("LUKS2"), std::string::npos)
      << again.status().message();

  std::string tiny = Image("tiny.img", 8);
  spec.device = tiny;
  EXPECT_EQ(Volume::Format(spec).status().code(), StatusCode::kInvalidArgument);
  spec.device = dir_ / "missing.img";
  EXPECT_EQ(Volume::Format(spec).status().code(), StatusCode::kNotFound);
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Issue 17, item 13: libcryptsetup rewrites a damaged header copy on every
// writable load; a read-only load reads a private copy and leaves it.
TEST_F(VolumeTest, ReadOnlyLoadNeverRepairsADamagedHeaderCopy) {
  SecretBytes pass = Secret("correct horse battery");
  std::string img = Image("a.img");
  FormatResult r = MakeVolume(img, pass);
  {
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);  // the primary copy's JSON area
    f.put('X');
  }
  const std::string before = FileBytes(img);
  auto vol = Volume::Load(img, Access::kReadOnly);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  EXPECT_EQ(vol->uuid(), r.uuid);
  EXPECT_TRUE(vol->luks().read_only());
  EXPECT_TRUE(vol->luks().header_needs_repair());
  ASSERT_FALSE(vol->warnings().empty());
  EXPECT_NE(vol->warnings().front().find("header copy"), std::string::npos);
  protectors::Credentials creds;
  creds.secrets.push_back(Secret("correct horse battery"));
  auto u = vol->Unlock(creds);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(FileBytes(img), before);

  // The handle refuses writes instead of writing them into the copy.
  volume::LuksDevice luks =
      std::move(LuksDevice::Load(img, Access::kReadOnly)).value();
  auto t = luks.SetToken(-1, R"({"type":"x","keyslots":[]})");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(FileBytes(img), before);

  // A healthy header reads without a warning; a writable load repairs.
  auto writable = Volume::Load(img);
  ASSERT_TRUE(writable.ok());
  EXPECT_NE(FileBytes(img), before);
  auto again = Volume::Load(img, Access::kReadOnly);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->luks().header_needs_repair());
  EXPECT_TRUE(again->warnings().empty());
}

TEST_F(VolumeTest, StockLuks2VolumeIsRefusedClearly) {
  std::string img = Image("stock.img");
  SecretBytes fvek = std::move(SecretBytes::Random(64)).value();
  FormatOptions o;
  ASSERT_TRUE(LuksDevice::Format(img, fvek, o).ok());
  auto vol = Volume::Load(img);
  EXPECT_EQ(vol.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(vol.status().message().find("did not create"), std::string::npos);
}

}  // namespace
}  // namespace volmgr::volume
