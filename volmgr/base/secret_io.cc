#include "volmgr/base/secret_io.h"

#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace volmgr {

StatusOr<SecretBytes> ReadSecretFromFd(int fd, size_t max_bytes) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes s,
                          SecretBytes::Allocate(0, max_bytes + 1));
  size_t used = 0;
  for (;;) {
    s.Resize(s.capacity());
    ssize_t n = read(fd, s.RevealMutable().data() + used, s.capacity() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "reading secret");
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
    if (used > max_bytes) {
      return InvalidArgumentError("secret input is longer than " +
                                  std::to_string(max_bytes) + " bytes");
    }
  }
  s.Resize(used);
  return s;
}

StatusOr<SecretBytes> ReadSecretFile(const std::string& path,
                                     size_t max_bytes) {
  if (path == "-") return ReadSecretFromFd(STDIN_FILENO, max_bytes);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return ErrnoToStatus(errno, path);
  auto s = ReadSecretFromFd(fd, max_bytes);
  close(fd);
  if (!s.ok()) return s.status().WithContext(path);
  return s;
}

Status WriteNewSecretFile(const std::string& path, const SecretBytes& secret,
                          int mode) {
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return ErrnoToStatus(errno, path);
  auto bytes = secret.Reveal();
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoToStatus(errno, "writing " + path);
      close(fd);
      unlink(path.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    Status st = ErrnoToStatus(errno, "fsync " + path);
    close(fd);
    return st;
  }
  close(fd);
  std::string dir_copy = path;
  int dfd = open(dirname(dir_copy.data()), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

void StripTrailingNewline(SecretBytes& secret) {
  auto s = secret.RevealAsString();
  size_t n = s.size();
  if (n > 0 && s[n - 1] == '\n') --n;
  if (n > 0 && s[n - 1] == '\r') --n;
  secret.Resize(n);
}

}  // namespace volmgr
