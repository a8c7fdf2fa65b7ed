#include "volmgr/recover/extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>

#include "dmtarget/sector_transform.h"

namespace volmgr::recover {
namespace {

using Json = nlohmann::json;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status WriteFully(int fd, std::span<const uint8_t> buf, uint64_t pos) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = pwrite(fd, buf.data() + done, buf.size() - done,
                       static_cast<off_t>(pos + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return ErrnoToStatus(
          n < 0 ? errno : ENOSPC,
          "writing the output at byte " + std::to_string(pos + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

bool AllZero(std::span<const uint8_t> buf) {
  // Compare word-wise; the plaintext of an unused area is all zeros.
  const uint8_t* p = buf.data();
  size_t n = buf.size();
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
    if ((i & 4095) == 4088 && acc != 0) return false;
  }
  for (; i < n; ++i) acc |= p[i];
  return acc == 0;
}

// The sidecar that makes --resume safe: it names the volume and geometry it
// belongs to and the payload bytes known to be on stable storage.
struct ResumeState {
  std::string volume_uuid;
  uint64_t payload_bytes = 0;
  uint32_t sector_size = 0;
  uint64_t done_bytes = 0;
  std::vector<ByteRange> unreadable;
};

std::string StatePath(const std::string& output) {
  return output + std::string(kStateSuffix);
}

// The state file and its temporary sit beside the output, maybe in a
// directory others can write: a symbolic link planted at either name would
// make root write (or read) whatever it points to. Never follow one.
Status RefuseLink(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoToStatus(errno, "checking " + path);
  }
  if (S_ISLNK(st.st_mode)) {
    return FailedPreconditionError(
        path +
        " is a symbolic link; volmgr-recover never follows a link at its "
        "state file (someone else may have planted it): remove it and run "
        "again");
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError(
        path + " exists and is not a regular file: remove it and run again");
  }
  return Status::Ok();
}

Status SaveState(const std::string& output, const ResumeState& s) {
  Json bad = Json::array();
  for (const auto& r : s.unreadable) bad.push_back({r.begin, r.end});
  Json j = {{"format", "volmgr-recover-extract-state"},
            {"version", 1},
            {"volume_uuid", s.volume_uuid},
            {"payload_bytes", s.payload_bytes},
            {"sector_size", s.sector_size},
            {"done_bytes", s.done_bytes},
            {"unreadable", bad}};
  const std::string text = j.dump() + "\n";
  const std::string path = StatePath(output);
  const std::string tmp = path + ".tmp";
  VOLMGR_RETURN_IF_ERROR(RefuseLink(tmp));
  // A regular file here is a checkpoint a crash left before its rename:
  // unlink removes only that name (never a link's target), and O_EXCL |
  // O_NOFOLLOW then creates a new file or fails; it never opens one that
  // someone planted in between (issue 17, item 14).
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "removing the stale " + tmp);
  }
  Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             0600));
  if (fd.get() < 0) {
    if (errno == EEXIST || errno == ELOOP) {
      return FailedPreconditionError(
          tmp +
          " appeared while volmgr-recover was creating it (another "
          "process is writing there); nothing was written through it");
    }
    return ErrnoToStatus(errno, "creating " + tmp);
  }
  VOLMGR_RETURN_IF_ERROR(WriteFully(
      fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()},
      0));
  if (fsync(fd.get()) != 0) return ErrnoToStatus(errno, "fsync " + tmp);
  // rename() replaces the old state atomically: a crash leaves the old or
  // the new checkpoint, both true.
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoToStatus(errno, "renaming " + tmp);
  }
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  Fd d(open(dir.empty() ? "." : dir.c_str(),
            O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() >= 0) fsync(d.get());
  return Status::Ok();
}

