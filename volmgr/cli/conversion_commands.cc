#include "volmgr/cli/conversion_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "volmgr/base/secret_io.h"
#include "volmgr/cli/output.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/volume/conversion.h"

namespace volmgr::cli {
namespace {

using volume::ConversionDirection;
using volume::ConversionOptions;
using volume::ConversionProgress;
using volume::Volume;

volatile std::sig_atomic_t g_pause_requested = 0;

void OnPauseSignal(int) { g_pause_requested = 1; }

// SIGINT (Ctrl-C, `volmgr conversion pause`) and SIGTERM ask the running
// conversion to stop after the chunk in flight, for as long as this object
// lives.
class PauseOnSignal {
 public:
  PauseOnSignal() {
    g_pause_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = OnPauseSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~PauseOnSignal() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string EtaText(double s) {
  char b[32];
  if (s < 0) return "?";
  if (s < 90) {
    std::snprintf(b, sizeof b, "%.0f s", s);
  } else if (s < 5400) {
    std::snprintf(b, sizeof b, "%.0f min", s / 60);
  } else {
    std::snprintf(b, sizeof b, "%.1f h", s / 3600);
  }
  return b;
}

// Progress on a terminal only (or with --progress, one line per change of
// whole percent, for logs); nothing otherwise. With --progress-json, JSON
// lines on stdout instead, with the fields and timing of cryptsetup's
// --progress-json (src/utils_progress.c), so that a script can read both
// tools' rates the same way: the clock starts at libcryptsetup's first
// progress callback, a line at most every 0.5 s and always a final one,
// "speed" = bytes converted since the first callback / seconds since it.
struct ProgressPrinter {
  bool enabled = false;
  bool tty = false;
  bool json = false;
  std::string device;
  int last_pct = -1;
  bool printed = false;
  std::optional<std::chrono::steady_clock::time_point> json_start;
  std::chrono::steady_clock::time_point json_last;
  uint64_t json_start_bytes = 0;
  bool operator()(const ConversionProgress& p) {
    if (json) {
      PrintJson(p);
    } else if (enabled) {
      const int pct = static_cast<int>(p.percent());
      if (tty || pct != last_pct) {
        last_pct = pct;
        std::string rate =
            p.bytes_per_second > 0
                ? std::to_string(std::lround(p.bytes_per_second / (1 << 20))) +
                      " MiB/s"
                : "- MiB/s";
        std::fprintf(stderr, "%s%s: %5.1f %%, %s, ETA %s%s", tty ? "\r" : "",
                     p.direction == ConversionDirection::kEncrypt
                         ? "Encrypting"
                         : "Decrypting",
                     p.percent(), rate.c_str(), EtaText(p.eta_seconds).c_str(),
                     tty ? "   " : "\n");
        std::fflush(stderr);
        printed = true;
      }
    }
    return g_pause_requested == 0;
  }
  void PrintJson(const ConversionProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!json_start) {
      json_start = now;
      json_last = now;
      json_start_bytes = p.done_bytes;
      return;
    }
    const bool final = p.done_bytes == p.size_bytes;
    if (!final && now - json_last < std::chrono::milliseconds(500)) return;
    json_last = now;
    const double secs =
        std::chrono::duration<double>(now - *json_start).count();
    if (secs <= 0) return;
    const double speed = (p.done_bytes - json_start_bytes) / secs;
    const double eta_ms =
        final || speed <= 0 ? 0 : (p.size_bytes / speed - secs) * 1e3;
    // Strings, as cryptsetup writes them.
    nlohmann::ordered_json line = {
        {"device", device},
        {"device_bytes", std::to_string(p.done_bytes)},
        {"device_size", std::to_string(p.size_bytes)},
        {"speed", std::to_string(static_cast<uint64_t>(speed))},
        {"eta_ms",
         std::to_string(static_cast<uint64_t>(std::max(0.0, eta_ms)))},
        {"time_ms", std::to_string(static_cast<uint64_t>(secs * 1e3))}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  void Finish() {
    if (!json && enabled && tty && printed) std::fputc('\n', stderr);
  }
};

struct ProgressFlags {
  bool force = false, quiet = false, json = false;
  void AddTo(CLI::App* cmd) {
    cmd->add_flag("--progress", force,
                  "print progress lines even when stderr is not a terminal");
    cmd->add_flag("--progress-json", json,
                  "print progress as JSON lines on stdout (the fields of "
                  "cryptsetup's --progress-json)");
    cmd->add_flag("--quiet", quiet, "no progress output");
  }
  ProgressPrinter Make(const std::string& device) const {
    ProgressPrinter p;
    p.tty = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    p.enabled = !quiet && (force || p.tty);
    p.json = json;
    p.device = device;
    return p;
  }
};

// Runs `work(vmk)` in a detached child (its own session, stdin/stdout on
// /dev/null, stderr appended to <state dir>/background.log). SecretBytes
// pages are MADV_WIPEONFORK (and mlock does not survive fork), so the VMK
// crosses to the child through a pipe, into fresh locked memory there.
template <typename Work>
Status RunInBackground(const SecretBytes& vmk, Work work) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  Status w = WriteSecret(fds[1], vmk);  // 32 bytes: fits the pipe buffer
  close(fds[1]);
  if (!w.ok()) {
    close(fds[0]);
    return w;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    return ErrnoToStatus(errno, "fork");
  }
  if (pid > 0) {
    close(fds[0]);
    return Status::Ok();
  }
  setsid();
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
  }
  const std::string log =
      volume::ConversionStateDirectory() + "/background.log";
  int lfd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  dup2(lfd >= 0 ? lfd : null, STDERR_FILENO);
  Status s = [&]() -> Status {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretFromFd(fds[0], 256));
    close(fds[0]);
    return work(key);
  }();
  std::fflush(nullptr);
  std::_Exit(s.ok() ? 0 : ReportError(s));
}

std::string DirectionWord(ConversionDirection d) {
  return d == ConversionDirection::kEncrypt ? "Encryption" : "Decryption";
}

constexpr const char* kEncryptHelp = R"(
Encrypts a device that holds a filesystem, in place. The LUKS2 header goes
to the head of the device and the data moves 16 MiB up, so the last 32 MiB
must be free: an unmounted ext2/3/4 is checked and shrunk with resize2fs;
for anything else shrink it yourself and pass --force. Each chunk is written
only over data already copied elsewhere ("datashift" resilience), so a crash
or power loss at any point loses nothing: the next `volmgr open` or
`volmgr conversion resume` continues. Ctrl-C pauses cleanly.

Examples:
  volmgr encrypt /dev/sdb1 --passphrase
  volmgr encrypt /dev/sdb1 --init-only --new-key-file pass.txt \
                 --recovery-password-file sdb1.recovery
  volmgr open /dev/sdb1 data     # maps it; encryption continues in the background
  volmgr status /dev/sdb1        # "Encryption in progress: 37 %, 210 MiB/s, ETA 4 min"
)";

constexpr const char* kDecryptHelp = R"(
Decrypts a volume in place, ending with the plain filesystem at offset 0
(it mounts without volmgr). The header is exported to a file first (default
/var/lib/volmgr/conversion/decrypt-<device>.luks2, --header to choose): while
decryption runs it is the only copy of the keys, so keep it on persistent
storage. If the volume is open (mounted or not), decryption runs online
through its mapping. Resilience: checksum (default: a hash of each chunk in
the header, little extra I/O) or journal (each chunk written twice: slower,
but it does not depend on the device's sector writes being atomic).

Examples:
  volmgr decrypt /dev/sdb1                      # asks for a passphrase or recovery password
  volmgr decrypt /dev/sdb1 --key-file - --header /root/sdb1.hdr < pass.txt
)";

}  // namespace

