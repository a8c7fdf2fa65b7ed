// One protector token as it is stored in the LUKS2 header (every kind:
// passphrase, recovery-password, startup-key, tpm, pkcs11, cert;
// volmgr/protectors). The header is hostile (issue 17, item 5): parsing,
// validating and describing a token must never throw or crash, whatever
// the JSON types. A recovery password token is also unwrapped with the
// corpus volume's recovery password (cheap: HKDF + AES-GCM), which takes
// its parameters all the way through.
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/protectors/protector.h"

namespace p = volmgr::protectors;

namespace {

const p::Credentials& Creds() {
  static const p::Credentials* creds = [] {
    auto* c = new p::Credentials;
    auto rp = volmgr::SecretBytes::CopyOf(volmgr::fuzz::Trim(
        volmgr::fuzz::ReadFuzzFile("keys/recovery-password.txt")));
    if (!rp.ok()) volmgr::fuzz::SetupFailed("secret memory");
    c->secrets.push_back(std::move(rp).value());
    return c;
  }();
  return *creds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  const p::Credentials& creds = Creds();
  auto rec = p::ProtectorRecord::FromTokenJson(3, json);
  if (!rec.ok()) return 0;
  // What is parsed writes back as a token that parses the same way.
  auto again = p::ProtectorRecord::FromTokenJson(3, rec->ToTokenJson());
  if (!again.ok() || again->kind != rec->kind || again->id != rec->id ||
      again->keyslots != rec->keyslots || again->params != rec->params) {
    volmgr::fuzz::Violation("ToTokenJson does not round-trip");
  }
  const p::ProtectorHandler* h = p::FindHandler(rec->kind);
  if (h == nullptr) return 0;
  const volmgr::Status valid = h->Validate(*rec);
  (void)h->Describe(*rec);
  (void)h->CanTry(*rec, creds);
  if (!valid.ok()) return 0;
  if (rec->kind == "recovery-password") {
    const p::Binding binding{"6c3e1f5e-8a5b-4f0e-9d61-2b7c3f8a9e10"};
    (void)h->UnwrapVmk(*rec, creds, binding);
  }
  return 0;
}
