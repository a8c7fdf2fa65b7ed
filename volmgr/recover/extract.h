// Offline extraction: the plaintext of a volume's data segment, decrypted in
// userspace exactly as dm-crypt would (dmtarget/sector_transform.h), written
// to a file or block device. No device-mapper needed.
//
// Resumable: progress is checkpointed in a sidecar state file
// "<output>.volmgr-recover" (JSON, docs/CLI.md) after the output has been
// fdatasync'ed, so the bytes it claims done are on stable storage. Sectors
// that cannot be read are written as zeros and reported; the rest is still
// extracted.
//
// Thread-safety: none; one extraction per call.
#ifndef VOLMGR_RECOVER_EXTRACT_H_
#define VOLMGR_RECOVER_EXTRACT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/recover/data_io.h"

namespace volmgr::recover {

inline constexpr size_t kDefaultChunkBytes = 8u << 20;
inline constexpr std::string_view kStateSuffix = ".volmgr-recover";

struct ExtractOptions {
  std::string output;  // file (created) or block device
  unsigned threads = 1;
  size_t chunk_bytes = kDefaultChunkBytes;  // multiple of 4096
  // Continue from the state file left by an interrupted run.
  bool resume = false;
  // Overwrite an existing output file (without --resume).
  bool force = false;
  // Leave all-zero plaintext chunks as holes (regular files only).
  bool sparse = true;
  // Seconds between checkpoints (fdatasync + state file); 0: every chunk.
  unsigned checkpoint_seconds = 2;
  // Called after each chunk with (payload bytes done, total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ExtractResult {
  uint64_t total_bytes = 0;
  uint64_t resumed_from = 0;  // payload bytes already done by an earlier run
  uint64_t hole_bytes = 0;    // all-zero plaintext left as holes
  std::vector<ByteRange> unreadable;
};

// Decrypts the whole payload of `reader` with `fvek` into options.output.
// Errors: kAlreadyExists when the output exists (no --resume/--force);
// kFailedPrecondition for --resume without a matching state file (names
// what differs); kInvalidArgument for bad options; kIoError when writing
// fails. Unreadable source sectors are not errors here: they are returned
// in ExtractResult::unreadable.
StatusOr<ExtractResult> Extract(const SegmentReader& reader,
                                const SecretBytes& fvek,
                                const ExtractOptions& options);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_EXTRACT_H_