bool ConversionPending(const Volume& vol) {
  auto s = volume::GetConversionStatus(vol.device(), vol.device());
  return s.ok() && s->in_progress && !s->running;
}

Status OpenDuringConversion(Volume& vol, const SecretBytes& vmk,
                            const std::string& name) {
  const std::string device = vol.device();
  // Recover (if it crashed), map, and take one step in the foreground, so
  // the mapping exists when `open` returns.
  ConversionOptions first;
  first.map_name = name;
  first.progress = [](const ConversionProgress&) { return false; };
  VOLMGR_ASSIGN_OR_RETURN(bool done,
                          volume::ResumeConversion(device, vmk, first));
  if (done) {
    // Recovery (or the one step) finished it: a plain open, unless the
    // step above already mapped it.
    for (const auto& m : vol.ActiveMappingNames()) {
      if (m == name) return Status::Ok();
    }
    // The header may have been rewritten (FinishCompletedConversion): map
    // it from a fresh load.
    VOLMGR_ASSIGN_OR_RETURN(Volume fresh, Volume::Load(device));
    return fresh.Activate(name, vmk, volume::ActivateOptions{});
  }
  VOLMGR_RETURN_IF_ERROR(RunInBackground(vmk, [&](const SecretBytes& key) {
    PauseOnSignal pause;
    ConversionOptions o;
    o.map_name = name;
    o.progress = [](const ConversionProgress&) {
      return g_pause_requested == 0;
    };
    return volume::ResumeConversion(device, key, o).status();
  }));
  if (isatty(STDERR_FILENO)) {
    std::fprintf(stderr,
                 "volmgr: the conversion of %s continues in the background "
                 "(`volmgr status %s`)\n",
                 device.c_str(), device.c_str());
  }
  return Status::Ok();
}

