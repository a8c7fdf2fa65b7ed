// In-place conversion: encrypting a device that already holds data, and
// decrypting a volume back to a plain device (BitLocker's "turn on" / "turn
// off"), through libcryptsetup's LUKS2 reencryption.
//
// Encryption keeps the LUKS2 header at the head of the device. The header
// needs kConversionHeaderBytes in front of the data, so the data moves: the
// filesystem must leave the last kEncryptReduceBytes of the device free
// (ext2/3/4 is shrunk with resize2fs when it is unmounted), then
// libcryptsetup moves the first kConversionHeaderBytes of data to the free
// tail and encrypts backwards, each chunk written kConversionHeaderBytes
// further on ("datashift" resilience: a chunk is written only over bytes
// already copied, so a crash at any point loses nothing).
//
// Decryption exports the header to a file (the "detached header", which is
// the only copy of the key slots while decryption runs: keep it on
// persistent storage), erases the header's signatures from the device and
// moves the data back to offset 0 while decrypting ("datashift-checksum" by
// default, "datashift-journal" on request). The result is a plain
// filesystem that mounts without volmgr.
//
// Both run offline, or online while the volume is mapped (and mounted). An
// interrupted run (pause, Ctrl-C, crash, power loss) resumes with
// RunConversion(); a crashed one is first repaired by libcryptsetup's
// reencryption recovery. docs/FORMAT.md describes the state file,
// docs/SECURITY.md the crash model.
//
// Thread-safety: none. A running conversion holds the VolumeLock of the
// device.
#ifndef VOLMGR_VOLUME_CONVERSION_H_
#define VOLMGR_VOLUME_CONVERSION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/volume/volume.h"

