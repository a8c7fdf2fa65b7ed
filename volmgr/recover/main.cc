// volmgr-recover: the admin tool for the day things went wrong. Reads a
// volume without device-mapper (extract, verify), keeps and uses key
// packages, checks and repairs LUKS2 headers.
//
// Like volmgr: secrets only from a no-echo prompt, --key-file or --key-fd
// (never argv or the environment); one error line and the exit code of its
// Status (the table in --help, docs/CLI.md).
#include <fcntl.h>
#include <libcryptsetup.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/secret_io.h"
#include "volmgr/base/terminal_text.h"
#include "volmgr/cli/app_main.h"
#include "volmgr/cli/credential_options.h"
#include "volmgr/cli/output.h"
#include "volmgr/cli/recovery_agent_options.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/cli/unlock_flow.h"
#include "volmgr/keys/recovery_password.h"
#include "volmgr/recover/bitlocker.h"
#include "volmgr/recover/data_io.h"
#include "volmgr/recover/data_proof.h"
#include "volmgr/recover/extract.h"
#include "volmgr/recover/fuse_mount.h"
#include "volmgr/recover/header_check.h"
#include "volmgr/recover/key_package.h"
#include "volmgr/recover/key_package_export.h"
#include "volmgr/recover/keyslot_check.h"
#include "volmgr/recover/rebuild.h"
#include "volmgr/recover/verify.h"
#include "volmgr/volume/luks_device.h"
#include "volmgr/volume/volume.h"
#include "volmgr/volume/volume_lock.h"
#include "volmgr/x509/public_key_wrap.h"

namespace volmgr::recover {
namespace {

using cli::SecretSource;
using Json = nlohmann::json;

constexpr const char* kExitCodes = R"(
Exit codes (as volmgr):
  0 success               6 wrong key (authentication failed)
  1 usage error           7 PIN required
  2 invalid argument      8 unavailable (no dm-crypt, TPM, HSM)
  3 not found             9 corruption (damaged header; check found damage)
  4 already exists       10 I/O error (unreadable sectors were zero-filled)
  5 failed precondition  11 busy (in use or locked by another volmgr)
                         12 unsupported      70 internal error
)";

constexpr const char* kExamples = R"(
Examples:
  volmgr-recover extract /dev/sdb --to sdb-plain.img     # prompts for a credential
  volmgr-recover extract disk.img --to plain.img --key-file - < pass.txt
  volmgr-recover extract disk.img --to plain.img --resume --key-file pass.txt
  volmgr-recover verify /dev/sdb --sample 1000 --startup-key /media/usb/KEY.BEK
  volmgr-recover verify /dev/sdb --key-package sdb.vkp    # checks its checksum
  volmgr-recover mount /dev/sdb /mnt/plain                 # /mnt/plain/plain.img
  e2fsck -n /mnt/plain/plain.img; fusermount3 -u /mnt/plain
  volmgr-recover mount disk.img /mnt/plain --key-package disk.vkp -f
  volmgr-recover keypackage export /dev/sdb --out sdb.vkp  # asks for the recovery password
  volmgr-recover keypackage show sdb.vkp
  volmgr-recover check /dev/sdb
  volmgr-recover restore /dev/sdb                         # from the intact copy
  volmgr-recover restore /dev/sdb --from sdb-header.img
  volmgr-recover rebuild /dev/sdb --key-package sdb.vkp --dry-run
  volmgr-recover bitlk-dump /dev/sda3 --key-file rp.txt   # BitLocker: check offline
  volmgr-recover bitlk-open /dev/sda3 win --key-file rp.txt  # /dev/mapper/win, ro
)";

// The credential options of `volmgr open`, plus --agent-key and
// --availability-key (cli/recovery_agent_options.h).
using UnlockOptions = cli::RecoveryAgentOptions;

// An unlocked data segment: where it is and its key.
struct Unlocked {
  DataSegment segment;
  SecretBytes fvek;
  std::string how;  // "recovery password 1234abcd", for messages
  std::optional<protectors::ProtectorRecord> used;
};

// volmgr volumes: any protector. A LUKS2 volume without volmgr tokens
// (stock cryptsetup): its passphrase through any keyslot.
StatusOr<Unlocked> UnlockDevice(const std::string& device, UnlockOptions& o) {
  auto vol = volume::Volume::Load(device);
  if (!vol.ok() && vol.status().code() == StatusCode::kFailedPrecondition) {
    auto luks = volume::LuksDevice::Load(device);
    if (!luks.ok()) {
      if (luks.status().message().find("holds no LUKS header") !=
          std::string::npos) {
        // Maybe Windows BitLocker: say so precisely.
        if (IsBitlocker(device)) {
          return UnsupportedError(
              device +
              " is a BitLocker volume: volmgr-recover cannot decrypt "
              "BitLocker's layout in userspace (libcryptsetup does not expose "
              "it). Check a credential offline with `volmgr-recover "
              "bitlk-dump " +
              device +
              " --key-file F`; read the data through a read-only dm-crypt "
              "mapping, `volmgr-recover bitlk-open " +
              device + " NAME` (needs device-mapper)");
        }
        return FailedPreconditionError(device +
                                       " holds neither a LUKS2 header nor a "
                                       "BitLocker volume (see `volmgr-recover "
                                       "check`)");
      }
      return luks.status();
    }
    VOLMGR_ASSIGN_OR_RETURN(DataSegment seg, DescribeSegment(*luks));
    VOLMGR_ASSIGN_OR_RETURN(
        SecretBytes secret,
        cli::ReadSecret(o.key, "Passphrase for " + device + " (LUKS2): "));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek,
                            luks->GetVolumeKey(CRYPT_ANY_SLOT, secret));
    return Unlocked{std::move(seg), std::move(fvek), "a LUKS2 keyslot", {}};
  }
  if (!vol.ok()) return vol.status();
  for (const auto& w : vol->warnings()) {
    std::fprintf(stderr, "volmgr-recover: warning: %s\n",
                 TerminalSafe(w).c_str());
  }
  VOLMGR_ASSIGN_OR_RETURN(DataSegment seg, DescribeSegment(vol->luks()));
  protectors::Credentials creds;
  creds.startup_key_files = o.startup_keys;
  if (!o.recovery_id.empty()) creds.recovery_id = o.recovery_id;
  std::optional<StatusOr<volume::UnlockResult>> r;
  if (o.any()) {
    VOLMGR_RETURN_IF_ERROR(o.Fill(*vol, creds));
    std::vector<volume::UnlockFailure> failures;
    r = vol->Unlock(creds, &failures);
    if (!r->ok()) cli::RecoveryAgentOptions::Report(failures);
  } else if (!creds.startup_key_files.empty() && !o.key.has()) {
    r = vol->Unlock(creds);
    if (!r->ok() && cli::CanPrompt()) r.reset();
  }
  if (!r) {
    if (!o.key.has() && !cli::CanPrompt()) {
      return FailedPreconditionError(
          "no credential given and no terminal to ask on: pass --key-file, "
          "--key-fd or --startup-key");
    }
    std::string prompt = "Passphrase or recovery password for " + device;
    if (creds.recovery_id) {
      prompt = "Recovery password for " + device + " (ID " +
               *creds.recovery_id + ")";
    }
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret,
                            cli::ReadSecret(o.key, prompt + ": "));
    creds.secrets.push_back(std::move(secret));
    r = vol->Unlock(creds);
  }
  if (!r->ok()) return r->status();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek, vol->ReadFvek((*r)->vmk));
  const auto* h = protectors::FindHandler((*r)->used.kind);
  Unlocked u{std::move(seg), std::move(fvek),
             (h ? h->DisplayNameOf((*r)->used) : "protector") + " " +
                 (*r)->used.id.substr(0, 8),
             (*r)->used};
  return u;
}

