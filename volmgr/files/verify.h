// `files verify`: checks every file of a store's data tree against the key
// store, every chunk of every file, and the reverse (keys whose file is
// gone). With repair, removes what can never be read again: key records
// without a file (a crash between key commit and file creation, or an
// interrupted unlink) and ciphertext whose key is gone (shredded files).
// Damaged files are reported, never deleted.
#ifndef VOLMGR_FILES_VERIFY_H_
#define VOLMGR_FILES_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/files/store.h"

namespace volmgr::files {

struct VerifyReport {
  uint64_t files_ok = 0;
  uint64_t bytes_ok = 0;
  std::vector<std::string> damaged;      // "plain/path: reason"
  std::vector<std::string> keyless;      // plain paths of files without a key
  std::vector<std::string> orphan_keys;  // file IDs (hex) without a file
  uint64_t removed_files = 0;
  uint64_t removed_keys = 0;
  bool clean() const {
    return damaged.empty() && keyless.empty() && orphan_keys.empty();
  }
};

// REQUIRES for repair: the caller holds the StoreLock.
StatusOr<VerifyReport> VerifyStore(Store& store, bool repair);

// Reads a directory's ID (STORE/data/.../.dirid).
StatusOr<DirId> ReadDirId(const std::string& cipher_dir);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_VERIFY_H_
