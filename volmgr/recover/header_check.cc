#include "volmgr/recover/header_check.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

namespace volmgr::recover {
namespace {

// LUKS2 binary header layout (spec 1.1, section 2.1), big-endian fields.
constexpr size_t kBinHdrSize = 4096;
constexpr size_t kOffVersion = 6, kOffHdrSize = 8, kOffSeqid = 16,
                 kOffLabel = 24, kOffCsumAlg = 72, kOffUuid = 168,
                 kOffHdrOffset = 256, kOffCsum = 448, kCsumLen = 64;
constexpr std::array<uint8_t, 6> kMagic1 = {'L', 'U', 'K', 'S', 0xba, 0xbe};
constexpr std::array<uint8_t, 6> kMagic2 = {'S', 'K', 'U', 'L', 0xba, 0xbe};
// Allowed hdr_size values (spec 1.1, 2.2: 16 KiB .. 4 MiB, powers of two).
constexpr uint64_t kMinHdrSize = 0x4000, kMaxHdrSize = 0x400000;

uint64_t Be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

std::string CString(const uint8_t* p, size_t max) {
  return std::string(reinterpret_cast<const char*>(p),
                     strnlen(reinterpret_cast<const char*>(p), max));
}

// A name from the disk, safe to put in a message: non-printable bytes as
// \xNN.
std::string Printable(std::string_view v) {
  std::string out;
  for (unsigned char c : v.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

bool ReadAt(int fd, uint64_t off, std::vector<uint8_t>& buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = pread(fd, buf.data() + done, buf.size() - done,
                      static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string Hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

HeaderCopyReport CheckCopy(int fd, const std::string& name, uint64_t offset,
                           const std::array<uint8_t, 6>& magic,
                           nlohmann::json* json_out) {
  HeaderCopyReport r;
  r.name = name;
  r.offset = offset;
  std::vector<uint8_t> bin(kBinHdrSize);
  if (!ReadAt(fd, offset, bin)) {
    r.problems.push_back("cannot read the binary header at " + Hex(offset) +
                         " (device too short or I/O error)");
    return r;
  }
  r.magic_ok = std::equal(magic.begin(), magic.end(), bin.begin());
  if (!r.magic_ok) {
    const bool zero = std::all_of(bin.begin(), bin.begin() + 512,
                                  [](uint8_t b) { return b == 0; });
    r.problems.push_back(std::string("binary header at ") + Hex(offset) +
                         (zero ? " is wiped (zeros): no magic"
                               : " has no LUKS2 magic (overwritten)"));
    return r;
  }
  r.version = static_cast<uint16_t>(Be(&bin[kOffVersion], 2));
  r.hdr_size = Be(&bin[kOffHdrSize], 8);
  r.seqid = Be(&bin[kOffSeqid], 8);
  r.label = CString(&bin[kOffLabel], 48);
  r.checksum_alg = CString(&bin[kOffCsumAlg], 32);
  r.uuid = CString(&bin[kOffUuid], 40);
  r.hdr_offset = Be(&bin[kOffHdrOffset], 8);
  if (r.version != 2) {
    r.problems.push_back("version field is " + std::to_string(r.version) +
                         ", not 2");
    return r;
  }
  if (r.hdr_size < kMinHdrSize || r.hdr_size > kMaxHdrSize ||
      (r.hdr_size & (r.hdr_size - 1)) != 0) {
    r.problems.push_back("hdr_size " + Hex(r.hdr_size) +
                         " is not a power of two in 16 KiB..4 MiB");
    return r;
  }
  if (r.hdr_offset != offset) {
    r.problems.push_back("hdr_offset says " + Hex(r.hdr_offset) +
                         " but the copy is at " + Hex(offset));
  }
  std::vector<uint8_t> whole(r.hdr_size);
  if (!ReadAt(fd, offset, whole)) {
    r.problems.push_back("cannot read the JSON area (" +
                         std::to_string(r.hdr_size - kBinHdrSize) +
                         " bytes after the binary header)");
    return r;
  }
  // Checksum: the digest of the whole hdr_size bytes with the csum field
  // zeroed (spec 1.1, 2.1).
  const EVP_MD* md = EVP_get_digestbyname(r.checksum_alg.c_str());
  if (md == nullptr) {
    r.problems.push_back("unknown checksum algorithm \"" + r.checksum_alg +
                         "\"");
  } else {
    std::array<uint8_t, kCsumLen> stored{};
    std::memcpy(stored.data(), &whole[kOffCsum], kCsumLen);
    std::memset(&whole[kOffCsum], 0, kCsumLen);
    std::array<uint8_t, kCsumLen> calc{};
    unsigned len = 0;
    if (EVP_Digest(whole.data(), whole.size(), calc.data(), &len, md,
                   nullptr) == 1) {
      r.checksum_ok =
          std::equal(calc.begin(), calc.begin() + len, stored.begin());
    }
    if (!r.checksum_ok) {
      r.problems.push_back(r.checksum_alg +
                           " checksum mismatch: the binary header or JSON "
                           "area (bytes " +
                           Hex(offset) + ".." + Hex(offset + r.hdr_size - 1) +
                           ") was altered");
    }
  }
  // The JSON area: NUL-terminated text after the binary header.
  const char* js = reinterpret_cast<const char*>(whole.data() + kBinHdrSize);
  const std::string text(js, strnlen(js, r.hdr_size - kBinHdrSize));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  r.json_ok = j.is_object() && j.contains("segments") &&
              j.contains("keyslots") && j.contains("digests") &&
              j.contains("config");
  if (!r.json_ok) {
    r.problems.push_back("the JSON metadata does not parse as a LUKS2 object");
    return r;
  }
  if (!j["keyslots"].is_object()) {
    r.problems.push_back("\"keyslots\" is not a JSON object");
    return r;
  }
  r.keyslots = static_cast<int>(j["keyslots"].size());
  // Every token must be an object with a string "type" (spec 1.1, 3.4):
  // libcryptsetup refuses the whole copy otherwise. Report it; never let a
  // hostile type end the check (issue 17, item 5).
  if (j.contains("tokens")) {
    if (!j["tokens"].is_object()) {
      r.problems.push_back("\"tokens\" is not a JSON object");
    } else {
      for (const auto& [id, t] : j["tokens"].items()) {
        const std::string token = "token " + Printable(id);
        if (!t.is_object()) {
          r.problems.push_back(token +
                               " is not a JSON object (libcryptsetup "
                               "refuses this header copy)");
          continue;
        }
        auto type = t.find("type");
        if (type == t.end() || !type->is_string()) {
          r.problems.push_back(token + ": \"type\" is " +
                               (type == t.end() ? "missing" : "not a string") +
                               " (libcryptsetup refuses this header copy)");
          continue;
        }
        const std::string& ty = type->get_ref<const std::string&>();
        if (ty.rfind("volmgr-", 0) == 0) ++r.volmgr_tokens;
        if (ty == "volmgr-volume") r.volume_token = true;
      }
    }
  }
  if (json_out != nullptr) *json_out = std::move(j);
  return r;
}

// A decimal string of the JSON ("offset": "32768"), as LUKS2 stores sizes.
bool DecimalField(const nlohmann::json& obj, const char* key, uint64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return false;
  const std::string& v = it->get_ref<const std::string&>();
  if (v.empty() || v.size() > 19) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

// Each keyslot's key material area (AF-split, encrypted: noise to anyone
// without the keyslot's passphrase) of an intact copy's JSON. An area whose
// bytes are all one value was wiped; that keyslot opens nothing any more.
// A random overwrite looks like key material: only a credential proves
// those (CheckKeyslots).
void CheckKeyslotAreas(int fd, const nlohmann::json& j,
                       std::vector<std::string>& findings) {
  constexpr uint64_t kMaxArea = 64u << 20;
  for (const auto& [id, ks] : j["keyslots"].items()) {
    const std::string name = "keyslot " + Printable(id);
    if (!ks.is_object() || !ks.contains("area") || !ks["area"].is_object()) {
      findings.push_back(name + " has no key material area in the JSON");
      continue;
    }
    // Only a "luks2" keyslot's "raw" area holds key material; a reencrypt
    // keyslot's area (checksums, journal, datashift) may be zeros.
    auto type = ks.find("type");
    auto area_type = ks["area"].find("type");
    if (type == ks.end() || !type->is_string() || *type != "luks2" ||
        area_type == ks["area"].end() || !area_type->is_string() ||
        *area_type != "raw") {
      continue;
    }
    uint64_t off = 0, size = 0;
    if (!DecimalField(ks["area"], "offset", &off) ||
        !DecimalField(ks["area"], "size", &size) || size == 0 ||
        size > kMaxArea) {
      findings.push_back(name + "'s area has no valid offset and size");
      continue;
    }
    std::vector<uint8_t> area(static_cast<size_t>(size));
    if (!ReadAt(fd, off, area)) {
      findings.push_back(name + "'s key material area (bytes " + Hex(off) +
                         ".." + Hex(off + size - 1) +
                         ") cannot be read (device truncated or I/O error)");
      continue;
    }
    const uint8_t first = area[0];
    if (std::all_of(area.begin(), area.end(),
                    [first](uint8_t b) { return b == first; })) {
      char v[8];
      std::snprintf(v, sizeof v, "0x%02x", first);
      findings.push_back(
          name + "'s key material area (bytes " + Hex(off) + ".." +
          Hex(off + size - 1) + ") is wiped (all " + v +
          "): that keyslot opens nothing any more, with volmgr or stock "
          "cryptsetup; volmgr may still open through its tokens "
          "(`volmgr-recover check DEVICE --key-file F` says which)");
    }
  }
}

// LUKS1 (LUKS On-Disk Format Specification 1.2.3): one binary header at
// offset 0, no checksum, no JSON, 8 keyslots of 48 bytes from byte 208.
// Only its fields can be checked for consistency.
HeaderCopyReport CheckLuks1(int fd, const std::vector<uint8_t>& bin,
                            uint64_t device_bytes, std::string* cipher) {
  HeaderCopyReport r;
  r.name = "primary";
  r.magic_ok = true;
  r.version = 1;
  auto text_field = [&](size_t off, size_t len, const char* what,
                        std::string* out) {
    const std::string v = CString(&bin[off], len);
    if (v.empty() || v.size() == len ||
        !std::all_of(v.begin(), v.end(),
                     [](char c) { return c > 0x20 && c < 0x7f; })) {
      r.problems.push_back(std::string(what) +
                           " is not a NUL-terminated printable name");
      *out = "?";
      return;
    }
    *out = v;
  };
  std::string name, mode, hash;
  text_field(8, 32, "cipher-name", &name);
  text_field(40, 32, "cipher-mode", &mode);
  text_field(72, 32, "hash-spec", &hash);
  *cipher = name + "-" + mode;
  r.checksum_alg = hash;  // LUKS1's hash-spec (PBKDF2 and AF hash)
  const uint64_t payload = Be(&bin[104], 4);
  const uint64_t key_bytes = Be(&bin[108], 4);
  const uint64_t mk_iter = Be(&bin[164], 4);
  text_field(168, 40, "uuid", &r.uuid);
  if (payload == 0) r.problems.push_back("payload-offset is 0");
  if (key_bytes != 16 && key_bytes != 32 && key_bytes != 64) {
    r.problems.push_back("key-bytes is " + std::to_string(key_bytes) +
                         ", not 16, 32 or 64");
  }
  if (mk_iter == 0) r.problems.push_back("mk-digest-iter is 0");
  // (A payload offset beyond the end is no damage of the header: a
  // `cryptsetup luksHeaderBackup` file is just that.)
  (void)device_bytes;
  constexpr uint64_t kActive = 0x00AC71F3, kDisabled = 0x0000DEAD;
  for (int i = 0; i < 8; ++i) {
    const uint8_t* ks = &bin[208 + 48 * static_cast<size_t>(i)];
    const uint64_t active = Be(ks, 4);
    const uint64_t iter = Be(ks + 4, 4);
    const uint64_t km = Be(ks + 40, 4);
    const uint64_t stripes = Be(ks + 44, 4);
    const std::string slot = "keyslot " + std::to_string(i);
    if (active == kDisabled) continue;
    if (active != kActive) {
      r.problems.push_back(slot + " has an invalid state field " + Hex(active));
      continue;
    }
    ++r.keyslots;
    if (iter == 0 || stripes == 0 || km == 0 ||
        (payload != 0 && km >= payload)) {
      r.problems.push_back(slot +
                           " has inconsistent fields (iterations, stripes "
                           "or key material offset)");
    }
  }
  (void)fd;
  return r;
}

}  // namespace

void DisableHeaderAutoRepair() {
  // libcryptsetup 2.6 lib/luks2/luks2_disk_metadata.c, LUKS2_disk_hdr_read():
  // "Skip auto-recovery if locks are disabled". Cannot fail when disabling.
  (void)crypt_metadata_locking(nullptr, 0);
}

const char* HeaderFormatName(HeaderFormat f) {
  switch (f) {
    case HeaderFormat::kLuks1:
      return "LUKS1";
    case HeaderFormat::kLuks2:
      return "LUKS2";
    case HeaderFormat::kNone:
      break;
  }
  return "none";
}

StatusOr<HeaderReport> CheckHeader(const std::string& device) {
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + device);
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { close(*f); });
  HeaderReport rep;
  const off_t end = lseek(fd, 0, SEEK_END);
  const uint64_t device_bytes = end > 0 ? static_cast<uint64_t>(end) : 0;

  // LUKS1 shares LUKS2's primary magic; its version field says which. Its
  // cipher name sits where LUKS2 keeps hdr_size, so it must never be read
  // as LUKS2 (issue 17, item 7: "hdr_size 7018142038163980288").
  std::vector<uint8_t> bin(kBinHdrSize);
  if (ReadAt(fd, 0, bin) &&
      std::equal(kMagic1.begin(), kMagic1.end(), bin.begin()) &&
      Be(&bin[kOffVersion], 2) == 1) {
    rep.format = HeaderFormat::kLuks1;
    std::string cipher;
    rep.primary = CheckLuks1(fd, bin, device_bytes, &cipher);
    rep.secondary.name = "secondary";
    if (rep.primary.ok()) {
      rep.notes.push_back(
          "a LUKS1 volume (" + cipher + ", UUID " + rep.primary.uuid + ", " +
          std::to_string(rep.primary.keyslots) +
          " active keyslot(s)), not made by volmgr: LUKS1 keeps one header "
          "copy and no checksum, so only its fields were checked. Keep a "
          "`cryptsetup luksHeaderBackup`; `cryptsetup convert --type luks2` "
          "converts it");
    } else {
      rep.findings.push_back(
          "the LUKS1 header (one copy, no checksum) has inconsistent fields: "
          "restore a `cryptsetup luksHeaderBackup` of it with `cryptsetup "
          "luksHeaderRestore`");
    }
    return rep;
  }

  nlohmann::json pj, sj;
  rep.primary = CheckCopy(fd, "primary", 0, kMagic1, &pj);
  // The secondary copy starts right after the primary (offset = hdr_size).
  // If the primary is unreadable, look at every offset the spec allows.
  uint64_t second = kMinHdrSize;
  if (rep.primary.magic_ok && rep.primary.hdr_size >= kMinHdrSize &&
      rep.primary.hdr_size <= kMaxHdrSize) {
    second = rep.primary.hdr_size;
  } else {
    std::vector<uint8_t> m(6);
    for (uint64_t off = kMinHdrSize; off <= kMaxHdrSize; off *= 2) {
      if (ReadAt(fd, off, m) &&
          std::equal(kMagic2.begin(), kMagic2.end(), m.begin())) {
        second = off;
        break;
      }
    }
  }
  rep.secondary = CheckCopy(fd, "secondary", second, kMagic2, &sj);
  const auto& p = rep.primary;
  const auto& s = rep.secondary;
  if ((p.magic_ok && p.version == 2) || (s.magic_ok && s.version == 2)) {
    rep.format = HeaderFormat::kLuks2;
  }
  if (p.ok() && s.ok()) {
    if (p.seqid != s.seqid) {
      rep.findings.push_back("the copies have different seqid (" +
                             std::to_string(p.seqid) + " vs " +
                             std::to_string(s.seqid) +
                             "): an update was interrupted; libcryptsetup "
                             "uses the newer one");
    }
    if (p.uuid != s.uuid) {
      rep.findings.push_back("the copies name different UUIDs");
    }
  } else if (p.ok() || s.ok()) {
    const auto& good = p.ok() ? p : s;
    rep.findings.push_back(
        "the " + std::string(p.ok() ? "secondary" : "primary") +
        " copy is damaged; the " + good.name + " copy (seqid " +
        std::to_string(good.seqid) + ", UUID " + good.uuid +
        ") is intact: `volmgr-recover restore` rewrites the damaged copy "
        "from it (libcryptsetup also does so on its next write access)");
  } else {
    rep.findings.push_back(
        "both header copies are damaged: restore a header backup "
        "(`volmgr-recover restore DEVICE --from BACKUP`) or rebuild from a "
        "key package (`volmgr-recover rebuild DEVICE --key-package FILE`)");
  }
  // The copy libcryptsetup uses: the intact one with the higher seqid.
  const HeaderCopyReport* used = nullptr;
  const nlohmann::json* used_json = nullptr;
  if (p.ok() && (!s.ok() || p.seqid >= s.seqid)) {
    used = &p;
    used_json = &pj;
  } else if (s.ok()) {
    used = &s;
    used_json = &sj;
  }
  if (used != nullptr) {
    CheckKeyslotAreas(fd, *used_json, rep.findings);
    if (!used->volume_token) {
      rep.notes.push_back(
          "no volmgr-volume token: this LUKS2 volume was not "
          "made by volmgr");
    }
  }
  return rep;
}

}  // namespace volmgr::recover