// A progress line on stderr, only when it is a terminal.
class Progress {
 public:
  Progress(bool enabled, std::string what)
      : enabled_(enabled && isatty(STDERR_FILENO)), what_(std::move(what)) {}
  void Update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    if (first_done_ == UINT64_MAX) {
      first_done_ = done;
      start_ = now;
    }
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done - first_done_) / secs : 0;
    double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    std::fprintf(
        stderr, "\r%s %5.1f%%  %llu/%llu MiB  %.0f MiB/s  ETA %d:%02d  ",
        what_.c_str(),
        total ? 100.0 * static_cast<double>(done) / static_cast<double>(total)
              : 100.0,
        static_cast<unsigned long long>(done >> 20),
        static_cast<unsigned long long>(total >> 20), rate / 1048576,
        static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    if (done >= total) std::fprintf(stderr, "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::string what_;
  Clock::time_point last_{}, start_{};
  uint64_t first_done_ = UINT64_MAX;
};

Status ReportUnreadable(const DataSegment& seg,
                        const std::vector<ByteRange>& bad) {
  if (bad.empty()) return Status::Ok();
  uint64_t bytes = 0;
  for (const auto& r : bad) {
    bytes += r.end - r.begin;
    std::fprintf(stderr, "volmgr-recover: unreadable: %s\n",
                 DescribeRange(seg, r).c_str());
  }
  return IoError(std::to_string(bad.size()) + " unreadable range(s), " +
                 std::to_string(bytes) +
                 " bytes in all, written as zeros; "
                 "everything else was decrypted");
}

StatusOr<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoToStatus(errno, "opening " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string TimeText(int64_t unix) {
  std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json CopyJson(const HeaderCopyReport& c) {
  if (c.version == 1) {  // LUKS1: no seqid, hdr_size, checksum or JSON
    return {{"offset", c.offset},   {"magic_ok", c.magic_ok},
            {"version", c.version}, {"hash_spec", c.checksum_alg},
            {"uuid", c.uuid},       {"keyslots", c.keyslots},
            {"ok", c.ok()},         {"problems", c.problems}};
  }
  return {{"offset", c.offset},
          {"magic_ok", c.magic_ok},
          {"version", c.version},
          {"hdr_size", c.hdr_size},
          {"seqid", c.seqid},
          {"checksum_alg", c.checksum_alg},
          {"checksum_ok", c.checksum_ok},
          {"json_ok", c.json_ok},
          {"uuid", c.uuid},
          {"label", c.label},
          {"keyslots", c.keyslots},
          {"volmgr_tokens", c.volmgr_tokens},
          {"volume_token", c.volume_token},
          {"ok", c.ok()},
          {"problems", c.problems}};
}

void PrintCopy(const HeaderCopyReport& c) {
  std::printf("%s header copy at offset %llu: %s\n", c.name.c_str(),
              static_cast<unsigned long long>(c.offset),
              c.ok() ? "OK" : "DAMAGED");
  if (c.magic_ok && c.version == 1) {
    std::printf("  LUKS1, UUID %s, %d active keyslot(s) of 8\n", c.uuid.c_str(),
                c.keyslots);
  }
  if (c.magic_ok && c.version == 2) {
    std::printf(
        "  seqid %llu, hdr_size %llu, %s checksum %s, JSON %s, UUID %s\n",
        static_cast<unsigned long long>(c.seqid),
        static_cast<unsigned long long>(c.hdr_size),
        TerminalSafe(c.checksum_alg).c_str(), c.checksum_ok ? "ok" : "BAD",
        c.json_ok ? "ok" : "BAD", TerminalSafe(c.uuid).c_str());
    if (c.json_ok) {
      std::printf("  %d keyslot(s), %d volmgr token(s)%s\n", c.keyslots,
                  c.volmgr_tokens,
                  c.volume_token ? " incl. volmgr-volume" : "");
    }
  }
  for (const auto& p : c.problems) {
    std::printf("  problem: %s\n", TerminalSafe(p).c_str());
  }
}

// Reads and parses a recovery password for a key package.
StatusOr<keys::RecoveryPassword> ReadRecoveryPassword(
    const SecretSource& src, const std::string& prompt) {
  if (!src.has() && !cli::CanPrompt()) {
    return FailedPreconditionError(
        "no recovery password given and no terminal to ask on: pass "
        "--key-file or --key-fd");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes text, cli::ReadSecret(src, prompt));
  return keys::RecoveryPassword::Parse(text);
}

// Opens a key package: with the agent key(s) (PEM files) when it is sealed
// to a recovery agent certificate, else with its recovery password from
// `key` or a prompt.
// The recovery password read goes to *rp_out when given.
StatusOr<KeyPackageSecret> OpenPackage(
    std::span<const uint8_t> f, const KeyPackageHeader& h,
    const SecretSource& key, const std::vector<std::string>& agents,
    std::optional<keys::RecoveryPassword>* rp_out = nullptr) {
  if (h.sealer == KeyPackageSealer::kRecoveryPassword) {
    VOLMGR_ASSIGN_OR_RETURN(
        keys::RecoveryPassword rp,
        ReadRecoveryPassword(
            key, "Recovery password " + h.recovery_id.ToString() + ": "));
    auto s = OpenKeyPackage(f, rp);
    if (rp_out != nullptr) rp_out->emplace(std::move(rp));
    return s;
  }
  if (agents.empty()) {
    return FailedPreconditionError(
        "this key package is sealed to the recovery agent certificate " +
        h.cert_subject + " (SHA-256 " + h.cert_sha256.substr(0, 16) +
        "...): pass --agent-key AGENT.pem");
  }
  Status last = Status::Ok();
  for (const std::string& ref : agents) {
    if (ref.rfind("pkcs11:", 0) == 0) {
      last = UnsupportedError(
          "key packages open with an agent key in a PEM file; a key in a "
          "PKCS#11 token (" +
          ref + ") opens the volume's certificate protector instead");
      continue;
    }
    VOLMGR_ASSIGN_OR_RETURN(x509::PemPrivateKey pem,
                            x509::PemPrivateKey::Load(ref));
    auto s = OpenKeyPackageWithAgent(f, pem);
    if (s.ok() || s.status().code() != StatusCode::kAuthFailed) return s;
    last = s.status();
  }
  return last;
}

// Unlocks with a key package (and its recovery password, from `key` or a
// prompt) instead of the header, which may be destroyed. Refuses a package
// of another volume (naming it) when a header copy still names this
// device's volume. With `prove_data`, the first data bytes must decrypt to
// the package's checksum (RequireDataProof, data_proof.h): the proof that
// DEVICE holds that volume. The package's checksum is copied to *check when
// given.
struct PackageCheck {
  uint32_t bytes = 0;
  std::array<uint8_t, 32> sha256{};
};
StatusOr<Unlocked> UnlockWithKeyPackage(const std::string& device,
                                        const std::string& package,
                                        const UnlockOptions& creds,
                                        bool prove_data,
                                        PackageCheck* check = nullptr) {
  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> f, ReadFile(package));
  VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
  const std::string pkg_uuid = h.volume_uuid.ToString();
  const std::string whose =
      "volume " + pkg_uuid +
      (h.label.empty() ? "" : " (label \"" + h.label + "\")");
  VOLMGR_ASSIGN_OR_RETURN(HeaderReport rep, CheckHeader(device));
  for (const HeaderCopyReport* c : {&rep.primary, &rep.secondary}) {
    if (c->magic_ok && !c->uuid.empty() && c->uuid != pkg_uuid) {
      return FailedPreconditionError(
          "the key package " + package + " is for " + whose + ", but the " +
          c->name + " header of " + device + " names volume " + c->uuid);
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(KeyPackageSecret s,
                          OpenPackage(f, h, creds.key, creds.agent_keys));
  DataSegment seg{
      pkg_uuid,        h.label,    s.cipher, s.sector_size, s.data_offset_bytes,
      s.payload_bytes, s.iv_offset};
  if (check != nullptr) *check = {s.check_bytes, s.check_sha256};
  if (prove_data) {
    VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                            SegmentReader::Open(device, seg));
    VOLMGR_RETURN_IF_ERROR(RequireDataProof(device, whose, reader, s.fvek,
                                            s.check_bytes, s.check_sha256,
                                            /*force=*/false, "")
                               .status());
  }
  const std::string sealer =
      h.sealer == KeyPackageSealer::kCertificate
          ? "agent certificate " + h.cert_sha256.substr(0, 8)
          : "recovery password " + h.recovery_id.ToString().substr(0, 8);
  return Unlocked{std::move(seg),
                  std::move(s.fvek),
                  "key package " + package + " (" + sealer + ")",
                  {}};
}

unsigned DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

int Run(int argc, char** argv) {
  CLI::App app{
      "volmgr-recover: recover volmgr (LUKS2) volumes without device-mapper: "
      "extract, verify, key packages, header check / restore / rebuild."};
  app.footer(std::string(kExamples) + kExitCodes);
  app.require_subcommand(1);
  app.set_version_flag("--version", "volmgr-recover 0.1.0");
  std::optional<Status> result;
  std::string device;

  // ---- extract -----------------------------------------------------------
  auto* ex = app.add_subcommand(
      "extract",
      "Decrypt the whole volume into a plaintext image (no dm-crypt "
      "needed)");
  UnlockOptions ex_unlock;
  ExtractOptions ex_opts;
  ex_opts.threads = DefaultThreads();
  bool ex_quiet = false, ex_no_sparse = false;
  size_t chunk_mib = kDefaultChunkBytes >> 20;
  ex->add_option("DEVICE", device, "volume device or image")->required();
  ex->add_option("--to", ex_opts.output,
                 "plaintext output: new file or block "
                 "device")
      ->required();
  ex->add_option("--threads", ex_opts.threads,
                 "decryption threads (default: "
                 "number of CPUs)")
      ->check(CLI::Range(1, 64));
  ex->add_option("--chunk-mib", chunk_mib, "I/O size in MiB (default 8)")
      ->check(CLI::Range(1, 256));
  ex->add_option("--checkpoint-interval", ex_opts.checkpoint_seconds,
                 "seconds between resume checkpoints (default 2; 0: every "
                 "chunk)");
  ex->add_flag("--resume", ex_opts.resume,
               "continue an interrupted extract into the same output");
  ex->add_flag("--force", ex_opts.force, "overwrite an existing output file");
  ex->add_flag("--no-sparse", ex_no_sparse,
               "write all-zero chunks instead of leaving holes");
  ex->add_flag("--quiet,-q", ex_quiet, "no progress line");
  ex_unlock.AddTo(ex);
  ex->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      VOLMGR_ASSIGN_OR_RETURN(Unlocked u, UnlockDevice(device, ex_unlock));
      VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                              SegmentReader::Open(device, u.segment));
      Progress progress(!ex_quiet, "extract");
      ex_opts.chunk_bytes = chunk_mib << 20;
      ex_opts.sparse = !ex_no_sparse;
      ex_opts.progress = [&](uint64_t d, uint64_t t) { progress.Update(d, t); };
      auto t0 = std::chrono::steady_clock::now();
      VOLMGR_ASSIGN_OR_RETURN(ExtractResult r,
                              Extract(reader, u.fvek, ex_opts));
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      if (!ex_quiet) {
        std::fprintf(
            stderr,
            "Extracted %llu bytes of volume %s (unlocked with %s) to "
            "%s%s in %.1f s (%.0f MiB/s).\n",
            static_cast<unsigned long long>(r.total_bytes),
            u.segment.uuid.c_str(), u.how.c_str(), ex_opts.output.c_str(),
            r.resumed_from
                ? (", resumed at byte " + std::to_string(r.resumed_from))
                      .c_str()
                : "",
            secs,
            static_cast<double>(r.total_bytes - r.resumed_from) / 1048576 /
                (secs > 0 ? secs : 1));
      }
      return ReportUnreadable(u.segment, r.unreadable);
    }();
  });

  // ---- verify ------------------------------------------------------------
  auto* vf = app.add_subcommand(
      "verify",
      "Decrypt a sample (or all) sectors: filesystem signature and "
      "unreadable ranges");
  UnlockOptions vf_unlock;
  VerifyOptions vf_opts;
  vf_opts.threads = DefaultThreads();
  bool vf_json = false;
  std::string vf_pkg;
  vf->add_option("DEVICE", device, "volume device or image")->required();
  vf->add_option("--key-package", vf_pkg,
                 "unlock with this key package and its recovery password "
                 "instead of the header, and check the package's checksum "
                 "of the first data bytes");
  vf->add_option("--sample", vf_opts.samples,
                 "sectors to read, evenly spread (default 256)");
  vf->add_flag("--all", vf_opts.all, "read and decrypt every sector");
  vf->add_option("--threads", vf_opts.threads, "decryption threads")
      ->check(CLI::Range(1, 64));
  vf->add_flag("--json", vf_json, "print JSON");
  vf_unlock.AddTo(vf);
  vf->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      std::optional<StatusOr<Unlocked>> unlocked;
      PackageCheck pkg_check;
      if (vf_pkg.empty()) {
        unlocked = UnlockDevice(device, vf_unlock);
      } else {
        unlocked =
            UnlockWithKeyPackage(device, vf_pkg, vf_unlock, false, &pkg_check);
      }
      if (!unlocked->ok()) return unlocked->status();
      Unlocked u = std::move(**unlocked);
      VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                              SegmentReader::Open(device, u.segment));
      Progress progress(!vf_json, "verify");
      vf_opts.progress = [&](uint64_t d, uint64_t t) { progress.Update(d, t); };
      VOLMGR_ASSIGN_OR_RETURN(VerifyResult r, Verify(reader, u.fvek, vf_opts));
      // The package's checksum: "match", "differs" or "unreadable".
      std::string pkg_result;
      Status pkg_status;
      if (!vf_pkg.empty()) {
        auto proof =
            ProveData(reader, u.fvek, pkg_check.bytes, pkg_check.sha256);
        if (!proof.ok()) {
          pkg_result = "unreadable";
          pkg_status = proof.status().WithContext(
              "the key package's checksum cannot be checked");
        } else if (proof->result == DataProof::kBlank) {
          // Would "match" under any volume's package made over blank data.
          pkg_result = "blank";
          pkg_status = FailedPreconditionError(
              BlankDataMessage(device, *proof) +
              " (the key package's checksum proves nothing here)");
        } else if (proof->result == DataProof::kDiffers) {
          pkg_result = "differs";
          pkg_status = CorruptionError(
              "the first " + std::to_string(pkg_check.bytes) +
              " decrypted data bytes differ from the key package's checksum: "
              "the data changed since the package was made (a mounted "
              "filesystem rewrites its superblock), or this is not its "
              "volume's data");
        } else {
          pkg_result = "match";
        }
      }
      if (vf_json) {
        Json bad = Json::array();
        for (const auto& b : r.unreadable) {
          bad.push_back(
              {{"first_sector", b.begin / u.segment.sector_size},
               {"last_sector", (b.end - 1) / u.segment.sector_size},
               {"device_offset", u.segment.data_offset_bytes + b.begin},
               {"bytes", b.end - b.begin}});
        }
        std::cout << Json{{"device", device},
                          {"uuid", u.segment.uuid},
                          {"filesystem", r.fs_type},
                          {"filesystem_uuid", r.fs_uuid},
                          {"filesystem_size_bytes", r.fs_size_bytes
                                                        ? Json(r.fs_size_bytes)
                                                        : Json(nullptr)},
                          {"filesystem_fits",
                           r.fs_size_bytes ? Json(r.fs_size_bytes <=
                                                  u.segment.payload_bytes)
                                           : Json(nullptr)},
                          {"sectors_checked", r.sectors_checked},
                          {"unreadable", bad},
                          {"key_package_checksum",
                           vf_pkg.empty() ? Json(nullptr) : Json(pkg_result)}}
                         .dump(2)
                  << std::endl;
      } else {
        std::printf("Volume %s: %llu sector(s) of %u bytes decrypted.\n",
                    u.segment.uuid.c_str(),
                    static_cast<unsigned long long>(r.sectors_checked),
                    u.segment.sector_size);
        if (!r.fs_type.empty()) {
          std::printf("Filesystem: %s (UUID %s)\n", r.fs_type.c_str(),
                      r.fs_uuid.c_str());
        }
        if (r.fs_size_bytes != 0) {
          std::printf("Filesystem size: %llu bytes; data segment: %llu bytes\n",
                      static_cast<unsigned long long>(r.fs_size_bytes),
                      static_cast<unsigned long long>(u.segment.payload_bytes));
        }
        if (!vf_pkg.empty()) {
          std::printf("Key package checksum of the first %u bytes: %s\n",
                      pkg_check.bytes, pkg_result.c_str());
        }
      }
      VOLMGR_RETURN_IF_ERROR(ReportUnreadable(u.segment, r.unreadable));
      VOLMGR_RETURN_IF_ERROR(pkg_status);
      VOLMGR_RETURN_IF_ERROR(CheckFilesystemFits(r, u.segment.payload_bytes));
      // The package's checksum is the check asked for; a filesystem
      // signature is then only information.
      if (r.fs_type.empty() && vf_pkg.empty()) {
        return NotFoundError(
            "no filesystem signature at the start of the "
            "decrypted data (the key is right: LUKS proved "
            "it; the volume may hold no filesystem, or its "
            "start is damaged)");
      }
      return Status::Ok();
    }();
  });

  // ---- mount -------------------------------------------------------------
  auto* mt = app.add_subcommand(
      "mount",
      "Mount the plaintext block device read-only through FUSE, as "
      "MOUNTPOINT/plain.img (no dm-crypt needed)");
  UnlockOptions mt_unlock;
  FuseMountOptions mt_opts;
  mt_opts.threads = DefaultThreads();
  std::string mt_pkg;
  mt->add_option("DEVICE", device, "volume device or image")->required();
  mt->add_option("MOUNTPOINT", mt_opts.mountpoint, "existing directory")
      ->required();
  mt->add_flag("--foreground,-f", mt_opts.foreground,
               "serve in the foreground until unmounted or Ctrl-C (default: "
               "detach once mounted)");
  mt->add_option("--threads", mt_opts.threads, "decryption threads")
      ->check(CLI::Range(1, 64));
  mt->add_option("--key-package", mt_pkg,
                 "unlock with this key package and its recovery password "
                 "(--key-file, --key-fd or prompt) instead of the header");
  mt_unlock.AddTo(mt);
  mt->footer(
      "\nThe mount holds one file, plain.img: the volume's plaintext, "
      "byte-identical to /dev/mapper/NAME. Unmount with `fusermount3 -u "
      "MOUNTPOINT`. Reads of unreadable sectors fail with EIO; writes with "
      "EROFS.\nExamples:\n  volmgr-recover mount /dev/sdb /mnt/plain "
      "--key-file pass.txt\n  debugfs -R 'ls -l /' /mnt/plain/plain.img\n"
      "  fusermount3 -u /mnt/plain\n");
  mt->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      // Before any secret is asked for.
      VOLMGR_RETURN_IF_ERROR(CheckMountpoint(mt_opts.mountpoint));
      if (char* abs = realpath(mt_opts.mountpoint.c_str(), nullptr)) {
        mt_opts.mountpoint = abs;
        std::free(abs);
      }
      // Filled in by the unlock, which runs in the serving process.
      std::string uuid, how;
      uint64_t payload = 0;
      auto unlock = [&]() -> StatusOr<PlaintextSource> {
        std::optional<StatusOr<Unlocked>> unlocked;
        if (mt_pkg.empty()) {
          unlocked = UnlockDevice(device, mt_unlock);
        } else {
          unlocked = UnlockWithKeyPackage(device, mt_pkg, mt_unlock, true);
        }
        if (!unlocked->ok()) return unlocked->status();
        Unlocked& u = **unlocked;
        uuid = u.segment.uuid;
        how = u.how;
        payload = u.segment.payload_bytes;
        VOLMGR_ASSIGN_OR_RETURN(SegmentReader reader,
                                SegmentReader::Open(device, u.segment));
        return PlaintextSource{std::move(reader), std::move(u.fvek)};
      };
      const std::string file =
          mt_opts.mountpoint + "/" + std::string(kPlainFileName);
      mt_opts.on_mounted = [&] {
        std::printf(
            "Mounted the plaintext of volume %s (unlocked with %s) "
            "read-only as %s (%llu bytes).\n%s`fusermount3 -u %s` "
            "unmounts it.\n",
            uuid.c_str(), how.c_str(), file.c_str(),
            static_cast<unsigned long long>(payload),
            mt_opts.foreground ? "Serving in the foreground; Ctrl-C or " : "",
            mt_opts.mountpoint.c_str());
        std::fflush(stdout);
      };
      mt_opts.on_read_error = [](const Status& s) {
        std::fprintf(stderr, "volmgr-recover: read error: %s\n",
                     s.message().c_str());
      };
      return ServePlaintext(unlock, mt_opts);
    }();
  });

  // ---- bitlk-dump|open|close (Windows BitLocker) ---------------------------
  // Credentials: password or recovery password (--key-file, --key-fd,
  // prompt) or a startup key file (--startup-key KEY.BEK).
  struct BitlkCreds {
    SecretSource key;
    std::string startup_key;
    void AddTo(CLI::App* cmd) {
      cmd->add_option("--key-file", key.file,
                      "read the password or recovery password from FILE "
                      "('-' = stdin)");
      cmd->add_option("--key-fd", key.fd,
                      "read the password or recovery password from "
                      "descriptor N");
      cmd->add_option("--startup-key", startup_key,
                      "a BitLocker startup key file (.BEK)");
    }
    bool given() const { return key.has() || !startup_key.empty(); }
    StatusOr<SecretBytes> Read(const std::string& dev) const {
      if (!startup_key.empty()) return ReadSecretFile(startup_key, 64 << 10);
      if (!key.has() && !cli::CanPrompt()) {
        return FailedPreconditionError(
            "no credential given and no terminal to ask on: pass --key-file, "
            "--key-fd or --startup-key");
      }
      return cli::ReadSecret(key,
                             "BitLocker password or recovery password "
                             "for " +
                                 dev + ": ");
    }
  };
  constexpr const char* kBitlkNote =
      "\nBitLocker protectors that work: password, recovery password, "
      "startup key (.BEK). Not supported (libcryptsetup cannot use them): "
      "TPM, TPM+PIN, TPM+startup key, smart card, network unlock; use the "
      "recovery password (Windows: `manage-bde -protectors -get C:`).\n";
  auto* bd = app.add_subcommand(
      "bitlk-dump",
      "Describe a Windows BitLocker volume; with a credential, prove it "
      "opens the volume (offline, no device-mapper)");
  BitlkCreds bd_creds;
  bool bd_json = false;
  bd->add_option("DEVICE", device, "BitLocker volume or image")->required();
  bd_creds.AddTo(bd);
  bd->add_flag("--json", bd_json, "print JSON");
  bd->footer(std::string(kBitlkNote) +
             "Example:\n  volmgr-recover bitlk-dump /dev/sda3 --key-file "
             "recovery.txt\n");
  bd->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      // Without a credential, libcryptsetup's activation check is asked with
      // an empty passphrase; with one, the credential's own test activation
      // answers both questions in one KDF pass.
      VOLMGR_ASSIGN_OR_RETURN(BitlockerInfo info,
                              InspectBitlocker(device, !bd_creds.given()));
      // "opens the volume" only when the credential is right AND
      // libcryptsetup would activate the volume; a right credential for a
      // volume it will not activate is "correct", and the exit code 12.
      std::string credential = "not checked";
      Status verdict;
      if (bd_creds.given()) {
        if (info.clear_key_only()) {
          credential = "not usable (clear key only)";
          verdict = NotActivatableError(device, info);
        } else {
          VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret, bd_creds.Read(device));
          VOLMGR_ASSIGN_OR_RETURN(CredentialCheck c,
                                  CheckBitlockerCredential(device, secret));
          info.activatable = c.activatable;
          info.activation_problem = c.activation_problem;
          if (info.activatable) {
            credential = "opens the volume";
          } else {
            credential = "correct";
            verdict = NotActivatableError(device, info);
          }
        }
      }
      std::string protectors;
      for (const auto& p : info.protectors) {
        protectors += (protectors.empty() ? "" : ", ") + p;
      }
      if (bd_json) {
        std::cout << Json{{"device", device},
                          {"type", "BitLocker"},
                          {"guid", info.guid},
                          {"cipher", info.cipher},
                          {"volume_key_bits", info.volume_key_bits},
                          {"device_bytes", info.device_bytes},
                          {"protectors", info.protectors},
                          {"activatable", info.activatable},
                          {"activation_problem",
                           info.activation_problem.empty()
                               ? Json(nullptr)
                               : Json(info.activation_problem)},
                          {"credential", credential}}
                         .dump(2)
                  << std::endl;
        return verdict;
      }
      std::printf(
          "BitLocker volume %s\n  GUID:        %s\n  Cipher:      %s, "
          "%d-bit key\n  Size:        %llu bytes\n  Protectors:  %s\n"
          "  Activation:  %s%s\n  Credential:  %s\n",
          device.c_str(), info.guid.c_str(), info.cipher.c_str(),
          info.volume_key_bits,
          static_cast<unsigned long long>(info.device_bytes),
          protectors.empty() ? "none" : protectors.c_str(),
          info.activatable ? "possible" : "not possible: libcryptsetup says ",
          info.activatable ? "" : info.activation_problem.c_str(),
          credential.c_str());
      return verdict;
    }();
  });
  auto* bo = app.add_subcommand(
      "bitlk-open",
      "Open a Windows BitLocker volume read-only as /dev/mapper/NAME "
      "(dm-crypt through libcryptsetup)");
  BitlkCreds bo_creds;
  std::string bo_name;
  bo->add_option("DEVICE", device, "BitLocker volume or image")->required();
  bo->add_option("NAME", bo_name, "mapping name")->required();
  bo_creds.AddTo(bo);
  bo->footer(std::string(kBitlkNote) +
             "Extract a BitLocker volume through the mapping:\n"
             "  volmgr-recover bitlk-open /dev/sda3 win --key-file rp.txt\n"
             "  dd if=/dev/mapper/win of=win-plain.img bs=8M\n"
             "  volmgr-recover bitlk-close win\n");
  bo->callback([&] {
    result = [&]() -> Status {
      // Before a credential is asked for: none helps a volume libcryptsetup
      // will not activate, and a clear-key-only one has none to give.
      // (Probed only when free: OpenBitlocker's own activation answers it
      // with the credential, in one KDF pass.)
      VOLMGR_ASSIGN_OR_RETURN(BitlockerInfo info,
                              InspectBitlocker(device, false));
      if (!info.activatable || info.clear_key_only()) {
        return NotActivatableError(device, info);
      }
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret, bo_creds.Read(device));
      VOLMGR_RETURN_IF_ERROR(OpenBitlocker(device, bo_name, secret));
      std::printf("Opened BitLocker volume %s read-only as /dev/mapper/%s.\n",
                  device.c_str(), bo_name.c_str());
      return Status::Ok();
    }();
  });
  auto* bc =
      app.add_subcommand("bitlk-close", "Remove a mapping made by bitlk-open");
  std::string bc_name;
  bc->add_option("NAME", bc_name, "mapping name")->required();
  bc->callback([&] { result = CloseBitlocker(bc_name); });

  // ---- keypackage export|show -------------------------------------------
  auto* kp = app.add_subcommand("keypackage", "Key packages: export, show");
  kp->require_subcommand(1);
  auto* kpe = kp->add_subcommand(
      "export",
      "Write a key package for DEVICE, sealed under its recovery "
      "password (which also unlocks)");
  std::string kp_out;
  SecretSource kp_key;
  std::string kp_rid;
  kpe->add_option("DEVICE", device, "volume")->required();
  kpe->add_option("--out", kp_out, "new key package file")->required();
  kpe->add_option("--key-file", kp_key.file,
                  "read the recovery password from FILE ('-' = stdin)");
  kpe->add_option("--key-fd", kp_key.fd,
                  "read the recovery password from descriptor N");
  kpe->add_option("--recovery-id", kp_rid,
                  "which recovery password (if the volume has several)");
  kpe->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      if (access(kp_out.c_str(), F_OK) == 0) {
        return AlreadyExistsError(kp_out +
                                  " exists; volmgr-recover never "
                                  "overwrites a key package");
      }
      if (!kp_key.has() && !cli::CanPrompt()) {
        return FailedPreconditionError(
            "no recovery password given and no terminal to ask on: pass "
            "--key-file or --key-fd");
      }
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes typed,
          cli::ReadSecret(kp_key, "Recovery password for " + device + ": "));
      VOLMGR_ASSIGN_OR_RETURN(
          ExportedKeyPackage pkg,
          ExportKeyPackage(device, std::move(typed), kp_rid));
      VOLMGR_RETURN_IF_ERROR(WriteKeyPackage(kp_out, pkg.file));
      if (pkg.data_blank) {
        std::fprintf(stderr,
                     "volmgr-recover: warning: the first data bytes of %s "
                     "are blank (never written, or discarded): this "
                     "package's checksum cannot prove that a device holds "
                     "this volume, so a rebuild from it will need --force; "
                     "export again once the volume holds data\n",
                     device.c_str());
      }
      std::printf(
          "Key package for volume %s written to %s.\nIt opens with "
          "recovery password %s; together they decrypt the whole "
          "volume: store it apart from the password.\n",
          pkg.volume_uuid.c_str(), kp_out.c_str(), pkg.recovery_id.c_str());
      return Status::Ok();
    }();
  });
  auto* kps =
      kp->add_subcommand("show", "Print a key package's clear metadata");
  std::string kp_file;
  bool kps_json = false;
  kps->add_option("FILE", kp_file, "key package")->required();
  kps->add_flag("--json", kps_json, "print JSON");
  kps->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();  // read-only: never repair
      VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> f, ReadFile(kp_file));
      VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
      const bool agent = h.sealer == KeyPackageSealer::kCertificate;
      if (kps_json) {
        Json j{{"format", "volmgr key package"},
               {"version", h.version},
               {"volume_uuid", h.volume_uuid.ToString()},
               {"label", h.label},
               {"sealed_to", agent ? "certificate" : "recovery-password"},
               {"created", TimeText(h.created_unix)}};
        if (agent) {
          j["certificate_sha256"] = h.cert_sha256;
          j["certificate_subject"] = h.cert_subject;
          j["algorithm"] = x509::AlgorithmName(h.encapsulation.algorithm);
        } else {
          j["recovery_id"] = h.recovery_id.ToString();
        }
        std::cout << cli::JsonText(j) << std::endl;
        return Status::Ok();
      }
      std::printf(
          "volmgr key package, version %u\n  Volume UUID:   %s\n"
          "  Label:         %s\n",
          h.version, h.volume_uuid.ToString().c_str(),
          TerminalSafe(h.label).c_str());
      if (agent) {
        std::printf(
            "  Agent cert:    %s\n  Cert SHA-256:  %s\n"
            "  Algorithm:     %s\n",
            TerminalSafe(h.cert_subject).c_str(),
            TerminalSafe(h.cert_sha256).c_str(),
            std::string(x509::AlgorithmName(h.encapsulation.algorithm))
                .c_str());
      } else {
        std::printf("  Recovery ID:   %s\n", h.recovery_id.ToString().c_str());
      }
      std::printf(
          "  Created:       %s\n  (FVEK, geometry and data checksum are "
          "sealed under the %s)\n",
          TimeText(h.created_unix).c_str(),
          agent ? "agent certificate's public key" : "recovery password");
      return Status::Ok();
    }();
  });

  // ---- check -------------------------------------------------------------
  auto* ck = app.add_subcommand(
      "check",
      "Report the health of both LUKS2 header copies and the keyslot areas "
      "(read-only); with a credential, prove the keyslots stock cryptsetup "
      "uses");
  bool ck_json = false;
  SecretSource ck_key;
  ck->add_option("DEVICE", device, "volume")->required();
  ck->add_option("--key-file", ck_key.file,
                 "a passphrase or recovery password from FILE ('-' = stdin): "
                 "prove the keyslots it opens");
  ck->add_option("--key-fd", ck_key.fd, "the same from descriptor N");
  ck->add_flag("--json", ck_json, "print JSON");
  ck->callback([&] {
    result = [&]() -> Status {
      DisableHeaderAutoRepair();
      VOLMGR_ASSIGN_OR_RETURN(HeaderReport rep, CheckHeader(device));
      if (rep.format == HeaderFormat::kNone && IsBitlocker(device)) {
        return UnsupportedError(device +
                                " is a BitLocker volume, not LUKS: "
                                "`volmgr-recover bitlk-dump " +
                                device + "` describes it");
      }
      // The keyslots, with a credential (keyslot_check.h). A random
      // overwrite of a keyslot area looks like key material: only a
      // credential that must open it tells.
      std::optional<KeyslotCheckReport> slots;
      Status slots_status;
      if (ck_key.has()) {
        VOLMGR_ASSIGN_OR_RETURN(SecretBytes secret,
                                cli::ReadSecret(ck_key, ""));
        if (rep.format == HeaderFormat::kLuks2 && rep.usable()) {
          auto r = CheckKeyslots(device, secret);
          if (r.ok()) {
            slots = std::move(*r);
          } else {
            slots_status = r.status();
          }
        } else {
          slots_status = UnsupportedError(
              "the keyslots were not checked: " +
              std::string(rep.format == HeaderFormat::kLuks1
                              ? "volmgr-recover does not open LUKS1 "
                                "keyslots; `cryptsetup open "
                                "--test-passphrase DEVICE` does"
                              : "no intact LUKS2 header copy to read them "
                                "from"));
        }
      }
      const bool slots_ok = !slots || slots->ok();
      const bool healthy = rep.healthy() && slots_ok;
      const char* not_checked =
          "the keyslot areas were not checked (a credential proves them: "
          "--key-file F with the recovery password proves the keyslot stock "
          "cryptsetup uses)";
      if (ck_json) {
        Json ks{{"checked", slots.has_value()}};
        if (slots) {
          ks["opened"] = slots->opened;
          ks["problems"] = slots->problems;
        } else if (!slots_status.ok()) {
          ks["error"] = slots_status.message();
        } else {
          ks["note"] = not_checked;
        }
        std::cout << cli::JsonText(
                         Json{{"device", device},
                              {"format", HeaderFormatName(rep.format)},
                              {"healthy", healthy},
                              {"usable", rep.usable()},
                              {"primary", CopyJson(rep.primary)},
                              {"secondary", rep.has_secondary()
                                                ? CopyJson(rep.secondary)
                                                : Json(nullptr)},
                              {"keyslots", ks},
                              {"findings", rep.findings},
                              {"notes", rep.notes}})
                  << std::endl;
      } else {
        PrintCopy(rep.primary);
        if (rep.has_secondary()) PrintCopy(rep.secondary);
        for (const auto& f : rep.findings)
          std::printf("=> %s\n", TerminalSafe(f).c_str());
        for (const auto& n : rep.notes)
          std::printf("=> note: %s\n", TerminalSafe(n).c_str());
        if (slots) {
          for (const auto& o : slots->opened) {
            std::printf("=> %s\n", TerminalSafe(o).c_str());
          }
          for (const auto& p : slots->problems) {
            std::printf("=> DAMAGED: %s\n", TerminalSafe(p).c_str());
          }
        }
        if (rep.healthy() && rep.has_secondary()) {
          std::printf("=> both header copies are intact%s%s\n",
                      slots ? "" : "; ", slots ? "" : not_checked);
        } else if (rep.healthy()) {
          std::printf(
              "=> the LUKS1 header is consistent (its keyslots: "
              "`cryptsetup open --test-passphrase DEVICE`)\n");
        }
      }
      // Exit code and "healthy" agree: 0 exactly when healthy is true.
      if (!rep.healthy()) {
        if (rep.format == HeaderFormat::kLuks1) {
          return CorruptionError("the LUKS1 header of " + device +
                                 " is damaged");
        }
        if (!rep.primary.ok() || !rep.secondary.ok()) {
          return CorruptionError(
              std::string("header of ") + device + " is damaged (" +
              (rep.usable() ? "one copy" : "both copies") + ")");
        }
        return CorruptionError("header of " + device + ": " +
                               rep.findings.front());
      }
      if (!slots_status.ok()) return slots_status;
      if (!slots_ok) {
        return CorruptionError(
            "a keyslot of " + device +
            " is damaged: stock cryptsetup no longer opens through it");
      }
      return Status::Ok();
    }();
  });

  // ---- restore -----------------------------------------------------------
  auto* rs = app.add_subcommand(
      "restore",
      "Repair the header from its intact copy, or from a backup "
      "(--from)");
  std::string rs_from;
  bool rs_force = false;
  rs->add_option("DEVICE", device, "volume")->required();
  rs->add_option("--from", rs_from,
                 "header backup file (`volmgr header backup`)");
  rs->add_flag("--force", rs_force,
               "restore a backup even if it names another volume");
  rs->callback([&] {
    result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(HeaderReport rep, CheckHeader(device));
      if (rep.format == HeaderFormat::kLuks1) {
        return UnsupportedError(
            device +
            " holds a LUKS1 header (one copy, no second to repair from): "
            "restore a LUKS1 backup with `cryptsetup luksHeaderRestore`");
      }
      if (rs_from.empty()) {
        if (rep.primary.ok() && rep.secondary.ok()) {
          std::printf("Both header copies of %s are intact; nothing to do.\n",
                      device.c_str());
          return Status::Ok();
        }
        if (!rep.usable()) {
          return CorruptionError("both header copies of " + device +
                                 " are damaged: use --from BACKUP or "
                                 "`volmgr-recover rebuild`");
        }
        VOLMGR_ASSIGN_OR_RETURN(volume::VolumeLock lock,
                                volume::VolumeLock::Acquire(device));
        crypt_device* cd = nullptr;
        int rc = crypt_init(&cd, device.c_str());
        if (rc < 0) return ErrnoToStatus(-rc, "opening " + device);
        // crypt_repair rewrites the damaged LUKS2 copy from the intact one.
        rc = crypt_repair(cd, CRYPT_LUKS2, nullptr);
        crypt_free(cd);
        if (rc < 0)
          return ErrnoToStatus(-rc, "repairing the header of " + device);
        VOLMGR_ASSIGN_OR_RETURN(HeaderReport after, CheckHeader(device));
        if (!after.primary.ok() || !after.secondary.ok()) {
          return CorruptionError("libcryptsetup's repair left a damaged copy");
        }
        std::printf("Repaired the %s header copy of %s from the %s copy.\n",
                    rep.primary.ok() ? "secondary" : "primary", device.c_str(),
                    rep.primary.ok() ? "primary" : "secondary");
        return Status::Ok();
      }
      VOLMGR_ASSIGN_OR_RETURN(volume::LuksDevice backup,
                              volume::LuksDevice::Load(rs_from));
      // The UUID on the device, even if its JSON is damaged, from whichever
      // copy still has its binary header.
      std::string current;
      for (const auto* c : {&rep.primary, &rep.secondary}) {
        if (c->magic_ok && !c->uuid.empty()) current = c->uuid;
      }
      if (!current.empty() && current != backup.uuid() && !rs_force) {
        return FailedPreconditionError(
            "the backup " + rs_from + " is of volume " + backup.uuid() +
            " but " + device + " holds volume " + current +
            "; use --force if you really mean it");
      }
      VOLMGR_ASSIGN_OR_RETURN(volume::VolumeLock lock,
                              volume::VolumeLock::Acquire(device));
      VOLMGR_RETURN_IF_ERROR(
          volume::LuksDevice::RestoreHeader(device, rs_from));
      std::printf("Header of %s restored from %s (volume %s).\n",
                  device.c_str(), rs_from.c_str(), backup.uuid().c_str());
      return Status::Ok();
    }();
  });

  // ---- rebuild -----------------------------------------------------------
  auto* rb = app.add_subcommand(
      "rebuild",
      "Recreate a destroyed header from a key package (same key, "
      "UUID and geometry; data untouched)");
  std::string rb_pkg;
  SecretSource rb_key;
  std::vector<std::string> rb_agents;
  bool rb_dry = false, rb_force = false;
  rb->add_option("DEVICE", device, "volume")->required();
  rb->add_option("--key-package", rb_pkg, "key package file")->required();
  rb->add_option("--agent-key", rb_agents,
                 "recovery agent private key (PEM) for a package sealed to "
                 "an agent certificate (repeatable)");
  rb->add_option("--key-file", rb_key.file,
                 "read the recovery password from FILE ('-' = stdin)");
  rb->add_option("--key-fd", rb_key.fd,
                 "read the recovery password from descriptor N");
  rb->add_flag("--dry-run", rb_dry,
               "check everything and show what would be "
               "written; write nothing");
  rb->add_flag("--force", rb_force,
               "rebuild even if a header copy is still intact (drops every "
               "other protector)");
  rb->callback([&] {
    result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> f, ReadFile(rb_pkg));
      VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
      std::optional<keys::RecoveryPassword> pkg_rp;
      VOLMGR_ASSIGN_OR_RETURN(KeyPackageSecret s,
                              OpenPackage(f, h, rb_key, rb_agents, &pkg_rp));
      VOLMGR_ASSIGN_OR_RETURN(RebuildPlan plan,
                              PlanRebuild(device, h, s, rb_force));
      std::printf("%s %s for volume %s:\n",
                  rb_dry ? "Would rebuild" : "Rebuilding", device.c_str(),
                  h.volume_uuid.ToString().c_str());
      for (const auto& c : plan.changes) std::printf("  %s\n", c.c_str());
      if (rb_dry) {
        std::printf("Dry run: nothing was written.\n");
        return Status::Ok();
      }
      if (pkg_rp.has_value()) {  // the package's own password and ID
        VOLMGR_RETURN_IF_ERROR(
            ExecuteRebuild(plan, h, s, *pkg_rp, h.recovery_id));
        std::printf(
            "Done: %s opens again with recovery password %s (volmgr and "
            "stock cryptsetup). Add your other protectors back with "
            "`volmgr protector add`.\n",
            device.c_str(), h.recovery_id.ToString().c_str());
        return Status::Ok();
      }
      // An agent's package: the rebuilt volume gets a new recovery password.
      VOLMGR_ASSIGN_OR_RETURN(keys::RecoveryPassword rp,
                              keys::RecoveryPassword::Generate());
      VOLMGR_ASSIGN_OR_RETURN(const Uuid id, Uuid::Random());
      VOLMGR_RETURN_IF_ERROR(ExecuteRebuild(plan, h, s, rp, id));
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes text, rp.Format());
      std::printf(
          "Done: %s opens again with a NEW recovery password (volmgr and "
          "stock cryptsetup); it is shown once, write it down now.\n",
          device.c_str());
      VOLMGR_RETURN_IF_ERROR(cli::ShowRecoveryPassword(id.ToString(), text));
      std::printf(
          "Add your other protectors back with `volmgr protector add`.\n");
      return Status::Ok();
    }();
  });

  return cli::ParseAndRun(app, argc, argv, result, "volmgr-recover");
}

}  // namespace
}  // namespace volmgr::recover

int main(int argc, char** argv) {
  return volmgr::cli::HardenedMain("volmgr-recover", volmgr::recover::Run, argc,
                                   argv);
}
