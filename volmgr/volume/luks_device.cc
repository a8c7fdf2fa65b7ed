#include "volmgr/volume/luks_device.h"

#include <dirent.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace volmgr::volume {

// Collects libcryptsetup's messages for one handle so that errors carry the
// library's explanation. Only CRYPT_LOG_ERROR and NORMAL lines are kept;
// libcryptsetup never logs key material.
struct LuksDevice::LogSink {
  std::string last_error;
  static void Callback(int level, const char* msg, void* usrptr) {
    auto* self = static_cast<LogSink*>(usrptr);
    if (self == nullptr || msg == nullptr) return;
    if (level != CRYPT_LOG_ERROR && level != CRYPT_LOG_NORMAL) return;
    std::string line(msg);
    while (!line.empty() && (line.back() == '\n' || line.back() == '.')) {
      line.pop_back();
    }
    if (line.empty()) return;
    if (level == CRYPT_LOG_ERROR) self->last_error = line;
  }
};

namespace {

void DiscardLog(int, const char*, void*) {}

// /dev/mapper/control may exist as a stale node (udev, packages) on a kernel
// without device-mapper; /proc/misc lists the driver only when it is there.
bool KernelHasDeviceMapper() {
  std::FILE* f = std::fopen("/proc/misc", "re");
  if (f == nullptr) return false;
  char line[128];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f) != nullptr) {
    found = std::strstr(line, " device-mapper") != nullptr;
  }
  std::fclose(f);
  return found;
}

bool HasLuksMagicAt(int fd, off_t offset) {
  // LUKS2 primary header magic "LUKS\xba\xbe", secondary "SKUL\xba\xbe"
  // (LUKS2 on-disk format specification, section 2.1).
  std::array<unsigned char, 6> buf{};
  if (pread(fd, buf.data(), buf.size(), offset) != 6) return false;
  static constexpr std::array<unsigned char, 6> kPrimary = {'L', 'U',  'K',
                                                            'S', 0xba, 0xbe};
  static constexpr std::array<unsigned char, 6> kSecondary = {'S', 'K',  'U',
                                                              'L', 0xba, 0xbe};
  return buf == kPrimary || buf == kSecondary;
}

// True if either LUKS2 header copy's magic is present: the header is there,
// so a failed load means damage, not "some other content".
bool LooksLikeLuks(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool found = HasLuksMagicAt(fd, 0);
  // Secondary header offsets allowed by the LUKS2 spec: 16 KiB .. 4 MiB.
  for (off_t off = 0x4000; !found && off <= 0x400000; off *= 2) {
    found = HasLuksMagicAt(fd, off);
  }
  close(fd);
  return found;
}

