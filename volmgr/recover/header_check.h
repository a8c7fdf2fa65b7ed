// Header health, read-only: both LUKS2 header copies parsed byte by byte
// (LUKS2 On-Disk Format Specification 1.1, section 2), so the report says
// precisely which copy and which area is damaged. Nothing here goes through
// libcryptsetup: crypt_load() silently repairs a bad copy from the good one
// when the device is writable, which would destroy the evidence.
//
// Thread-safety: reentrant.
#ifndef VOLMGR_RECOVER_HEADER_CHECK_H_
#define VOLMGR_RECOVER_HEADER_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "volmgr/base/status.h"

namespace volmgr::recover {

struct HeaderCopyReport {
  std::string name;     // "primary" / "secondary"
  uint64_t offset = 0;  // where it was looked for
  bool magic_ok = false;
  uint16_t version = 0;
  uint64_t hdr_size = 0;  // binary header + JSON area
  uint64_t seqid = 0;
  uint64_t hdr_offset = 0;  // as stored
  std::string checksum_alg;
  std::string uuid;
  std::string label;
  bool checksum_ok = false;
  bool json_ok = false;
  int volmgr_tokens = 0;      // tokens of type volmgr-*
  bool volume_token = false;  // the volmgr-volume token
  int keyslots = 0;
  std::vector<std::string> problems;  // empty: this copy is good
  bool ok() const { return problems.empty(); }
};

struct HeaderReport {
  HeaderCopyReport primary;
  HeaderCopyReport secondary;
  // Sentences: which copy libcryptsetup will use, what to do.
  std::vector<std::string> findings;
  bool healthy() const {
    return primary.ok() && secondary.ok() && findings.empty();
  }
  // At least one copy is good: libcryptsetup can open and repair.
  bool usable() const { return primary.ok() || secondary.ok(); }
};

// Reads both copies of `device`. Errors only when the device cannot be
// opened/read at all; damage is reported in HeaderReport.
StatusOr<HeaderReport> CheckHeader(const std::string& device);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_HEADER_CHECK_H_
