// The token set of a volume's LUKS2 header, read the way every command
// reads it (volmgr::volume::Volume::Load: the volmgr-volume token, the
// volmgr-clear-key token of a suspended volume, every protector token).
// Issue 17 item 5: wrong JSON types in any token aborted every command,
// `volmgr unlock --probe` included.
//
// The input is the JSON object "tokens" of a LUKS2 header. The harness
// writes it into a real LUKS2 header (keys/luks2-template.bin: both copies
// of a header made by `volmgr format`, with fresh checksums) in a memfd and
// loads that through libcryptsetup, so what reaches volmgr is exactly what
// libcryptsetup lets through. Then, as `status`/`open` do: the warnings,
// each protector's Describe, an unlock with the corpus volume's recovery
// password, and the clear key of a suspended volume (not counted: nothing
// is written).
#include <openssl/sha.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/volume/volume.h"

namespace {

constexpr size_t kCopy = 16384, kBin = 4096, kCsumOff = 448;
constexpr uint64_t kFileSize = 18ull << 20;  // header area + 2 MiB of data

struct Template {
  std::vector<uint8_t> bin1, bin2;  // binary headers
  std::string prefix, suffix;       // JSON around the tokens object
};

const Template& Tmpl() {
  static const Template* t = [] {
    const std::string raw =
        volmgr::fuzz::ReadFuzzFile("keys/luks2-template.bin");
    if (raw.size() < 2 * kCopy) volmgr::fuzz::SetupFailed("short template");
    auto* t = new Template;
    t->bin1.assign(raw.begin(), raw.begin() + kBin);
    t->bin2.assign(raw.begin() + kCopy, raw.begin() + kCopy + kBin);
    const char* js = raw.data() + kBin;
    auto j = nlohmann::json::parse(std::string(js, strnlen(js, kCopy - kBin)),
                                   nullptr, false);
    if (!j.is_object()) volmgr::fuzz::SetupFailed("template JSON");
    // Cheap digests: a volume key that unwraps is checked in 1000 PBKDF2
    // rounds, not in the volume's calibrated 100 ms.
    for (auto& [id, d] : j["digests"].items()) d["iterations"] = 1000;
    j["tokens"] = "@@TOKENS@@";
    const std::string text = j.dump();
    const size_t at = text.find("\"@@TOKENS@@\"");
    t->prefix = text.substr(0, at);
    t->suffix = text.substr(at + 12);
    return t;
  }();
  return *t;
}

void PutCopy(std::vector<uint8_t>& out, size_t off,
             const std::vector<uint8_t>& bin, const std::string& json) {
  std::memcpy(out.data() + off, bin.data(), kBin);
  std::memset(out.data() + off + kBin, 0, kCopy - kBin);
  std::memcpy(out.data() + off + kBin, json.data(), json.size());
  std::memset(out.data() + off + kCsumOff, 0, 64);
  SHA256(out.data() + off, kCopy, out.data() + off + kCsumOff);
}

const volmgr::protectors::Credentials& Creds() {
  static const volmgr::protectors::Credentials* creds = [] {
    auto* c = new volmgr::protectors::Credentials;
    auto rp = volmgr::SecretBytes::CopyOf(volmgr::fuzz::Trim(
        volmgr::fuzz::ReadFuzzFile("keys/recovery-password.txt")));
    if (!rp.ok()) volmgr::fuzz::SetupFailed("secret memory");
    c->secrets.push_back(std::move(rp).value());
    c->skip_tpm = true;
    // Only the recovery password protectors: a passphrase protector would
    // run Argon2id (megabytes, milliseconds) on every input.
    c->recovery_id =
        volmgr::fuzz::Trim(volmgr::fuzz::ReadFuzzFile("keys/recovery-id.txt"));
    return c;
  }();
  return *creds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Template& t = Tmpl();
  const std::string json =
      t.prefix + std::string(reinterpret_cast<const char*>(data), size) +
      t.suffix;
  if (json.size() >= kCopy - kBin) return 0;  // does not fit the JSON area
  static volmgr::fuzz::MemFile* file = [] {
    auto* f = new volmgr::fuzz::MemFile;
    if (ftruncate(f->fd(), kFileSize) != 0) {
      volmgr::fuzz::SetupFailed("ftruncate");
    }
    return f;
  }();
  std::vector<uint8_t> hdr(2 * kCopy);
  PutCopy(hdr, 0, t.bin1, json);
  PutCopy(hdr, kCopy, t.bin2, json);
  if (pwrite(file->fd(), hdr.data(), hdr.size(), 0) !=
      static_cast<ssize_t>(hdr.size())) {
    volmgr::fuzz::SetupFailed("pwrite");
  }
  auto vol = volmgr::volume::Volume::Load(file->path());
  static const bool debug = getenv("VOLMGR_FUZZ_DEBUG") != nullptr;
  if (debug) {
    std::fprintf(stderr, "Load: %s\n",
                 vol.ok() ? "ok" : vol.status().message().c_str());
  }
  if (!vol.ok()) return 0;
  for (const auto& p : vol->protectors()) {
    const auto* h = volmgr::protectors::FindHandler(p.kind);
    if (h == nullptr) volmgr::fuzz::Violation("protector without a handler");
    (void)h->Describe(p);
  }
  (void)vol->warnings();
  (void)vol->Unlock(Creds());
  if (vol->clear_key()) {
    (void)vol->UnlockWithClearKey(/*count=*/false, {});
  }
  return 0;
}
