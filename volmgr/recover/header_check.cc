#include "volmgr/recover/header_check.h"

#include <fcntl.h>
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
                           const std::array<uint8_t, 6>& magic) {
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
  r.keyslots = static_cast<int>(j["keyslots"].size());
  if (j.contains("tokens") && j["tokens"].is_object()) {
    for (const auto& [id, t] : j["tokens"].items()) {
      std::string type = t.is_object() ? t.value("type", "") : "";
      if (type.rfind("volmgr-", 0) == 0) ++r.volmgr_tokens;
      if (type == "volmgr-volume") r.volume_token = true;
    }
  }
  return r;
}

}  // namespace

StatusOr<HeaderReport> CheckHeader(const std::string& device) {
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + device);
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { close(*f); });
  HeaderReport rep;
  rep.primary = CheckCopy(fd, "primary", 0, kMagic1);
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
  rep.secondary = CheckCopy(fd, "secondary", second, kMagic2);
  const auto& p = rep.primary;
  const auto& s = rep.secondary;
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
  const auto& good = p.ok() ? p : s;
  if (good.ok() && !good.volume_token) {
    rep.findings.push_back(
        "no volmgr-volume token: this LUKS2 volume was not "
        "made by volmgr");
  }
  return rep;
}

}  // namespace volmgr::recover
