// Key packages (volmgr/recover/key_package.h): `keypackage show` parses the
// clear header of any file; `rebuild|verify|mount --key-package` open it
// with a recovery password (version 1) or a data recovery agent's private
// key (version 2, RSA-OAEP or ECDH). The corpus packages were exported by
// `volmgr keypackage export` from the corpus volume, so the harness holds
// their real credentials (keys/): mutations get past the header into the
// KEM and the AEAD. Property: any package that opens has a 64-byte FVEK.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/recover/key_package.h"

namespace r = volmgr::recover;

namespace {

struct Keys {
  std::optional<volmgr::keys::RecoveryPassword> rp;
  std::optional<volmgr::x509::PemPrivateKey> rsa, ec;
};

const Keys& TheKeys() {
  static const Keys* k = [] {
    auto* k = new Keys;
    auto text = volmgr::SecretBytes::CopyOf(volmgr::fuzz::Trim(
        volmgr::fuzz::ReadFuzzFile("keys/recovery-password.txt")));
    if (!text.ok()) volmgr::fuzz::SetupFailed("secret memory");
    auto rp = volmgr::keys::RecoveryPassword::Parse(*text);
    if (!rp.ok()) volmgr::fuzz::SetupFailed("keys/recovery-password.txt");
    k->rp.emplace(std::move(rp).value());
    for (auto [name, slot] : {std::pair{"agent-rsa.pem", &k->rsa},
                              std::pair{"agent-ec.pem", &k->ec}}) {
      auto key = volmgr::x509::PemPrivateKey::Load(
          std::string(VOLMGR_FUZZ_DIR) + "/keys/" + name);
      if (!key.ok()) volmgr::fuzz::SetupFailed(key.status().message());
      slot->emplace(std::move(key).value());
    }
    return k;
  }();
  return *k;
}

void CheckOpened(const volmgr::StatusOr<r::KeyPackageSecret>& s) {
  if (s.ok() && s->fvek.size() != 64) {
    volmgr::fuzz::Violation("a package opened with a " +
                            std::to_string(s->fvek.size()) + "-byte FVEK");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Keys& k = TheKeys();
  const std::span<const uint8_t> file(data, size);
  auto hdr = r::ReadKeyPackageHeader(file);
  if (!hdr.ok()) return 0;
  if (hdr->sealer == r::KeyPackageSealer::kRecoveryPassword) {
    CheckOpened(r::OpenKeyPackage(file, *k.rp));
  } else {
    CheckOpened(r::OpenKeyPackageWithAgent(file, *k.rsa));
    CheckOpened(r::OpenKeyPackageWithAgent(file, *k.ec));
  }
  return 0;
}
