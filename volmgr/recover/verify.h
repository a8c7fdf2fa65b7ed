// Decrypt-and-check: does the data segment decrypt to something that looks
// like a filesystem, and which parts cannot be read?
//
// Thread-safety: reentrant.
#ifndef VOLMGR_RECOVER_VERIFY_H_
#define VOLMGR_RECOVER_VERIFY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/recover/data_io.h"

namespace volmgr::recover {

// SHA-256 of the first min(`bytes`, payload) plaintext bytes (rounded down
// to whole sectors; the count used is returned in *used). Unreadable
// sectors make this kIoError: a checksum over guessed zeros proves nothing.
StatusOr<std::array<uint8_t, 32>> PlaintextChecksum(const SegmentReader& reader,
                                                    const SecretBytes& fvek,
                                                    uint32_t bytes,
                                                    uint32_t* used);

struct VerifyOptions {
  uint64_t samples = 256;  // sectors spread evenly over the payload
  bool all = false;        // every sector instead
  unsigned threads = 1;
  std::function<void(uint64_t, uint64_t)> progress;
};

struct VerifyResult {
  std::string fs_type;  // libblkid TYPE of the decrypted start ("" if none)
  std::string fs_uuid;
  // The size the filesystem's own superblock gives (ext2/3/4, XFS); 0 if
  // unknown. Larger than the data segment: it does not fit its mapping.
  uint64_t fs_size_bytes = 0;
  uint64_t sectors_checked = 0;
  std::vector<ByteRange> unreadable;
};

// The filesystem size that the superblock at the start of `plain` (the
// decrypted start of the data) records: ext2/3/4 block count x block size,
// XFS data blocks x block size; 0 if none is found or it is implausible.
uint64_t FilesystemSizeBytes(std::span<const uint8_t> plain);

// kCorruption when the filesystem `r` found is larger than the data segment
// `payload_bytes` (it would not mount: "bad geometry"), else OK.
Status CheckFilesystemFits(const VerifyResult& r, uint64_t payload_bytes);

StatusOr<VerifyResult> Verify(const SegmentReader& reader,
                              const SecretBytes& fvek,
                              const VerifyOptions& options);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_VERIFY_H_
