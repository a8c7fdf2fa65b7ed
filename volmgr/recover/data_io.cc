#include "volmgr/recover/data_io.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "volmgr/volume/volume.h"

namespace volmgr::recover {
namespace {

// Errors that mean "this part of the medium cannot be read", as opposed to
// a programming or permission error that would fail every read.
bool IsMediaError(int err) {
  return err == EIO || err == ENXIO || err == ENODATA || err == EBADMSG ||
         err == EREMOTEIO || err == ENOMEDIUM;
}

// Reads exactly buf.size() bytes at `pos`. Returns the bytes read before EOF
// or a media error (errno in *media_err, 0 for EOF), or a Status for any
// other failure.
StatusOr<size_t> ReadFully(int fd, std::span<uint8_t> buf, uint64_t pos,
                           int* media_err) {
  size_t done = 0;
  *media_err = 0;
  while (done < buf.size()) {
    ssize_t n = pread(fd, buf.data() + done, buf.size() - done,
                      static_cast<off_t>(pos + done));
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) break;  // end of device
    if (errno == EINTR) continue;
    if (IsMediaError(errno)) {
      *media_err = errno;
      break;
    }
    return ErrnoToStatus(errno,
                         "reading at byte " + std::to_string(pos + done));
  }
  return done;
}

}  // namespace

StatusOr<DataSegment> DescribeSegment(const volume::LuksDevice& luks) {
  DataSegment seg;
  seg.uuid = luks.uuid();
  seg.label = luks.label();
  seg.cipher = luks.cipher_spec();
  seg.sector_size = luks.sector_size();
  seg.data_offset_bytes = luks.data_offset_bytes();
  seg.iv_offset = crypt_get_iv_offset(luks.handle());
  if (luks.volume_key_bits() == 0) {
    // No keyslot left to tell the key size: the key is gone.
    const std::string sub = luks.subsystem();
    if (sub.rfind(volume::kPurgedSubsystemPrefix, 0) == 0) {
      return FailedPreconditionError(
          luks.path() + " was purged (`volmgr purge`) on " +
          sub.substr(volume::kPurgedSubsystemPrefix.size()) +
          ": its keyslots and protectors are destroyed, and no key, "
          "package or agent can recover its data");
    }
    return FailedPreconditionError(luks.path() +
                                   " has no keyslot left: its volume key "
                                   "is gone");
  }
  if (seg.cipher != "aes-xts-plain64" || luks.volume_key_bits() != 512) {
    return UnsupportedError("the data segment of " + luks.path() + " uses " +
                            seg.cipher + " with a " +
                            std::to_string(luks.volume_key_bits()) +
                            "-bit key; volmgr-recover decrypts "
                            "aes-xts-plain64 with 512-bit keys only");
  }
  if (seg.sector_size != 512 && seg.sector_size != 1024 &&
      seg.sector_size != 2048 && seg.sector_size != 4096) {
    return CorruptionError("the data segment of " + luks.path() +
                           " has sector size " +
                           std::to_string(seg.sector_size));
  }
  VOLMGR_ASSIGN_OR_RETURN(uint64_t payload, luks.payload_bytes());
  if (payload == 0) {
    return CorruptionError(luks.path() +
                           " ends before its data segment (at "
                           "byte " +
                           std::to_string(seg.data_offset_bytes) +
                           "): the image is truncated");
  }
  // dm-crypt maps whole sectors; a partial tail sector is not data.
  seg.payload_bytes = payload - payload % seg.sector_size;
  return seg;
}

void AppendRange(std::vector<ByteRange>& ranges, ByteRange r) {
  if (r.begin >= r.end) return;
  if (!ranges.empty() && ranges.back().end == r.begin) {
    ranges.back().end = r.end;
    return;
  }
  ranges.push_back(r);
}

std::string DescribeRange(const DataSegment& seg, const ByteRange& r) {
  const uint64_t first = r.begin / seg.sector_size;
  const uint64_t last = (r.end - 1) / seg.sector_size;
  return "data sectors " + std::to_string(first) + "-" + std::to_string(last) +
         " of " + std::to_string(seg.sector_size) + " bytes (device bytes " +
         std::to_string(seg.data_offset_bytes + r.begin) + "-" +
         std::to_string(seg.data_offset_bytes + r.end - 1) + ")";
}

StatusOr<SegmentReader> SegmentReader::Open(const std::string& path,
                                            const DataSegment& seg) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + path);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return SegmentReader(fd, seg);
}

SegmentReader::SegmentReader(SegmentReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), seg_(std::move(other.seg_)) {}

SegmentReader& SegmentReader::operator=(SegmentReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    seg_ = std::move(other.seg_);
  }
  return *this;
}

SegmentReader::~SegmentReader() {
  if (fd_ >= 0) close(fd_);
}

Status SegmentReader::Read(uint64_t offset, std::span<uint8_t> buf,
                           std::vector<ByteRange>& unreadable) const {
  const uint32_t ss = seg_.sector_size;
  if (offset % ss != 0 || buf.size() % ss != 0 ||
      offset + buf.size() > seg_.payload_bytes) {
    return InvalidArgumentError(
        "read of payload bytes [" + std::to_string(offset) + ", +" +
        std::to_string(buf.size()) + ") is not sector-aligned or out of range");
  }
  int media_err = 0;
  VOLMGR_ASSIGN_OR_RETURN(
      size_t got,
      ReadFully(fd_, buf, seg_.data_offset_bytes + offset, &media_err));
  if (got == buf.size()) return Status::Ok();
  // Keep the whole sectors read so far; pin down the rest sector by sector.
  for (size_t at = got - got % ss; at < buf.size(); at += ss) {
    std::span<uint8_t> sector = buf.subspan(at, ss);
    VOLMGR_ASSIGN_OR_RETURN(
        size_t n, ReadFully(fd_, sector, seg_.data_offset_bytes + offset + at,
                            &media_err));
    if (n != ss) {
      std::memset(sector.data(), 0, ss);
      AppendRange(unreadable, {offset + at, offset + at + ss});
    }
  }
  return Status::Ok();
}

}  // namespace volmgr::recover
