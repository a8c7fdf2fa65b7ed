#include "volmgr/volume/conversion.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "dmtarget/sector_transform.h"
#include "volmgr/base/clock.h"
#include "volmgr/crypto/openssl_handles.h"
#include "volmgr/volume/device_probe.h"
#include "volmgr/volume/volume_lock.h"

extern char** environ;

namespace volmgr::volume {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSector = 512;  // libcryptsetup counts 512-byte sectors

// ---- a libcryptsetup handle with its error text ---------------------------

struct CryptLog {
  std::string last_error;
  static void Callback(int level, const char* msg, void* usrptr) {
    auto* self = static_cast<CryptLog*>(usrptr);
    if (self == nullptr || msg == nullptr || level != CRYPT_LOG_ERROR) return;
    std::string line(msg);
    while (!line.empty() && (line.back() == '\n' || line.back() == '.')) {
      line.pop_back();
    }
    if (!line.empty()) self->last_error = line;
  }
};

struct CryptFree {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};

class CryptHandle {
 public:
  // crypt_init_data_device(header, data) (header == data: header on the
  // device) without loading.
  static StatusOr<CryptHandle> Init(const std::string& header,
                                    const std::string& data) {
    CryptHandle h;
    crypt_device* raw = nullptr;
    int rc = header == data
                 ? crypt_init(&raw, data.c_str())
                 : crypt_init_data_device(&raw, header.c_str(), data.c_str());
    if (rc < 0) {
      return Status(StatusCode::kIoError,
                    "cannot open " + header + ": " + std::strerror(-rc),
                    {ForeignSource::kCryptsetup, rc});
    }
    h.cd_.reset(raw);
    crypt_set_log_callback(raw, CryptLog::Callback, h.log_.get());
    return h;
  }
  static StatusOr<CryptHandle> Load(const std::string& header,
                                    const std::string& data) {
    VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, Init(header, data));
    int rc = crypt_load(h.get(), CRYPT_LUKS2, nullptr);
    if (rc < 0) return h.Error(rc, "reading the LUKS2 header of " + header);
    VOLMGR_RETURN_IF_ERROR(h.UseMinimalDigestKdf());
    return h;
  }
  // The digests libcryptsetup makes during a conversion (the digest of the
  // reencryption metadata when a datashift-checksum decryption turns to
  // checksums on resume, the one made when a decryption is initialised) are
  // PBKDF2 of random key material, stretched by default to a benchmarked
  // iteration count: the benchmark alone is ~0.7 s of CPU per resume on the
  // build host, ~5.5 s under qemu TCG (lib/luks2/luks2_digest_pbkdf2.c). With
  // CRYPT_PBKDF_NO_BENCHMARK it takes 1000 iterations, libcryptsetup's floor,
  // as `cryptsetup --pbkdf-force-iterations 1000` does: stretching random
  // keys of 512 bits and more adds nothing (the reasoning of the VMK
  // keyslots' KeyslotKdf::kMinimal). No keyslot is created through these
  // handles.
  Status UseMinimalDigestKdf() const {
    crypt_pbkdf_type pbkdf{};
    pbkdf.type = CRYPT_KDF_PBKDF2;
    pbkdf.hash = "sha256";
    pbkdf.iterations = 1000;
    pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
    int rc = crypt_set_pbkdf_type(get(), &pbkdf);
    if (rc < 0) return Error(rc, "setting the digest PBKDF");
    return Status::Ok();
  }
  crypt_device* get() const { return cd_.get(); }
  Status Error(int rc, std::string_view what) const {
    std::string m(what);
    m += " failed: ";
    m += log_->last_error.empty() ? std::strerror(-rc) : log_->last_error;
    log_->last_error.clear();
    StatusCode code = StatusCode::kInternal;
    switch (-rc) {
      case EPERM:
        code = StatusCode::kAuthFailed;
        break;
      case EBUSY:
        code = StatusCode::kBusy;
        break;
      case EINVAL:
        code = StatusCode::kInvalidArgument;
        break;
      case ENOTSUP:
        code = StatusCode::kUnsupported;
        break;
      case EIO:
      case ENOSPC:
        code = StatusCode::kIoError;
        break;
      case ENOENT:
      case ENODEV:
        code = StatusCode::kNotFound;
        break;
      default:
        break;
    }
    return Status(code, std::move(m), {ForeignSource::kCryptsetup, rc});
  }

 private:
  CryptHandle() : log_(std::make_unique<CryptLog>()) {}
  std::unique_ptr<CryptLog> log_;
  std::unique_ptr<crypt_device, CryptFree> cd_;
};

// ---- external tools (e2fsprogs) -------------------------------------------

// Runs argv[0] (found on PATH) without a shell; returns its exit status and
// stdout+stderr. No secret ever goes through here.
StatusOr<int> RunTool(const std::vector<std::string>& args, std::string* out) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return UnavailableError("cannot run " + args[0] + ": " + std::strerror(rc) +
                            " (is e2fsprogs installed?)");
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) text.append(buf, n);
  close(pipefd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (out != nullptr) *out = std::move(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string LastLine(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::string MountPointOf(const std::string& device) {
  struct stat want {};
  if (stat(device.c_str(), &want) != 0 || !S_ISBLK(want.st_mode)) return "";
  std::ifstream mounts("/proc/self/mounts");
  std::string src, dst, rest;
  while (mounts >> src >> dst && std::getline(mounts, rest)) {
    struct stat st {};
    if (src.rfind('/', 0) == 0 && stat(src.c_str(), &st) == 0 &&
        S_ISBLK(st.st_mode) && st.st_rdev == want.st_rdev) {
      return dst;
    }
  }
  return "";
}

bool IsExt(const std::string& type) {
  return type == "ext2" || type == "ext3" || type == "ext4";
}

// Whether `device` starts with a LUKS header or holds a LUKS2 secondary
// header at one of its possible offsets (so a damaged primary still counts).
// An unreadable device counts as one: its error is the caller's to report.
bool LooksLikeLuks(const std::string& device) {
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  bool found = false;
  char magic[6];
  if (pread(fd, magic, sizeof magic, 0) == 6 &&
      std::memcmp(magic, "LUKS\xba\xbe", 6) == 0) {
    found = true;
  }
  for (off_t at = 16 << 10; !found && at <= (4 << 20); at <<= 1) {
    found = pread(fd, magic, sizeof magic, at) == 6 &&
            std::memcmp(magic, "SKUL\xba\xbe", 6) == 0;
  }
  close(fd);
  return found;
}

Status FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, "fsync " + path);
  return Status::Ok();
}

Status FsyncParentDir(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  return FsyncPath(dir);
}

// Copies the regular file `from` to the new file `to` (mode 0600) and
// syncs it.
Status CopyFileSynced(const std::string& from, const std::string& to) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, from);
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    close(in);
    return ErrnoToStatus(err, "creating " + to);
  }
  Status st = Status::Ok();
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = ErrnoToStatus(errno, "reading " + from);
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buf.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        st = ErrnoToStatus(w < 0 ? errno : EIO, "writing " + to);
        break;
      }
      done += w;
    }
    if (!st.ok()) break;
  }
  if (st.ok() && fsync(out) != 0) st = ErrnoToStatus(errno, "fsync " + to);
  close(in);
  close(out);
  return st;
}

Status MakeDirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) {
      if (cur.empty()) cur = "/";
      continue;
    }
    cur += (cur.empty() || cur.back() == '/' ? "" : "/") + part;
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, "creating " + cur);
    }
  }
  return Status::Ok();
}

std::string BootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

// ---- the state file (docs/FORMAT.md, "Conversion state file") -------------

std::string StatePath(const std::string& uuid) {
  return ConversionStateDirectory() + "/" + uuid + ".json";
}

const char* DirectionName(ConversionDirection d) {
  return d == ConversionDirection::kEncrypt ? "encrypt" : "decrypt";
}

