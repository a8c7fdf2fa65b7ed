#include "volmgr/cli/unlock_commands.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "volmgr/base/terminal_text.h"
#include "volmgr/boot/volumes_conf.h"
#include "volmgr/cli/boot_prompt.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume.h"
#include "volmgr/volume/volume_lock.h"

namespace volmgr::cli {
namespace {

using Clock = std::chrono::steady_clock;
using volume::Volume;

// What volmgr unlock records about a mapping it made, so that a remove
// event closes that mapping and nothing else: <dir>/<major>:<minor> holds
// "<mapping name>\n<LUKS UUID>\n". <dir> is <lock dir>/udev, i.e.
// /run/volmgr/locks/udev unless VOLMGR_LOCK_DIR says otherwise (tests).
std::string RecordDir() { return volume::LockDirectory() + "/udev"; }

Status MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    const std::string part = path.substr(0, i);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, "creating " + part);
    }
  }
  return Status::Ok();
}
constexpr uint32_t kDefaultTries = 3;

constexpr const char* kUnlockFooter = R"(
Run by udev (90-volmgr.rules) or systemd (volmgr-unlock@.service) as a
device appears; see docs/BOOT.md. Options come from /etc/volmgr/volumes.conf
(NAME DEVICE OPTIONS; '* * OPTIONS' for volumes that are not listed).

Examples:
  volmgr unlock --udev /dev/vdb                 # as udev runs it (ACTION=add)
  volmgr unlock --udev --action remove /dev/vdb # close what unlock opened
  volmgr unlock --probe /dev/vdb                # VOLMGR_VOLUME=1 VOLMGR_NAME=...
  volmgr unlock /dev/sdb --timeout 30 --console /dev/tty1
)";

struct UnlockState {
  std::string device;
  bool udev = false;
  bool probe = false;
  std::string action;
  std::string config = std::string(boot::kDefaultVolumesConf);
  std::string name;
  std::string console;
  std::string tcti;
  std::optional<uint32_t> timeout_s;
};

// Logs to syslog (which the journal collects) and stderr. Under systemd,
// stderr already is the journal: then only stderr, with the kernel-style
// priority prefix the journal understands.
class BootLog {
 public:
  BootLog(bool use_syslog, std::string device)
      : journal_(std::getenv("JOURNAL_STREAM") != nullptr),
        syslog_(use_syslog && !journal_),
        device_(std::move(device)) {
    if (syslog_) openlog("volmgr", LOG_PID, LOG_DAEMON);
  }
  ~BootLog() {
    if (syslog_) closelog();
  }
  void Info(const std::string& m) { Write(LOG_INFO, m); }
  void Warn(const std::string& m) { Write(LOG_WARNING, m); }
  void Error(const std::string& m) { Write(LOG_ERR, m); }

 private:
  void Write(int prio, const std::string& text) {
    // One line per message, whatever the header put in it.
    const std::string m = TerminalSafe(text);
    if (syslog_) syslog(prio, "%s: %s", device_.c_str(), m.c_str());
    if (journal_) {
      std::fprintf(stderr, "<%d>volmgr: %s: %s\n", prio, device_.c_str(),
                   m.c_str());
    } else {
      std::fprintf(stderr, "volmgr: %s: %s\n", device_.c_str(), m.c_str());
    }
  }
  bool journal_;
  bool syslog_;
  std::string device_;
};

