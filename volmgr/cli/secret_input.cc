#include "volmgr/cli/secret_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "volmgr/base/secret_io.h"

namespace volmgr::cli {

bool CanPrompt() {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  close(fd);
  return true;
}

StatusOr<SecretBytes> PromptSecret(const std::string& prompt) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return FailedPreconditionError(
        "no terminal to ask for a secret on; pass it with --key-file or "
        "--key-fd");
  }
  (void)!write(fd, prompt.data(), prompt.size());
  termios old{};
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  auto secret = SecretBytes::Allocate(0, kMaxSecretBytes);
  Status status;
  if (secret.ok()) {
    size_t used = 0;
    for (;;) {
      char c;
      ssize_t n = read(fd, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == '\n') break;
      if (used == kMaxSecretBytes) {
        status = InvalidArgumentError("input too long");
        break;
      }
      secret->Resize(used + 1);
      secret->RevealMutable()[used++] = static_cast<uint8_t>(c);
      c = 0;
    }
  }
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  close(fd);
  if (!secret.ok()) return secret.status();
  if (!status.ok()) return status;
  return std::move(secret).value();
}

StatusOr<SecretBytes> ReadSecret(const SecretSource& source,
                                 const std::string& prompt, bool confirm) {
  if (source.fd) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes s,
                            ReadSecretFromFd(*source.fd, kMaxSecretBytes));
    StripTrailingNewline(s);
    return s;
  }
  if (!source.file.empty()) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes s,
                            ReadSecretFile(source.file, kMaxSecretBytes));
    StripTrailingNewline(s);
    return s;
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes first, PromptSecret(prompt));
  if (confirm) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes again, PromptSecret("Repeat: "));
    if (!first.ConstantTimeEquals(again)) {
      return InvalidArgumentError("the two entries differ");
    }
  }
  return first;
}

Status WriteSecret(int fd, const SecretBytes& secret) {
  auto b = secret.Reveal();
  size_t done = 0;
  while (done < b.size()) {
    ssize_t n = write(fd, b.data() + done, b.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "writing output");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace volmgr::cli