// Written atomically (temp + rename) about once a second by the running
// conversion; read by status and pause.
void WriteState(const std::string& uuid, const std::string& device,
                const std::string& header, const ConversionProgress& p,
                bool running, const std::string& resilience) {
  if (!MakeDirs(ConversionStateDirectory()).ok()) return;
  Json j = {{"version", 1},
            {"uuid", uuid},
            {"device", device},
            {"header", header},
            {"direction", DirectionName(p.direction)},
            {"resilience", resilience},
            {"pid", static_cast<int>(getpid())},
            {"boot_id", BootId()},
            {"running", running},
            {"size_bytes", p.size_bytes},
            {"done_bytes", p.done_bytes},
            {"bytes_per_second", std::llround(p.bytes_per_second)},
            {"eta_seconds", std::llround(p.eta_seconds)},
            {"updated", NowRfc3339Utc()}};
  const std::string path = StatePath(uuid);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump() << "\n";
    if (!f) return;
  }
  // Best effort: the file only carries the rate and ETA; the truth about
  // progress is in the LUKS2 header.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

std::optional<Json> ReadState(const std::string& uuid) {
  std::ifstream f(StatePath(uuid));
  if (!f) return std::nullopt;
  Json j = Json::parse(f, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

// The state file is ours, but read as untrusted all the same: a field of
// the wrong type reads as absent.
bool StateBool(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::string StateString(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
int64_t StateInt(const Json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return def;
  return it->get<int64_t>();
}
uint64_t StateU64(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

bool StateProcessAlive(const Json& j) {
  if (!StateBool(j, "running")) return false;
  if (StateString(j, "boot_id") != BootId()) return false;  // a previous boot
  const int64_t pid = StateInt(j, "pid", 0);
  if (pid <= 0 || pid > INT32_MAX) return false;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name.rfind("volmgr", 0) == 0;
}

// ---- the reencryption run --------------------------------------------------

struct RunContext {
  ConversionProgress progress;
  ProgressFn fn;
  std::string uuid, device, header, resilience;
  Clock::time_point start;
  uint64_t start_done = 0;
  bool started = false;
  Clock::time_point last_write;
  bool paused = false;
};

int ProgressCallback(uint64_t size, uint64_t offset, void* usrptr) {
  auto* c = static_cast<RunContext*>(usrptr);
  const auto now = Clock::now();
  if (!c->started) {
    c->started = true;
    c->start = now;
    c->start_done = offset;
  }
  ConversionProgress& p = c->progress;
  p.size_bytes = size;
  p.done_bytes = offset;
  const double secs = std::chrono::duration<double>(now - c->start).count();
  if (secs > 0.5 && offset > c->start_done) {
    p.bytes_per_second = (offset - c->start_done) / secs;
    p.eta_seconds = (size - offset) / p.bytes_per_second;
  }
  if (now - c->last_write > std::chrono::seconds(1) || offset == size) {
    c->last_write = now;
    WriteState(c->uuid, c->device, c->header, p, true, c->resilience);
  }
  if (c->fn && !c->fn(p)) {
    c->paused = true;
    return 1;  // libcryptsetup finishes the chunk in flight, then stops
  }
  return 0;
}

bool MappingActive(const std::string& name) {
  if (name.empty()) return false;
  const crypt_status_info st = crypt_status(nullptr, name.c_str());
  return st == CRYPT_ACTIVE || st == CRYPT_BUSY;  // BUSY: active and in use
}

// ---- finishing a conversion whose clean-up was interrupted ------------------

StatusOr<Json> HeaderJson(const CryptHandle& h) {
  const char* text = nullptr;
  int rc = crypt_dump_json(h.get(), &text, 0);
  if (rc < 0 || text == nullptr) {
    return h.Error(rc < 0 ? rc : -EINVAL, "reading the LUKS2 metadata");
  }
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("segments") || !j["segments"].is_object()) {
    return CorruptionError("the LUKS2 metadata is not a JSON object");
  }
  return j;
}

bool SegmentHasFlag(const Json& seg, std::string_view prefix) {
  auto it = seg.find("flags");
  if (it == seg.end() || !it->is_array()) return false;
  for (const Json& f : *it) {
    if (f.is_string() && f.get<std::string>().rfind(prefix, 0) == 0) {
      return true;
    }
  }
  return false;
}

uint64_t JsonU64(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_string())
    return std::strtoull(it->get<std::string>().c_str(), nullptr, 10);
  return it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// Every chunk converted, only libcryptsetup's clean-up missing: no live
// segment of the old kind (linear for an encryption, crypt for a
// decryption) and none in reencryption. Only meaningful for a header in
// CRYPT_REENCRYPT_CLEAN state.
bool AllChunksDone(const Json& hdr, ConversionDirection dir) {
  const char* old_type =
      dir == ConversionDirection::kEncrypt ? "linear" : "crypt";
  int live = 0;
  for (const auto& [id, seg] : hdr["segments"].items()) {
    if (SegmentHasFlag(seg, "backup-")) continue;
    if (SegmentHasFlag(seg, "in-reencryption")) return false;
    if (seg.value("type", "") == old_type) return false;
    ++live;
  }
  return live == 1;
}

uint64_t Be64(const std::string& b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

void PutBe64(std::string& b, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) {
    b[at + 7 - i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

// Rewrites a header backup file (both binary header copies, LUKS2 On-Disk
// Format 1.1 section 2) with the reencryption keyslot, its digest, the
// backup segments and the online-reencrypt requirement removed: exactly
// what libcryptsetup's own clean-up leaves. JSON through nlohmann, the
// checksum through EVP; libcryptsetup validates the result when it restores
// the file. With `keep_reencryption` only the live segments change: they
// become the final segment alone, the backup segments (renumbered after it),
// the reencryption keyslot and the requirement stay: the state
// libcryptsetup commits after the last hotzone, before its clean-up.
Status RewriteReencryptionMetadata(const std::string& file,
                                   bool keep_reencryption) {
  std::string buf;
  {
    std::ifstream f(file, std::ios::binary);
    buf.assign(std::istreambuf_iterator<char>(f), {});
    if (!f.good() && !f.eof()) return IoError("reading " + file);
  }
  constexpr size_t kBinary = 4096;
  if (buf.size() < 2 * kBinary || buf.compare(0, 6, "LUKS\xba\xbe", 6) != 0) {
    return CorruptionError(file + " is not a LUKS2 header backup");
  }
  const uint64_t hdr_size = Be64(buf, 8);
  if (hdr_size < 16384 || hdr_size > (4u << 20) || buf.size() < 2 * hdr_size ||
      buf.compare(hdr_size, 6, "SKUL\xba\xbe", 6) != 0) {
    return CorruptionError(file + ": unexpected LUKS2 header size");
  }
  if (std::strncmp(buf.data() + 72, "sha256", 32) != 0 ||
      std::strncmp(buf.data() + hdr_size + 72, "sha256", 32) != 0) {
    return UnsupportedError(file + ": header checksum is not sha256");
  }
  const size_t json_area = hdr_size - kBinary;
  Json j = Json::parse(std::string(buf.data() + kBinary,
                                   strnlen(buf.data() + kBinary, json_area)),
                       nullptr, false);
  if (!j.is_object() || !j["keyslots"].is_object() ||
      !j["segments"].is_object() || !j["digests"].is_object()) {
    return CorruptionError(file + ": the LUKS2 metadata is not valid JSON");
  }
  std::vector<std::string> slots, segs;
  for (const auto& [id, ks] : j["keyslots"].items()) {
    if (ks.value("type", "") == "reencrypt" && !keep_reencryption) {
      slots.push_back(id);
      // Its area (checksums or journal) goes too.
      const Json& area = ks.contains("area") ? ks["area"] : Json::object();
      const uint64_t off = JsonU64(area, "offset");
      const uint64_t len = JsonU64(area, "size");
      if (off >= 2 * hdr_size && off + len <= buf.size()) {
        std::fill_n(buf.begin() + off, len, '\0');
      }
    }
  }
  // The data is now one segment: the final one libcryptsetup kept as
  // "backup-final" (crypt, dynamic size), without its flag.
  std::string final_id;
  std::vector<std::pair<int, std::string>> backups;  // old id, sorted
  for (const auto& [id, seg] : j["segments"].items()) {
    segs.push_back(id);
    if (SegmentHasFlag(seg, "backup-final")) final_id = id;
    if (SegmentHasFlag(seg, "backup-")) backups.emplace_back(std::stoi(id), id);
  }
  if (final_id.empty() ||
      j["segments"][final_id].value("type", "") != "crypt") {
    return FailedPreconditionError(file + ": no final crypt segment");
  }
  std::sort(backups.begin(), backups.end());
  Json final_seg = j["segments"][final_id];
  final_seg.erase("flags");
  for (const auto& id : slots) j["keyslots"].erase(id);
  const Json old_segments = j["segments"];
  j["segments"] = Json::object();
  j["segments"]["0"] = final_seg;
  std::vector<std::pair<std::string, std::string>> renamed;  // old -> new
  if (keep_reencryption) {
    int next = 1;
    for (const auto& [n, id] : backups) {
      const std::string to = std::to_string(next++);
      j["segments"][to] = old_segments[id];
      renamed.emplace_back(id, to);
    }
  }
  auto drop = [](Json& arr, const std::vector<std::string>& ids) {
    if (!arr.is_array()) return;
    Json out = Json::array();
    for (const Json& v : arr) {
      if (!v.is_string() || std::find(ids.begin(), ids.end(),
                                      v.get<std::string>()) == ids.end()) {
        out.push_back(v);
      }
    }
    arr = out;
  };
  std::vector<std::string> dead_digests;
  for (auto& [id, d] : j["digests"].items()) {
    drop(d["keyslots"], slots);
    const bool has_final = d["segments"].is_array() &&
                           std::find(d["segments"].begin(), d["segments"].end(),
                                     Json(final_id)) != d["segments"].end();
    Json segments = has_final ? Json::array({"0"}) : Json::array();
    for (const auto& [from, to] : renamed) {
      if (d["segments"].is_array() &&
          std::find(d["segments"].begin(), d["segments"].end(), Json(from)) !=
              d["segments"].end()) {
        segments.push_back(to);
      }
    }
    d["segments"] = segments;
    if (d["keyslots"].empty()) dead_digests.push_back(id);
  }
  for (const auto& id : dead_digests) j["digests"].erase(id);
  if (!keep_reencryption && j.contains("config") &&
      j["config"].contains("requirements")) {
    Json& req = j["config"]["requirements"];
    if (req.contains("mandatory")) {
      Json keep = Json::array();
      for (const Json& r : req["mandatory"]) {
        if (!r.is_string() ||
            r.get<std::string>().rfind("online-reencrypt", 0) != 0) {
          keep.push_back(r);
        }
      }
      if (keep.empty()) {
        req.erase("mandatory");
      } else {
        req["mandatory"] = keep;
      }
    }
    if (req.empty()) j["config"].erase("requirements");
  }
  const std::string text = j.dump();
  if (text.size() >= json_area) {
    return InternalError(file + ": the new metadata does not fit");
  }
  const uint64_t seqid = std::max(Be64(buf, 16), Be64(buf, hdr_size + 16)) + 1;
  for (size_t at : {size_t{0}, static_cast<size_t>(hdr_size)}) {
    PutBe64(buf, at + 16, seqid);
    std::fill_n(buf.begin() + at + kBinary, json_area, '\0');
    std::copy(text.begin(), text.end(), buf.begin() + at + kBinary);
    std::fill_n(buf.begin() + at + 448, 64, '\0');
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(buf.data() + at, hdr_size, md, &len, EVP_sha256(),
                   nullptr) != 1) {
      return InternalError("SHA-256 failed");
    }
    std::copy(md, md + len, buf.begin() + at + 448);
  }
  {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!f) return IoError("writing " + file);
  }
  return FsyncPath(file);
}

// Writes the header of `device` (loaded in `h`) rewritten by
// RewriteReencryptionMetadata. crypt_header_restore validates it and
// writes it in one go; torn, either copy is a header libcryptsetup loads.
Status RewriteHeader(const CryptHandle& h, const std::string& device,
                     bool keep_reencryption) {
  VOLMGR_RETURN_IF_ERROR(MakeDirs(ConversionStateDirectory()));
  const std::string tmp = ConversionStateDirectory() + "/finish-" +
                          std::to_string(getpid()) + ".luks2.tmp";
  std::remove(tmp.c_str());
  struct Unlink {
    std::string path;
    ~Unlink() { std::remove(path.c_str()); }
  } unlink_tmp{tmp};
  int rc = crypt_header_backup(h.get(), CRYPT_LUKS2, tmp.c_str());
  if (rc < 0) return h.Error(rc, "copying the header of " + device);
  VOLMGR_RETURN_IF_ERROR(RewriteReencryptionMetadata(tmp, keep_reencryption));
  {
    VOLMGR_ASSIGN_OR_RETURN(CryptHandle w, CryptHandle::Init(device, device));
    rc = crypt_header_restore(w.get(), CRYPT_LUKS2, tmp.c_str());
    if (rc < 0) return w.Error(rc, "writing the new header of " + device);
  }
  return FsyncPath(device);
}

// The end of an encryption whose every chunk is on disk (header CLEAN):
// wipe the moved segment, then write the header without reencryption
// metadata. Killed during the wipe, the header is still CLEAN and all
// chunks done, so this simply runs again.
Status FinishEncryption(const CryptHandle& h, const Json& j,
                        const std::string& device) {
  // 1. The moved segment still holds a plain copy of the first data: wipe
  // it with random data, as libcryptsetup would have. Done again if power
  // fails during it (nothing reads it any more).
  const uint64_t data_offset = crypt_get_data_offset(h.get()) * kSector;
  for (const auto& [id, seg] : j["segments"].items()) {
    if (!SegmentHasFlag(seg, "backup-moved-segment")) continue;
    const uint64_t off = JsonU64(seg, "offset");
    const uint64_t len = JsonU64(seg, "size");
    if (off < data_offset || len == 0) {
      return CorruptionError("the moved segment of " + device +
                             " overlaps the LUKS2 header");
    }
    int rc = crypt_wipe(h.get(), device.c_str(), CRYPT_WIPE_RANDOM, off, len,
                        1 << 20, 0, nullptr, nullptr);
    if (rc < 0) return h.Error(rc, "wiping the moved segment of " + device);
  }
  VOLMGR_RETURN_IF_ERROR(FsyncPath(device));
  // 2. The header without reencryption metadata.
  return RewriteHeader(h, device, /*keep_reencryption=*/false);
}

// A detached (decryption) header without reencryption metadata and without
// any crypt segment: libcryptsetup finished the decryption and cleaned up,
// only the deletion of the header file was cut short. The device holds the
// plain data; writing this header back would destroy its start.
bool IsFinishedDecryptionHeader(const CryptHandle& h) {
  auto j = HeaderJson(h);
  if (!j.ok()) return false;
  for (const auto& [id, seg] : (*j)["segments"].items()) {
    if (seg.is_object() && seg.value("type", "") == "crypt") return false;
  }
  return true;
}

// A crash in the *last* hotzone of an encryption with a moved first
// segment: no live linear segment left, one segment in reencryption.
bool IsLastEncryptHotzone(const Json& j) {
  bool moved = false, hot = false;
  for (const auto& [id, seg] : j["segments"].items()) {
    if (SegmentHasFlag(seg, "backup-moved-segment")) moved = true;
    if (SegmentHasFlag(seg, "backup-")) continue;
    if (seg.value("type", "") == "linear") return false;
    if (SegmentHasFlag(seg, "in-reencryption")) hot = true;
  }
  return moved && hot;
}

// libcryptsetup's recovery of that hotzone rewrites it from the moved
// segment and then, as part of its clean-up and *before* it commits the
// header, wipes the moved segment: a second power loss there leaves a
// crashed header whose recovery source is random data (the first 16 MiB of
// the filesystem lost; seen in the power-loss test). So volmgr rewrites the
// hotzone itself, from the moved segment, with the volume key (aes-xts-
// plain64 through EVP, IV = 512-byte sector number + the segment's
// iv_tweak, FORMAT.md "Data sectors") and syncs; the caller then commits
// "last hotzone done" before the moved segment is wiped. Until that commit
// the moved segment is untouched, so repeating this is harmless.
Status RecoverLastEncryptHotzone(const CryptHandle& h, const Json& j,
                                 const std::string& device,
                                 const SecretBytes& vmk) {
  Json hot, moved;
  for (const auto& [id, seg] : j["segments"].items()) {
    if (SegmentHasFlag(seg, "backup-moved-segment")) moved = seg;
    if (SegmentHasFlag(seg, "in-reencryption")) hot = seg;
  }
  const uint64_t hot_off = JsonU64(hot, "offset");
  const uint64_t hot_len = JsonU64(hot, "size");
  const uint64_t tweak = JsonU64(hot, "iv_tweak");
  const uint64_t sector = hot.value("sector_size", 512u);
  const uint64_t moved_off = JsonU64(moved, "offset");
  if (hot.value("encryption", "") != "aes-xts-plain64") {
    return UnsupportedError("cannot recover a hotzone encrypted with " +
                            hot.value("encryption", std::string("?")));
  }
  if (hot_len == 0 || sector < kSector || hot_len % sector != 0 ||
      JsonU64(moved, "size") < hot_len ||
      hot_off != crypt_get_data_offset(h.get()) * kSector ||
      moved_off < hot_off + hot_len) {
    return CorruptionError("unexpected last hotzone in the header of " +
                           device);
  }
  auto pass = vmk.RevealAsString();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key, SecretBytes::Allocate(64));
  size_t key_len = key.Reveal().size();
  int rc =
      crypt_volume_key_get(h.get(), CRYPT_ANY_SLOT,
                           reinterpret_cast<char*>(key.RevealMutable().data()),
                           &key_len, pass.data(), pass.size());
  if (rc < 0) return h.Error(rc, "reading the volume key of " + device);
  if (key_len != 64) return UnsupportedError("unexpected volume key size");
  int fd = open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, device);
  struct Closer {
    int fd;
    std::vector<uint8_t>* buf;
    ~Closer() {
      OPENSSL_cleanse(buf->data(), buf->size());  // plain user data
      close(fd);
    }
  };
  std::vector<uint8_t> buf(hot_len);
  Closer closer{fd, &buf};
  for (uint64_t done = 0; done < hot_len;) {
    ssize_t n = pread(fd, buf.data() + done, hot_len - done,
                      static_cast<off_t>(moved_off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "reading " + device);
    done += static_cast<uint64_t>(n);
  }
  // The hotzone is the first `hot_len` bytes of the data segment; its
  // sector k takes IV iv_tweak + k * (sector / 512), as dm-crypt would.
  VOLMGR_ASSIGN_OR_RETURN(dmtarget::XtsSectorTransform xts,
                          dmtarget::XtsSectorTransform::Create(
                              key, static_cast<uint32_t>(sector), tweak));
  VOLMGR_RETURN_IF_ERROR(xts.Encrypt(0, buf, buf));
  for (uint64_t done = 0; done < hot_len;) {
    ssize_t n = pwrite(fd, buf.data() + done, hot_len - done,
                       static_cast<off_t>(hot_off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "writing " + device);
    done += static_cast<uint64_t>(n);
  }
  if (fdatasync(fd) != 0) return ErrnoToStatus(errno, "syncing " + device);
  return Status::Ok();
}

// Opens the header (recovering a crashed reencryption), maps it if online,
// and runs the reencryption to its end or a pause. Holds the VolumeLock.
StatusOr<bool> RunLocked(const std::string& device, const std::string& header,
                         const SecretBytes& vmk,
                         const ConversionOptions& options) {
  auto pass = vmk.RevealAsString();
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, CryptHandle::Load(header, device));
  crypt_params_reencrypt cur{};
  crypt_reencrypt_info ri = crypt_reencrypt_status(h.get(), &cur);
  if (ri == CRYPT_REENCRYPT_NONE) return true;
  if (ri == CRYPT_REENCRYPT_INVALID) {
    return CorruptionError("the reencryption state in the header of " + device +
                           " is invalid");
  }
  if (ri == CRYPT_REENCRYPT_CRASH && cur.mode == CRYPT_REENCRYPT_ENCRYPT &&
      header == device) {
    VOLMGR_ASSIGN_OR_RETURN(Json j, HeaderJson(h));
    if (IsLastEncryptHotzone(j)) {
      VOLMGR_RETURN_IF_ERROR(RecoverLastEncryptHotzone(h, j, device, vmk));
      // Commit "last hotzone done" before anything touches the moved
      // segment (its source): from here on FinishCompletedConversion's
      // repeatable path applies.
      VOLMGR_RETURN_IF_ERROR(
          RewriteHeader(h, device, /*keep_reencryption=*/true));
      VOLMGR_ASSIGN_OR_RETURN(bool done,
                              FinishCompletedConversion(device, device));
      if (!done) {
        return InternalError("the header of " + device +
                             " does not show its last hotzone done");
      }
      if (const char* u = crypt_get_uuid(h.get())) {
        std::remove(StatePath(u).c_str());
      }
      return true;
    }
  }
  if (ri == CRYPT_REENCRYPT_CRASH) {
    // An interrupted chunk (crash, power loss): libcryptsetup replays it
    // from its checksums / journal / the moved copy before anything else.
    crypt_params_reencrypt rec{};
    rec.flags = CRYPT_REENCRYPT_RECOVERY;
    int rc = crypt_reencrypt_init_by_passphrase(
        h.get(), nullptr, pass.data(), pass.size(), CRYPT_ANY_SLOT,
        CRYPT_ANY_SLOT, nullptr, nullptr, &rec);
    if (rc < 0) return h.Error(rc, "recovering the interrupted conversion");
    VOLMGR_ASSIGN_OR_RETURN(h, CryptHandle::Load(header, device));
    ri = crypt_reencrypt_status(h.get(), &cur);
    if (ri == CRYPT_REENCRYPT_NONE) return true;
  }
  const ConversionDirection dir = cur.mode == CRYPT_REENCRYPT_DECRYPT
                                      ? ConversionDirection::kDecrypt
                                      : ConversionDirection::kEncrypt;
  const std::string resilience = cur.resilience ? cur.resilience : "";
  const std::string uuid =
      crypt_get_uuid(h.get()) ? crypt_get_uuid(h.get()) : "";
  // Every chunk done but the clean-up cut short: libcryptsetup must not
  // resume this (see FinishCompletedConversion).
  VOLMGR_ASSIGN_OR_RETURN(bool cleaned,
                          FinishCompletedConversion(header, device));
  if (cleaned) {
    std::remove(StatePath(uuid).c_str());
    return true;
  }
  // A conversion never runs offline under an active mapping: that would
  // change the data beneath it. Find the mapping by the LUKS UUID (the
  // DM UUID libcryptsetup gives it), also for a detached header.
  std::string map_name = options.map_name;
  if (map_name.empty()) {
    std::string prefix = "CRYPT-LUKS2-";
    for (char c : uuid) {
      if (c != '-') prefix += c;
    }
    prefix += '-';
    for (const ActiveMapping& m : OpenLuks2Mappings()) {
      if (m.dm_uuid.rfind(prefix, 0) == 0) map_name = m.name;
    }
  }
  const char* name = nullptr;
  if (!map_name.empty()) {
    if (!MappingActive(map_name)) {
      int rc = crypt_activate_by_passphrase(h.get(), map_name.c_str(),
                                            CRYPT_ANY_SLOT, pass.data(),
                                            pass.size(), 0);
      if (rc < 0) {
        return h.Error(rc, "activating /dev/mapper/" + map_name);
      }
    }
    name = map_name.c_str();
  }
  crypt_params_reencrypt params{};
  params.flags = CRYPT_REENCRYPT_RESUME_ONLY;
  if (dir == ConversionDirection::kDecrypt && !options.resilience.empty()) {
    params.resilience = options.resilience.c_str();
    params.hash = "sha256";
  }
  int rc = crypt_reencrypt_init_by_passphrase(
      h.get(), name, pass.data(), pass.size(), CRYPT_ANY_SLOT, CRYPT_ANY_SLOT,
      nullptr, nullptr, &params);
  if (rc < 0) return h.Error(rc, "resuming the conversion of " + device);

  RunContext ctx;
  ctx.progress.direction = dir;
  ctx.fn = options.progress;
  ctx.uuid = uuid;
  ctx.device = device;
  ctx.header = header;
  ctx.resilience = resilience;
  rc = crypt_reencrypt_run(h.get(), ProgressCallback, &ctx);
  const bool done =
      crypt_reencrypt_status(h.get(), nullptr) == CRYPT_REENCRYPT_NONE;
  if (done) {
    ctx.progress.done_bytes = ctx.progress.size_bytes;
    ctx.progress.eta_seconds = 0;
  }
  WriteState(uuid, device, header, ctx.progress, false, resilience);
  if (done) {
    std::remove(StatePath(uuid).c_str());
    return true;
  }
  if (rc < 0 && !ctx.paused) {
    return h.Error(rc, "converting " + device);
  }
  return false;
}

StatusOr<VolumeLock> LockForConversion(const std::string& device) {
  auto lock = VolumeLock::Acquire(device, std::chrono::milliseconds(1500));
  if (!lock.ok() && lock.status().code() == StatusCode::kBusy) {
    return BusyError("a conversion of " + device +
                     " is already running (or another volmgr is changing "
                     "it); `volmgr conversion pause " +
                     device + "` stops it");
  }
  return lock;
}

}  // namespace

std::string ConversionStateDirectory() {
  const char* env = std::getenv("VOLMGR_STATE_DIR");
  if (env != nullptr && *env != '\0') return std::string(env) + "/conversion";
  return "/var/lib/volmgr/conversion";
}

std::string DecryptUnlockHeaderPath(const std::string& header) {
  return header + ".unlock";
}

std::string DefaultDecryptHeaderPath(const std::string& device) {
  std::string key = device;
  for (char& c : key) {
    if (c == '/') c = '_';
  }
  return ConversionStateDirectory() + "/decrypt-" + key + ".luks2";
}

StatusOr<EncryptPlan> PlanEncryption(const std::string& device,
                                     uint64_t device_bytes,
                                     const FilesystemFacts& fs, bool force,
                                     uint32_t sector_size) {
  EncryptPlan plan;
  plan.device_bytes = device_bytes;
  plan.fs_type = fs.type;
  const uint64_t min_bytes = kEncryptReduceBytes + (1ull << 20);
  if (device_bytes < min_bytes) {
    return InvalidArgumentError(
        device + " is too small to encrypt in place: " +
        std::to_string(device_bytes >> 20) + " MiB; it needs at least " +
        std::to_string(min_bytes >> 20) +
        " MiB (32 MiB for the header and the moved data + 1 MiB)");
  }
  if (!fs.mounted_at.empty()) {
    return BusyError(
        device + " is mounted at " + fs.mounted_at + "; unmount it first (" +
        (IsExt(fs.type) ? "ext4 cannot shrink while mounted; " : "") +
        "after `volmgr encrypt` starts you can open and mount "
        "the volume while it converts)");
  }
  if (fs.in_use) {
    return BusyError(device + " is " + fs.in_use_why + "; release it first");
  }
  plan.fs_limit_bytes = device_bytes - kEncryptReduceBytes;
  if (fs.type.empty()) {
    if (!force) {
      return FailedPreconditionError(
          device +
          " holds no filesystem volmgr recognises; for an empty device use "
          "`volmgr format`, or use --force if its last 32 MiB are unused");
    }
  } else if (IsExt(fs.type)) {
    if (fs.size_bytes > plan.fs_limit_bytes) {
      plan.shrink = true;
      const uint64_t bs = fs.block_size ? fs.block_size : 4096;
      plan.shrink_to_bytes = plan.fs_limit_bytes / bs * bs;
    }
  } else if (!force) {
    return FailedPreconditionError(
        device + " holds " + fs.type +
        ", which volmgr cannot shrink; shrink it so that the last 32 MiB of "
        "the device are unused, then use --force");
  } else if (fs.size_bytes > plan.fs_limit_bytes) {
    return FailedPreconditionError(
        "the " + fs.type + " filesystem on " + device +
        " reaches into the last 32 MiB, which encryption overwrites; shrink "
        "it first");
  }
  const uint32_t bs = fs.block_size;
  if (sector_size == 0) {
    plan.sector_size = (bs == 0 || bs >= 4096) && !fs.type.empty() ? 4096 : 512;
    if (bs != 0 && bs < 4096) plan.sector_size = 512;
  } else if (sector_size != 512 && sector_size != 4096) {
    return InvalidArgumentError("--sector-size must be 512 or 4096, not " +
                                std::to_string(sector_size));
  } else if (bs != 0 && sector_size > bs) {
    return InvalidArgumentError("--sector-size " + std::to_string(sector_size) +
                                " is larger than " + "the block size of the " +
                                fs.type + " filesystem (" + std::to_string(bs) +
                                "); the filesystem could not write its blocks");
  } else {
    plan.sector_size = sector_size;
  }
  return plan;
}

StatusOr<FilesystemFacts> ProbeFilesystem(const std::string& device) {
  VOLMGR_ASSIGN_OR_RETURN(DeviceFacts facts, ProbeDevice(device));
  FilesystemFacts fs;
  fs.mounted_at = MountPointOf(device);
  fs.in_use = !facts.in_use.empty();
  fs.in_use_why = facts.in_use;
  if (facts.content.find("filesystem") != std::string::npos ||
      IsExt(facts.content_type)) {
    fs.type = facts.content_type;
  } else if (!facts.content_type.empty()) {
    fs.type = facts.content_type;  // a partition table, LUKS, ...
  }
  if (fs.type == "crypto_LUKS") {
    return FailedPreconditionError(device + " is already a LUKS volume");
  }
  if (IsExt(fs.type)) {
    std::string out;
    VOLMGR_ASSIGN_OR_RETURN(int rc, RunTool({"dumpe2fs", "-h", device}, &out));
    if (rc != 0) {
      return FailedPreconditionError("dumpe2fs cannot read the " + fs.type +
                                     " superblock of " + device + ": " +
                                     LastLine(out));
    }
    uint64_t blocks = 0;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      auto val = [&](const char* key) -> std::optional<uint64_t> {
        if (line.rfind(key, 0) != 0) return std::nullopt;
        return std::strtoull(line.c_str() + std::strlen(key), nullptr, 10);
      };
      if (auto v = val("Block count:")) blocks = *v;
      if (auto v = val("Block size:"))
        fs.block_size = static_cast<uint32_t>(*v);
    }
    fs.size_bytes = blocks * fs.block_size;
  }
  return fs;
}

namespace {

// resize2fs truncates a regular file when it shrinks the filesystem on it.
// Gives a regular file `device` its size `bytes` back (the tail reads as
// zeros, a hole) and syncs it; a block device is left alone.
Status KeepImageSize(const std::string& device, uint64_t bytes) {
  struct stat st {};
  if (stat(device.c_str(), &st) != 0) return ErrnoToStatus(errno, device);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) >= bytes) {
    return Status::Ok();
  }
  int fd = open(device.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, device);
  int rc = ftruncate(fd, static_cast<off_t>(bytes));
  int err = errno;
  if (rc == 0 && fsync(fd) != 0) {
    rc = -1;
    err = errno;
  }
  close(fd);
  if (rc != 0) {
    return ErrnoToStatus(err, "giving " + device + " its size of " +
                                  std::to_string(bytes) + " bytes back");
  }
  return Status::Ok();
}

// Before the header is written: the device still has the size the plan was
// made for, and an ext* filesystem on it ends before its last
// kEncryptReduceBytes (the header's place and the moved first segment), so
// the data segment will hold all of it. Refuses (device unchanged, still a
// plain filesystem) otherwise.
Status CheckRoomForHeader(const std::string& device, uint64_t planned_bytes,
                          const std::string& fs_type) {
  VOLMGR_ASSIGN_OR_RETURN(DeviceFacts now, ProbeDevice(device));
  if (now.size_bytes != planned_bytes) {
    return FailedPreconditionError(
        device + " changed size during the encryption's preparation (" +
        std::to_string(planned_bytes) + " -> " +
        std::to_string(now.size_bytes) +
        " bytes); nothing was encrypted, it is still a plain device");
  }
  if (!IsExt(fs_type)) return Status::Ok();  // --force asserted the room
  VOLMGR_ASSIGN_OR_RETURN(FilesystemFacts fs, ProbeFilesystem(device));
  const uint64_t limit = planned_bytes - kEncryptReduceBytes;
  if (fs.size_bytes == 0 || fs.size_bytes > limit) {
    return FailedPreconditionError(
        "the " + fs_type + " filesystem on " + device + " is " +
        std::to_string(fs.size_bytes) + " bytes, more than the " +
        std::to_string(limit) +
        " bytes the encrypted volume can hold; nothing was encrypted, it is "
        "still a plain device");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<EncryptResult> EncryptInPlace(const FormatSpec& spec_in, bool force,
                                       bool init_only,
                                       const ConversionOptions& options) {
  if (!spec_in.recovery_password) {
    return InvalidArgumentError(
        "in-place encryption always creates a recovery password: a "
        "conversion that goes wrong must stay recoverable");
  }
  VOLMGR_ASSIGN_OR_RETURN(DeviceFacts facts, ProbeDevice(spec_in.device));
  VOLMGR_ASSIGN_OR_RETURN(FilesystemFacts fs, ProbeFilesystem(spec_in.device));
  const uint32_t want_sector = spec_in.sector_size;
  VOLMGR_ASSIGN_OR_RETURN(
      EncryptPlan plan,
      PlanEncryption(spec_in.device, facts.size_bytes, fs, force, want_sector));
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, LockForConversion(spec_in.device));

  // 1. Make room: check, then shrink an ext* filesystem.
  if (IsExt(fs.type)) {
    std::string out;
    VOLMGR_ASSIGN_OR_RETURN(
        int rc, RunTool({"e2fsck", "-f", "-p", spec_in.device}, &out));
    if (rc > 1) {  // 0 clean, 1 errors corrected
      return FailedPreconditionError(
          "e2fsck found errors on " + spec_in.device +
          " that it could not fix (exit " + std::to_string(rc) +
          "); repair the filesystem before encrypting: " + LastLine(out));
    }
  }
  if (plan.shrink) {
    std::string out;
    StatusOr<int> rc =
        RunTool({"resize2fs", spec_in.device,
                 std::to_string(plan.shrink_to_bytes / 1024) + "K"},
                &out);
    // resize2fs truncates a regular file to the filesystem's new size: the
    // image must keep its size (the header and the moved data go into the
    // tail), whatever resize2fs did or failed to do.
    Status size_back = KeepImageSize(spec_in.device, facts.size_bytes);
    if (!rc.ok()) return rc.status();
    VOLMGR_RETURN_IF_ERROR(size_back);
    if (*rc != 0) {
      return FailedPreconditionError(
          "the " + fs.type + " filesystem on " + spec_in.device +
          " cannot shrink by the 32 MiB encryption needs (resize2fs: " +
          LastLine(out) + "); free some space and retry");
    }
    VOLMGR_RETURN_IF_ERROR(FsyncPath(spec_in.device));
  }
  // Whatever ran above, the filesystem must end before the tail that the
  // header and the moved data take, on a device of the size planned for:
  // checked again before anything of the volume is written.
  VOLMGR_RETURN_IF_ERROR(
      CheckRoomForHeader(spec_in.device, facts.size_bytes, fs.type));

  // 2. The new header, with every protector, in a temporary file of its own
  // (Volume::Format, so protectors are made exactly as for `format`).
  VOLMGR_RETURN_IF_ERROR(MakeDirs(ConversionStateDirectory()));
  const std::string tmp = ConversionStateDirectory() + "/encrypt-" +
                          std::to_string(getpid()) + ".luks2.tmp";
  std::remove(tmp.c_str());
  {
    int fd = open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoToStatus(errno, "creating " + tmp);
    int rc = ftruncate(fd, static_cast<off_t>(kEncryptReduceBytes));
    close(fd);
    if (rc != 0) return ErrnoToStatus(errno, "sizing " + tmp);
  }
  struct Unlink {
    std::string path;
    ~Unlink() { std::remove(path.c_str()); }
  } unlink_tmp{tmp};
  FormatSpec spec = spec_in;
  spec.device = tmp;
  spec.sector_size = plan.sector_size;
  spec.force = true;
  VOLMGR_ASSIGN_OR_RETURN(FormatResult formatted, Volume::Format(spec));
  VOLMGR_ASSIGN_OR_RETURN(Volume hv, Volume::Load(tmp));
  if (hv.luks().data_offset_bytes() != kConversionHeaderBytes) {
    return InternalError("the new header's data offset is " +
                         std::to_string(hv.luks().data_offset_bytes()) +
                         ", expected 16 MiB");
  }
  // The VMK, through the recovery password just made: the same proof path
  // as any unlock, and the VMK keyslot is what the reencryption opens.
  protectors::Credentials creds;
  for (const auto& p : formatted.protectors) {
    if (p.shown_secret) {
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes s,
                              SecretBytes::CopyOf(p.shown_secret->Reveal()));
      creds.secrets.push_back(std::move(s));
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(UnlockResult unlocked, hv.Unlock(creds));
  const int vmk_slot = hv.vmk_keyslot();

  // 3. Reencryption metadata in the temporary header; libcryptsetup copies
  // the first 16 MiB of data to the free tail (MOVE_FIRST_SEGMENT).
  {
    VOLMGR_ASSIGN_OR_RETURN(CryptHandle h,
                            CryptHandle::Load(tmp, spec_in.device));
    crypt_params_luks2 luks2{};
    luks2.sector_size = plan.sector_size;
    crypt_params_reencrypt params{};
    params.mode = CRYPT_REENCRYPT_ENCRYPT;
    params.direction = CRYPT_REENCRYPT_BACKWARD;
    params.resilience = "datashift";
    params.hash = "sha256";
    params.data_shift = kConversionHeaderBytes / kSector;
    params.luks2 = &luks2;
    params.flags =
        CRYPT_REENCRYPT_INITIALIZE_ONLY | CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT;
    auto pass = unlocked.vmk.RevealAsString();
    int rc = crypt_reencrypt_init_by_passphrase(
        h.get(), nullptr, pass.data(), pass.size(), CRYPT_ANY_SLOT, vmk_slot,
        "aes", "xts-plain64", &params);
    if (rc < 0) {
      return h.Error(rc, "initialising the encryption of " + spec_in.device);
    }
  }
  VOLMGR_RETURN_IF_ERROR(FsyncPath(tmp));
  // libcryptsetup has copied the first kConversionHeaderBytes of data to
  // the tail of the device (the moved segment) and does not flush it: the
  // header written next goes over the original of that data, so the copy
  // must be on stable storage first, or a volatile write cache can keep the
  // header and lose the copy (issue 17 item 3). fsync of a block device
  // writes back its page cache and sends a cache flush; of a file, the
  // file's data.
  VOLMGR_RETURN_IF_ERROR(FsyncPath(spec_in.device));
  VOLMGR_RETURN_IF_ERROR(
      CheckRoomForHeader(spec_in.device, facts.size_bytes, fs.type));
  // 4. The header goes to the head of the device, over data that now lives
  // in the moved segment. From here the device is a volmgr volume.
  {
    VOLMGR_ASSIGN_OR_RETURN(CryptHandle h,
                            CryptHandle::Init(spec_in.device, spec_in.device));
    int rc = crypt_header_restore(h.get(), CRYPT_LUKS2, tmp.c_str());
    if (rc < 0) {
      return h.Error(rc,
                     "placing the new header at the head of " + spec_in.device);
    }
  }
  VOLMGR_RETURN_IF_ERROR(FsyncPath(spec_in.device));

  EncryptResult result;
  result.format = std::move(formatted);
  result.plan = plan;
  if (init_only) return result;
  VOLMGR_ASSIGN_OR_RETURN(
      result.finished,
      RunLocked(spec_in.device, spec_in.device, unlocked.vmk, options));
  return result;
}

StatusOr<bool> DecryptInPlace(Volume& vol, const SecretBytes& vmk,
                              bool init_only,
                              const ConversionOptions& options) {
  const std::string device = vol.device();
  const std::string header = options.header_file.empty()
                                 ? DefaultDecryptHeaderPath(device)
                                 : options.header_file;
  std::string resilience =
      options.resilience.empty() ? "datashift-checksum" : options.resilience;
  if (resilience == "checksum" || resilience == "journal") {
    resilience = "datashift-" + resilience;
  }
  if (resilience != "datashift-checksum" && resilience != "datashift-journal") {
    return InvalidArgumentError(
        "--resilience must be checksum or journal, not " + options.resilience);
  }
  if (access(header.c_str(), F_OK) == 0) {
    return AlreadyExistsError(header +
                              " exists: a decryption of this device may be "
                              "in progress (`volmgr conversion resume`)");
  }
  {
    VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, CryptHandle::Load(device, device));
    if (crypt_reencrypt_status(h.get(), nullptr) != CRYPT_REENCRYPT_NONE) {
      return FailedPreconditionError(
          device + " is already being converted; `volmgr conversion resume " +
          device + "` continues it");
    }
  }
  std::vector<std::string> maps = vol.ActiveMappingNames();
  if (maps.size() > 1) {
    return BusyError(device + " is mapped more than once");
  }
  std::string map_name = options.map_name;
  if (map_name.empty() && !maps.empty()) map_name = maps[0];
  if (!map_name.empty() && (maps.empty() || maps[0] != map_name)) {
    return FailedPreconditionError(
        "decryption runs online only through a mapping that is already "
        "open; `volmgr open " +
        device + " " + map_name + "` first");
  }
  if (map_name.empty()) {
    VOLMGR_ASSIGN_OR_RETURN(DeviceFacts facts, ProbeDevice(device));
    if (!facts.in_use.empty()) {
      return BusyError(device + " is " + facts.in_use);
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, LockForConversion(device));
  VOLMGR_RETURN_IF_ERROR(MakeDirs(ConversionStateDirectory()));
  auto slash = header.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    VOLMGR_RETURN_IF_ERROR(MakeDirs(header.substr(0, slash)));
  }
  auto pass = vmk.RevealAsString();
  // 1. Export the header; it must survive a power loss before the device's
  // own copy is erased.
  VOLMGR_RETURN_IF_ERROR(vol.luks().HeaderBackup(header));
  chmod(header.c_str(), 0600);
  // A second copy that never enters reencryption: Volume::Unlock proves a
  // VMK through the volume key, which libcryptsetup refuses to hand out
  // while a decryption is in progress. `conversion resume` unlocks with it.
  const std::string unlock_copy = DecryptUnlockHeaderPath(header);
  std::remove(unlock_copy.c_str());
  VOLMGR_RETURN_IF_ERROR(vol.luks().HeaderBackup(unlock_copy));
  chmod(unlock_copy.c_str(), 0600);
  VOLMGR_RETURN_IF_ERROR(FsyncPath(unlock_copy));
  VOLMGR_RETURN_IF_ERROR(FsyncPath(header));
  VOLMGR_RETURN_IF_ERROR(FsyncParentDir(header));
  auto restore = [&]() {
    if (LuksDevice::RestoreHeader(device, header).ok()) {
      std::remove(header.c_str());
      std::remove(unlock_copy.c_str());
    }
  };
  // 2. Erase the header's signatures on the device (as cryptsetup does):
  // from now on only the exported header describes the volume.
  if (Status s = WipeSignatures(device); !s.ok()) {
    restore();
    return s;
  }
  VOLMGR_RETURN_IF_ERROR(FsyncPath(device));
  // 3. Reencryption metadata in the exported header. libcryptsetup copies
  // the first data segment to the head of the device and then writes the
  // header, without flushing the device in between: had it written the
  // header file itself, a volatile write cache could keep the header (which
  // says the segment moved) and lose the copy (found by the dm-log-writes
  // replay, issue 17). So it writes a staged copy; the device is flushed;
  // only then does the staged header replace the exported one (rename, then
  // the directory synced). Cut before the rename, the exported header shows
  // a decryption that has not begun and `conversion resume` puts it back
  // (the moved copy overwrote only the old header area).
  const std::string staged = header + ".init";
  std::remove(staged.c_str());
  struct RemoveStaged {
    std::string path;
    ~RemoveStaged() { std::remove(path.c_str()); }
  } remove_staged{staged};
  if (Status s = CopyFileSynced(header, staged); !s.ok()) {
    restore();
    return s;
  }
  {
    StatusOr<CryptHandle> h = CryptHandle::Load(staged, device);
    if (!h.ok()) {
      restore();
      return h.status();
    }
    crypt_params_reencrypt params{};
    params.mode = CRYPT_REENCRYPT_DECRYPT;
    params.direction = CRYPT_REENCRYPT_FORWARD;
    params.resilience = resilience.c_str();
    params.hash = "sha256";
    params.data_shift = crypt_get_data_offset(h->get());
    params.flags =
        CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT | CRYPT_REENCRYPT_INITIALIZE_ONLY;
    int rc = crypt_reencrypt_init_by_passphrase(
        h->get(), map_name.empty() ? nullptr : map_name.c_str(), pass.data(),
        pass.size(), vol.vmk_keyslot(), CRYPT_ANY_SLOT, nullptr, nullptr,
        &params);
    if (rc < 0) {
      Status s = h->Error(rc, "initialising the decryption of " + device);
      if (crypt_reencrypt_status(h->get(), nullptr) == CRYPT_REENCRYPT_NONE) {
        restore();
      }
      return s;
    }
  }
  VOLMGR_RETURN_IF_ERROR(FsyncPath(device));
  VOLMGR_RETURN_IF_ERROR(FsyncPath(staged));
  if (std::rename(staged.c_str(), header.c_str()) != 0) {
    return ErrnoToStatus(errno, "replacing " + header);
  }
  VOLMGR_RETURN_IF_ERROR(FsyncParentDir(header));
  if (init_only) return false;
  ConversionOptions run = options;
  run.map_name = map_name;
  run.resilience.clear();
  VOLMGR_ASSIGN_OR_RETURN(bool done, RunLocked(device, header, vmk, run));
  if (done) {
    std::remove(header.c_str());
    std::remove(unlock_copy.c_str());
    FsyncParentDir(header).IgnoreError();
  }
  return done;
}

StatusOr<ConversionStatus> GetConversionStatus(const std::string& device,
                                               const std::string& header_in) {
  ConversionStatus s;
  std::string header = header_in;
  if (access(device.c_str(), F_OK) != 0) {
    return ErrnoToStatus(errno, device);
  }
  if (!header.empty() && header != device &&
      access(header.c_str(), F_OK) != 0) {
    // The exported header of a decryption is deleted when it ends.
    if (!CryptHandle::Load(device, device).ok()) {
      s.is_volume = LooksLikeLuks(device);
      return s;
    }
    header.clear();
  }
  if (header.empty()) {
    auto on_device = CryptHandle::Load(device, device);
    if (on_device.ok()) {
      header = device;
    } else if (access(DefaultDecryptHeaderPath(device).c_str(), F_OK) == 0) {
      header = DefaultDecryptHeaderPath(device);
    } else if (access(device.c_str(), F_OK) == 0 && !LooksLikeLuks(device)) {
      // A plain device (a filesystem, nothing): no volume, no conversion.
      s.is_volume = false;
      return s;
    } else {
      return on_device.status();
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, CryptHandle::Load(header, device));
  s.header = header;
  s.uuid = crypt_get_uuid(h.get()) ? crypt_get_uuid(h.get()) : "";
  crypt_params_reencrypt p{};
  crypt_reencrypt_info ri = crypt_reencrypt_status(h.get(), &p);
  if (ri == CRYPT_REENCRYPT_NONE) {
    if (header != device && IsFinishedDecryptionHeader(h)) {
      // Decrypted; only the header file's removal is missing.
      s.in_progress = true;
      s.direction = ConversionDirection::kDecrypt;
      s.progress.direction = s.direction;
      s.cleanup_pending = true;
    }
    return s;
  }
  s.in_progress = true;
  s.crashed = ri == CRYPT_REENCRYPT_CRASH;
  s.direction = p.mode == CRYPT_REENCRYPT_DECRYPT
                    ? ConversionDirection::kDecrypt
                    : ConversionDirection::kEncrypt;
  s.resilience = p.resilience ? p.resilience : "";
  s.progress.direction = s.direction;
  if (ri == CRYPT_REENCRYPT_CLEAN && p.mode != CRYPT_REENCRYPT_REENCRYPT) {
    auto j = HeaderJson(h);
    s.cleanup_pending = j.ok() && AllChunksDone(*j, s.direction);
  }
  if (auto j = ReadState(s.uuid)) {
    s.running = StateProcessAlive(*j);
    // Said "running" when it was last written, and nobody runs it now: it
    // stopped without pausing (a pause writes running = false).
    s.interrupted = !s.running && StateBool(*j, "running");
    s.progress.size_bytes = StateU64(*j, "size_bytes");
    s.progress.done_bytes =
        std::min(StateU64(*j, "done_bytes"), s.progress.size_bytes);
    if (s.running) {
      s.progress.bytes_per_second = static_cast<double>(
          std::max<int64_t>(0, StateInt(*j, "bytes_per_second", 0)));
      s.progress.eta_seconds =
          static_cast<double>(StateInt(*j, "eta_seconds", -1));
    }
  }
  if (s.cleanup_pending && s.progress.size_bytes > 0) {
    s.progress.done_bytes = s.progress.size_bytes;
  }
  return s;
}

StatusOr<bool> ResumeConversion(const std::string& device,
                                const SecretBytes& vmk,
                                const ConversionOptions& options) {
  std::string header = options.header_file;
  if (header.empty()) {
    header = CryptHandle::Load(device, device).ok()
                 ? device
                 : DefaultDecryptHeaderPath(device);
  }
  if (header != device && access(header.c_str(), F_OK) != 0) {
    return NotFoundError(device +
                         " has no LUKS2 header and no decryption header "
                         "was found at " +
                         header + " (give it with --header)");
  }
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, CryptHandle::Load(header, device));
  crypt_params_reencrypt p{};
  const crypt_reencrypt_info ri = crypt_reencrypt_status(h.get(), &p);
  const bool decrypt = p.mode == CRYPT_REENCRYPT_DECRYPT;
  if (ri == CRYPT_REENCRYPT_NONE) {
    if (header != device && IsFinishedDecryptionHeader(h)) {
      // Cut after libcryptsetup finished and cleaned up, before the header
      // file was deleted (found by the dm-log-writes replay, issue 17):
      // the device is plain; putting this header back would overwrite the
      // start of the decrypted filesystem.
      std::remove(header.c_str());
      std::remove(DecryptUnlockHeaderPath(header).c_str());
      FsyncParentDir(header).IgnoreError();
      return true;
    }
    if (header != device) {
      // Decryption was set up but the header was exported only: nothing
      // moved yet, so the exported header goes back.
      VOLMGR_RETURN_IF_ERROR(LuksDevice::RestoreHeader(device, header));
      std::remove(header.c_str());
      std::remove(DecryptUnlockHeaderPath(header).c_str());
      return FailedPreconditionError(
          "the decryption of " + device +
          " had not started; its header was put back and the volume is "
          "encrypted as before");
    }
    return FailedPreconditionError("no conversion of " + device +
                                   " is in progress");
  }
  VOLMGR_ASSIGN_OR_RETURN(VolumeLock lock, LockForConversion(device));
  ConversionOptions run = options;
  VOLMGR_ASSIGN_OR_RETURN(bool done, RunLocked(device, header, vmk, run));
  if (done && decrypt && header != device) {
    std::remove(header.c_str());
    std::remove(DecryptUnlockHeaderPath(header).c_str());
    FsyncParentDir(header).IgnoreError();
  }
  return done;
}

StatusOr<bool> FinishCompletedConversion(const std::string& header,
                                         const std::string& device) {
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle h, CryptHandle::Load(header, device));
  crypt_params_reencrypt p{};
  if (crypt_reencrypt_status(h.get(), &p) != CRYPT_REENCRYPT_CLEAN ||
      p.mode == CRYPT_REENCRYPT_REENCRYPT) {
    return false;
  }
  const ConversionDirection dir = p.mode == CRYPT_REENCRYPT_DECRYPT
                                      ? ConversionDirection::kDecrypt
                                      : ConversionDirection::kEncrypt;
  VOLMGR_ASSIGN_OR_RETURN(Json j, HeaderJson(h));
  if (!AllChunksDone(j, dir)) return false;
  // A decryption: the data is plain and in place; the detached header only
  // still holds keys, and the caller deletes it.
  if (dir == ConversionDirection::kDecrypt) return true;
  if (header != device) {
    return UnsupportedError(
        "finishing an encryption with a detached header is not supported");
  }
  VOLMGR_RETURN_IF_ERROR(FinishEncryption(h, j, device));
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle check, CryptHandle::Load(device, device));
  if (crypt_reencrypt_status(check.get(), nullptr) != CRYPT_REENCRYPT_NONE) {
    return InternalError("the header of " + device +
                         " is still in reencryption after its clean-up");
  }
  return true;
}

