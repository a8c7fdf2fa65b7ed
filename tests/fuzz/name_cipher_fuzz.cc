// Encrypted file names and symlink targets (volmgr/files/name_cipher.h):
// every directory entry of a store is a ciphertext whoever writes the
// store's data directory controls. Properties under the fixed name key:
// a name that decrypts is a valid name and re-encrypts to the same entry
// (one plaintext name, one ciphertext: no second entry can alias a file),
// and the long-name helpers accept anything.
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/files/name_cipher.h"

namespace f = volmgr::files;

namespace {

const f::NameCipher& Cipher() {
  static const f::NameCipher* c = [] {
    auto key = volmgr::SecretBytes::CopyOf(
        std::string(f::kNameKeySize, char(volmgr::fuzz::kNameKeyByte)));
    if (!key.ok()) volmgr::fuzz::SetupFailed("secret memory");
    auto nc = f::NameCipher::Create(std::move(key).value());
    if (!nc.ok()) volmgr::fuzz::SetupFailed("NameCipher");
    return new f::NameCipher(std::move(nc).value());
  }();
  return *c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const f::NameCipher& nc = Cipher();
  f::DirId dir;
  dir.fill(volmgr::fuzz::kDirIdByte);
  (void)f::Base64UrlDecode(text);
  (void)f::NameCipher::IsLongEntry(text);
  if (f::NameCipher::IsLongEntry(text)) (void)f::NameCipher::SidecarFor(text);
  auto name = nc.Decrypt(dir, text);
  if (name.ok()) {
    if (name->empty() || *name == "." || *name == ".." ||
        name->find('/') != std::string::npos ||
        name->find('\0') != std::string::npos) {
      volmgr::fuzz::Violation("Decrypt returned an invalid name");
    }
    auto again = nc.Encrypt(dir, *name);
    if (!again.ok() || *again != text) {
      volmgr::fuzz::Violation(
          "a second encoding of one name decrypts (entry aliasing)");
    }
  }
  auto target = nc.DecryptTarget(text);
  if (target.ok()) {
    auto again = nc.EncryptTarget(*target);
    if (!again.ok() || *again != text) {
      volmgr::fuzz::Violation("a second encoding of one target decrypts");
    }
  }
  // What the user names is hostile too (a name to encrypt).
  auto enc = nc.Encrypt(dir, text);
  if (enc.ok()) {
    auto back = nc.Decrypt(dir, *enc);
    if (!back.ok() || *back != text) volmgr::fuzz::Violation("no round trip");
    (void)f::NameCipher::EntryName(*enc);
  }
  return 0;
}
