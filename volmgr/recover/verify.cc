#include "volmgr/recover/verify.h"

#include <blkid/blkid.h>
#include <openssl/sha.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "dmtarget/sector_transform.h"

namespace volmgr::recover {
namespace {

// Enough plaintext to hold the superblocks libblkid looks for at the start
// of a device: ext2/3/4 at 1 KiB, XFS at 0, btrfs at 64 KiB.
constexpr uint64_t kProbeBytes = 1u << 20;

// Probes `plain` (the decrypted start of the volume) with libblkid through a
// memfd, so no plaintext ever touches a file system.
void ProbeFilesystem(std::span<const uint8_t> plain, VerifyResult& r) {
  int fd = memfd_create("volmgr-recover-probe", MFD_CLOEXEC);
  if (fd < 0) return;
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { close(*f); });
  if (write(fd, plain.data(), plain.size()) !=
      static_cast<ssize_t>(plain.size())) {
    return;
  }
  blkid_probe pr = blkid_new_probe();
  if (pr == nullptr) return;
  if (blkid_probe_set_device(pr, fd, 0,
                             static_cast<blkid_loff_t>(plain.size())) == 0) {
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr,
                                      BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID);
    if (blkid_do_safeprobe(pr) == 0) {
      const char* v = nullptr;
      if (blkid_probe_lookup_value(pr, "TYPE", &v, nullptr) == 0) r.fs_type = v;
      if (blkid_probe_lookup_value(pr, "UUID", &v, nullptr) == 0) r.fs_uuid = v;
    }
  }
  blkid_free_probe(pr);
}

}  // namespace

// The size the filesystem at the start of the decrypted data says it has:
// ext2/3/4 block count x block size, XFS data blocks x block size; 0 when
// there is no such superblock or it is implausible. A filesystem larger than
// the data segment does not fit its mapping ("bad geometry" at mount): the
// check issue 17 asked `verify` for.
uint64_t FilesystemSizeBytes(std::span<const uint8_t> plain) {
  auto le32 = [&](size_t at) -> uint32_t {
    return static_cast<uint32_t>(plain[at]) |
           static_cast<uint32_t>(plain[at + 1]) << 8 |
           static_cast<uint32_t>(plain[at + 2]) << 16 |
           static_cast<uint32_t>(plain[at + 3]) << 24;
  };
  auto be = [&](size_t at, int n) -> uint64_t {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | plain[at + i];
    return v;
  };
  constexpr size_t kExt = 1024;  // ext2/3/4 superblock
  if (plain.size() >= kExt + 0x154 && plain[kExt + 0x38] == 0x53 &&
      plain[kExt + 0x39] == 0xEF) {
    const uint32_t log = le32(kExt + 0x18);
    if (log > 6) return 0;  // blocks of 1 KiB .. 64 KiB
    uint64_t blocks = le32(kExt + 0x04);
    if (le32(kExt + 0x60) & 0x80) {  // INCOMPAT_64BIT
      blocks |= static_cast<uint64_t>(le32(kExt + 0x150)) << 32;
    }
    if (blocks >> 40) return 0;
    return blocks << (10 + log);
  }
  if (plain.size() >= 16 && std::memcmp(plain.data(), "XFSB", 4) == 0) {
    const uint64_t bs = be(4, 4);
    const uint64_t blocks = be(8, 8);
    if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0 || (blocks >> 44)) {
      return 0;
    }
    return blocks * bs;
  }
  return 0;
}

Status CheckFilesystemFits(const VerifyResult& r, uint64_t payload_bytes) {
  if (r.fs_size_bytes == 0 || r.fs_size_bytes <= payload_bytes) {
    return Status::Ok();
  }
  return CorruptionError(
      "the " + (r.fs_type.empty() ? std::string("filesystem") : r.fs_type) +
      " filesystem records " + std::to_string(r.fs_size_bytes) +
      " bytes, but the data segment holds only " +
      std::to_string(payload_bytes) +
      " bytes: it does not fit its mapping (mount fails with \"bad "
      "geometry\"; the volume's data segment is shorter than the "
      "filesystem, e.g. the device or image shrank)");
}