StatusCode CodeForCryptsetupRc(int rc) {
  switch (-rc) {
    case EPERM:
      return StatusCode::kAuthFailed;  // no keyslot opened
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return StatusCode::kNotFound;
    case EEXIST:
      return StatusCode::kAlreadyExists;
    case EBUSY:
      return StatusCode::kBusy;
    case EINVAL:
    case ENOTBLK:
      return StatusCode::kInvalidArgument;
    case ENOTSUP:
      return StatusCode::kUnsupported;
    case EIO:
    case ENOSPC:
    case EROFS:
      return StatusCode::kIoError;
    case EACCES:
      return StatusCode::kFailedPrecondition;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

std::vector<ActiveMapping> OpenLuks2Mappings() {
  std::vector<ActiveMapping> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/sys/block"), closedir);
  if (!dir) return out;
  while (dirent* e = readdir(dir.get())) {
    const std::string dm = e->d_name;
    if (dm.rfind("dm-", 0) != 0) continue;
    const std::string base = "/sys/block/" + dm;
    std::ifstream uuid_file(base + "/dm/uuid");
    std::ifstream name_file(base + "/dm/name");
    std::string uuid, name;
    if (!std::getline(uuid_file, uuid) || uuid.rfind("CRYPT-LUKS2-", 0) != 0 ||
        !std::getline(name_file, name)) {
      continue;
    }
    // A crypt mapping has exactly one slave: the device it encrypts.
    std::unique_ptr<DIR, int (*)(DIR*)> slaves(
        opendir((base + "/slaves").c_str()), closedir);
    if (!slaves) continue;
    while (dirent* sl = readdir(slaves.get())) {
      if (sl->d_name[0] == '.') continue;
      ActiveMapping m;
      m.name = name;
      m.backing_device = std::string("/dev/") + sl->d_name;
      m.dm_uuid = uuid;
      out.push_back(std::move(m));
      break;
    }
  }
  return out;
}

void SilenceCryptsetupDefaultLog() {
  crypt_set_log_callback(nullptr, DiscardLog, nullptr);
}

void LuksDevice::Deleter::operator()(crypt_device* cd) const { crypt_free(cd); }

struct LuksDevice::HeaderCopy {
  int fd = -1;
  uint64_t bytes = 0;  // copied from the start of the device
};

void LuksDevice::HeaderCopyDeleter::operator()(HeaderCopy* h) const {
  if (h->fd >= 0) close(h->fd);
  delete h;
}

LuksDevice::LuksDevice(std::string path, crypt_device* cd,
                       std::unique_ptr<LogSink> log)
    : path_(std::move(path)), log_(std::move(log)), cd_(cd) {}
LuksDevice::LuksDevice(LuksDevice&&) noexcept = default;
LuksDevice& LuksDevice::operator=(LuksDevice&&) noexcept = default;
LuksDevice::~LuksDevice() = default;

StatusOr<LuksDevice> LuksDevice::Open(const std::string& path,
                                      const std::string& header) {
  auto log = std::make_unique<LogSink>();
  crypt_device* raw = nullptr;
  int rc = header.empty()
               ? crypt_init(&raw, path.c_str())
               : crypt_init_data_device(&raw, header.c_str(), path.c_str());
  if (rc < 0) {
    return Status(CodeForCryptsetupRc(rc),
                  "cannot open " + path + ": " + std::strerror(-rc),
                  {ForeignSource::kCryptsetup, rc});
  }
  LuksDevice dev(path, raw, std::move(log));
  crypt_set_log_callback(raw, LogSink::Callback, dev.log_.get());
  return dev;
}

Status LuksDevice::Error(int rc, std::string_view what) const {
  std::string m(what);
  m += " failed";
  if (log_ && !log_->last_error.empty()) {
    m += ": " + log_->last_error;
    log_->last_error.clear();
  } else {
    m += ": ";
    m += std::strerror(-rc);
  }
  return Status(CodeForCryptsetupRc(rc), std::move(m),
                {ForeignSource::kCryptsetup, rc});
}

Status LuksDevice::CheckWritable(std::string_view what) const {
  if (read_only()) {
    return FailedPreconditionError(std::string(what) + ": " + path_ +
                                   " was opened read-only");
  }
  return Status::Ok();
}

Status LuksDevice::WriteError(int rc, std::string_view what) const {
  // libcryptsetup reports a device it cannot open for writing in several
  // ways (EROFS, EACCES, EINVAL "cannot open device"); the kernel's answer
  // to access(2) is the one that names the cause.
  std::string why;
  if (access(path_.c_str(), W_OK) != 0 && errno == EROFS) {
    why = " is on a read-only file system";
  } else if (int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    // A block device set read-only (blockdev --setro, a write-protected
    // card): its node is on a writable file system.
    struct stat st {};
    int ro = 0;
    if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) &&
        ioctl(fd, BLKROGET, &ro) == 0 && ro != 0) {
      why = " is a read-only device";
    }
    close(fd);
  }
  if (why.empty()) return Error(rc, what);
  if (log_) log_->last_error.clear();
  return Status(
      StatusCode::kIoError,
      std::string(what) + " failed: " + path_ + why + "; nothing was changed",
      {ForeignSource::kCryptsetup, rc});
}