StatusOr<ResumeState> LoadState(const std::string& output) {
  const std::string path = StatePath(output);
  VOLMGR_RETURN_IF_ERROR(RefuseLink(path));
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return FailedPreconditionError("nothing to resume: " + path +
                                     " does not exist (run without --resume)");
    }
    return ErrnoToStatus(errno, "opening " + path);
  }
  // A state file is a few hundred bytes; one with millions of unreadable
  // ranges is still far below this bound.
  constexpr size_t kMaxStateBytes = 64u << 20;
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "reading " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxStateBytes) {
      return CorruptionError(path + " is too large for a state file");
    }
  }
  Json j = Json::parse(text, nullptr, false);
  auto bad = CorruptionError(path + " is not a volmgr-recover state file");
  // Every field is type-checked before it is read: the file sits beside
  // the output, where anyone who can write the directory can change it.
  auto is_string = [&](const char* k, std::string_view want) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() &&
           it->get_ref<const std::string&>() == want;
  };
  if (!j.is_object() || !is_string("format", "volmgr-recover-extract-state") ||
      !j.contains("version") || !j["version"].is_number_unsigned() ||
      j["version"].get<uint64_t>() != 1) {
    return bad;
  }
  auto u64 = [](const Json& v, uint64_t* out) {
    if (!v.is_number_unsigned()) return false;
    *out = v.get<uint64_t>();
    return true;
  };
  ResumeState s;
  uint64_t sector = 0;
  auto uuid = j.find("volume_uuid");
  auto ranges = j.find("unreadable");
  if (uuid == j.end() || !uuid->is_string() || ranges == j.end() ||
      !ranges->is_array() || !j.contains("payload_bytes") ||
      !u64(j["payload_bytes"], &s.payload_bytes) ||
      !j.contains("sector_size") || !u64(j["sector_size"], &sector) ||
      sector > UINT32_MAX || !j.contains("done_bytes") ||
      !u64(j["done_bytes"], &s.done_bytes)) {
    return bad;
  }
  s.volume_uuid = uuid->get<std::string>();
  s.sector_size = static_cast<uint32_t>(sector);
  for (const auto& r : *ranges) {
    ByteRange b;
    if (!r.is_array() || r.size() != 2 || !u64(r[0], &b.begin) ||
        !u64(r[1], &b.end) || b.begin >= b.end) {
      return bad;
    }
    s.unreadable.push_back(b);
  }
  return s;
}

}  // namespace

