// Reading and writing secrets from files and descriptors straight into
// SecretBytes, so key material never sits in an ordinary buffer.
#ifndef VOLMGR_BASE_SECRET_IO_H_
#define VOLMGR_BASE_SECRET_IO_H_

#include <cstddef>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr {

// Reads all of `fd` (up to `max_bytes`; more is kInvalidArgument). Does not
// close `fd`.
StatusOr<SecretBytes> ReadSecretFromFd(int fd, size_t max_bytes);

// Reads a whole file ("-" is standard input).
StatusOr<SecretBytes> ReadSecretFile(const std::string& path, size_t max_bytes);

// Creates `path` exclusively (kAlreadyExists if present) with `mode`, writes
// `secret`, and fsyncs the file and its directory.
Status WriteNewSecretFile(const std::string& path, const SecretBytes& secret,
                          int mode);

// Drops one trailing "\n" (or "\r\n"): passphrase files written by `echo`.
void StripTrailingNewline(SecretBytes& secret);

}  // namespace volmgr

#endif  // VOLMGR_BASE_SECRET_IO_H_
