// LuksDevice: volmgr's only door to libcryptsetup.
//
// Owns one `crypt_device` handle (freed on destruction) and turns every
// libcryptsetup return code into a Status carrying the library's own error
// text, which is captured through its log callback instead of being printed.
// Key material goes in and out only as SecretBytes.
//
// Every metadata change here is one libcryptsetup call, and libcryptsetup
// writes both LUKS2 header copies with sequence numbers, so a crash leaves the
// previous or the new header, never a mix. Multi-step changes are serialised
// across processes by VolumeLock (volume_lock.h), not here.
//
// Thread-safety: none; one LuksDevice per thread.
#ifndef VOLMGR_VOLUME_LUKS_DEVICE_H_
#define VOLMGR_VOLUME_LUKS_DEVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

struct crypt_device;

namespace volmgr::volume {

// How a keyslot's passphrase is stretched. Keyslots opened by high-entropy
// secrets (the 256-bit VMK, the 128-bit recovery password) need no
// stretching: kMinimal uses PBKDF2-SHA256 at libcryptsetup's floor of 1000
// iterations so unlocking costs microseconds, not seconds.
enum class KeyslotKdf { kMinimal };

struct FormatOptions {
  uint32_t sector_size = 4096;  // 512 or 4096
  std::string label;            // LUKS2 label (may be empty)
  std::string subsystem;        // LUKS2 subsystem, "volmgr" for our volumes
};

// Activation flags, mapped onto CRYPT_ACTIVATE_*.
struct ActivateOptions {
  bool read_only = false;
  bool allow_discards = false;
  // Bypass dm-crypt's read / write workqueues (kernel >= 5.9): crypto runs
  // in the submitting or completing context instead of kcryptd. See
  // docs/PERFORMANCE.md for the measurements behind the defaults.
  bool no_read_workqueue = true;
  bool no_write_workqueue = true;
};

// One active mapping as the kernel reports it.
struct ActiveMapping {
  std::string name;
  std::string backing_device;
  uint64_t size_bytes = 0;
  bool read_only = false;
  std::string cipher;  // "aes-xts-plain64"
  // "CRYPT-LUKS2-<LUKS UUID without dashes>-<name>" (set by
  // OpenLuks2Mappings).
  std::string dm_uuid;
};

// How a header is opened. libcryptsetup rewrites a damaged or outdated
// header copy from the other one whenever it loads a header it could write
// (LUKS2 "auto-recovery"); kReadOnly never lets it touch the device.
enum class Access { kReadWrite, kReadOnly };

class LuksDevice {
 public:
  LuksDevice(LuksDevice&&) noexcept;
  LuksDevice& operator=(LuksDevice&&) noexcept;
  ~LuksDevice();

  // Writes a new LUKS2 header (aes-xts-plain64, volume key = `fvek`, 64
  // bytes) to `path`, a block device or an image file.
  static StatusOr<LuksDevice> Format(const std::string& path,
                                     const SecretBytes& fvek,
                                     const FormatOptions& options);

  // Loads an existing LUKS2 header. kNotFound if `path` is absent,
  // kFailedPrecondition if it holds no LUKS header (or LUKS1),
  // kCorruption if the header is present but damaged.
  //
  // kReadOnly: libcryptsetup reads a private in-memory copy of the header
  // area (a memfd given to it as a detached header, `path` as the data
  // device), so nothing it does can reach the device: a damaged copy stays
  // as it is for `volmgr-recover check` to see. Every method that writes
  // then fails with kFailedPrecondition. Keyslots, tokens and the volume key
  // digest read as usual.
  static StatusOr<LuksDevice> Load(const std::string& path,
                                   Access access = Access::kReadWrite);

  bool read_only() const { return header_copy_ != nullptr; }
  // kReadOnly only: libcryptsetup found a header copy damaged or outdated
  // and repaired it in the private copy (a writable load would have
  // rewritten the device).
  bool header_needs_repair() const { return header_needs_repair_; }

  const std::string& path() const { return path_; }
  std::string uuid() const;
  std::string cipher_spec() const;  // "aes-xts-plain64"
  int volume_key_bits() const;
  uint32_t sector_size() const;
  uint64_t data_offset_bytes() const;
  // Bytes of encrypted payload behind the header.
  StatusOr<uint64_t> payload_bytes() const;
  std::string label() const;
  std::string subsystem() const;
  // Sets the LUKS2 subsystem (at most 47 bytes), keeping the label.
  Status SetSubsystem(const std::string& subsystem);

