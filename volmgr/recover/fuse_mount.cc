#include "volmgr/recover/fuse_mount.h"

#define FUSE_USE_VERSION 35
#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "volmgr/recover/plaintext_reader.h"

namespace volmgr::recover {
namespace {

// What the FUSE callbacks see (fuse_get_context()->private_data).
struct MountState {
  const PlaintextReader* reader = nullptr;
  std::string file_path;  // "/plain.img"
  uid_t uid = 0;
  gid_t gid = 0;
  timespec mounted_at{};
  const std::function<void(const Status&)>* on_read_error = nullptr;
};

MountState& State() {
  return *static_cast<MountState*>(fuse_get_context()->private_data);
}

void* Init(fuse_conn_info* /*conn*/, fuse_config* cfg) {
  // The plaintext never changes under us: let the kernel cache it, and
  // number inodes ourselves so `stat` is stable.
  cfg->kernel_cache = 1;
  cfg->use_ino = 1;
  cfg->entry_timeout = 3600;
  cfg->attr_timeout = 3600;
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* /*fi*/) {
  const MountState& s = State();
  std::memset(st, 0, sizeof *st);
  st->st_uid = s.uid;
  st->st_gid = s.gid;
  st->st_atim = st->st_mtim = st->st_ctim = s.mounted_at;
  if (std::strcmp(path, "/") == 0) {
    st->st_ino = 1;
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    return 0;
  }
  if (s.file_path == path) {
    st->st_ino = 2;
    st->st_mode = S_IFREG | 0400;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(s.reader->size());
    st->st_blksize = static_cast<blksize_t>(s.reader->segment().sector_size);
    st->st_blocks = static_cast<blkcnt_t>(s.reader->size() / 512);
    return 0;
  }
  return -ENOENT;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler,
            off_t /*offset*/, fuse_file_info* /*fi*/,
            fuse_readdir_flags /*flags*/) {
  if (std::strcmp(path, "/") != 0) return -ENOTDIR;
  const auto none = static_cast<fuse_fill_dir_flags>(0);
  filler(buf, ".", nullptr, 0, none);
  filler(buf, "..", nullptr, 0, none);
  filler(buf, State().file_path.c_str() + 1, nullptr, 0, none);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  if (State().file_path != path) return -ENOENT;
  // The mount is read-only already ("ro"); this is the second fence.
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) {
    return -EROFS;
  }
  fi->keep_cache = 1;
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t offset,
         fuse_file_info* /*fi*/) {
  const MountState& s = State();
  if (s.file_path != path) return -ENOENT;
  if (offset < 0) return -EINVAL;
  auto n = s.reader->Read(static_cast<uint64_t>(offset),
                          {reinterpret_cast<uint8_t*>(buf), size});
  if (!n.ok()) {
    if (s.on_read_error != nullptr && *s.on_read_error) {
      (*s.on_read_error)(n.status());
    }
    return -EIO;
  }
  return static_cast<int>(*n);
}

fuse_operations Operations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  return ops;
}

// Owns a `struct fuse` and its mount: unmounts and destroys it on the way
// out, whatever the path.
class FuseHandle {
 public:
  static StatusOr<FuseHandle> Create(const std::string& fs_name,
                                     MountState* state) {
    const std::string opts =
        "ro,default_permissions,noatime,fsname=" + fs_name +
        ",subtype=volmgr-recover";
    std::vector<std::string> argv_s = {"volmgr-recover", "-o", opts};
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    const fuse_operations ops = Operations();
    fuse* f = fuse_new(&args, &ops, sizeof ops, state);
    fuse_opt_free_args(&args);
    if (f == nullptr) return InternalError("fuse_new failed");
    return FuseHandle(f);
  }
  FuseHandle(FuseHandle&& o) noexcept
      : f_(std::exchange(o.f_, nullptr)),
        mounted_(std::exchange(o.mounted_, false)) {}
  FuseHandle& operator=(FuseHandle&&) = delete;
  FuseHandle(const FuseHandle&) = delete;
  FuseHandle& operator=(const FuseHandle&) = delete;
  ~FuseHandle() {
    if (f_ == nullptr) return;
    if (mounted_) fuse_unmount(f_);
    fuse_destroy(f_);
  }

  Status Mount(const std::string& mountpoint) {
    if (fuse_mount(f_, mountpoint.c_str()) != 0) {
      return UnavailableError("the kernel refused the FUSE mount on " +
                              mountpoint +
                              " (is the fuse module loaded, /dev/fuse "
                              "usable and fusermount3 installed?)");
    }
    mounted_ = true;
    return Status::Ok();
  }

  // Serves requests until unmounted or a signal arrives.
  Status Loop() {
    fuse_session* se = fuse_get_session(f_);
    if (fuse_set_signal_handlers(se) != 0) {
      return InternalError("fuse_set_signal_handlers failed");
    }
    // > 0: the signal that ended the loop, a clean exit for us.
    const int rc = fuse_loop(f_);
    fuse_remove_signal_handlers(se);
    if (rc < 0) return ErrnoToStatus(-rc, "serving the FUSE mount");
    return Status::Ok();
  }

