// A private swtpm for integration tests, and a parser for its level-20 log.
//
// Swtpm::Start runs `swtpm socket --tpm2` on two free localhost TCP ports
// (server P, control P+1) with its own absolute state directory, waits until
// the server port accepts connections, and retries with other ports if the
// process dies (port taken between our probe and its bind). The destructor
// kills it and removes the directory.
#ifndef VOLMGR_TESTS_UNIT_TPM_SWTPM_HARNESS_H_
#define VOLMGR_TESTS_UNIT_TPM_SWTPM_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace volmgr::tpm::testing {

class Swtpm {
 public:
  // nullptr and *error on failure.
  static std::unique_ptr<Swtpm> Start(std::string* error);
  ~Swtpm();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string tcti() const {
    return "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
  }
  std::string log_path() const { return dir_ + "/swtpm.log"; }

  // Current size of the log, and its text from `offset` on.
  size_t LogSize() const;
  std::string ReadLog(size_t offset = 0) const;

  // Runs a tpm2-tools command line against this TPM (TPM2TOOLS_TCTI set),
  // then flushes every transient object and session it left behind;
  // returns its exit status; its output goes to *output when given.
  int RunTool(const std::string& command_line,
              std::string* output = nullptr) const;
  // The same without the flush (for inspecting what is loaded).
  int RawTool(const std::string& command_line,
              std::string* output = nullptr) const;

 private:
  Swtpm() = default;
  int Run(const std::string& command_line, bool flush,
          std::string* output) const;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

// One TPM command or response as swtpm logged it ("SWTPM_IO_Read: length N"
// is a command the TPM read, "SWTPM_IO_Write: length N" its response).
struct BusMessage {
  bool is_command = false;
  std::vector<uint8_t> bytes;
  uint32_t CommandCode() const;  // REQUIRES: is_command, >= 10 bytes
};

// Parses every command/response block of a swtpm log; ignores control
// channel blocks and other lines. Returns false and *error if a block's
// byte count differs from its "length N" header.
bool ParseSwtpmLog(std::string_view text, std::vector<BusMessage>* out,
                   std::string* error);

// True if `needle` occurs anywhere in `haystack`.
bool ContainsBytes(const std::vector<uint8_t>& haystack,
                   const std::vector<uint8_t>& needle);

// A port nothing listens on (bound to an ephemeral port, then closed).
int ClosedPort();

// Name of a TPM2_CC value ("Unseal", "PolicyPCR", ...), or its hex.
std::string CommandName(uint32_t cc);

}  // namespace volmgr::tpm::testing

#endif  // VOLMGR_TESTS_UNIT_TPM_SWTPM_HARNESS_H_
