#include "volmgr/recover/data_proof.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "dmtarget/sector_transform.h"

namespace volmgr::recover {

StatusOr<DataProofResult> ProveData(const SegmentReader& reader,
                                    const SecretBytes& fvek,
                                    uint32_t check_bytes,
                                    const std::array<uint8_t, 32>& sha256) {
  const DataSegment& seg = reader.segment();
  uint64_t n = std::min<uint64_t>(check_bytes, seg.payload_bytes);
  n -= n % seg.sector_size;
  DataProofResult r;
  r.bytes = static_cast<uint32_t>(n);
  if (n == 0 || n != check_bytes) return r;  // kDiffers: not the same range
  std::vector<uint8_t> buf(n);
  std::vector<ByteRange> bad;
  VOLMGR_RETURN_IF_ERROR(reader.Read(0, buf, bad));
  if (!bad.empty()) {
    return IoError("cannot read " + DescribeRange(seg, bad.front()) +
                   " needed for the key package's checksum");
  }
  const uint8_t first = buf[0];
  if (std::all_of(buf.begin(), buf.end(),
                  [first](uint8_t b) { return b == first; })) {
    r.result = DataProof::kBlank;
    r.blank_value = first;
    return r;
  }
  VOLMGR_ASSIGN_OR_RETURN(auto xts, dmtarget::XtsSectorTransform::Create(
                                        fvek, seg.sector_size, seg.iv_offset));
  VOLMGR_RETURN_IF_ERROR(xts.Decrypt(0, buf, buf));
  std::array<uint8_t, 32> sum{};
  SHA256(buf.data(), buf.size(), sum.data());
  OPENSSL_cleanse(buf.data(), buf.size());
  r.result = sum == sha256 ? DataProof::kMatch : DataProof::kDiffers;
  return r;
}

std::string BlankDataMessage(const std::string& device,
                             const DataProofResult& r) {
  char v[8];
  std::snprintf(v, sizeof v, "0x%02x", r.blank_value);
  const std::string what =
      r.blank_value == 0
          ? std::string("all zeros (never written, or discarded)")
          : std::string("all ") + v + " (never written, or erased)";
  return "the first " + std::to_string(r.bytes) + " data bytes of " + device +
         " are " + what +
         ": such data decrypts the same whichever volume the device holds, so "
         "it cannot prove that this is the key package's volume";
}

StatusOr<DataProofResult> RequireDataProof(
    const std::string& device, const std::string& whose,
    const SegmentReader& reader, const SecretBytes& fvek, uint32_t check_bytes,
    const std::array<uint8_t, 32>& sha256, bool force,
    std::string_view force_flag) {
  VOLMGR_ASSIGN_OR_RETURN(DataProofResult r,
                          ProveData(reader, fvek, check_bytes, sha256));
  switch (r.result) {
    case DataProof::kMatch:
      return r;
    case DataProof::kBlank:
      if (force) return r;
      return FailedPreconditionError(BlankDataMessage(device, r) +
                                     (force_flag.empty()
                                          ? std::string()
                                          : "; if you are sure that " + device +
                                                " holds " + whose + ", use " +
                                                std::string(force_flag)));
    case DataProof::kDiffers:
      break;
  }
  return FailedPreconditionError(
      "the data on " + device + " does not decrypt with the key package of " +
      whose + " (checksum of the first " + std::to_string(check_bytes) +
      " bytes differs): not this volume's data, or the data changed since "
      "the package was made");
}

}  // namespace volmgr::recover