StatusOr<LuksDevice> LuksDevice::Format(const std::string& path,
                                        const SecretBytes& fvek,
                                        const FormatOptions& options) {
  if (fvek.size() != 64) {
    return InvalidArgumentError("FVEK must be 64 bytes for AES-256-XTS");
  }
  if (options.sector_size != 512 && options.sector_size != 4096) {
    return InvalidArgumentError("sector size must be 512 or 4096, not " +
                                std::to_string(options.sector_size));
  }
  VOLMGR_ASSIGN_OR_RETURN(LuksDevice dev, Open(path));
  crypt_device* raw = dev.cd_.get();
  int rc = 0;

  crypt_params_luks2 params{};
  params.sector_size = options.sector_size;
  // Keyslot PBKDF for the format call itself is irrelevant: volmgr adds its
  // keyslots afterwards with explicit parameters.
  VOLMGR_RETURN_IF_ERROR(dev.SetKdf(KeyslotKdf::kMinimal));
  auto key = fvek.RevealAsString();
  rc = crypt_format(raw, CRYPT_LUKS2, "aes", "xts-plain64", nullptr, key.data(),
                    key.size(), &params);
  if (rc < 0) return dev.WriteError(rc, "writing the LUKS2 header to " + path);
  if (!options.label.empty() || !options.subsystem.empty()) {
    rc = crypt_set_label(
        raw, options.label.empty() ? nullptr : options.label.c_str(),
        options.subsystem.empty() ? nullptr : options.subsystem.c_str());
    if (rc < 0) return dev.WriteError(rc, "setting the LUKS2 label");
  }
  return dev;
}

namespace {

// Copies bytes [from, to) of `src` into `dst` at the same offsets.
Status CopyRange(int src, int dst, uint64_t from, uint64_t to,
                 const std::string& what) {
  std::vector<char> buf(1 << 20);
  for (uint64_t at = from; at < to;) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(buf.size(), to - at));
    ssize_t n = pread(src, buf.data(), want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "reading " + what);
    if (n == 0) break;  // shorter than its size said: the rest reads as zeros
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(dst, buf.data() + done, static_cast<size_t>(n - done),
                         static_cast<off_t>(at) + done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoToStatus(errno, "copying the header of " + what);
      done += w;
    }
    at += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// True if bytes [0, n) of `a` and `b` are equal.
bool SameBytes(int a, int b, uint64_t n) {
  std::vector<char> x(1 << 20), y(1 << 20);
  for (uint64_t at = 0; at < n;) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(x.size(), n - at));
    ssize_t p = pread(a, x.data(), want, static_cast<off_t>(at));
    ssize_t q = pread(b, y.data(), want, static_cast<off_t>(at));
    if (p != q) return false;
    if (p <= 0) return p == 0;
    if (std::memcmp(x.data(), y.data(), static_cast<size_t>(p)) != 0) {
      return false;
    }
    at += static_cast<uint64_t>(p);
  }
  return true;
}

// LUKS2's default header area (both copies and the keyslots): what a
// read-only load copies first.
constexpr uint64_t kDefaultHeaderArea = 16ull << 20;
// The most a read-only load copies for a larger header area (LUKS2 allows a
// keyslots area up to 128 MiB).
constexpr uint64_t kMaxHeaderArea = 256ull << 20;

}  // namespace

namespace {

// Why crypt_load failed on PATH: a damaged header (exit 9) or none at all.
// `error` is the handle's decoding of rc (with libcryptsetup's last message).
Status LoadFailure(const Status& error, int rc, const std::string& path) {
  if (LooksLikeLuks(path)) {
    return Status(StatusCode::kCorruption,
                  error.message() +
                      " (a LUKS header is present but damaged; see "
                      "`volmgr header restore` or volmgr-recover)",
                  error.foreign());
  }
  return Status(StatusCode::kFailedPrecondition, path + " holds no LUKS header",
                {ForeignSource::kCryptsetup, rc});
}

}  // namespace

