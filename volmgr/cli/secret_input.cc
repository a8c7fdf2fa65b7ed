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

namespace {

// The first line of the file SaveRecoveryPassword() writes (unlock_flow.cc).
constexpr std::string_view kRecoveryFileMagic = "volmgr recovery password\n";
constexpr std::string_view kRecoveryFileIdLine = "\nVolume protector ID: ";
constexpr std::string_view kRecoveryFilePasswordLine = "\nRecovery password: ";

// The rest of the line that starts after `key` in `text`, or nullopt.
std::optional<std::string_view> LineValue(std::string_view text,
                                          std::string_view key) {
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view v = text.substr(at + key.size());
  v = v.substr(0, v.find('\n'));
  if (!v.empty() && v.back() == '\r') v.remove_suffix(1);
  return v;
}

}  // namespace

StatusOr<std::string> UnpackRecoveryPasswordFile(SecretBytes& secret) {
  const std::string_view text = secret.RevealAsString();
  if (text.substr(0, kRecoveryFileMagic.size()) != kRecoveryFileMagic) {
    return std::string();
  }
  const auto password = LineValue(text, kRecoveryFilePasswordLine);
  if (!password || password->empty()) {
    return InvalidArgumentError(
        "this is a volmgr recovery-password file without its \"Recovery "
        "password:\" line; give the password itself");
  }
  std::string id;
  if (const auto v = LineValue(text, kRecoveryFileIdLine)) {
    // An ID is 36 characters of hex digits and dashes; anything else is not
    // worth narrowing the search to.
    if (v->size() <= 36 &&
        v->find_first_not_of("0123456789abcdefABCDEF-") == std::string::npos) {
      id = std::string(*v);
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes only, SecretBytes::CopyOf(*password));
  secret = std::move(only);
  return id;
}

StatusOr<KeyInput> ReadKey(const SecretSource& source,
                           const std::string& prompt) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes s, ReadSecret(source, prompt));
  VOLMGR_ASSIGN_OR_RETURN(std::string id, UnpackRecoveryPasswordFile(s));
  return KeyInput{std::move(s), std::move(id)};
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
