#include "volmgr/volume/volume_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

namespace volmgr::volume {

std::string LockDirectory() {
  if (const char* d = std::getenv("VOLMGR_LOCK_DIR"); d && *d) return d;
  return "/run/volmgr/locks";
}

VolumeLock::VolumeLock(VolumeLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

VolumeLock::~VolumeLock() {
  if (fd_ >= 0) close(fd_);  // closing releases the flock
}

StatusOr<VolumeLock> VolumeLock::Acquire(const std::string& device,
                                         std::chrono::milliseconds timeout) {
  struct stat st {};
  if (stat(device.c_str(), &st) != 0) return ErrnoToStatus(errno, device);
  const std::string dir = LockDirectory();
  // mkdir -p of at most two levels (/run/volmgr/locks).
  std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (!parent.empty()) mkdir(parent.c_str(), 0700);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "creating lock directory " + dir);
  }
  const auto id = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_ino;
  const std::string file = dir + "/" +
                           std::to_string(S_ISBLK(st.st_mode) ? 0 : st.st_dev) +
                           ":" + std::to_string(id);
  int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "opening lock " + file);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      Status s = ErrnoToStatus(errno, "locking " + file);
      close(fd);
      return s;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      close(fd);
      return BusyError("another volmgr process is changing " + device +
                       "; try again when it has finished");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return VolumeLock(fd);
}

}  // namespace volmgr::volume