StatusOr<ExtractResult> Extract(const SegmentReader& reader,
                                const SecretBytes& fvek,
                                const ExtractOptions& options) {
  const DataSegment& seg = reader.segment();
  const size_t chunk = options.chunk_bytes;
  if (chunk == 0 || chunk % 4096 != 0 || chunk > (256u << 20)) {
    return InvalidArgumentError(
        "chunk size must be a multiple of 4 KiB up to "
        "256 MiB");
  }
  if (options.output.empty()) return InvalidArgumentError("no output given");

  struct stat st {};
  const bool exists = stat(options.output.c_str(), &st) == 0;
  const bool is_block = exists && S_ISBLK(st.st_mode);
  ResumeState state{seg.uuid, seg.payload_bytes, seg.sector_size, 0, {}};
  if (options.resume) {
    VOLMGR_ASSIGN_OR_RETURN(ResumeState old, LoadState(options.output));
    if (old.volume_uuid != seg.uuid || old.payload_bytes != seg.payload_bytes ||
        old.sector_size != seg.sector_size) {
      return FailedPreconditionError(
          "cannot resume: " + StatePath(options.output) +
          " belongs to an extract of volume " + old.volume_uuid + " (" +
          std::to_string(old.payload_bytes) + " bytes, sector " +
          std::to_string(old.sector_size) + "), not of volume " + seg.uuid +
          " (" + std::to_string(seg.payload_bytes) + " bytes, sector " +
          std::to_string(seg.sector_size) + ")");
    }
    if (!exists) {
      return FailedPreconditionError("cannot resume: the output " +
                                     options.output + " is gone");
    }
    if (old.done_bytes % seg.sector_size != 0 ||
        old.done_bytes > seg.payload_bytes) {
      return CorruptionError(StatePath(options.output) +
                             " claims an impossible offset");
    }
    state = std::move(old);
  } else if (exists && !is_block && !options.force) {
    return AlreadyExistsError(options.output +
                              " exists; use --resume to continue an "
                              "interrupted extract or --force to overwrite it");
  }

  // Before the output is created: a planted link refuses the whole run.
  VOLMGR_RETURN_IF_ERROR(RefuseLink(StatePath(options.output)));
  VOLMGR_RETURN_IF_ERROR(RefuseLink(StatePath(options.output) + ".tmp"));
  int flags = O_WRONLY | O_CLOEXEC;
  if (!is_block) flags |= O_CREAT;
  // A new output is created, never opened: no link can be planted between
  // the stat() above and this open().
  if (!exists) flags |= O_EXCL;
  if (!is_block && !options.resume) flags |= O_TRUNC;
  Fd out(open(options.output.c_str(), flags, 0600));
  if (out.get() < 0) return ErrnoToStatus(errno, "opening " + options.output);
  if (is_block) {
    off_t end = lseek(out.get(), 0, SEEK_END);
    if (end < 0 || static_cast<uint64_t>(end) < seg.payload_bytes) {
      return InvalidArgumentError(options.output + " is smaller than the " +
                                  std::to_string(seg.payload_bytes) +
                                  "-byte plaintext");
    }
  } else if (ftruncate(out.get(), static_cast<off_t>(seg.payload_bytes)) != 0) {
    // Holes read as zeros: skipped all-zero chunks need no write.
    return ErrnoToStatus(errno, "sizing " + options.output);
  }
  const bool sparse = options.sparse && !is_block;

  VOLMGR_ASSIGN_OR_RETURN(
      dmtarget::XtsSectorTransform xts,
      dmtarget::XtsSectorTransform::Create(
          fvek, seg.sector_size, seg.iv_offset,
          {.threads = std::clamp(options.threads, 1u,
                                 dmtarget::XtsSectorTransform::kMaxThreads)}));

  ExtractResult result;
  result.total_bytes = seg.payload_bytes;
  result.resumed_from = state.done_bytes;
  if (!options.resume) VOLMGR_RETURN_IF_ERROR(SaveState(options.output, state));

  // Double buffering: the next chunk is read while this one is decrypted and
  // written, so the source device never idles behind the CPU.
  struct Pending {
    std::vector<uint8_t> buf;
    std::vector<ByteRange> bad;
    Status status;
  };
  auto start_read = [&](uint64_t at, std::vector<uint8_t> buf) {
    return std::async(std::launch::async,
                      [&reader, at, b = std::move(buf),
                       total = seg.payload_bytes, chunk]() mutable {
                        Pending p;
                        b.resize(std::min<uint64_t>(chunk, total - at));
                        p.status = reader.Read(at, b, p.bad);
                        p.buf = std::move(b);
                        return p;
                      });
  };

  using Clock = std::chrono::steady_clock;
  auto last_checkpoint = Clock::now();
  uint64_t pos = state.done_bytes;
  std::future<Pending> next;
  if (pos < seg.payload_bytes)
    next = start_read(pos, std::vector<uint8_t>(chunk));
  std::vector<uint8_t> spare(chunk);
  while (pos < seg.payload_bytes) {
    Pending cur = next.get();
    VOLMGR_RETURN_IF_ERROR(cur.status);
    const uint64_t len = cur.buf.size();
    if (pos + len < seg.payload_bytes) {
      next = start_read(pos + len, std::move(spare));
    }
    VOLMGR_RETURN_IF_ERROR(
        xts.Decrypt(pos / seg.sector_size, cur.buf, cur.buf));
    // Unreadable ciphertext was zero-filled; its "plaintext" is noise.
    // Write zeros there instead, as the report says.
    for (const auto& r : cur.bad) {
      std::memset(cur.buf.data() + (r.begin - pos), 0, r.end - r.begin);
      AppendRange(state.unreadable, r);
    }
    if (sparse && AllZero(cur.buf)) {
      result.hole_bytes += len;
    } else {
      VOLMGR_RETURN_IF_ERROR(WriteFully(out.get(), cur.buf, pos));
    }
    pos += len;
    spare = std::move(cur.buf);
    spare.resize(chunk);
    if (options.progress) options.progress(pos, seg.payload_bytes);
    if (Clock::now() - last_checkpoint >=
            std::chrono::seconds(options.checkpoint_seconds) &&
        pos < seg.payload_bytes) {
      if (fdatasync(out.get()) != 0) {
        return ErrnoToStatus(errno, "flushing " + options.output);
      }
      state.done_bytes = pos;
      VOLMGR_RETURN_IF_ERROR(SaveState(options.output, state));
      last_checkpoint = Clock::now();
    }
  }
  if (fdatasync(out.get()) != 0) {
    return ErrnoToStatus(errno, "flushing " + options.output);
  }
  // Done: the state file has served its purpose.
  unlink(StatePath(options.output).c_str());
  result.unreadable = std::move(state.unreadable);
  return result;
}

}  // namespace volmgr::recover
