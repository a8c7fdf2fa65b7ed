#include "tests/unit/tpm/swtpm_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tss2/tss2_tpm2_types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace volmgr::tpm::testing {
namespace {

// Whether `op` (bind or connect) succeeds on 127.0.0.1:`port` with a fresh
// TCP socket.
template <typename Op>
bool TryLoopback(int port, Op op) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = op(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

bool PortFree(int port) { return TryLoopback(port, ::bind); }
bool CanConnect(int port) { return TryLoopback(port, ::connect); }

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A line of space-separated two-digit hex bytes; false for anything else.
bool ParseHexLine(std::string_view line, std::vector<uint8_t>* out) {
  std::vector<uint8_t> bytes;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    if (i + 1 >= line.size()) return false;
    int hi = HexNibble(line[i]), lo = HexNibble(line[i + 1]);
    if (hi < 0 || lo < 0) return false;
    if (i + 2 < line.size() && line[i + 2] != ' ') return false;
    bytes.push_back(static_cast<uint8_t>(hi << 4 | lo));
    i += 2;
  }
  if (bytes.empty()) return false;
  out->insert(out->end(), bytes.begin(), bytes.end());
  return true;
}

}  // namespace

std::unique_ptr<Swtpm> Swtpm::Start(std::string* error) {
  char tmpl[] = "/tmp/volmgr-swtpm-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  std::unique_ptr<Swtpm> t(new Swtpm());
  t->dir_ = tmpl;  // absolute: swtpm must not depend on its cwd

  std::random_device rd;
  std::mt19937 rng(rd() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> dist(20000, 59998);
  for (int attempt = 0; attempt < 20; ++attempt) {
    int port = dist(rng);
    if (!PortFree(port) || !PortFree(port + 1)) continue;
    std::string server = "type=tcp,port=" + std::to_string(port);
    std::string ctrl = "type=tcp,port=" + std::to_string(port + 1);
    std::string state = "dir=" + t->dir_;
    std::string log = "file=" + t->log_path() + ",level=20";
    std::string out = t->dir_ + "/swtpm.stdout";
    std::vector<std::string> args = {"swtpm",
                                     "socket",
                                     "--tpm2",
                                     "--server",
                                     server,
                                     "--ctrl",
                                     ctrl,
                                     "--tpmstate",
                                     state,
                                     "--flags",
                                     "not-need-init,startup-clear",
                                     "--log",
                                     log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, "swtpm", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      *error = "cannot run swtpm (is swtpm installed?)";
      return nullptr;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool up = false, died = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        died = true;
        break;
      }
      if (CanConnect(port)) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (up) {
      t->pid_ = pid;
      t->port_ = port;
      return t;
    }
    if (!died) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    // Port collision or slow start: try another pair.
  }
  *error = "swtpm did not start; see " + t->dir_ + "/swtpm.stdout";
  return nullptr;
}

Swtpm::~Swtpm() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (!dir_.empty() && std::getenv("VOLMGR_KEEP_SWTPM") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

size_t Swtpm::LogSize() const {
  struct stat st {};
  if (stat(log_path().c_str(), &st) != 0) return 0;
  return static_cast<size_t>(st.st_size);
}

std::string Swtpm::ReadLog(size_t offset) const {
  std::ifstream in(log_path(), std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Swtpm::RunTool(const std::string& command_line, std::string* output) const {
  return Run(command_line, true, output);
}

int Swtpm::RawTool(const std::string& command_line, std::string* output) const {
  return Run(command_line, false, output);
}

int Swtpm::Run(const std::string& command_line, bool flush,
               std::string* output) const {
  std::string out_file = dir_ + "/tool.out";
  // swtpm has no resource manager: tpm2-tools leaves its transient objects
  // and sessions loaded. Flush them so the TPM's few slots stay free.
  std::string cmd = "( export TPM2TOOLS_TCTI='" + tcti() +
                    "' TSS2_LOG=all+none; " + command_line + "; rc=$?; " +
                    (flush ? "tpm2_flushcontext -t; tpm2_flushcontext -l; "
                             "tpm2_flushcontext -s; "
                           : "") +
                    "exit $rc ) >'" + out_file + "' 2>&1";
  int st = std::system(cmd.c_str());
  if (output != nullptr) {
    std::ifstream in(out_file);
    std::stringstream ss;
    ss << in.rdbuf();
    *output = ss.str();
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint32_t BusMessage::CommandCode() const {
  return static_cast<uint32_t>(bytes[6]) << 24 |
         static_cast<uint32_t>(bytes[7]) << 16 |
         static_cast<uint32_t>(bytes[8]) << 8 | bytes[9];
}

bool ParseSwtpmLog(std::string_view text, std::vector<BusMessage>* out,
                   std::string* error) {
  // Format (swtpm 0.7, --log level>=20):
  //   " SWTPM_IO_Read: length 22"
  //   " 80 01 00 00 00 16 00 00 01 7A 00 00 00 06 00 00 "   (16 per line)
  //   " 01 00 00 00 00 7F "
  //   " SWTPM_IO_Write: length 387"  ...
  //   " Ctrl Cmd: length 5" ... (control channel; not TPM traffic)
  enum { kNone, kCommand, kResponse, kOther } state = kNone;
  size_t expect = 0;
  BusMessage cur;
  auto finish = [&]() -> bool {
    if (state == kCommand || state == kResponse) {
      if (cur.bytes.size() != expect) {
        *error = "block announced " + std::to_string(expect) +
                 " bytes, log has " + std::to_string(cur.bytes.size());
        return false;
      }
      out->push_back(std::move(cur));
    }
    cur = BusMessage();
    state = kNone;
    return true;
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t len_at = line.find(": length ");
    if (len_at != std::string_view::npos) {
      if (!finish()) return false;
      std::string_view label = line.substr(0, len_at);
      expect = std::strtoul(std::string(line.substr(len_at + 9)).c_str(),
                            nullptr, 10);
      if (label.find("SWTPM_IO_Read") != std::string_view::npos) {
        state = kCommand;
        cur.is_command = true;
      } else if (label.find("SWTPM_IO_Write") != std::string_view::npos) {
        state = kResponse;
      } else {
        state = kOther;
      }
      continue;
    }
    if (state == kCommand || state == kResponse) {
      std::vector<uint8_t> bytes;
      if (ParseHexLine(line, &bytes)) {
        cur.bytes.insert(cur.bytes.end(), bytes.begin(), bytes.end());
        continue;
      }
      if (!finish()) return false;
    }
    if (nl == text.size()) break;
  }
  return finish();
}

bool ContainsBytes(const std::vector<uint8_t>& haystack,
                   const std::vector<uint8_t>& needle) {
  if (needle.empty()) return true;
  return std::search(haystack.begin(), haystack.end(), needle.begin(),
                     needle.end()) != haystack.end();
}

int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string CommandName(uint32_t cc) {
  switch (cc) {
    case TPM2_CC_PCR_Read:
      return "PCR_Read";
    case TPM2_CC_CreatePrimary:
      return "CreatePrimary";
    case TPM2_CC_Create:
      return "Create";
    case TPM2_CC_Load:
      return "Load";
    case TPM2_CC_StartAuthSession:
      return "StartAuthSession";
    case TPM2_CC_PolicyPCR:
      return "PolicyPCR";
    case TPM2_CC_PolicyAuthValue:
      return "PolicyAuthValue";
    case TPM2_CC_PolicyGetDigest:
      return "PolicyGetDigest";
    case TPM2_CC_Unseal:
      return "Unseal";
    case TPM2_CC_FlushContext:
      return "FlushContext";
    case TPM2_CC_ReadPublic:
      return "ReadPublic";
    case TPM2_CC_GetCapability:
      return "GetCapability";
    case TPM2_CC_GetRandom:
      return "GetRandom";
    default: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%x", cc);
      return buf;
    }
  }
}

}  // namespace volmgr::tpm::testing