  // Adds a keyslot that opens with `passphrase`, given the volume key.
  // Returns the keyslot number.
  StatusOr<int> AddKeyslotByVolumeKey(const SecretBytes& fvek,
                                      const SecretBytes& passphrase,
                                      KeyslotKdf kdf);
  // Adds a keyslot that opens with `new_passphrase`, authorised by an
  // existing keyslot and its passphrase (the volume key never leaves
  // libcryptsetup).
  StatusOr<int> AddKeyslotByPassphrase(int existing_slot,
                                       const SecretBytes& existing,
                                       const SecretBytes& new_passphrase,
                                       KeyslotKdf kdf);
  Status DestroyKeyslot(int slot);
  // Checks `passphrase` against keyslot `slot` (or any slot for -1) without
  // activating. Returns the slot that opened; kAuthFailed otherwise.
  StatusOr<int> CheckKeyslot(int slot, const SecretBytes& passphrase) const;
  // Recovers the volume key (the FVEK) through a keyslot.
  StatusOr<SecretBytes> GetVolumeKey(int slot,
                                     const SecretBytes& passphrase) const;
  // Checks `volume_key` against the header's digest of the volume key (one
  // PBKDF2 run; no keyslot is opened). kAuthFailed if it is not this
  // volume's key.
  Status VerifyVolumeKey(const SecretBytes& volume_key) const;
  // True if the keyslot exists and is active.
  bool KeyslotActive(int slot) const;
  // True if the header records an in-place encryption or decryption
  // (LUKS2 online reencryption), finished or not.
  bool ReencryptionInProgress() const;

  // LUKS2 tokens, as JSON text. ListTokens returns (id, json) pairs.
  std::vector<std::pair<int, std::string>> ListTokens() const;
  // Stores `json` in token `id` (-1: first free). Returns the token id.
  StatusOr<int> SetToken(int id, const std::string& json);
  Status RemoveToken(int id);

  // Creates /dev/mapper/`name` from keyslot `slot` opened by `passphrase`.
  // Needs the kernel's dm-crypt.
  Status Activate(const std::string& name, int slot,
                  const SecretBytes& passphrase,
                  const ActivateOptions& options);
  // Creates /dev/mapper/`name` from the volume key itself (checked against
  // the header's digest by libcryptsetup). Needs the kernel's dm-crypt.
  Status ActivateByVolumeKey(const std::string& name,
                             const SecretBytes& volume_key,
                             const ActivateOptions& options);

  Status HeaderBackup(const std::string& file) const;

  // Writes the header saved in `file` onto `device`, whether or not the
  // device's own header is readable (libcryptsetup checks that the backup
  // is a valid LUKS header and fits).
  static Status RestoreHeader(const std::string& device,
                              const std::string& file);

  // Mapping-level calls that need no header.
  static Status Deactivate(const std::string& name);
  // kNotFound when no mapping of that name exists.
  static StatusOr<ActiveMapping> QueryMapping(const std::string& name);

  // For the few calls that need the raw handle (tests, dump).
  crypt_device* handle() const { return cd_.get(); }

 private:
  struct Deleter {
    void operator()(crypt_device* cd) const;
  };
  struct LogSink;
  struct HeaderCopy;  // the memfd of a kReadOnly load
  struct HeaderCopyDeleter {
    void operator()(HeaderCopy* h) const;
  };

  LuksDevice(std::string path, crypt_device* cd, std::unique_ptr<LogSink> log);
  // crypt_init on `path` with the log routed into this handle; no header
  // is read. With `header`, the metadata lives there (crypt_init_data_device)
  // and `path` is the data device.
  static StatusOr<LuksDevice> Open(const std::string& path,
                                   const std::string& header = {});
  static StatusOr<LuksDevice> LoadReadOnly(const std::string& path);
  Status Error(int rc, std::string_view what) const;
  // Error() for a write: a device on a read-only file system (EROFS from
  // the kernel, whatever code libcryptsetup turned it into) is an I/O error
  // that says so. kFailedPrecondition for a kReadOnly load.
  Status WriteError(int rc, std::string_view what) const;
  Status CheckWritable(std::string_view what) const;
  Status ActivationError(int rc, const std::string& name) const;
  Status SetKdf(KeyslotKdf kdf);

  std::string path_;
  std::unique_ptr<LogSink> log_;
  // Declared before cd_ so that it is closed after crypt_free().
  std::unique_ptr<HeaderCopy, HeaderCopyDeleter> header_copy_;
  bool header_needs_repair_ = false;
  std::unique_ptr<crypt_device, Deleter> cd_;
};

// Every active LUKS2 dm-crypt mapping (found through sysfs: libcryptsetup
// gives them the DM UUID "CRYPT-LUKS2-..."), with its backing device.
std::vector<ActiveMapping> OpenLuks2Mappings();

// Routes libcryptsetup's process-wide default log (used by calls made without
// a device handle) away from stderr. Called once by each binary's main().
void SilenceCryptsetupDefaultLog();

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_LUKS_DEVICE_H_
