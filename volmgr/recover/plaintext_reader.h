// Random-access plaintext of a data segment: any byte range, decrypted in
// userspace exactly as dm-crypt shows it (dmtarget/sector_transform.h). Only
// the sectors that overlap the range are read and decrypted. This is what
// `volmgr-recover mount` serves; extract and verify stream whole chunks.
//
// Thread-safety: Read may be called from several threads; decryption is
// serialized by the transform's own lock.
#ifndef VOLMGR_RECOVER_PLAINTEXT_READER_H_
#define VOLMGR_RECOVER_PLAINTEXT_READER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "dmtarget/sector_transform.h"
#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/recover/data_io.h"

namespace volmgr::recover {

class PlaintextReader {
 public:
  // Keys a transform with `fvek` for reader.segment(); `threads` lanes as
  // XtsSectorTransform::Options. The FVEK is copied into OpenSSL's contexts;
  // the caller may wipe it afterwards.
  static StatusOr<PlaintextReader> Create(SegmentReader reader,
                                          const SecretBytes& fvek,
                                          unsigned threads);

  // Plaintext bytes of the whole segment (whole sectors).
  uint64_t size() const { return reader_.segment().payload_bytes; }
  const DataSegment& segment() const { return reader_.segment(); }

  // Copies plaintext bytes [offset, offset + out.size()) into `out`, clipped
  // at size(); returns the number of bytes copied (0 at or past the end).
  // Any alignment. Sectors that cannot be read are not guessed: the call
  // fails with kIoError naming the range (DescribeRange), and the range is
  // appended to *unreadable when given.
  StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out,
                        std::vector<ByteRange>* unreadable = nullptr) const;

 private:
  PlaintextReader(SegmentReader reader, dmtarget::XtsSectorTransform xts)
      : reader_(std::move(reader)), xts_(std::move(xts)) {}
  SegmentReader reader_;
  dmtarget::XtsSectorTransform xts_;
};

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_PLAINTEXT_READER_H_