 private:
  explicit FuseHandle(fuse* f) : f_(f) {}
  fuse* f_ = nullptr;
  bool mounted_ = false;
};

// Mount, then `ready`, then serve until unmounted.
Status MountAndServe(const PlaintextReader& reader,
                     const FuseMountOptions& options,
                     const std::function<void()>& ready) {
  MountState state;
  state.reader = &reader;
  state.file_path = "/" + std::string(kPlainFileName);
  state.uid = getuid();
  state.gid = getgid();
  clock_gettime(CLOCK_REALTIME, &state.mounted_at);
  state.on_read_error = &options.on_read_error;
  VOLMGR_ASSIGN_OR_RETURN(
      FuseHandle fuse,
      FuseHandle::Create("volmgr-recover:" + reader.segment().uuid, &state));
  VOLMGR_RETURN_IF_ERROR(fuse.Mount(options.mountpoint));
  ready();
  return fuse.Loop();
}

// The child -> parent readiness report: one byte (0 = mounted, else the
// StatusCode), then the error message.
void Report(int fd, const Status& s) {
  std::string msg(1, static_cast<char>(s.code()));
  msg += s.message();
  size_t done = 0;
  while (done < msg.size()) {
    ssize_t n = write(fd, msg.data() + done, msg.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Keys the reader, then drops the key (OpenSSL's contexts hold it now).
StatusOr<PlaintextReader> MakeReader(const UnlockFn& unlock, unsigned threads) {
  VOLMGR_ASSIGN_OR_RETURN(PlaintextSource src, unlock());
  return PlaintextReader::Create(std::move(src.reader), src.fvek, threads);
}

// The background child: unlock, mount, print, detach, report, serve.
[[noreturn]] void RunChild(int report_fd, const UnlockFn& unlock,
                           const FuseMountOptions& options) {
  int rc = 0;
  {
    bool reported = false;
    Status s = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(PlaintextReader pr,
                              MakeReader(unlock, options.threads));
      return MountAndServe(pr, options, [&] {
        if (options.on_mounted) options.on_mounted();
        std::fflush(nullptr);
        setsid();
        if (int null = open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
          dup2(null, STDIN_FILENO);
          dup2(null, STDOUT_FILENO);
          dup2(null, STDERR_FILENO);
          if (null > STDERR_FILENO) close(null);
        }
        Report(report_fd, Status::Ok());
        close(report_fd);
        reported = true;
      });
    }();
    if (!s.ok()) {
      if (!reported) Report(report_fd, s);
      rc = 1;
    }
  }
  _exit(rc);
}

}  // namespace

Status CheckMountpoint(const std::string& mountpoint) {
  struct stat st = {};
  struct stat parent = {};
  if (stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return BusyError(mountpoint +
                       " is a FUSE mount whose server is gone: run "
                       "`fusermount3 -u " +
                       mountpoint + "` first");
    }
    if (errno == ENOENT) {
      return NotFoundError("mount point " + mountpoint +
                           " does not exist (create the directory first)");
    }
    return ErrnoToStatus(errno, "mount point " + mountpoint);
  }
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgumentError("mount point " + mountpoint +
                                " is not a directory");
  }
  const std::string up = mountpoint + "/..";
  if (stat(up.c_str(), &parent) != 0) {
    return ErrnoToStatus(errno, "parent of mount point " + mountpoint);
  }
  // A mount point's root differs in device from its parent (or is its own
  // parent, for "/").
  if (st.st_dev != parent.st_dev || st.st_ino == parent.st_ino) {
    return BusyError(mountpoint +
                     " is already a mount point; unmount it first "
                     "(`fusermount3 -u " +
                     mountpoint + "`) or choose another directory");
  }
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return UnavailableError(
        "/dev/fuse is not usable here (" + std::string(std::strerror(errno)) +
        "): load the fuse module, or in a container pass --device /dev/fuse");
  }
  return Status::Ok();
}

Status ServePlaintext(const UnlockFn& unlock, const FuseMountOptions& options) {
  VOLMGR_RETURN_IF_ERROR(CheckMountpoint(options.mountpoint));
  if (options.foreground) {
    VOLMGR_ASSIGN_OR_RETURN(PlaintextReader pr,
                            MakeReader(unlock, options.threads));
    return MountAndServe(pr, options, [&] {
      if (options.on_mounted) options.on_mounted();
    });
  }
  std::fflush(nullptr);  // nothing buffered may be written twice
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe2");
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    return ErrnoToStatus(err, "fork");
  }
  if (pid == 0) {
    close(pipefd[0]);
    RunChild(pipefd[1], unlock, options);
  }
  close(pipefd[1]);
  std::string report;
  char buf[512];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  if (!report.empty() && report[0] == 0) return Status::Ok();
  // The child failed before serving: reap it and pass its reason on.
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (report.empty()) {
    return InternalError(
        "the background mount process exited without a report");
  }
  return Status(static_cast<StatusCode>(report[0]), report.substr(1));
}

}  // namespace volmgr::recover
