#include "volmgr/files/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "volmgr/files/store.h"

namespace volmgr::files {

StatusOr<StoreLock> StoreLock::Acquire(const std::string& root) {
  const std::string path = root + "/" + std::string(kLockFileName);
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return BusyError("store " + root +
                       " is in use (mounted, or another volmgr command)");
    }
    return ErrnoToStatus(err, "lock " + path);
  }
  return StoreLock(fd);
}

StoreLock::~StoreLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace volmgr::files