Status AttachDataDevice(const Volume& vol, const std::string& device) {
  if (vol.device() == device) return Status::Ok();
  int rc = crypt_set_data_device(vol.luks().handle(), device.c_str());
  if (rc < 0) {
    return Status(StatusCode::kIoError,
                  "cannot use " + device + " as the data device of " +
                      vol.device() + ": " + std::strerror(-rc),
                  {ForeignSource::kCryptsetup, rc});
  }
  return Status::Ok();
}

Status PauseConversion(const std::string& device, const std::string& header,
                       int wait_seconds) {
  VOLMGR_ASSIGN_OR_RETURN(ConversionStatus s,
                          GetConversionStatus(device, header));
  if (!s.in_progress) {
    return NotFoundError("no conversion of " + device + " is in progress");
  }
  auto j = ReadState(s.uuid);
  if (!j || !StateProcessAlive(*j)) {
    return NotFoundError("the conversion of " + device +
                         " is not running (it is paused already)");
  }
  const pid_t pid = static_cast<pid_t>(StateInt(*j, "pid", 0));
  if (pid <= 0) return NotFoundError("no volmgr process converts " + device);
  if (kill(pid, SIGINT) != 0) {
    return ErrnoToStatus(errno,
                         "signalling volmgr process " + std::to_string(pid));
  }
  const auto until = Clock::now() + std::chrono::seconds(wait_seconds);
  while (Clock::now() < until) {
    if (kill(pid, 0) != 0) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return BusyError("volmgr process " + std::to_string(pid) +
                   " did not pause within " + std::to_string(wait_seconds) +
                   " s");
}

std::string ConversionStatusLine(const ConversionStatus& s) {
  if (!s.in_progress) return "";
  std::string what = s.direction == ConversionDirection::kEncrypt
                         ? "Encryption"
                         : "Decryption";
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.0f %%", s.progress.percent());
  const bool known = s.progress.size_bytes > 0;
  if (!s.running) {
    if (s.cleanup_pending) {
      return what + " complete, but its clean-up was interrupted (" +
             (s.direction == ConversionDirection::kEncrypt
                  ? "`volmgr conversion resume` or `volmgr open` finishes it)"
                  : "`volmgr conversion resume` removes the leftover header "
                    "file)");
    }
    if (s.crashed) {
      return what + " interrupted (crash; recovered on resume)" +
             (known ? std::string(" at ") + pct : std::string());
    }
    if (s.interrupted) {
      return what + " interrupted" +
             (known ? std::string(" at ") + pct : std::string()) +
             " (the converting process stopped without pausing; `volmgr "
             "conversion resume` continues it)";
    }
    return what + " paused" +
           (known ? std::string(" at ") + pct : std::string());
  }
  std::string line = what + " in progress: " + (known ? pct : "starting");
  if (s.progress.bytes_per_second > 0) {
    char rate[32];
    std::snprintf(rate, sizeof rate, ", %.0f MiB/s",
                  s.progress.bytes_per_second / (1 << 20));
    line += rate;
    const double eta = s.progress.eta_seconds;
    if (eta >= 0) {
      char e[32];
      if (eta < 90) {
        std::snprintf(e, sizeof e, ", ETA %.0f s", eta);
      } else if (eta < 90 * 60) {
        std::snprintf(e, sizeof e, ", ETA %.0f min", eta / 60);
      } else {
        std::snprintf(e, sizeof e, ", ETA %.1f h", eta / 3600);
      }
      line += e;
    }
  }
  return line;
}

}  // namespace volmgr::volume
