// VolumeLock: serialises metadata changes to one volume across processes.
//
// libcryptsetup locks each header write, but volmgr's changes are read-
// modify-write sequences over several calls (check the protectors, add a
// keyslot, write a token). Two volmgr processes must not interleave them, so
// every change holds this lock from the first read to the last write.
//
// The lock is an flock(2) on /run/volmgr/locks/<dev>:<ino> (the identity of
// the block device or image file, so every path to the same device meets the
// same lock). It is not taken on the device itself, where it could collide
// with libcryptsetup's own locking.
#ifndef VOLMGR_VOLUME_VOLUME_LOCK_H_
#define VOLMGR_VOLUME_VOLUME_LOCK_H_

#include <chrono>
#include <string>

#include "volmgr/base/status.h"

namespace volmgr::volume {

class VolumeLock {
 public:
  VolumeLock(VolumeLock&& other) noexcept;
  VolumeLock& operator=(VolumeLock&&) = delete;
  ~VolumeLock();

  // Waits up to `timeout` for the lock; kBusy ("another volmgr is changing
  // DEVICE") after that.
  static StatusOr<VolumeLock> Acquire(
      const std::string& device,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  explicit VolumeLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Directory holding the lock files; VOLMGR_LOCK_DIR overrides it (tests).
std::string LockDirectory();

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_VOLUME_LOCK_H_