StatusOr<LuksDevice> LuksDevice::LoadReadOnly(const std::string& path) {
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ErrnoToStatus(errno, path);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } close_src{src};
  struct stat st {};
  if (fstat(src, &st) != 0) return ErrnoToStatus(errno, path);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode) && ioctl(src, BLKGETSIZE64, &size) != 0) {
    return ErrnoToStatus(errno, "size of " + path);
  }
  auto copy = std::unique_ptr<HeaderCopy, HeaderCopyDeleter>(new HeaderCopy);
  copy->fd = memfd_create("volmgr-header", MFD_CLOEXEC);
  if (copy->fd < 0) return ErrnoToStatus(errno, "memfd_create");
  const std::string header = "/proc/self/fd/" + std::to_string(copy->fd);
  uint64_t want = std::min(size, kDefaultHeaderArea);
  for (int pass = 0;; ++pass) {
    if (ftruncate(copy->fd, static_cast<off_t>(want)) != 0) {
      return ErrnoToStatus(errno, "sizing the header copy of " + path);
    }
    VOLMGR_RETURN_IF_ERROR(CopyRange(src, copy->fd, copy->bytes, want, path));
    copy->bytes = want;
    VOLMGR_ASSIGN_OR_RETURN(LuksDevice dev, Open(path, header));
    crypt_device* raw = dev.cd_.get();
    const int rc = crypt_load(raw, CRYPT_LUKS, nullptr);
    if (rc >= 0) {
      // A header area larger than the default: copy the rest and load again
      // (keyslot areas are read from the header device).
      const uint64_t area = crypt_get_data_offset(raw) * 512;
      if (pass == 0 && area > want && area <= std::min(size, kMaxHeaderArea)) {
        want = area;
        continue;
      }
      // libcryptsetup repairs a damaged or outdated copy on load; in the
      // private copy that shows as bytes that differ from the device's.
      dev.header_needs_repair_ = !SameBytes(src, copy->fd, copy->bytes);
      dev.header_copy_ = std::move(copy);
      return dev;
    }
    return LoadFailure(dev.Error(rc, "reading the LUKS2 header of " + path), rc,
                       path);
  }
}

StatusOr<LuksDevice> LuksDevice::Load(const std::string& path, Access access) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, path);
  }
  if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
    return InvalidArgumentError(path + " is neither a block device nor a file");
  }
  if (access == Access::kReadOnly) {
    VOLMGR_ASSIGN_OR_RETURN(LuksDevice dev, LoadReadOnly(path));
    const char* type = crypt_get_type(dev.cd_.get());
    if (type == nullptr || std::string(type) != CRYPT_LUKS2) {
      return FailedPreconditionError(path + " is " + (type ? type : "unknown") +
                                     ", not LUKS2; volmgr manages LUKS2 only");
    }
    return dev;
  }
  VOLMGR_ASSIGN_OR_RETURN(LuksDevice dev, Open(path));
  crypt_device* raw = dev.cd_.get();
  int rc = 0;
  rc = crypt_load(raw, CRYPT_LUKS, nullptr);
  if (rc < 0) {
    return LoadFailure(dev.Error(rc, "reading the LUKS2 header of " + path), rc,
                       path);
  }
  const char* type = crypt_get_type(raw);
  if (type == nullptr || std::string(type) != CRYPT_LUKS2) {
    return FailedPreconditionError(path + " is " + (type ? type : "unknown") +
                                   ", not LUKS2; volmgr manages LUKS2 only");
  }
  return dev;
}

std::string LuksDevice::uuid() const {
  const char* u = crypt_get_uuid(cd_.get());
  return u ? u : "";
}

std::string LuksDevice::cipher_spec() const {
  const char* c = crypt_get_cipher(cd_.get());
  const char* m = crypt_get_cipher_mode(cd_.get());
  return std::string(c ? c : "?") + "-" + (m ? m : "?");
}

int LuksDevice::volume_key_bits() const {
  return crypt_get_volume_key_size(cd_.get()) * 8;
}

uint32_t LuksDevice::sector_size() const {
  return static_cast<uint32_t>(crypt_get_sector_size(cd_.get()));
}

uint64_t LuksDevice::data_offset_bytes() const {
  return crypt_get_data_offset(cd_.get()) * 512;
}