StatusOr<std::array<uint8_t, 32>> PlaintextChecksum(const SegmentReader& reader,
                                                    const SecretBytes& fvek,
                                                    uint32_t bytes,
                                                    uint32_t* used) {
  const DataSegment& seg = reader.segment();
  uint64_t n = std::min<uint64_t>(bytes, seg.payload_bytes);
  n -= n % seg.sector_size;
  std::vector<uint8_t> buf(n);
  std::vector<ByteRange> bad;
  VOLMGR_RETURN_IF_ERROR(reader.Read(0, buf, bad));
  if (!bad.empty()) {
    return IoError("cannot read " + DescribeRange(seg, bad.front()) +
                   " needed for the checksum");
  }
  VOLMGR_ASSIGN_OR_RETURN(auto xts, dmtarget::XtsSectorTransform::Create(
                                        fvek, seg.sector_size, seg.iv_offset));
  VOLMGR_RETURN_IF_ERROR(xts.Decrypt(0, buf, buf));
  std::array<uint8_t, 32> out{};
  SHA256(buf.data(), buf.size(), out.data());
  if (used) *used = static_cast<uint32_t>(n);
  return out;
}

StatusOr<VerifyResult> Verify(const SegmentReader& reader,
                              const SecretBytes& fvek,
                              const VerifyOptions& options) {
  const DataSegment& seg = reader.segment();
  const uint64_t sectors = seg.payload_bytes / seg.sector_size;
  VOLMGR_ASSIGN_OR_RETURN(
      auto xts,
      dmtarget::XtsSectorTransform::Create(
          fvek, seg.sector_size, seg.iv_offset,
          {.threads = std::clamp(options.threads, 1u,
                                 dmtarget::XtsSectorTransform::kMaxThreads)}));
  VerifyResult r;
  // The start: filesystem signature.
  {
    uint64_t n = std::min(kProbeBytes, seg.payload_bytes);
    std::vector<uint8_t> buf(n);
    std::vector<ByteRange> bad;
    VOLMGR_RETURN_IF_ERROR(reader.Read(0, buf, bad));
    VOLMGR_RETURN_IF_ERROR(xts.Decrypt(0, buf, buf));
    for (const auto& b : bad) {
      std::fill(buf.begin() + static_cast<ptrdiff_t>(b.begin),
                buf.begin() + static_cast<ptrdiff_t>(b.end), 0);
      AppendRange(r.unreadable, b);
    }
    ProbeFilesystem(buf, r);
    r.fs_size_bytes = FilesystemSizeBytes(buf);
    r.sectors_checked += n / seg.sector_size;
  }
  // The rest: every sector, or an even sample.
  const uint64_t chunk = 8u << 20;
  std::vector<uint8_t> buf;
  if (options.all) {
    for (uint64_t at = std::min(kProbeBytes, seg.payload_bytes);
         at < seg.payload_bytes; at += chunk) {
      buf.resize(std::min(chunk, seg.payload_bytes - at));
      std::vector<ByteRange> bad;
      VOLMGR_RETURN_IF_ERROR(reader.Read(at, buf, bad));
      VOLMGR_RETURN_IF_ERROR(xts.Decrypt(at / seg.sector_size, buf, buf));
      for (const auto& b : bad) AppendRange(r.unreadable, b);
      r.sectors_checked += buf.size() / seg.sector_size;
      if (options.progress)
        options.progress(at + buf.size(), seg.payload_bytes);
    }
  } else if (options.samples > 0 && sectors > 0) {
    buf.resize(seg.sector_size);
    const uint64_t n = std::min(options.samples, sectors);
    for (uint64_t i = 0; i < n; ++i) {
      // Evenly spaced, always including the last sector.
      const uint64_t s = n == 1 ? 0 : i * (sectors - 1) / (n - 1);
      if (s * seg.sector_size < kProbeBytes) continue;  // checked above
      std::vector<ByteRange> bad;
      VOLMGR_RETURN_IF_ERROR(reader.Read(s * seg.sector_size, buf, bad));
      VOLMGR_RETURN_IF_ERROR(xts.Decrypt(s, buf, buf));
      for (const auto& b : bad) AppendRange(r.unreadable, b);
      ++r.sectors_checked;
    }
  }
  return r;
}

}  // namespace volmgr::recover
