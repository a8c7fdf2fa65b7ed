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

// What the magic and version fields say the device holds.
enum class HeaderFormat {
  kNone,   // no LUKS magic in either copy (wiped, overwritten, never LUKS)
  kLuks1,  // a LUKS1 header: one copy, no checksum (cryptsetup --type luks1)
  kLuks2,
};
const char* HeaderFormatName(HeaderFormat f);  // "LUKS1", "LUKS2", "none"

struct HeaderReport {
  HeaderFormat format = HeaderFormat::kNone;
  HeaderCopyReport primary;
  // LUKS2's second copy. LUKS1 has none: unused (and not reported) then.
  HeaderCopyReport secondary;
  // Sentences about damage or disagreement: which copy libcryptsetup will
  // use, what to do. Any finding makes the header not healthy.
  std::vector<std::string> findings;
  // Information that is no damage (e.g. "not made by volmgr").
  std::vector<std::string> notes;
  bool has_secondary() const { return format != HeaderFormat::kLuks1; }
  bool healthy() const {
    return primary.ok() && (!has_secondary() || secondary.ok()) &&
           findings.empty();
  }
  // At least one copy is good: libcryptsetup can open and repair.
  bool usable() const {
    return primary.ok() || (has_secondary() && secondary.ok());
  }
};

// Reads both copies of `device`, and the key material area of each keyslot
// of the copy libcryptsetup would use (a wiped area is a finding). Errors
// only when the device cannot be opened/read at all; damage is reported in
// HeaderReport.
StatusOr<HeaderReport> CheckHeader(const std::string& device);

// For the read-only verbs (check, verify, extract, mount, keypackage,
// bitlk-dump): from now on, in this process, libcryptsetup never rewrites a
// damaged header copy from the intact one when it loads a header. Without
// this, crypt_load() "repairs" whenever the device is writable, and the
// evidence `check` reports is gone (issue 17, item 13). It disables
// libcryptsetup's metadata locking (as `cryptsetup --disable-locks`): its
// auto-repair runs only under that lock. Process-wide; call before any
// header is loaded, and never in a process that writes headers.
void DisableHeaderAutoRepair();

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_HEADER_CHECK_H_