StatusOr<uint64_t> LuksDevice::payload_bytes() const {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path_);
  off_t end = lseek(fd, 0, SEEK_END);
  close(fd);
  if (end < 0) return ErrnoToStatus(errno, "size of " + path_);
  uint64_t off = data_offset_bytes();
  return static_cast<uint64_t>(end) > off ? static_cast<uint64_t>(end) - off
                                          : 0;
}

std::string LuksDevice::label() const {
  const char* l = crypt_get_label(cd_.get());
  return l ? l : "";
}

std::string LuksDevice::subsystem() const {
  const char* s = crypt_get_subsystem(cd_.get());
  return s ? s : "";
}

Status LuksDevice::SetKdf(KeyslotKdf kdf) {
  (void)kdf;  // one choice today; the enum leaves room for stretched slots
  crypt_pbkdf_type pbkdf{};
  pbkdf.type = CRYPT_KDF_PBKDF2;
  pbkdf.hash = "sha256";
  pbkdf.iterations = 1000;  // libcryptsetup's minimum for PBKDF2
  pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
  int rc = crypt_set_pbkdf_type(cd_.get(), &pbkdf);
  if (rc < 0) return Error(rc, "setting the keyslot PBKDF");
  return Status::Ok();
}

StatusOr<int> LuksDevice::AddKeyslotByVolumeKey(const SecretBytes& fvek,
                                                const SecretBytes& passphrase,
                                                KeyslotKdf kdf) {
  VOLMGR_RETURN_IF_ERROR(CheckWritable("adding a keyslot"));
  VOLMGR_RETURN_IF_ERROR(SetKdf(kdf));
  auto key = fvek.RevealAsString();
  auto pass = passphrase.RevealAsString();
  int rc =
      crypt_keyslot_add_by_volume_key(cd_.get(), CRYPT_ANY_SLOT, key.data(),
                                      key.size(), pass.data(), pass.size());
  if (rc < 0) return WriteError(rc, "adding a keyslot");
  return rc;
}

StatusOr<int> LuksDevice::AddKeyslotByPassphrase(
    int existing_slot, const SecretBytes& existing,
    const SecretBytes& new_passphrase, KeyslotKdf kdf) {
  VOLMGR_RETURN_IF_ERROR(CheckWritable("adding a keyslot"));
  VOLMGR_RETURN_IF_ERROR(SetKdf(kdf));
  auto old_pass = existing.RevealAsString();
  auto new_pass = new_passphrase.RevealAsString();
  int rc = crypt_keyslot_add_by_passphrase(cd_.get(), CRYPT_ANY_SLOT,
                                           old_pass.data(), old_pass.size(),
                                           new_pass.data(), new_pass.size());
  (void)existing_slot;  // libcryptsetup searches; the VMK opens one slot only
  if (rc < 0) return WriteError(rc, "adding a keyslot");
  return rc;
}

Status LuksDevice::DestroyKeyslot(int slot) {
  VOLMGR_RETURN_IF_ERROR(CheckWritable("destroying a keyslot"));
  int rc = crypt_keyslot_destroy(cd_.get(), slot);
  if (rc < 0) {
    return WriteError(rc, "destroying keyslot " + std::to_string(slot));
  }
  return Status::Ok();
}

StatusOr<int> LuksDevice::CheckKeyslot(int slot,
                                       const SecretBytes& pass) const {
  auto p = pass.RevealAsString();
  // A NULL name checks the passphrase without creating a mapping.
  int rc = crypt_activate_by_passphrase(cd_.get(), nullptr, slot, p.data(),
                                        p.size(), 0);
  if (rc < 0) {
    if (log_) log_->last_error.clear();
    if (rc == -EPERM) return AuthFailedError("no keyslot opened");
    return Error(rc, "checking a keyslot");
  }
  return rc;
}

