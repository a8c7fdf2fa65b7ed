// /etc/volmgr/volumes.conf: which volumes unlock by themselves at boot and
// on hot-plug, under what mapping name and with what options. Crypttab-like,
// one volume per line (docs/BOOT.md has the full grammar):
//
//   # NAME      DEVICE                                       OPTIONS
//   data        UUID=5d1c2a10-8f3e-4c55-9e0b-3a1f7c6d2e44    discard,nofail
//   backup      /dev/disk/by-id/usb-Backup-0:0               tpm-only,readonly
//   *           *                                            timeout=60
//
// Unlike crypttab there is no key-file field: secrets never live in a
// config file. The "* *" line gives the options for volmgr volumes that are
// not listed (auto-detected; `noauto` there turns auto-detection off).
//
// Thread-safety: VolumesConf is a value type.
#ifndef VOLMGR_BOOT_VOLUMES_CONF_H_
#define VOLMGR_BOOT_VOLUMES_CONF_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/status.h"

namespace volmgr::boot {

inline constexpr std::string_view kDefaultVolumesConf =
    "/etc/volmgr/volumes.conf";
// How long a boot-time prompt waits for an answer unless `timeout=` says.
inline constexpr uint32_t kDefaultPromptTimeoutSeconds = 90;

// Per-volume options. Unset optionals inherit from the "* *" line, then the
// built-in defaults.
struct BootOptions {
  bool tpm_only = false;   // never prompt: TPM (or startup key) or stay locked
  bool discard = false;    // pass TRIM through dm-crypt
  bool read_only = false;  // map read-only
  bool nofail = false;     // crypttab compatibility; nothing fails boot yet
  bool noauto = false;     // do not unlock on udev events (manual only)
  std::optional<uint32_t> timeout_s;  // prompt timeout; 0 = never prompt
  std::optional<uint32_t> tries;      // typed attempts (default 3)
  std::string tcti;                   // how to reach the TPM
  std::string console;                // prompt on this tty (or FIFO)
};

struct VolumeEntry {
  enum class Match { kUuid, kPath, kAny };
  std::string name;  // mapping name; "*" for the defaults line
  Match match = Match::kAny;
  std::string device;  // kUuid: lower-case LUKS UUID; kPath: as written
  BootOptions options;
  int line = 0;
};

class VolumesConf {
 public:
  // Parses the text of a volumes.conf; `origin` names it in errors, which
  // read "<origin>:<line>: <what is wrong>" (kInvalidArgument).
  static StatusOr<VolumesConf> Parse(std::string_view text,
                                     std::string_view origin);

  // Reads and parses `path`. A missing file is an empty configuration
  // (every volmgr volume is auto-detected with default options).
  static StatusOr<VolumesConf> Load(const std::string& path);

  const std::vector<VolumeEntry>& entries() const { return entries_; }
  const std::optional<VolumeEntry>& defaults() const { return defaults_; }

  // The entry for the volume with LUKS UUID `uuid` on device node
  // `devnode`: a UUID= entry, or a path entry whose target (symlinks
  // resolved) is the same block device. nullptr if none matches.
  const VolumeEntry* Find(std::string_view uuid,
                          const std::string& devnode) const;

 private:
  std::vector<VolumeEntry> entries_;
  std::optional<VolumeEntry> defaults_;
};

// What a volume unlocks with: its entry's options over the defaults line.
BootOptions EffectiveOptions(const VolumesConf& conf, const VolumeEntry* entry);

// The mapping name of a volume that is not listed: its LUKS2 label if that
// is a valid mapping name, else "volmgr-<UUID>".
std::string DerivedMappingName(std::string_view uuid, std::string_view label);

// True for names device-mapper and udev accept for /dev/mapper/NAME:
// 1..127 characters of [A-Za-z0-9._-+], not "." or "..".
bool IsValidMappingName(std::string_view name);

}  // namespace volmgr::boot

#endif  // VOLMGR_BOOT_VOLUMES_CONF_H_