namespace volmgr::volume {

// The LUKS2 header area in front of the data (the libcryptsetup default, as
// `volmgr format` uses): 2 x 16 KiB metadata + keyslots area.
inline constexpr uint64_t kConversionHeaderBytes = 16ull << 20;
// libcryptsetup's in-place encryption with the header at the head needs
// twice the header size free at the end of the device (one header for the
// header, one for the moved first segment).
inline constexpr uint64_t kEncryptReduceBytes = 2 * kConversionHeaderBytes;

enum class ConversionDirection { kEncrypt, kDecrypt };

// What is on the device, as far as planning needs it.
struct FilesystemFacts {
  std::string type;         // blkid TYPE ("ext4", "xfs"); empty if none
  uint64_t size_bytes = 0;  // filesystem size (ext*: block count x size)
  uint32_t block_size = 0;  // 0 if unknown
  std::string mounted_at;   // mount point if mounted, else empty
  bool in_use = false;      // mounted, mapped or held exclusively
  std::string in_use_why;
};

struct EncryptPlan {
  uint64_t device_bytes = 0;
  // The filesystem must end here: device_bytes - kEncryptReduceBytes.
  uint64_t fs_limit_bytes = 0;
  bool shrink = false;           // run resize2fs first
  uint64_t shrink_to_bytes = 0;  // new filesystem size when `shrink`
  uint32_t sector_size = 4096;   // encryption sector size
  std::string fs_type;
};

// Decides how `device` can be encrypted in place, or refuses:
//  kInvalidArgument  the device is too small; a sector size the filesystem
//                    cannot take (its block size is smaller)
//  kBusy             the filesystem is mounted (ext4 cannot shrink online,
//                    and a mounted device cannot change under its
//                    filesystem) or the device is otherwise in use
//  kFailedPrecondition  no filesystem, or one volmgr cannot shrink, without
//                    `force` (which asserts that the last
//                    kEncryptReduceBytes are unused)
// `sector_size` 0 picks 4096 when the filesystem's blocks allow it, else 512.
// Pure: no I/O (unit-tested).
StatusOr<EncryptPlan> PlanEncryption(const std::string& device,
                                     uint64_t device_bytes,
                                     const FilesystemFacts& fs, bool force,
                                     uint32_t sector_size);

// Reads what PlanEncryption needs (libblkid, dumpe2fs for ext*, mounts).
StatusOr<FilesystemFacts> ProbeFilesystem(const std::string& device);

// Progress of a running conversion, as reported to the caller and kept in
// the state file.
struct ConversionProgress {
  ConversionDirection direction = ConversionDirection::kEncrypt;
  uint64_t size_bytes = 0;  // bytes to convert
  uint64_t done_bytes = 0;
  double bytes_per_second = 0;  // since this run started; 0 = not yet known
  double eta_seconds = -1;      // -1 = unknown
  double percent() const {
    return size_bytes == 0 ? 0.0 : 100.0 * done_bytes / size_bytes;
  }
};

// Called by the running conversion after each chunk; return false to pause
// (libcryptsetup stops cleanly after the chunk in flight).
using ProgressFn = std::function<bool(const ConversionProgress&)>;

struct ConversionOptions {
  // Online: convert through the mapping /dev/mapper/`map_name`, activating it
  // first if it is not active. Empty: offline (the device must be unused).
  std::string map_name;
  // Decryption only: where the detached header lives while decryption runs
  // (default DefaultDecryptHeaderPath(device)).
  std::string header_file;
  // "datashift-checksum" (default) or "datashift-journal" (decryption);
  // encryption with the header at the head is always "datashift".
  std::string resilience;
  ProgressFn progress;
};

struct EncryptResult {
  FormatResult format;
  EncryptPlan plan;
  bool finished = false;  // false: paused (RunConversion resumes it)
};

// Encrypts `spec.device` in place: plans (PlanEncryption), checks and
// shrinks an ext* filesystem, writes a new volume header with the protectors
// of `spec` (exactly as Volume::Format, the recovery password is mandatory),
// places it at the head of the device, then converts the data unless
// `init_only`. Everything before the header placement leaves the device a
// valid plain filesystem (possibly shrunk).
StatusOr<EncryptResult> EncryptInPlace(const FormatSpec& spec, bool force,
                                       bool init_only,
                                       const ConversionOptions& options);

// Starts decrypting `vol` (unlocked by `vmk`): exports its header to
// options.header_file, erases the header signatures on the device and
// converts, unless `init_only`. Returns true when finished (the device is a
// plain filesystem and the header file is deleted), false when paused.
StatusOr<bool> DecryptInPlace(Volume& vol, const SecretBytes& vmk,
                              bool init_only, const ConversionOptions& options);

// Where DecryptInPlace keeps the detached header by default:
// <ConversionStateDirectory()>/decrypt-<device path with '/' as '_'>.luks2
std::string DefaultDecryptHeaderPath(const std::string& device);

// A copy of the exported header taken before decryption starts (same keys,
// no reencryption state), deleted with it: `conversion resume` unlocks a
// decryption with it. <header>.unlock
std::string DecryptUnlockHeaderPath(const std::string& header);

// /var/lib/volmgr/conversion, or $VOLMGR_STATE_DIR (tests).
std::string ConversionStateDirectory();

// What is known about a conversion of `device`.
struct ConversionStatus {
  // false: `device` holds no LUKS2 header and no decryption of it is in
  // progress (a plain filesystem, say): not a volume, no conversion.
  bool is_volume = true;
  bool in_progress = false;
  ConversionDirection direction = ConversionDirection::kEncrypt;
  bool crashed = false;  // needs libcryptsetup's recovery (done on resume)
  bool running = false;  // a volmgr process is converting it now
  // The process that converted it stopped without pausing (crash, kill,
  // power loss: its state file still says it was running), or no state
  // file tells (a previous boot's, or a lost one): resume continues it.
  bool interrupted = false;
  // Every chunk is converted, only the clean-up that follows was cut short
  // (FinishCompletedConversion's state): resume or open finishes it.
  bool cleanup_pending = false;
  std::string resilience;
  std::string header;  // the header path (device, or the detached file)
  std::string uuid;
  ConversionProgress progress;  // from the state file; zeros if none
};

// Reads the conversion state of `device` (header on the device, or the
// detached header of a decryption). in_progress = false if none;
// is_volume = false too when `device` holds no LUKS2 header and no detached
// header of a decryption of it exists (never an error for that).
StatusOr<ConversionStatus> GetConversionStatus(const std::string& device,
                                               const std::string& header = "");

// Resumes an interrupted conversion of `device` (recovering a crashed one
// first; an encryption that crashed in its last hotzone is recovered by
// volmgr itself, because libcryptsetup's recovery wipes its source before
// committing; see FinishCompletedConversion and docs/SECURITY.md). Needs the
// VMK (any protector's unlock gives it). Returns true when finished, false when
// paused again. kBusy if another volmgr converts it; kFailedPrecondition if no
// conversion is in progress.
StatusOr<bool> ResumeConversion(const std::string& device,
                                const SecretBytes& vmk,
                                const ConversionOptions& options);

// Power loss between libcryptsetup's commit of the last chunk and the end of
// its clean-up (wiping the moved first segment, dropping the reencryption
// keyslot, segments and requirement) leaves a header that libcryptsetup
// 2.6 cannot resume: an encryption fails ("Failed to set device segments
// for next reencryption hotzone"), a decryption converts the moved segment
// a second time and destroys the first 16 MiB of plain data. If `header`
// (with data on `device`) is in that state, this finishes the clean-up
// itself and returns true: an encryption gets the moved segment wiped with
// random data and a header without reencryption metadata (rewritten through
// crypt_header_backup/restore, which validates it); a decryption needs
// nothing on the device (the caller deletes the detached header). Returns
// false, touching nothing, for any other state. Caller holds the VolumeLock.
StatusOr<bool> FinishCompletedConversion(const std::string& header,
                                         const std::string& device);

// Points a Volume loaded from a decryption's exported header at its data
// device, so that unlocking proves keys against the real device (libcryptsetup
// refuses a header in reencryption whose data device is the header file).
Status AttachDataDevice(const Volume& vol, const std::string& device);

// Asks the volmgr process converting `device` to pause (SIGINT) and waits up
// to `wait_seconds` for it to stop. kNotFound if none is running.
Status PauseConversion(const std::string& device, const std::string& header,
                       int wait_seconds);

// "Encryption in progress: 37 %, 210 MiB/s, ETA 4 min" / "Encryption paused
// at 37 %" / "Encryption interrupted at 37 % ..." / "Encryption complete,
// its clean-up was interrupted ..." (the status line).
std::string ConversionStatusLine(const ConversionStatus& s);

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_CONVERSION_H_