StatusOr<SecretBytes> LuksDevice::GetVolumeKey(int slot,
                                               const SecretBytes& pass) const {
  int bytes = crypt_get_volume_key_size(cd_.get());
  if (bytes <= 0) return InternalError("volume key size unknown");
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key,
                          SecretBytes::Allocate(static_cast<size_t>(bytes)));
  size_t len = key.size();
  auto p = pass.RevealAsString();
  int rc = crypt_volume_key_get(
      cd_.get(), slot, reinterpret_cast<char*>(key.RevealMutable().data()),
      &len, p.data(), p.size());
  if (rc < 0) {
    if (rc == -EPERM) {
      if (log_) log_->last_error.clear();
      return AuthFailedError("no keyslot opened");
    }
    return Error(rc, "reading the volume key");
  }
  key.Resize(len);
  return key;
}

bool LuksDevice::KeyslotActive(int slot) const {
  crypt_keyslot_info info = crypt_keyslot_status(cd_.get(), slot);
  return info == CRYPT_SLOT_ACTIVE || info == CRYPT_SLOT_ACTIVE_LAST;
}

bool LuksDevice::ReencryptionInProgress() const {
  crypt_params_reencrypt params{};
  return crypt_reencrypt_status(cd_.get(), &params) != CRYPT_REENCRYPT_NONE;
}

std::vector<std::pair<int, std::string>> LuksDevice::ListTokens() const {
  std::vector<std::pair<int, std::string>> out;
  int max = crypt_token_max(CRYPT_LUKS2);
  for (int id = 0; id < max; ++id) {
    const char* json = nullptr;
    if (crypt_token_json_get(cd_.get(), id, &json) >= 0 && json != nullptr) {
      out.emplace_back(id, json);
    }
  }
  if (log_) log_->last_error.clear();
  return out;
}

StatusOr<int> LuksDevice::SetToken(int id, const std::string& json) {
  VOLMGR_RETURN_IF_ERROR(CheckWritable("writing a LUKS2 token"));
  int rc = crypt_token_json_set(cd_.get(), id < 0 ? CRYPT_ANY_TOKEN : id,
                                json.c_str());
  if (rc < 0) return WriteError(rc, "writing a LUKS2 token");
  return rc;
}

Status LuksDevice::SetSubsystem(const std::string& subsystem) {
  const std::string keep = label();
  int rc = crypt_set_label(cd_.get(), keep.empty() ? nullptr : keep.c_str(),
                           subsystem.c_str());
  if (rc < 0) return Error(rc, "setting the LUKS2 subsystem");
  return Status::Ok();
}

Status LuksDevice::RemoveToken(int id) {
  VOLMGR_RETURN_IF_ERROR(CheckWritable("removing a LUKS2 token"));
  int rc = crypt_token_json_set(cd_.get(), id, nullptr);
  if (rc < 0) return WriteError(rc, "removing token " + std::to_string(id));
  return Status::Ok();
}

namespace {

uint32_t ActivationFlags(const ActivateOptions& options) {
  uint32_t flags = 0;
  if (options.read_only) flags |= CRYPT_ACTIVATE_READONLY;
  if (options.allow_discards) flags |= CRYPT_ACTIVATE_ALLOW_DISCARDS;
  if (options.no_read_workqueue) flags |= CRYPT_ACTIVATE_NO_READ_WORKQUEUE;
  if (options.no_write_workqueue) flags |= CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE;
  return flags;
}

}  // namespace

Status LuksDevice::ActivationError(int rc, const std::string& name) const {
  if (rc == -EPERM) return AuthFailedError("no keyslot opened");
  if (!KernelHasDeviceMapper()) {
    return Status(StatusCode::kUnavailable,
                  "this kernel has no device-mapper (dm-mod/dm-crypt not "
                  "loaded), so the volume cannot be mapped; load them "
                  "(modprobe dm-crypt) or read it offline with "
                  "volmgr-recover",
                  {ForeignSource::kCryptsetup, rc});
  }
  return Error(rc, "activating /dev/mapper/" + name);
}

Status LuksDevice::Activate(const std::string& name, int slot,
                            const SecretBytes& passphrase,
                            const ActivateOptions& options) {
  auto p = passphrase.RevealAsString();
  int rc = crypt_activate_by_passphrase(cd_.get(), name.c_str(), slot, p.data(),
                                        p.size(), ActivationFlags(options));
  return rc < 0 ? ActivationError(rc, name) : Status::Ok();
}