// "<major>:<minor>" of the device: from the node while it exists, else from
// udev's MAJOR/MINOR (a remove event), else from a /dev/block/M:m name
// (systemd's ExecStop after the node is gone). Image files: their inode.
StatusOr<std::string> DeviceNumber(const std::string& dev) {
  struct stat st {};
  if (stat(dev.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    return std::to_string(major(st.st_rdev)) + ":" +
           std::to_string(minor(st.st_rdev));
  }
  if (S_ISREG(st.st_mode)) {  // an image file (tests, manual use)
    return "file-" + std::to_string(st.st_dev) + "-" +
           std::to_string(st.st_ino);
  }
  const char* ma = std::getenv("MAJOR");
  const char* mi = std::getenv("MINOR");
  const char* devname = std::getenv("DEVNAME");
  if (ma != nullptr && mi != nullptr && devname != nullptr && dev == devname) {
    return std::string(ma) + ":" + mi;
  }
  const std::string prefix = "/dev/block/";
  if (dev.rfind(prefix, 0) == 0) {
    std::string num = dev.substr(prefix.size());
    size_t colon = num.find(':');
    auto digits = [](const std::string& s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
    };
    if (colon != std::string::npos && digits(num.substr(0, colon)) &&
        digits(num.substr(colon + 1))) {
      return num;
    }
  }
  return NotFoundError(dev + " is not a block device");
}

// Drops the controlling terminal: a boot unlock must never fall into
// unlock_flow's untimed /dev/tty prompt; it asks with a timeout itself.
void DropControllingTerminal() {
  if (getsid(0) == getpid()) return;  // a session leader would hang up
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  (void)ioctl(fd, TIOCNOTTY);
  close(fd);
}

class RecordLock {
 public:
  ~RecordLock() {
    if (fd_ >= 0) close(fd_);
  }
  // kBusy when `wait` is false and another volmgr unlock holds it.
  Status Acquire(const std::string& devnum, bool wait) {
    VOLMGR_RETURN_IF_ERROR(MakeDirs(RecordDir()));
    const std::string path = RecordDir() + "/" + devnum + ".lock";
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return ErrnoToStatus(errno, "opening " + path);
    while (flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return BusyError("another volmgr unlock of this device is running");
      }
      return ErrnoToStatus(errno, "locking " + path);
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

std::string RecordPath(const std::string& devnum) {
  return RecordDir() + "/" + devnum;
}

// BitLocker shows the first 8 hex digits of the recovery key's ID.
std::string ShortId(const std::string& id) {
  std::string s = id.substr(0, 8);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string PromptMessage(const Volume& vol, const std::string& name) {
  std::string rid;
  bool passphrase = false;
  for (const auto& p : vol.protectors()) {
    if (p.kind == "recovery-password" && rid.empty()) rid = ShortId(p.id);
    if (p.kind == "passphrase") passphrase = true;
  }
  const std::string what = name + " (" + vol.device() + ")";
  if (!rid.empty() && !passphrase) {
    return "Enter the recovery password for ID " + rid + " to unlock " + what;
  }
  if (!rid.empty()) {
    return "Enter the passphrase or the recovery password for ID " + rid +
           " to unlock " + what;
  }
  return "Enter the passphrase to unlock " + what;
}

std::string UsedName(const protectors::ProtectorRecord& used) {
  const auto* h = protectors::FindHandler(used.kind);
  return h != nullptr ? std::string(h->display_name())
                      : "clear key (protection suspended)";
}

long long MillisSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                               t0)
      .count();
}

Status Probe(const UnlockState& s) {
  auto vol = Volume::Load(s.device, volume::Access::kReadOnly);
  if (!vol.ok()) {
    // Not ours (plain LUKS, no LUKS, unreadable): udev simply skips it.
    std::printf("VOLMGR_VOLUME=0\n");
    return Status::Ok();
  }
  VOLMGR_ASSIGN_OR_RETURN(boot::VolumesConf conf,
                          boot::VolumesConf::Load(s.config));
  const boot::VolumeEntry* e = conf.Find(vol->uuid(), s.device);
  bool autostart = true;
  if (e == nullptr && conf.defaults() && conf.defaults()->options.noauto) {
    autostart = false;
  }
  if (e != nullptr && e->options.noauto) autostart = false;
  const std::string name =
      e != nullptr ? e->name
                   : boot::DerivedMappingName(vol->uuid(), vol->luks().label());
  std::printf("VOLMGR_VOLUME=1\nVOLMGR_UUID=%s\nVOLMGR_NAME=%s\n",
              vol->uuid().c_str(), name.c_str());
  std::printf("VOLMGR_AUTO=%d\n", autostart ? 1 : 0);
  return Status::Ok();
}

Status Close(const UnlockState& s, BootLog& log) {
  VOLMGR_ASSIGN_OR_RETURN(std::string devnum, DeviceNumber(s.device));
  RecordLock lock;
  VOLMGR_RETURN_IF_ERROR(lock.Acquire(devnum, /*wait=*/true));
  std::ifstream in(RecordPath(devnum));
  std::string name, uuid;
  if (!std::getline(in, name) || !std::getline(in, uuid)) {
    log.Info("nothing to close: volmgr unlock opened no mapping for it");
    return Status::Ok();
  }
  std::string want = "CRYPT-LUKS2-";
  for (char c : uuid) {
    if (c != '-') want += c;
  }
  want += "-" + name;
  const auto maps = volume::OpenLuks2Mappings();
  const bool present = std::any_of(
      maps.begin(), maps.end(),
      [&](const auto& m) { return m.name == name && m.dm_uuid == want; });
  if (present) {
    Status st = volume::LuksDevice::Deactivate(name);
    if (!st.ok()) {
      log.Warn("left /dev/mapper/" + name + " open: " + st.message());
      return st;
    }
    log.Info("device removed: closed /dev/mapper/" + name);
  } else {
    log.Info("/dev/mapper/" + name + " is already closed");
  }
  unlink(RecordPath(devnum).c_str());
  return Status::Ok();
}

Status Open(const UnlockState& s, BootLog& log) {
  const auto t0 = Clock::now();
  VOLMGR_ASSIGN_OR_RETURN(boot::VolumesConf conf,
                          boot::VolumesConf::Load(s.config));
  auto loaded = Volume::Load(s.device);
  if (!loaded.ok()) {
    if (loaded.status().code() == StatusCode::kFailedPrecondition) {
      log.Info("not a volmgr volume; left alone (" + loaded.status().message() +
               ")");
      return Status::Ok();
    }
    log.Error("cannot read the volume: " + loaded.status().message());
    return loaded.status();
  }
  Volume& vol = *loaded;
  const boot::VolumeEntry* entry = conf.Find(vol.uuid(), s.device);
  boot::BootOptions opt = boot::EffectiveOptions(conf, entry);
  if (entry != nullptr ? entry->options.noauto
                       : (conf.defaults() && conf.defaults()->options.noauto)) {
    log.Info(entry != nullptr
                 ? "listed with noauto in " + s.config + ": not unlocked"
                 : "not listed in " + s.config +
                       " and auto-detection is off (noauto on '* *')");
    return Status::Ok();
  }
  std::string name = s.name;
  if (name.empty()) {
    name = entry != nullptr
               ? entry->name
               : boot::DerivedMappingName(vol.uuid(), vol.luks().label());
  }
  if (s.timeout_s) opt.timeout_s = s.timeout_s;
  if (!s.console.empty()) opt.console = s.console;
  if (!s.tcti.empty()) opt.tcti = s.tcti;

  VOLMGR_ASSIGN_OR_RETURN(std::string devnum, DeviceNumber(s.device));
  RecordLock lock;
  Status locked = lock.Acquire(devnum, /*wait=*/!s.udev);
  if (locked.code() == StatusCode::kBusy) {
    log.Info("an unlock of this device is already running; nothing to do");
    return Status::Ok();
  }
  VOLMGR_RETURN_IF_ERROR(locked);

  // Idempotent: a second add/change event finds the volume open.
  const auto open_as = vol.ActiveMappingNames();
  if (!open_as.empty()) {
    log.Info("already unlocked as /dev/mapper/" + open_as.front() +
             "; nothing to do");
    return Status::Ok();
  }
  if (access(("/dev/mapper/" + name).c_str(), F_OK) == 0) {
    Status st = AlreadyExistsError("/dev/mapper/" + name +
                                   " already exists for another device; "
                                   "give this volume another name in " +
                                   s.config);
    log.Error("left locked: " + st.message());
    return st;
  }

  // 1. No typing: a suspended volume's clear key, the TPM, startup keys.
  UnlockOptions uo;
  uo.tcti = opt.tcti;
  const bool has_tpm = HasTpmProtector(vol);
  StatusOr<volume::UnlockResult> r =
      FailedPreconditionError("it has no TPM protector");
  if (has_tpm || vol.clear_key() || !uo.startup_keys.empty()) {
    r = Unlock(vol, uo, ClearKeyUse::kCounted);
  }
  const uint32_t timeout =
      opt.timeout_s.value_or(boot::kDefaultPromptTimeoutSeconds);
  if (!r.ok() && r.status().code() == StatusCode::kPinRequired && timeout > 0) {
    BootPrompt pin_prompt{
        "Enter the TPM PIN to unlock " + name + " (" + s.device + ")",
        "volmgr-pin:" + devnum, std::chrono::seconds(timeout), opt.console};
    log.Info("asking for the TPM PIN through " + PromptChannel(pin_prompt));
    auto pin = AskWithTimeout(pin_prompt);
    if (pin.ok()) {
      uo.pin = std::move(*pin);
      r = Unlock(vol, uo, ClearKeyUse::kNo);
    } else {
      log.Warn("no TPM PIN: " + pin.status().message());
    }
  }
  if (!r.ok()) {
    log.Warn(has_tpm ? "the TPM did not unlock it: " + r.status().message()
                     : "not unlocked without typing: " + r.status().message());
    if (opt.tpm_only || timeout == 0) {
      log.Error(std::string("left locked and untouched (") +
                (opt.tpm_only ? "tpm-only" : "timeout=0: no prompt") + ")");
      return r.status().WithContext("left locked");
    }
    // 2. Ask, with one deadline for all attempts.
    const auto deadline = Clock::now() + std::chrono::seconds(timeout);
    const uint32_t tries = opt.tries.value_or(kDefaultTries);
    Status last = r.status();
    for (uint32_t i = 1; i <= tries; ++i) {
      auto left =
          std::chrono::ceil<std::chrono::seconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      BootPrompt prompt{PromptMessage(vol, name), "volmgr:" + devnum, left,
                        opt.console};
      log.Info(prompt.message + " (through " + PromptChannel(prompt) + ", " +
               std::to_string(left.count()) + " s)");
      auto secret = AskWithTimeout(prompt);
      if (!secret.ok()) {
        last = secret.status();
        break;
      }
      protectors::Credentials creds;
      creds.secrets.push_back(std::move(*secret));
      creds.tcti = ResolveTcti(opt.tcti);
      creds.skip_tpm = true;
      r = vol.Unlock(creds);
      if (r.ok()) break;
      last = r.status();
      log.Warn("that key did not unlock it (attempt " + std::to_string(i) +
               " of " + std::to_string(tries) + "): " + last.message());
    }
    if (!r.ok()) {
      log.Error("left locked and untouched: " + last.message());
      return last.WithContext("left locked");
    }
    if (has_tpm) {
      log.Warn(
          "opened by a typed key while the TPM refused; after a legitimate "
          "firmware or boot change run `volmgr reseal " +
          s.device + "`");
    }
  }
  volume::ActivateOptions act;
  act.read_only = opt.read_only;
  act.allow_discards = opt.discard;
  Status st = vol.Activate(name, r->vmk, act);
  if (!st.ok()) {
    log.Error("unlocked but not mapped: " + st.message());
    return st;
  }
  {
    std::ofstream rec(RecordPath(devnum), std::ios::trunc);
    rec << name << "\n" << vol.uuid() << "\n";
  }
  log.Info("unlocked as /dev/mapper/" + name + " with its " +
           UsedName(r->used) + " in " + std::to_string(MillisSince(t0)) +
           " ms");
  return Status::Ok();
}

}  // namespace

void RegisterUnlockCommands(CLI::App& app, CommandEnv env) {
  auto s = std::make_shared<UnlockState>();
  auto* cmd = app.add_subcommand(
      "unlock",
      "Boot-time unlock of one device as udev/systemd see it appear: "
      "TPM first, then a timed prompt; or close it on removal");
  cmd->footer(kUnlockFooter);
  cmd->add_option("DEVNAME", s->device, "the block device (udev's $devnode)")
      ->required();
  cmd->add_flag("--udev", s->udev,
                "run as udev's or systemd's helper: ACTION from the "
                "environment, log to syslog, never wait for another unlock "
                "of the same device");
  cmd->add_option("--action", s->action,
                  "add, change or remove (default: $ACTION, else add)")
      ->check(CLI::IsMember({"add", "change", "remove", "bind", "unbind"}));
  cmd->add_flag("--probe", s->probe,
                "print udev properties (VOLMGR_VOLUME, VOLMGR_NAME, "
                "VOLMGR_AUTO) and exit");
  cmd->add_option("--config", s->config,
                  "the volumes file (default /etc/volmgr/volumes.conf)");
  cmd->add_option("--name", s->name,
                  "mapping name (default: from the config, else the LUKS2 "
                  "label, else volmgr-<UUID>)");
  cmd->add_option("--timeout", s->timeout_s,
                  "seconds to wait for a typed key (0: never ask; default "
                  "from the config, else 90)");
  cmd->add_option("--console", s->console,
                  "ask on this terminal or FIFO instead of "
                  "systemd-ask-password / /dev/console");
  cmd->add_option("--tcti", s->tcti,
                  "how to reach the TPM (default $VOLMGR_TCTI, else "
                  "device:/dev/tpmrm0)");
  cmd->callback([s, env] {
    env.result = [&]() -> Status {
      if (s->probe) return Probe(*s);
      std::string action = s->action;
      if (action.empty() && s->udev) {
        const char* a = std::getenv("ACTION");
        if (a != nullptr) action = a;
      }
      if (action.empty()) action = "add";
      BootLog log(s->udev, s->device);
      if (s->udev) DropControllingTerminal();
      if (action == "remove") return Close(*s, log);
      if (action == "add" || action == "change") return Open(*s, log);
      return Status::Ok();  // bind/unbind: nothing for a volume to do
    }();
  });
}

}  // namespace volmgr::cli
