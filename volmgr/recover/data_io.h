// Reading a LUKS2 data segment's ciphertext for offline recovery, where a
// disk may be failing: sectors that cannot be read are zero-filled and
// reported as ranges instead of aborting the whole operation.
//
// Offsets here are payload offsets (bytes from the start of the data
// segment), always multiples of the segment's sector size.
//
// Thread-safety: SegmentReader::Read may run concurrently (pread only).
#ifndef VOLMGR_RECOVER_DATA_IO_H_
#define VOLMGR_RECOVER_DATA_IO_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/volume/luks_device.h"

namespace volmgr::recover {

// Where the encrypted data lives and how it is encrypted.
struct DataSegment {
  std::string uuid;          // LUKS2 UUID, canonical text
  std::string label;         // LUKS2 label (may be empty)
  std::string cipher;        // "aes-xts-plain64" (the only one supported)
  uint32_t sector_size = 0;  // 512 or 4096
  uint64_t data_offset_bytes = 0;
  uint64_t payload_bytes = 0;  // whole sectors behind data_offset_bytes
  uint64_t iv_offset = 0;      // dm-crypt iv_offset, 512-byte sectors
};

// The data segment of a loaded LUKS2 header. kUnsupported for a cipher other
// than aes-xts-plain64 with a 512-bit key; kCorruption when the device ends
// before the data offset.
StatusOr<DataSegment> DescribeSegment(const volume::LuksDevice& luks);

// [begin, end) in payload bytes.
struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// Appends `r`, merging it with the last range when they touch.
void AppendRange(std::vector<ByteRange>& ranges, ByteRange r);

// "data sectors 2048-2303 (device bytes 25165824-26214399)".
std::string DescribeRange(const DataSegment& seg, const ByteRange& r);

class SegmentReader {
 public:
  // Opens `path` read-only. kNotFound / kFailedPrecondition from open(2).
  static StatusOr<SegmentReader> Open(const std::string& path,
                                      const DataSegment& seg);
  SegmentReader(SegmentReader&& other) noexcept;
  SegmentReader& operator=(SegmentReader&& other) noexcept;
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;
  ~SegmentReader();

  // Reads payload bytes [offset, offset + buf.size()) into `buf`.
  // REQUIRES: offset and buf.size() are multiples of the sector size and the
  // range lies within the payload.
  // A chunk that reads short or fails with a media error (EIO, ENXIO,
  // ENODATA, EBADMSG, EREMOTEIO) is re-read sector by sector; every sector
  // that still fails (or lies beyond the end of the device) is zero-filled
  // and appended to `unreadable` (merged). Other errors return a Status.
  Status Read(uint64_t offset, std::span<uint8_t> buf,
              std::vector<ByteRange>& unreadable) const;

  const DataSegment& segment() const { return seg_; }

 private:
  SegmentReader(int fd, DataSegment seg) : fd_(fd), seg_(std::move(seg)) {}
  int fd_ = -1;
  DataSegment seg_;
};

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_DATA_IO_H_