Status LuksDevice::ActivateByVolumeKey(const std::string& name,
                                       const SecretBytes& volume_key,
                                       const ActivateOptions& options) {
  auto k = volume_key.Reveal();
  int rc = crypt_activate_by_volume_key(cd_.get(), name.c_str(),
                                        reinterpret_cast<const char*>(k.data()),
                                        k.size(), ActivationFlags(options));
  return rc < 0 ? ActivationError(rc, name) : Status::Ok();
}

Status LuksDevice::VerifyVolumeKey(const SecretBytes& volume_key) const {
  auto k = volume_key.Reveal();
  int rc = crypt_volume_key_verify(
      cd_.get(), reinterpret_cast<const char*>(k.data()), k.size());
  if (rc < 0) {
    if (log_) log_->last_error.clear();
    if (rc == -EPERM) {
      return AuthFailedError("the key is not this volume's key");
    }
    return Error(rc, "checking the volume key");
  }
  return Status::Ok();
}

Status LuksDevice::HeaderBackup(const std::string& file) const {
  int rc = crypt_header_backup(cd_.get(), CRYPT_LUKS2, file.c_str());
  if (rc < 0) return Error(rc, "backing up the header to " + file);
  return Status::Ok();
}

Status LuksDevice::RestoreHeader(const std::string& device,
                                 const std::string& file) {
  VOLMGR_ASSIGN_OR_RETURN(LuksDevice dev, Open(device));
  crypt_device* raw = dev.cd_.get();
  int rc = 0;
  rc = crypt_header_restore(raw, CRYPT_LUKS2, file.c_str());
  if (rc < 0) return dev.WriteError(rc, "restoring the header from " + file);
  return Status::Ok();
}

Status LuksDevice::Deactivate(const std::string& name) {
  crypt_device* raw = nullptr;
  int rc = crypt_init_by_name(&raw, name.c_str());
  std::unique_ptr<crypt_device, Deleter> cd(raw);
  if (rc < 0) {
    if (!KernelHasDeviceMapper()) {
      return UnavailableError("this kernel has no device-mapper");
    }
    return Status(StatusCode::kNotFound, "no active volume named " + name,
                  {ForeignSource::kCryptsetup, rc});
  }
  crypt_set_log_callback(raw, DiscardLog, nullptr);
  rc = crypt_deactivate(raw, name.c_str());
  if (rc == -EBUSY) {
    return Status(StatusCode::kBusy,
                  "/dev/mapper/" + name +
                      " is in use (mounted or held open); unmount it first",
                  {ForeignSource::kCryptsetup, rc});
  }
  if (rc < 0) {
    return Status(CodeForCryptsetupRc(rc),
                  "closing " + name + ": " + std::strerror(-rc),
                  {ForeignSource::kCryptsetup, rc});
  }
  return Status::Ok();
}

StatusOr<ActiveMapping> LuksDevice::QueryMapping(const std::string& name) {
  if (!KernelHasDeviceMapper()) {
    return NotFoundError("no device-mapper on this kernel");
  }
  crypt_device* raw = nullptr;
  int rc = crypt_init_by_name(&raw, name.c_str());
  std::unique_ptr<crypt_device, Deleter> cd(raw);
  if (rc < 0) return NotFoundError("no active volume named " + name);
  crypt_set_log_callback(raw, DiscardLog, nullptr);
  crypt_active_device cad{};
  if (crypt_get_active_device(raw, name.c_str(), &cad) < 0) {
    return NotFoundError("no active volume named " + name);
  }
  ActiveMapping m;
  m.name = name;
  const char* dev = crypt_get_device_name(raw);
  m.backing_device = dev ? dev : "";
  m.size_bytes = cad.size * 512;
  m.read_only = (cad.flags & CRYPT_ACTIVATE_READONLY) != 0;
  const char* c = crypt_get_cipher(raw);
  const char* mode = crypt_get_cipher_mode(raw);
  m.cipher = std::string(c ? c : "?") + "-" + (mode ? mode : "?");
  return m;
}

}  // namespace volmgr::volume