void RegisterConversionCommands(CLI::App& app, CommandEnv env) {
  // ---- encrypt -----------------------------------------------------------
  auto* enc = app.add_subcommand(
      "encrypt", "Encrypt DEVICE in place, keeping its data (ext4 is shrunk)");
  enc->footer(kEncryptHelp);
  struct EncryptArgs {
    volume::FormatSpec spec;
    bool want_passphrase = false, init_only = false, background = false;
    bool force = false;
    SecretSource new_key;
    std::string recovery_file;
    Argon2Flags argon2;
    ProgressFlags progress;
  };
  auto ea = std::make_shared<EncryptArgs>();
  ea->spec.sector_size = 0;
  enc->add_option("DEVICE", ea->spec.device, "block device or image file")
      ->required();
  enc->add_flag("--passphrase", ea->want_passphrase,
                "add a passphrase protector");
  enc->add_option("--new-key-file", ea->new_key.file,
                  "read the new passphrase from FILE instead of asking");
  enc->add_option("--new-key-fd", ea->new_key.fd,
                  "read the new passphrase from descriptor N");
  enc->add_option("--startup-key", ea->spec.startup_key_file,
                  "add a startup-key protector, writing the key to this new "
                  "file (or DIR/<ID>.BEK)");
  enc->add_option("--recovery-password-file", ea->recovery_file,
                  "also write the recovery password to this new file");
  enc->add_option("--sector-size", ea->spec.sector_size,
                  "encryption sector size: 4096 or 512 (default: 4096 when "
                  "the filesystem's blocks allow it)")
      ->check(CLI::IsMember({512, 4096}));
  enc->add_option("--label", ea->spec.label, "LUKS2 label");
  enc->add_flag("--force", ea->force,
                "encrypt a device whose filesystem volmgr does not know "
                "(you assert that its last 32 MiB are unused)");
  enc->add_flag("--init-only", ea->init_only,
                "only place the header; convert later with `volmgr open` or "
                "`volmgr conversion resume`");
  enc->add_flag("--background", ea->background,
                "convert in a background process once the header is placed");
  enc->add_flag("--json", env.json_mode, "print the result as JSON");
  ea->argon2.AddTo(enc);
  ea->progress.AddTo(enc);
  enc->callback([ea, env] {
    env.result = [&]() -> Status {
      auto& a = *ea;
      std::optional<SecretBytes> pass;
      if (a.want_passphrase || a.new_key.has()) {
        VOLMGR_ASSIGN_OR_RETURN(
            pass,
            ReadSecret(a.new_key, "New passphrase for " + a.spec.device + ": ",
                       /*confirm=*/true));
        a.spec.passphrase = &*pass;
      }
      a.spec.argon2 = a.argon2.Params();
      if (!a.recovery_file.empty() &&
          access(a.recovery_file.c_str(), F_OK) == 0) {
        return AlreadyExistsError(a.recovery_file +
                                  " exists; volmgr never overwrites a key "
                                  "file");
      }
      PauseOnSignal pause;
      ProgressPrinter printer = a.progress.Make(a.spec.device);
      ConversionOptions o;
      o.progress = [&](const ConversionProgress& p) { return printer(p); };
      const bool init_only = a.init_only || a.background;
      VOLMGR_ASSIGN_OR_RETURN(
          volume::EncryptResult r,
          volume::EncryptInPlace(a.spec, a.force, init_only, o));
      printer.Finish();
      const volume::NewProtector* rp =
          ShownRecoveryPassword(r.format.protectors);
      if (rp != nullptr && !a.recovery_file.empty()) {
        VOLMGR_RETURN_IF_ERROR(SaveRecoveryPassword(a.recovery_file, *rp));
      }
      if (a.background) {
        // The VMK again, through the recovery password, in the child.
        VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(a.spec.device));
        protectors::Credentials creds;
        VOLMGR_ASSIGN_OR_RETURN(
            SecretBytes s, SecretBytes::CopyOf(rp->shown_secret->Reveal()));
        creds.secrets.push_back(std::move(s));
        VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u, vol.Unlock(creds));
        const std::string dev = a.spec.device;
        VOLMGR_RETURN_IF_ERROR(
            RunInBackground(u.vmk, [&](const SecretBytes& k) {
              PauseOnSignal p;
              ConversionOptions bo;
              bo.progress = [](const ConversionProgress&) {
                return g_pause_requested == 0;
              };
              return volume::ResumeConversion(dev, k, bo).status();
            }));
      }
      const std::string state =
          r.finished
              ? "encrypted"
              : (a.background ? "converting in the background" : "paused");
      if (env.json_mode) {
        nlohmann::json doc = {{"device", a.spec.device},
                              {"uuid", r.format.uuid},
                              {"state", state},
                              {"shrunk", r.plan.shrink},
                              {"sector_size", r.plan.sector_size}};
        doc["protectors"] = NewProtectorsJson(r.format.protectors);
        if (rp) doc["recovery_id"] = rp->record.id;
        return PrintJsonWithSecret(doc, rp ? &*rp->shown_secret : nullptr);
      }
      if (r.plan.shrink) {
        std::printf("Shrank the %s filesystem on %s to %s.\n",
                    r.plan.fs_type.c_str(), a.spec.device.c_str(),
                    HumanBytes(r.plan.shrink_to_bytes).c_str());
      }
      std::printf("%s is a volmgr volume (UUID %s), AES-256-XTS: %s.\n",
                  a.spec.device.c_str(), r.format.uuid.c_str(), state.c_str());
      if (!r.finished && !a.background) {
        std::printf(
            "Continue with `volmgr conversion resume %s` or `volmgr "
            "open %s NAME`.\n",
            a.spec.device.c_str(), a.spec.device.c_str());
      }
      PrintNewProtectors(r.format.protectors);
      if (rp) VOLMGR_RETURN_IF_ERROR(ShowRecoveryPassword(*rp, false));
      return Status::Ok();
    }();
  });

  // ---- decrypt -----------------------------------------------------------
  auto* dec = app.add_subcommand(
      "decrypt", "Decrypt a volume in place back to a plain device");
  dec->footer(kDecryptHelp);
  struct DecryptArgs {
    std::string device;
    ConversionOptions o;
    UnlockOptions unlock;
    bool init_only = false, background = false;
    ProgressFlags progress;
  };
  auto da = std::make_shared<DecryptArgs>();
  dec->add_option("DEVICE", da->device, "volume")->required();
  dec->add_option("--header", da->o.header_file,
                  "where to keep the header while decrypting (a new file on "
                  "persistent storage)");
  dec->add_option("--resilience", da->o.resilience,
                  "checksum (default) or journal")
      ->check(CLI::IsMember({"checksum", "journal"}));
  dec->add_flag("--init-only", da->init_only,
                "only export the header and set up; convert later");
  dec->add_flag("--background", da->background,
                "convert in a background process");
  da->unlock.AddTo(dec);
  da->progress.AddTo(dec);
  dec->callback([da, env] {
    env.result = [&]() -> Status {
      auto& a = *da;
      VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(a.device));
      VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u, Unlock(vol, a.unlock));
      PauseOnSignal pause;
      ProgressPrinter printer = a.progress.Make(a.device);
      a.o.progress = [&](const ConversionProgress& p) { return printer(p); };
      const std::string header =
          a.o.header_file.empty() ? volume::DefaultDecryptHeaderPath(a.device)
                                  : a.o.header_file;
      VOLMGR_ASSIGN_OR_RETURN(
          bool done,
          volume::DecryptInPlace(vol, u.vmk, a.init_only || a.background, a.o));
      printer.Finish();
      if (a.background) {
        const std::string dev = a.device;
        ConversionOptions bo = a.o;
        bo.header_file = header;
        bo.resilience.clear();
        VOLMGR_RETURN_IF_ERROR(
            RunInBackground(u.vmk, [&](const SecretBytes& k) {
              PauseOnSignal p;
              bo.progress = [](const ConversionProgress&) {
                return g_pause_requested == 0;
              };
              return volume::ResumeConversion(dev, k, bo).status();
            }));
        std::printf(
            "Decryption of %s continues in the background; its header "
            "is in %s until it ends.\n",
            a.device.c_str(), header.c_str());
        return Status::Ok();
      }
      if (done) {
        std::printf("%s is decrypted: a plain device again.\n",
                    a.device.c_str());
      } else {
        std::printf(
            "Decryption of %s paused; its header is in %s. Continue with "
            "`volmgr conversion resume %s%s`.\n",
            a.device.c_str(), header.c_str(), a.device.c_str(),
            a.o.header_file.empty() ? "" : (" --header " + header).c_str());
      }
      return Status::Ok();
    }();
  });

  // ---- conversion pause|resume|status --------------------------------------
  auto* conv = app.add_subcommand(
      "conversion", "Pause, resume or show an in-place encryption/decryption");
  conv->require_subcommand(1);
  struct ConvArgs {
    std::string device, header, map;
    UnlockOptions unlock;
    bool background = false, json = false;
    int wait = 60;
    ProgressFlags progress;
  };
  auto ca = std::make_shared<ConvArgs>();
  auto* res = conv->add_subcommand(
      "resume",
      "Continue an interrupted conversion (after a pause, Ctrl-C, crash or "
      "power loss)");
  res->add_option("DEVICE", ca->device, "device")->required();
  res->add_option("--header", ca->header,
                  "the exported header of a decryption (default: the one "
                  "`volmgr decrypt` made)");
  res->add_option("--map", ca->map,
                  "convert online through /dev/mapper/NAME (mapped first if "
                  "needed)");
  res->add_flag("--background", ca->background,
                "continue in a background process");
  ca->unlock.AddTo(res);
  ca->progress.AddTo(res);
  res->footer(R"(
Examples:
  volmgr conversion resume /dev/sdb1 --key-file - < pass.txt
  volmgr conversion resume /dev/sdb1 --map data --background   # online
)");
  res->callback([ca, env] {
    env.result = [&]() -> Status {
      auto& a = *ca;
      VOLMGR_ASSIGN_OR_RETURN(volume::ConversionStatus st,
                              volume::GetConversionStatus(a.device, a.header));
      // A decryption set up but not begun (its header exported, the
      // device's erased, no reencryption yet: a cut right after the erase)
      // is not "in progress", but ResumeConversion puts its header back.
      const bool not_begun_decryption =
          !st.in_progress && !st.header.empty() && st.header != a.device;
      if (!st.in_progress && !not_begun_decryption) {
        return FailedPreconditionError("no conversion of " + a.device +
                                       " is in progress");
      }
      if (st.running) {
        return BusyError("the conversion of " + a.device +
                         " is running already");
      }
      if (st.cleanup_pending &&
          st.direction == volume::ConversionDirection::kDecrypt &&
          st.header != a.device) {
        // Decrypted already: only the header file is left to delete; no
        // key is needed (and its keyslots may be gone).
        ConversionOptions o;
        o.header_file = st.header;
        VOLMGR_ASSIGN_OR_RETURN(
            bool done, volume::ResumeConversion(a.device, SecretBytes(), o));
        if (done) {
          std::printf(
              "%s is decrypted (its leftover header file was "
              "removed).\n",
              a.device.c_str());
        }
        return Status::Ok();
      }
      // A decryption unlocks through the copy of its header taken before it
      // began (see DecryptUnlockHeaderPath).
      std::string keys = st.header;
      if (st.header != a.device &&
          access(volume::DecryptUnlockHeaderPath(st.header).c_str(), F_OK) ==
              0) {
        keys = volume::DecryptUnlockHeaderPath(st.header);
      }
      VOLMGR_ASSIGN_OR_RETURN(Volume vol, Volume::Load(keys));
      VOLMGR_ASSIGN_OR_RETURN(volume::UnlockResult u, Unlock(vol, a.unlock));
      ConversionOptions o;
      o.header_file = st.header == a.device ? "" : st.header;
      o.map_name = a.map;
      if (a.background) {
        const std::string dev = a.device;
        return RunInBackground(u.vmk, [&](const SecretBytes& k) {
          PauseOnSignal p;
          o.progress = [](const ConversionProgress&) {
            return g_pause_requested == 0;
          };
          return volume::ResumeConversion(dev, k, o).status();
        });
      }
      PauseOnSignal pause;
      ProgressPrinter printer = a.progress.Make(a.device);
      o.progress = [&](const ConversionProgress& p) { return printer(p); };
      VOLMGR_ASSIGN_OR_RETURN(bool done,
                              volume::ResumeConversion(a.device, u.vmk, o));
      printer.Finish();
      if (!printer.json) {  // --progress-json: stdout is JSON lines only
        std::printf("%s of %s %s.\n", DirectionWord(st.direction).c_str(),
                    a.device.c_str(), done ? "finished" : "paused");
      }
      return Status::Ok();
    }();
  });

  auto* pause_cmd = conv->add_subcommand(
      "pause", "Pause the running conversion of DEVICE (resume continues it)");
  pause_cmd->add_option("DEVICE", ca->device, "device")->required();
  pause_cmd->add_option("--header", ca->header,
                        "the exported header of a decryption");
  pause_cmd->add_option("--wait", ca->wait,
                        "seconds to wait for it to stop (default 60)");
  pause_cmd->callback([ca, env] {
    env.result = [&]() -> Status {
      VOLMGR_RETURN_IF_ERROR(
          volume::PauseConversion(ca->device, ca->header, ca->wait));
      auto st = volume::GetConversionStatus(ca->device, ca->header);
      std::printf("%s\n", st.ok() ? volume::ConversionStatusLine(*st).c_str()
                                  : "Conversion paused");
      return Status::Ok();
    }();
  });

  auto* show = conv->add_subcommand(
      "status", "Show the conversion state of DEVICE (also of a decryption)");
  show->add_option("DEVICE", ca->device, "device")->required();
  show->add_option("--header", ca->header,
                   "the exported header of a decryption");
  show->add_flag("--json", ca->json, "print JSON");
  show->callback([ca, env] {
    env.result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(
          volume::ConversionStatus st,
          volume::GetConversionStatus(ca->device, ca->header));
      if (ca->json) {
        std::cout << ConversionJson(ca->device, st).dump(2) << std::endl;
      } else if (!st.is_volume) {
        std::cout << ca->device
                  << " is not a volume (no LUKS2 header, no decryption in "
                     "progress): no conversion."
                  << std::endl;
      } else if (!st.in_progress && !st.header.empty() &&
                 st.header != ca->device) {
        std::cout << "A decryption of " << ca->device
                  << " was set up but had not begun: its header is in "
                  << st.header << "; `volmgr conversion resume " << ca->device
                  << "` puts it back." << std::endl;
      } else if (!st.in_progress) {
        std::cout << "No conversion of " << ca->device << " is in progress."
                  << std::endl;
      } else {
        std::cout << volume::ConversionStatusLine(st) << std::endl;
      }
      return Status::Ok();
    }();
  });
}

}  // namespace volmgr::cli
