// `volmgr-recover mount`: a read-only FUSE file system (libfuse3) holding
// one regular file, the plaintext block device of a volume, decrypted on
// demand through PlaintextReader. No device-mapper needed; /dev/fuse is.
//
//   MOUNTPOINT/            dr-xr-xr-x, owned by the mounting user
//   MOUNTPOINT/plain.img   -r--------, size = payload bytes
//
// The mount is "ro,default_permissions": the kernel refuses writes with
// EROFS before they reach us (open for writing is refused here too), and
// only the mounting user (root included) may read it. A read that touches
// an unreadable ciphertext sector fails with EIO instead of returning
// noise; it is reported through FuseMountOptions::on_read_error.
//
// Lifetime: ServePlaintext() returns once the file system is unmounted
// (`fusermount3 -u MOUNTPOINT`, `umount`) or on SIGINT/SIGTERM/SIGHUP, and
// always unmounts on the way out. In the background mode it forks first:
// the child unlocks (it may prompt on the terminal), mounts, reports ready,
// detaches (setsid, stdio to /dev/null) and serves; the parent returns as
// soon as the child reported the mount ready, or with the child's error.
// The key never crosses the fork: SecretBytes memory is MADV_WIPEONFORK.
#ifndef VOLMGR_RECOVER_FUSE_MOUNT_H_
#define VOLMGR_RECOVER_FUSE_MOUNT_H_

#include <functional>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/recover/data_io.h"

namespace volmgr::recover {

inline constexpr std::string_view kPlainFileName = "plain.img";

struct FuseMountOptions {
  std::string mountpoint;  // an existing directory, nothing mounted on it
  bool foreground = false;
  unsigned threads = 1;  // XtsSectorTransform lanes
  // Called in the serving process once the mount is usable, while stdout
  // and stderr are still the caller's (before the background child
  // detaches).
  std::function<void()> on_mounted;
  // Foreground only: a read failed (unreadable sectors, I/O error).
  std::function<void(const Status&)> on_read_error;
};

// What to serve: the segment's ciphertext and its key.
struct PlaintextSource {
  SegmentReader reader;
  SecretBytes fvek;
};
using UnlockFn = std::function<StatusOr<PlaintextSource>()>;

// Checks a mount point before anything secret is asked for: kNotFound if it
// does not exist, kInvalidArgument if it is not a directory, kBusy if
// something is mounted on it already (or a dead FUSE mount is: ENOTCONN),
// kUnavailable if /dev/fuse cannot be opened.
Status CheckMountpoint(const std::string& mountpoint);

// Checks the mount point, calls `unlock` (in the serving process: after the
// fork in background mode), mounts the plaintext at options.mountpoint and
// serves it until unmounted (see above). Errors: those of CheckMountpoint
// and `unlock`, kUnavailable when the kernel refuses the FUSE mount, key
// errors of XtsSectorTransform::Create.
// REQUIRES: in background mode, no other threads in the process (it forks).
Status ServePlaintext(const UnlockFn& unlock, const FuseMountOptions& options);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_FUSE_MOUNT_H_
