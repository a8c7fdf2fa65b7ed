// StoreLock: an exclusive flock on STORE/.lock. A mount holds it for its
// lifetime; `rekey` and `verify --repair` take it too, so they never run
// against a store a mount is changing (kBusy instead).
#ifndef VOLMGR_FILES_STORE_LOCK_H_
#define VOLMGR_FILES_STORE_LOCK_H_

#include <string>

#include "volmgr/base/status.h"

namespace volmgr::files {

class StoreLock {
 public:
  // kBusy if another process holds it.
  static StatusOr<StoreLock> Acquire(const std::string& root);
  StoreLock(StoreLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StoreLock& operator=(StoreLock&&) = delete;
  StoreLock(const StoreLock&) = delete;
  ~StoreLock();

 private:
  explicit StoreLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_STORE_LOCK_H_
