// Where the CLI gets secrets from: a no-echo prompt on the terminal, a key
// file, or an inherited file descriptor. Never argv or the environment.
#ifndef VOLMGR_CLI_SECRET_INPUT_H_
#define VOLMGR_CLI_SECRET_INPUT_H_

#include <optional>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::cli {

inline constexpr size_t kMaxSecretBytes = 8192;

struct SecretSource {
  std::string file;       // --key-file (may be "-")
  std::optional<int> fd;  // --key-fd
  bool has() const { return !file.empty() || fd.has_value(); }
};

// True when a person can be asked: /dev/tty opens.
bool CanPrompt();

// Reads one line from /dev/tty with echo off. kFailedPrecondition when there
// is no terminal (scripts must pass --key-file or --key-fd).
StatusOr<SecretBytes> PromptSecret(const std::string& prompt);

// Reads from the source (one trailing newline dropped), or prompts when the
// source is empty. With `confirm`, a prompt asks twice and compares.
StatusOr<SecretBytes> ReadSecret(const SecretSource& source,
                                 const std::string& prompt,
                                 bool confirm = false);

// A credential read for an unlock (--key-file, --key-fd, a prompt).
struct KeyInput {
  SecretBytes secret;
  // The recovery ID, when the input was a file that --recovery-password-file
  // (or `protector add recovery-password --out`) wrote; else empty.
  std::string recovery_id;
};

// ReadSecret() for a key that unlocks: the file --recovery-password-file
// writes ("volmgr recovery password" / "Volume protector ID: ID" /
// "Recovery password: TEXT") reads as TEXT with its ID, so that file works
// with --key-file as it is. Any other input is returned unchanged.
// kInvalidArgument for such a file without its "Recovery password:" line.
StatusOr<KeyInput> ReadKey(const SecretSource& source,
                           const std::string& prompt);

// The unpacking ReadKey() does, on a secret already read: replaces the
// content of a recovery-password file by its password and returns its ID;
// leaves anything else alone and returns "".
StatusOr<std::string> UnpackRecoveryPasswordFile(SecretBytes& secret);

// Writes a secret to `fd` without copying it into a std::string.
Status WriteSecret(int fd, const SecretBytes& secret);

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_SECRET_INPUT_H_
