#include "volmgr/cli/boot_prompt.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "volmgr/cli/secret_input.h"

extern char** environ;

namespace volmgr::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kAskPasswordPaths[] = {"/usr/bin/systemd-ask-password",
                                             "/bin/systemd-ask-password"};

const char* AskPasswordBinary() {
  struct stat st {};
  if (stat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode)) {
    return nullptr;  // systemd is not the init: no agents will answer
  }
  for (const char* p : kAskPasswordPaths) {
    if (access(p, X_OK) == 0) return p;
  }
  return nullptr;
}

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

Status TimedOut(const BootPrompt& p) {
  return FailedPreconditionError("no answer within " +
                                 std::to_string(p.timeout.count()) + " s");
}

// Reads one line from `fd` into SecretBytes, byte by byte (nothing of the
// secret passes through a std::string), until '\n', EOF or the deadline.
StatusOr<SecretBytes> ReadLine(int fd, Clock::time_point deadline,
                               const BootPrompt& p, bool eof_is_answer) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret,
                          SecretBytes::Allocate(0, kMaxSecretBytes));
  size_t used = 0;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    int ms = MillisLeft(deadline);
    if (ms == 0) return TimedOut(p);
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoToStatus(errno, "waiting for the answer");
    if (r == 0) return TimedOut(p);
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoToStatus(errno, "reading the answer");
    if (n == 0) {
      if (eof_is_answer && used > 0) break;
      return TimedOut(p);  // the agent was cancelled or gave up
    }
    if (c == '\n') break;
    if (c == '\r') continue;
    if (used == kMaxSecretBytes) return InvalidArgumentError("input too long");
    secret.Resize(used + 1);
    secret.RevealMutable()[used++] = static_cast<uint8_t>(c);
    c = 0;
  }
  return secret;
}

StatusOr<SecretBytes> AskSystemd(const char* bin, const BootPrompt& p) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // The message and ID are not secret; the answer comes back on the pipe.
  std::string timeout = "--timeout=" + std::to_string(p.timeout.count());
  std::string id = "--id=" + p.id;
  std::vector<char*> argv = {const_cast<char*>(bin),
                             const_cast<char*>("--icon=drive-harddisk"),
                             const_cast<char*>(timeout.c_str()),
                             const_cast<char*>(id.c_str()),
                             const_cast<char*>(p.message.c_str()),
                             nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, bin, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return ErrnoToStatus(rc, std::string("starting ") + bin);
  }
  // A little longer than the agent's own timeout, so it reports first.
  auto deadline = Clock::now() + p.timeout + std::chrono::seconds(2);
  auto secret = ReadLine(pipefd[0], deadline, p, /*eof_is_answer=*/true);
  close(pipefd[0]);
  int ws = 0;
  if (!secret.ok()) kill(pid, SIGTERM);
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (!secret.ok()) return secret.status();
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) return TimedOut(p);
  return secret;
}

StatusOr<SecretBytes> AskConsole(const std::string& path, const BootPrompt& p) {
  int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoToStatus(errno, "opening console " + path);
  struct stat st {};
  fstat(fd, &st);
  const std::string line = p.message + ": ";
  if (S_ISFIFO(st.st_mode)) {
    // Opened read-write, a FIFO never reports EOF while we wait; what we
    // would write into it we would read back, so the message goes to the
    // system console instead.
    int con =
        open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (con >= 0) {
      (void)!write(con, (line + "\n").data(), line.size() + 1);
      close(con);
    }
  } else {
    (void)!write(fd, line.data(), line.size());
  }
  termios old{};
  const bool tty = isatty(fd) && tcgetattr(fd, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL | ICANON;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  auto secret =
      ReadLine(fd, Clock::now() + p.timeout, p, /*eof_is_answer=*/false);
  if (tty) {
    tcsetattr(fd, TCSAFLUSH, &old);
    if (!secret.ok()) (void)!write(fd, "\n", 1);
  }
  close(fd);
  return secret;
}

}  // namespace

std::string PromptChannel(const BootPrompt& p) {
  if (!p.console.empty()) return "console " + p.console;
  if (AskPasswordBinary() != nullptr) return "systemd-ask-password";
  return "console /dev/console";
}

StatusOr<SecretBytes> AskWithTimeout(const BootPrompt& p) {
  if (p.console.empty()) {
    if (const char* bin = AskPasswordBinary()) return AskSystemd(bin, p);
  }
  return AskConsole(p.console.empty() ? "/dev/console" : p.console, p);
}

}  // namespace volmgr::cli
