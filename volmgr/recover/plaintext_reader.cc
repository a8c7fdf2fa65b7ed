#include "volmgr/recover/plaintext_reader.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

namespace volmgr::recover {

StatusOr<PlaintextReader> PlaintextReader::Create(SegmentReader reader,
                                                  const SecretBytes& fvek,
                                                  unsigned threads) {
  const DataSegment& seg = reader.segment();
  VOLMGR_ASSIGN_OR_RETURN(dmtarget::XtsSectorTransform xts,
                          dmtarget::XtsSectorTransform::Create(
                              fvek, seg.sector_size, seg.iv_offset,
                              dmtarget::XtsSectorTransform::Options{threads}));
  return PlaintextReader(std::move(reader), std::move(xts));
}

StatusOr<size_t> PlaintextReader::Read(
    uint64_t offset, std::span<uint8_t> out,
    std::vector<ByteRange>* unreadable) const {
  const uint64_t total = size();
  if (offset >= total || out.empty()) return size_t{0};
  const uint64_t end = std::min<uint64_t>(total, offset + out.size());
  const uint32_t ss = reader_.segment().sector_size;
  // Whole sectors around [offset, end): XTS decrypts a sector as one unit.
  const uint64_t first = offset - offset % ss;
  const uint64_t last = end % ss == 0 ? end : end + (ss - end % ss);
  std::vector<uint8_t> buf(last - first);
  std::vector<ByteRange> bad;
  VOLMGR_RETURN_IF_ERROR(reader_.Read(first, buf, bad));
  if (!bad.empty()) {
    if (unreadable != nullptr) {
      for (const auto& r : bad) AppendRange(*unreadable, r);
    }
    // Zero-filled ciphertext decrypts to noise: refuse rather than serve it.
    return IoError("unreadable: " + DescribeRange(reader_.segment(), bad[0]));
  }
  VOLMGR_RETURN_IF_ERROR(xts_.Decrypt(first / ss, buf, buf));
  const size_t n = static_cast<size_t>(end - offset);
  std::memcpy(out.data(), buf.data() + (offset - first), n);
  // The plaintext of a volume is as secret as the key that guards it.
  OPENSSL_cleanse(buf.data(), buf.size());
  return n;
}

}  // namespace volmgr::recover
