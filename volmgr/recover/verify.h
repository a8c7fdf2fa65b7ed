// Decrypt-and-check: does the data segment decrypt to something that looks
// like a filesystem, and which parts cannot be read?
//
// Thread-safety: reentrant.
#ifndef VOLMGR_RECOVER_VERIFY_H_
#define VOLMGR_RECOVER_VERIFY_H_

#include <array>
#include <cstdint>
#include <functional>
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
  uint64_t sectors_checked = 0;
  std::vector<ByteRange> unreadable;
};

StatusOr<VerifyResult> Verify(const SegmentReader& reader,
                              const SecretBytes& fvek,
                              const VerifyOptions& options);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_VERIFY_H_
