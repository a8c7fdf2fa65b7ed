// The FUSE mount of a store (libfuse3, high-level path API, multi-threaded):
// plaintext names and content at MOUNTPOINT, encrypted names and chunks in
// STORE/data. See docs/FORMAT.md for the on-disk side and docs/CLI.md for
// `volmgr files mount`.
//
// What it does: create/open/read/write at any offset (partial chunks are
// read, merged and resealed), truncate and extend (zero-filled), O_APPEND
// (the offset is the current size under the file's lock), rename (also over
// an existing file, RENAME_NOREPLACE/EXCHANGE), hard links, symlinks
// (encrypted targets), unlink while open (hard_remove: the open descriptor
// keeps the ciphertext and the handle keeps the key; the key record is
// deleted with the last link), fsync, chmod/chown/utimens, statfs, mmap
// reads through the page cache, kernel permission checks
// (default_permissions; allow_other only on request).
//
// Durability: the key store runs under KeyStoreDurability::kOnSync; an
// fsync/fdatasync of a file or directory first makes every key change so
// far durable, so fsync'd content is always readable after a power loss.
//
// Speed (docs/PERFORMANCE.md): READDIRPLUS carries each entry's attributes,
// encrypted names are memoised per (directory ID, name), each open file
// keeps its keyed ChunkCiphers, and the mount's read-ahead is raised to
// 1 MiB (as root).
//
// Tampering: a chunk, header or key record that does not authenticate gives
// EIO for that read or open and one log line naming the plaintext path;
// other files are unaffected.
#ifndef VOLMGR_FILES_FUSE_FS_H_
#define VOLMGR_FILES_FUSE_FS_H_

#include <functional>
#include <memory>
#include <string>

#include "volmgr/base/status.h"
#include "volmgr/files/store.h"

namespace volmgr::files {

struct MountOptions {
  std::string mountpoint;
  bool allow_other = false;
  bool debug = false;  // libfuse's -d (foreground, logs every request)
  // One line per event worth an administrator's attention (tampering).
  std::function<void(const std::string&)> log;
};

// A mounted, not yet serving filesystem.
class FuseMount {
 public:
  ~FuseMount();
  // Mounts `store` at options.mountpoint. Errors: kFailedPrecondition if
  // the mountpoint is not an empty directory; kUnavailable without /dev/fuse.
  static StatusOr<std::unique_ptr<FuseMount>> Mount(
      std::unique_ptr<Store> store, MountOptions options);
  // Serves requests until unmounted (fusermount3 -u, umount, SIGTERM).
  Status Serve();

  struct State;

 private:
  FuseMount() = default;
  std::unique_ptr<State> state_;
};

// Unmounts MOUNTPOINT (umount2 as root, else fusermount3 -u).
Status Unmount(const std::string& mountpoint);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_FUSE_FS_H_
