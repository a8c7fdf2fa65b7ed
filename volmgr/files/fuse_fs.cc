#define FUSE_USE_VERSION 312
#include "volmgr/files/fuse_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "volmgr/files/encrypted_file.h"
#include "volmgr/files/fuse_loop.h"
#include "volmgr/files/key_shredder.h"
#include "volmgr/files/store_lock.h"
#include "volmgr/files/verify.h"

namespace volmgr::files {

Status UnmountOnly(const std::string& mountpoint);

namespace {

// One open ciphertext inode, shared by every handle that opened it.
struct Node {
  std::shared_mutex mu;  // readers shared, writers/truncate exclusive
  int fd = -1;
  ino_t ino = 0;
  FileHeader header;
  SecretBytes key;
  TailCache tail;       // last chunk's plaintext, under `mu` (exclusive)
  std::string display;  // plaintext path at open, for log lines
  int refs = 0;

  // Keyed ChunkCiphers for this file, one per concurrent request: making
  // one per request (two EVP contexts, two key schedules, both cleansed on
  // free) cost more than the AES of a small read. A ChunkCipher is not
  // thread-safe, so a request takes one out and puts it back.
  std::mutex ciphers_mu;
  std::vector<std::unique_ptr<ChunkCipher>> ciphers;

  StatusOr<std::unique_ptr<ChunkCipher>> TakeCipher() {
    {
      std::lock_guard l(ciphers_mu);
      if (!ciphers.empty()) {
        auto c = std::move(ciphers.back());
        ciphers.pop_back();
        return c;
      }
    }
    VOLMGR_ASSIGN_OR_RETURN(ChunkCipher c, ChunkCipher::Create(key, header));
    return std::make_unique<ChunkCipher>(std::move(c));
  }
  void ReturnCipher(std::unique_ptr<ChunkCipher> c) {
    std::lock_guard l(ciphers_mu);
    if (ciphers.size() < 8) ciphers.push_back(std::move(c));
  }
};

// An EncryptedFile view of a Node for one request, with a pooled cipher.
class NodeFile {
 public:
  static StatusOr<NodeFile> Of(Node& n) {
    VOLMGR_ASSIGN_OR_RETURN(std::unique_ptr<ChunkCipher> c, n.TakeCipher());
    return NodeFile(n, std::move(c));
  }
  NodeFile(NodeFile&&) = default;
  ~NodeFile() {
    if (cipher_) node_->ReturnCipher(std::move(cipher_));
  }
  EncryptedFile& file() { return file_; }

 private:
  NodeFile(Node& n, std::unique_ptr<ChunkCipher> c)
      : node_(&n), cipher_(std::move(c)), file_(n.fd, cipher_.get(), &n.tail) {}
  Node* node_;
  std::unique_ptr<ChunkCipher> cipher_;
  EncryptedFile file_;
};

// fi->fh of an open file (node set) or an open directory (dir_path set).
struct Handle {
  std::shared_ptr<Node> node;
  bool append = false;
  std::string dir_path;

  // An open directory's listing, read when the kernel asks from offset 0
  // and handed out by offset: libfuse's high-level API passes READDIRPLUS
  // attributes on only for entries filled with a non-zero offset.
  struct Listed {
    std::string name;
    struct stat st;
    bool plus;  // st is the full plaintext stat
  };
  std::mutex dir_mu;
  std::vector<Listed> listing;
};

struct Resolved {
  std::string cpath;
  std::string parent;
  std::string entry;    // on-disk name in parent
  std::string encoded;  // full encoded name (== entry unless long)
  bool is_long() const { return entry != encoded; }
};

int ErrnoOf(const Status& s) {
  if (s.foreign().source == ForeignSource::kErrno) {
    return static_cast<int>(s.foreign().value);
  }
  switch (s.code()) {
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kInvalidArgument:
      return s.message().find("too long") != std::string::npos ? ENAMETOOLONG
                                                               : EINVAL;
    case StatusCode::kBusy:
      return EBUSY;
    case StatusCode::kFailedPrecondition:
      return EACCES;
    default:
      return EIO;
  }
}

}  // namespace

struct FuseMount::State {
  std::unique_ptr<Store> store;
  MountOptions options;
  std::string data;
  std::string real_mountpoint;  // resolved before mounting
  std::once_flag readahead_once;
  struct fuse* fuse = nullptr;
  bool mounted = false;

  std::mutex dir_mu;
  std::mutex nodes_mu;
  std::unordered_map<ino_t, std::shared_ptr<Node>> nodes;

  void Log(const std::string& line) {
    if (options.log) options.log(line);
  }

  // The key store runs under KeyStoreDurability::kOnSync: a create commits
  // its key before it returns (so a crash of this process loses nothing),
  // the last unlink hands the key to the shredder, and SyncKeys() first
  // lets the shredder commit what it holds, then puts every change so far
  // on stable storage before an fsync of a file or directory returns.
  // Counters: changes committed here (the shredder counts its own), and
  // how many of all of them are known durable.
  std::unique_ptr<KeyShredder> shredder;
  std::atomic<uint64_t> key_changes{0};
  std::atomic<uint64_t> keys_synced{0};

  int SyncKeys() {
    shredder->Drain();
    const uint64_t upto = key_changes.load() + shredder->deleted();
    if (keys_synced.load() >= upto) return 0;
    Status s = store->keys().Sync();
    if (!s.ok()) {
      Log("volmgr files: key store sync failed: " + s.message());
      return -EIO;
    }
    uint64_t cur = keys_synced.load();
    while (cur < upto && !keys_synced.compare_exchange_weak(cur, upto)) {
    }
    return 0;
  }

  // Plaintext directory path -> (ciphertext path, directory ID). Cleared
  // whenever a directory is renamed or removed; `dir_gen` keeps a resolution
  // that raced with such a change from being cached.
  struct DirEntry {
    std::string cpath;
    DirId id;
  };
  std::unordered_map<std::string, DirEntry> dir_cache;
  uint64_t dir_gen = 0;

  StatusOr<DirEntry> ResolveDir(const std::string& plain, uint64_t gen) {
    {
      std::lock_guard l(dir_mu);
      auto it = dir_cache.find(plain);
      if (it != dir_cache.end()) return it->second;
    }
    DirEntry e;
    if (plain.empty()) {
      e.cpath = data;
    } else {
      const size_t slash = plain.rfind('/');
      VOLMGR_ASSIGN_OR_RETURN(DirEntry parent,
                              ResolveDir(plain.substr(0, slash), gen));
      VOLMGR_ASSIGN_OR_RETURN(std::string enc,
                              EncryptName(parent.id, plain.substr(slash + 1)));
      e.cpath = parent.cpath + "/" + NameCipher::EntryName(enc);
    }
    VOLMGR_ASSIGN_OR_RETURN(e.id, ReadDirId(e.cpath));
    std::lock_guard l(dir_mu);
    if (gen == dir_gen) {
      if (dir_cache.size() > 100000) dir_cache.clear();
      dir_cache.emplace(plain, e);
    }
    return e;
  }

  StatusOr<DirId> DirIdOf(const std::string& cdir) { return ReadDirId(cdir); }

  // Encrypted names, memoised: the high-level API hands every request its
  // path, so one untarred file had its name encrypted 7 times (LOOKUP,
  // CREATE, WRITE, 3 x SETATTR, GETATTR), and AES-SIV's set-up (two key
  // schedules, a CMAC context) was the largest user-space cost of untar
  // and rm. (directory ID, name) -> encoded name is a pure function, so
  // entries never go stale; the cache is only bounded.
  // Listing a directory decrypts its names; those go into both maps, so
  // the unlink of each entry by `rm -r` finds its encrypted name cached.
  std::mutex names_mu;
  std::unordered_map<std::string, std::string> names_cache;  // -> encoded
  std::unordered_map<std::string, std::string> plain_cache;  // -> plain

  static std::string NameKey(const DirId& dir, std::string_view name) {
    std::string key(reinterpret_cast<const char*>(dir.data()), dir.size());
    key.append(name);
    return key;
  }

  void RememberName(const DirId& dir, const std::string& plain,
                    const std::string& encoded) {
    std::lock_guard l(names_mu);
    if (names_cache.size() > 65536) names_cache.clear();
    if (plain_cache.size() > 65536) plain_cache.clear();
    names_cache.emplace(NameKey(dir, plain), encoded);
    plain_cache.emplace(NameKey(dir, encoded), plain);
  }

  StatusOr<std::string> DecryptName(const DirId& dir,
                                    const std::string& encoded) {
    {
      std::lock_guard l(names_mu);
      auto it = plain_cache.find(NameKey(dir, encoded));
      if (it != plain_cache.end()) return it->second;
    }
    VOLMGR_ASSIGN_OR_RETURN(std::string plain,
                            store->names().Decrypt(dir, encoded));
    RememberName(dir, plain, encoded);
    return plain;
  }

  StatusOr<std::string> EncryptName(const DirId& dir, std::string_view name) {
    {
      std::lock_guard l(names_mu);
      auto it = names_cache.find(NameKey(dir, name));
      if (it != names_cache.end()) return it->second;
    }
    VOLMGR_ASSIGN_OR_RETURN(std::string enc, store->names().Encrypt(dir, name));
    RememberName(dir, std::string(name), enc);
    return enc;
  }

  void ForgetDirs() {
    std::lock_guard l(dir_mu);
    dir_cache.clear();
    ++dir_gen;
  }

  StatusOr<Resolved> Resolve(const char* path) {
    if (path == nullptr) return InvalidArgumentError("no path");
    // Canonical form: no trailing or repeated slashes, "" for the root.
    std::string p;
    for (const char* c = path; *c != '\0'; ++c) {
      if (*c == '/' && (p.empty() || p.back() == '/')) {
        if (p.empty()) p += '/';
        continue;
      }
      p += *c;
    }
    while (!p.empty() && p.back() == '/') p.pop_back();
    uint64_t gen;
    {
      std::lock_guard l(dir_mu);
      gen = dir_gen;
    }
    Resolved r;
    if (p.empty()) {
      r.cpath = data;
      return r;
    }
    const size_t slash = p.rfind('/');
    VOLMGR_ASSIGN_OR_RETURN(DirEntry parent,
                            ResolveDir(p.substr(0, slash), gen));
    VOLMGR_ASSIGN_OR_RETURN(r.encoded,
                            EncryptName(parent.id, p.substr(slash + 1)));
    r.entry = NameCipher::EntryName(r.encoded);
    r.parent = parent.cpath;
    r.cpath = parent.cpath + "/" + r.entry;
    return r;
  }

  // Writes the long-name sidecar of `r` (no-op for short names).
  int WriteSidecar(const Resolved& r) {
    if (!r.is_long()) return 0;
    const std::string path = r.parent + "/" + NameCipher::SidecarFor(r.entry);
    int fd =
        ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0444);
    if (fd < 0) return -errno;
    ssize_t n = ::write(fd, r.encoded.data(), r.encoded.size());
    int err = errno;
    ::close(fd);
    return n == static_cast<ssize_t>(r.encoded.size()) ? 0 : -err;
  }

  void RemoveSidecar(const Resolved& r) {
    if (!r.is_long()) return;
    ::unlink((r.parent + "/" + NameCipher::SidecarFor(r.entry)).c_str());
  }

  // Gives new entries to the caller, as the kernel expects of a root daemon.
  static void ChownToCaller(const std::string& cpath) {
    if (geteuid() != 0) return;
    const fuse_context* ctx = fuse_get_context();
    if (::lchown(cpath.c_str(), ctx->uid, ctx->gid) != 0) {
      // Best effort: the entry exists; ownership stays root's.
    }
  }

  // Opens (or shares) the node for a ciphertext file.
  StatusOr<std::shared_ptr<Node>> OpenNode(const std::string& cpath,
                                           const std::string& display) {
    int fd = ::open(cpath.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS)) {
      fd = ::open(cpath.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) return ErrnoToStatus(errno, "open");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoToStatus(err, "fstat");
    }
    std::lock_guard l(nodes_mu);
    auto it = nodes.find(st.st_ino);
    if (it != nodes.end()) {
      ::close(fd);
      ++it->second->refs;
      return it->second;
    }
    auto node = std::make_shared<Node>();
    node->fd = fd;
    node->ino = st.st_ino;
    node->display = display;
    auto header = ReadFileHeader(fd);
    Status s = header.status();
    if (s.ok()) {
      node->header = *header;
      auto key = store->FileKey(header->file_id);
      s = key.status();
      if (s.ok()) node->key = std::move(key).value();
    }
    if (!s.ok()) {
      ::close(fd);
      Log("volmgr files: " + display + ": cannot open: " + s.message());
      return IoError(s.message());
    }
    node->refs = 1;
    nodes.emplace(st.st_ino, node);
    return node;
  }

  void Release(const std::shared_ptr<Node>& node) {
    std::lock_guard l(nodes_mu);
    if (--node->refs > 0) return;
    nodes.erase(node->ino);
    ::close(node->fd);
    node->fd = -1;
  }

  // Turns the lstat of ciphertext entry `name` (relative to `dirfd`) into
  // the plaintext view: content size of a file, target length of a link.
  static void PlainStat(int dirfd, const char* name, struct stat* st) {
    if (S_ISLNK(st->st_mode)) {
      char buf[8192];
      ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
      if (n > 0) {
        auto* self = static_cast<State*>(fuse_get_context()->private_data);
        auto t = self->store->names().DecryptTarget(std::string_view(buf, n));
        st->st_size = t.ok() ? static_cast<off_t>(t->size()) : 0;
      }
    }
    FixStat(st);
  }

  // Plaintext size for a stat of a ciphertext file.
  static void FixStat(struct stat* st) {
    if (!S_ISREG(st->st_mode)) return;
    auto size = ChunkLayout{kDefaultChunkSize}.PlaintextSize(
        static_cast<uint64_t>(st->st_size));
    st->st_size = size.ok() ? static_cast<off_t>(*size) : 0;
    st->st_blocks = (st->st_size + 511) / 512;
  }

  // A descriptor of ciphertext entry `cpath`, taken before its name is
  // removed or replaced and handed to the shredder afterwards: the open
  // inode outlives the name, so the shredder can read the file ID and see
  // whether the last link went. -1 for a symlink (no key) or on error.
  // The mount makes no FIFOs or devices, so the open has no side effect.
  static int OpenForShred(const std::string& cpath) {
    return ::open(cpath.c_str(),
                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  }

  // Deletes the key of a file whose create failed.
  void DropKey(const FileId& id) {
    Status s = store->Shred(id);
    ++key_changes;
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      Log("volmgr files: could not delete key " + FileIdHex(id) + ": " +
          s.message() + " (verify --repair will)");
    }
  }
};

namespace {

FuseMount::State* S() {
  return static_cast<FuseMount::State*>(fuse_get_context()->private_data);
}

// The Handle behind `fi->fh` (set by open/opendir), file or directory.
Handle* RawHandle(const fuse_file_info* fi) {
  // NOLINTNEXTLINE(performance-no-int-to-ptr): fh holds our pointer
  return reinterpret_cast<Handle*>(fi->fh);
}

// The open file behind `fi`, or nullptr (no handle, or a directory).
Handle* H(fuse_file_info* fi) {
  if (fi == nullptr || fi->fh == 0) return nullptr;
  Handle* h = RawHandle(fi);
  return h->node ? h : nullptr;
}

#define RESOLVE_OR_ERRNO(var, path)                       \
  auto var##_or = S()->Resolve(path);                     \
  if (!var##_or.ok()) return -ErrnoOf(var##_or.status()); \
  Resolved var = std::move(var##_or).value()

void* FsInit(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->hard_remove = 1;  // unlink-while-open without .fuse_hidden files
  cfg->nullpath_ok = 1;
  cfg->entry_timeout = 1;
  cfg->attr_timeout = 1;
  cfg->negative_timeout = 0;
  return fuse_get_context()->private_data;
}

// The kernel reads ahead on a FUSE mount in requests of at most the bdi's
// read_ahead_kb (128 KiB by default), though the connection takes up to
// max_pages (256, 1 MiB) per request. A cold sequential read of 250 MiB
// then costs 2000 round trips instead of 250, and measured 1.5x slower
// (docs/PERFORMANCE.md). The daemon, as root, raises the mount's bdi to
// 1 MiB; as another user (or without sysfs) the default stays.
// `mountpoint` must be resolved beforehand: resolving it now would stat the
// mount, which waits for this very daemon. Called once, on the first
// GETATTR or OPEN: the kernel caps the bdi at the read-ahead of its INIT
// request when it gets the INIT reply, and sends nothing else before.
void SetReadahead(const std::string& mountpoint) {
  if (mountpoint.empty() || geteuid() != 0) return;
  FILE* f = std::fopen("/proc/self/mountinfo", "re");
  if (f == nullptr) return;
  // mountinfo: ID parent-ID major:minor root mount-point options ...
  std::string dev;
  char line[8192];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    char majmin[64], root[4096], mnt[4096];
    if (std::sscanf(line, "%*d %*d %63s %4095s %4095s", majmin, root, mnt) ==
            3 &&
        mountpoint == mnt) {
      dev = majmin;  // the last (topmost) mount there is ours
    }
  }
  std::fclose(f);
  if (dev.empty()) return;
  const std::string knob = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  int fd = ::open(knob.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (::write(fd, "1024\n", 5) != 5) {
    // Best effort: the mount works with the default read-ahead.
  }
  ::close(fd);
}

void RaiseReadaheadOnce() {
  FuseMount::State* s = S();
  std::call_once(s->readahead_once, SetReadahead, s->real_mountpoint);
}

int FsGetattr(const char* path, struct stat* st, fuse_file_info* fi) {
  RaiseReadaheadOnce();
  if (Handle* h = H(fi)) {
    if (::fstat(h->node->fd, st) != 0) return -errno;
    FuseMount::State::FixStat(st);
    return 0;
  }
  if (path == nullptr && fi != nullptr && fi->fh != 0) {
    path = RawHandle(fi)->dir_path.c_str();
  }
  RESOLVE_OR_ERRNO(r, path);
  if (::lstat(r.cpath.c_str(), st) != 0) return -errno;
  FuseMount::State::PlainStat(AT_FDCWD, r.cpath.c_str(), st);
  return 0;
}

int FsReadlink(const char* path, char* buf, size_t size) {
  RESOLVE_OR_ERRNO(r, path);
  char raw[8192];
  ssize_t n = ::readlink(r.cpath.c_str(), raw, sizeof raw);
  if (n < 0) return -errno;
  auto t = S()->store->names().DecryptTarget(std::string_view(raw, n));
  if (!t.ok()) {
    S()->Log(std::string("volmgr files: ") + path +
             ": symlink target does not authenticate");
    return -EIO;
  }
  if (size == 0) return -EINVAL;
  size_t m = std::min(size - 1, t->size());
  std::memcpy(buf, t->data(), m);
  buf[m] = '\0';
  return 0;
}

int FsMkdir(const char* path, mode_t mode) {
  RESOLVE_OR_ERRNO(r, path);
  if (int e = S()->WriteSidecar(r); e != 0) return e;
  if (::mkdir(r.cpath.c_str(), 0700) != 0) {
    int err = errno;
    if (err != EEXIST) S()->RemoveSidecar(r);
    return -err;
  }
  // Write the directory ID before the directory gets its final mode.
  {
    auto rnd = SecretBytes::Random(kDirIdSize);
    if (!rnd.ok()) return -EIO;
    const std::string p = r.cpath + "/" + std::string(kDirIdFileName);
    int fd = ::open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
    if (fd < 0) return -errno;
    ssize_t n = ::write(fd, rnd->Reveal().data(), kDirIdSize);
    ::close(fd);
    if (n != static_cast<ssize_t>(kDirIdSize)) return -EIO;
  }
  if (::chmod(r.cpath.c_str(), mode & 07777) != 0) return -errno;
  FuseMount::State::ChownToCaller(r.cpath);
  return 0;
}

int FsUnlink(const char* path) {
  RESOLVE_OR_ERRNO(r, path);
  const int fd = FuseMount::State::OpenForShred(r.cpath);
  if (::unlink(r.cpath.c_str()) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return -err;
  }
  S()->RemoveSidecar(r);
  if (fd >= 0) S()->shredder->Enqueue(fd);
  return 0;
}

int FsRmdir(const char* path) {
  RESOLVE_OR_ERRNO(r, path);
  DIR* d = ::opendir(r.cpath.c_str());
  if (d == nullptr) return -errno;
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != ".." && n != kDirIdFileName) empty = false;
  }
  ::closedir(d);
  if (!empty) return -ENOTEMPTY;
  const std::string idf = r.cpath + "/" + std::string(kDirIdFileName);
  ::unlink(idf.c_str());
  if (::rmdir(r.cpath.c_str()) != 0) return -errno;
  S()->RemoveSidecar(r);
  S()->ForgetDirs();
  return 0;
}

int FsSymlink(const char* target, const char* linkpath) {
  RESOLVE_OR_ERRNO(r, linkpath);
  auto enc = S()->store->names().EncryptTarget(target);
  if (!enc.ok()) return -ErrnoOf(enc.status());
  if (int e = S()->WriteSidecar(r); e != 0) return e;
  if (::symlink(enc->c_str(), r.cpath.c_str()) != 0) return -errno;
  FuseMount::State::ChownToCaller(r.cpath);
  return 0;
}

int FsRename(const char* from, const char* to, unsigned int flags) {
  RESOLVE_OR_ERRNO(rf, from);
  RESOLVE_OR_ERRNO(rt, to);
  struct stat sf {
  }, st{};
  if (::lstat(rf.cpath.c_str(), &sf) != 0) return -errno;
  int replaced = -1;  // the file renamed over, for the shredder
  if (!(flags & RENAME_EXCHANGE) && ::lstat(rt.cpath.c_str(), &st) == 0 &&
      st.st_ino != sf.st_ino && S_ISREG(st.st_mode)) {
    replaced = FuseMount::State::OpenForShred(rt.cpath);
  }
  int err = S()->WriteSidecar(rt);
  if (err == 0 && ::renameat2(AT_FDCWD, rf.cpath.c_str(), AT_FDCWD,
                              rt.cpath.c_str(), flags) != 0) {
    err = -errno;
  }
  if (err != 0) {
    if (replaced >= 0) ::close(replaced);
    return err;
  }
  if (flags & RENAME_EXCHANGE) {
    S()->WriteSidecar(rf);
  } else if (rf.cpath != rt.cpath) {
    S()->RemoveSidecar(rf);
  }
  if (S_ISDIR(sf.st_mode)) S()->ForgetDirs();
  if (replaced >= 0) S()->shredder->Enqueue(replaced);
  return 0;
}

int FsLink(const char* from, const char* to) {
  RESOLVE_OR_ERRNO(rf, from);
  RESOLVE_OR_ERRNO(rt, to);
  if (int e = S()->WriteSidecar(rt); e != 0) return e;
  if (::link(rf.cpath.c_str(), rt.cpath.c_str()) != 0) return -errno;
  return 0;
}

int FsChmod(const char* path, mode_t mode, fuse_file_info* fi) {
  if (Handle* h = H(fi)) return ::fchmod(h->node->fd, mode) == 0 ? 0 : -errno;
  RESOLVE_OR_ERRNO(r, path);
  return ::chmod(r.cpath.c_str(), mode) == 0 ? 0 : -errno;
}

int FsChown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
  if (Handle* h = H(fi)) {
    return ::fchown(h->node->fd, uid, gid) == 0 ? 0 : -errno;
  }
  RESOLVE_OR_ERRNO(r, path);
  return ::lchown(r.cpath.c_str(), uid, gid) == 0 ? 0 : -errno;
}

int TruncateNode(Node& n, off_t size) {
  std::unique_lock l(n.mu);
  auto nf = NodeFile::Of(n);
  if (!nf.ok()) return -EIO;
  Status s = nf->file().Truncate(static_cast<uint64_t>(size));
  if (!s.ok()) {
    S()->Log("volmgr files: " + n.display + ": truncate: " + s.message());
    return -ErrnoOf(s);
  }
  return 0;
}

int FsTruncate(const char* path, off_t size, fuse_file_info* fi) {
  if (size < 0) return -EINVAL;
  if (Handle* h = H(fi)) return TruncateNode(*h->node, size);
  RESOLVE_OR_ERRNO(r, path);
  auto node = S()->OpenNode(r.cpath, path);
  if (!node.ok()) return -ErrnoOf(node.status());
  int rc = TruncateNode(**node, size);
  S()->Release(*node);
  return rc;
}

int FsUtimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
  if (Handle* h = H(fi)) return ::futimens(h->node->fd, tv) == 0 ? 0 : -errno;
  RESOLVE_OR_ERRNO(r, path);
  return ::utimensat(AT_FDCWD, r.cpath.c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0
             ? 0
             : -errno;
}

int AttachHandle(std::shared_ptr<Node> node, fuse_file_info* fi) {
  auto* h = new Handle;
  h->node = std::move(node);
  h->append = (fi->flags & O_APPEND) != 0;
  fi->fh = reinterpret_cast<uint64_t>(h);
  return 0;
}

// The kernel never sends a READ for a file whose size is 0, so an empty
// file's one chunk is verified here, at each open: a longer file cut to the
// 60 bytes of an empty one must fail like any other damaged chunk.
int VerifyIfEmpty(Node& n, const char* path) {
  std::shared_lock l(n.mu);
  auto nf = NodeFile::Of(n);
  if (!nf.ok()) return -EIO;
  Status s = nf->file().VerifyIfEmpty();
  if (!s.ok()) {
    S()->Log(std::string("volmgr files: ") + path + ": " + s.message());
    return -EIO;
  }
  return 0;
}

int FsOpen(const char* path, fuse_file_info* fi) {
  RaiseReadaheadOnce();
  RESOLVE_OR_ERRNO(r, path);
  auto node = S()->OpenNode(r.cpath, path);
  if (!node.ok()) return -ErrnoOf(node.status());
  if (int rc = VerifyIfEmpty(**node, path); rc != 0) {
    S()->Release(*node);
    return rc;
  }
  if (fi->flags & O_TRUNC) {
    if (int rc = TruncateNode(**node, 0); rc != 0) {
      S()->Release(*node);
      return rc;
    }
  }
  return AttachHandle(std::move(node).value(), fi);
}

int FsCreate(const char* path, mode_t mode, fuse_file_info* fi) {
  RESOLVE_OR_ERRNO(r, path);
  FuseMount::State* s = S();
  // The key is committed before the ciphertext exists: a crash leaves at
  // worst an orphan key (removed by verify --repair), never a keyless file.
  auto nk = s->store->CreateFileKey(KeyLocation::kTree);
  if (!nk.ok()) return -EIO;
  ++s->key_changes;
  if (int e = s->WriteSidecar(r); e != 0) {
    s->DropKey(nk->file_id);
    return e;
  }
  FileHeader header;
  header.chunk_size = s->store->chunk_size();
  header.file_id = nk->file_id;
  // The header is written to an unnamed O_TMPFILE and only then linked in,
  // so a crash never leaves a named file without a header.
  bool tmpfile = true;
  int fd =
      ::open(r.parent.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, mode & 07777);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
    tmpfile = false;
    fd = ::open(r.cpath.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
                mode & 07777);
  }
  if (fd < 0) {
    int err = errno;
    s->DropKey(nk->file_id);
    if (err == EEXIST && !(fi->flags & O_EXCL)) return FsOpen(path, fi);
    return -err;
  }
  auto cipher = ChunkCipher::Create(nk->key, header);
  Status st = cipher.status();
  if (st.ok()) st = EncryptedFile(fd, std::move(cipher).value()).Initialize();
  if (st.ok() && tmpfile) {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, r.cpath.c_str(),
                 AT_SYMLINK_FOLLOW) != 0) {
      int err = errno;
      ::close(fd);
      s->DropKey(nk->file_id);
      if (err == EEXIST && !(fi->flags & O_EXCL)) return FsOpen(path, fi);
      return -err;
    }
  }
  if (!st.ok()) {
    ::close(fd);
    if (!tmpfile) ::unlink(r.cpath.c_str());
    s->DropKey(nk->file_id);
    return -ErrnoOf(st);
  }
  FuseMount::State::ChownToCaller(r.cpath);
  struct stat sb {};
  ::fstat(fd, &sb);
  auto node = std::make_shared<Node>();
  node->fd = fd;
  node->ino = sb.st_ino;
  node->header = header;
  node->key = std::move(nk->key);
  node->display = path;
  node->refs = 1;
  {
    std::lock_guard l(s->nodes_mu);
    s->nodes[sb.st_ino] = node;
  }
  return AttachHandle(std::move(node), fi);
}

int FsRead(const char* path, char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  Node& n = *H(fi)->node;
  std::shared_lock l(n.mu);
  auto nf = NodeFile::Of(n);
  if (!nf.ok()) return -EIO;
  auto got = nf->file().Read(static_cast<uint64_t>(off),
                             {reinterpret_cast<uint8_t*>(buf), size});
  if (!got.ok()) {
    S()->Log("volmgr files: " + n.display + ": read at " + std::to_string(off) +
             ": " + got.status().message());
    return -EIO;
  }
  return static_cast<int>(*got);
}

int FsWrite(const char* path, const char* buf, size_t size, off_t off,
            fuse_file_info* fi) {
  Handle* h = H(fi);
  Node& n = *h->node;
  std::unique_lock l(n.mu);
  auto nf = NodeFile::Of(n);
  if (!nf.ok()) return -EIO;
  EncryptedFile& f = nf->file();
  if (h->append) {
    auto sz = f.Size();
    if (!sz.ok()) return -EIO;
    off = static_cast<off_t>(*sz);
  }
  Status s = f.Write(static_cast<uint64_t>(off),
                     {reinterpret_cast<const uint8_t*>(buf), size});
  if (!s.ok()) {
    S()->Log("volmgr files: " + n.display + ": write at " +
             std::to_string(off) + ": " + s.message());
    return -ErrnoOf(s);
  }
  return static_cast<int>(size);
}

int FsStatfs(const char* path, struct statvfs* st) {
  if (::statvfs(S()->data.c_str(), st) != 0) return -errno;
  st->f_namemax = 255;
  return 0;
}

int FsRelease(const char*, fuse_file_info* fi) {
  Handle* h = H(fi);
  S()->Release(h->node);
  delete h;
  return 0;
}

int FsFsync(const char*, int datasync, fuse_file_info* fi) {
  Node& n = *H(fi)->node;
  // The content is only readable with its key: make the key durable first.
  if (int e = S()->SyncKeys(); e != 0) return e;
  int rc = datasync ? ::fdatasync(n.fd) : ::fsync(n.fd);
  return rc == 0 ? 0 : -errno;
}

// fsync of a directory makes its entries durable, and with them the keys
// of files created in it (and the deletion of keys of files removed).
int FsFsyncdir(const char* path_arg, int datasync, fuse_file_info* fi) {
  const char* path = path_arg;
  if (path == nullptr && fi != nullptr && fi->fh != 0) {
    path = RawHandle(fi)->dir_path.c_str();
  }
  RESOLVE_OR_ERRNO(r, path);
  if (int e = S()->SyncKeys(); e != 0) return e;
  int fd = ::open(r.cpath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? 0 : -err;
}

// nullpath_ok: readdir may get a null path, so opendir keeps the path.
int FsOpendir(const char* path, fuse_file_info* fi) {
  auto* h = new Handle;
  h->dir_path = path;
  fi->fh = reinterpret_cast<uint64_t>(h);
  return 0;
}

int FsReleasedir(const char*, fuse_file_info* fi) {
  delete RawHandle(fi);
  return 0;
}

// Fills `out` with the plaintext listing of ciphertext directory `r`;
// with `plus`, every entry carries its full plaintext stat.
int ListDir(const char* path, const Resolved& r, bool plus,
            std::vector<Handle::Listed>& out) {
  auto dirid = S()->DirIdOf(r.cpath);
  if (!dirid.ok()) return -ErrnoOf(dirid.status());
  DIR* d = ::opendir(r.cpath.c_str());
  if (d == nullptr) return -errno;
  out.clear();
  out.push_back({".", {}, false});
  out.push_back({"..", {}, false});
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.starts_with(".")) {
      if (!NameCipher::IsLongEntry(name)) continue;  // ., .., .dirid, .N*
    }
    std::string encoded(name);
    if (NameCipher::IsLongEntry(name)) {
      const std::string sc = r.cpath + "/" + NameCipher::SidecarFor(name);
      int fd = ::open(sc.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char b[4096];
      ssize_t n = ::read(fd, b, sizeof b);
      ::close(fd);
      if (n <= 0) continue;
      encoded.assign(b, static_cast<size_t>(n));
    }
    auto plain = S()->DecryptName(*dirid, encoded);
    if (!plain.ok()) {
      S()->Log(std::string("volmgr files: ") + path + ": entry " +
               std::string(name) + " does not authenticate; hidden");
      continue;
    }
    Handle::Listed l{std::move(plain).value(), {}, false};
    if (plus &&
        ::fstatat(dirfd(d), e->d_name, &l.st, AT_SYMLINK_NOFOLLOW) == 0) {
      FuseMount::State::PlainStat(dirfd(d), e->d_name, &l.st);
      l.plus = true;
    } else {
      l.st = {};
      l.st.st_ino = e->d_ino;
      l.st.st_mode = DTTOIF(e->d_type);
    }
    out.push_back(std::move(l));
  }
  ::closedir(d);
  return 0;
}

int FsReaddir(const char* path_arg, void* buf, fuse_fill_dir_t filler,
              off_t off, fuse_file_info* fi, fuse_readdir_flags flags) {
  if (fi == nullptr || fi->fh == 0 || off < 0) return -EBADF;
  Handle* h = RawHandle(fi);
  const char* path = path_arg != nullptr ? path_arg : h->dir_path.c_str();
  std::lock_guard l(h->dir_mu);
  if (off == 0) {
    // READDIRPLUS: every entry goes back with its attributes, so `ls -l`
    // and `rm -r` need no LOOKUP per entry afterwards.
    RESOLVE_OR_ERRNO(r, path);
    const bool plus = (flags & FUSE_READDIR_PLUS) != 0;
    if (int e = ListDir(path, r, plus, h->listing); e != 0) return e;
  }
  for (size_t i = static_cast<size_t>(off); i < h->listing.size(); ++i) {
    const Handle::Listed& e = h->listing[i];
    const auto fill = e.plus && (flags & FUSE_READDIR_PLUS)
                          ? FUSE_FILL_DIR_PLUS
                          : static_cast<fuse_fill_dir_flags>(0);
    if (filler(buf, e.name.c_str(), &e.st, static_cast<off_t>(i + 1), fill) !=
        0) {
      break;  // the kernel's buffer is full; it asks again from i + 1
    }
  }
  return 0;
}

fuse_operations MakeOps() {
  fuse_operations ops{};
  ops.init = FsInit;
  ops.getattr = FsGetattr;
  ops.readlink = FsReadlink;
  ops.mkdir = FsMkdir;
  ops.unlink = FsUnlink;
  ops.rmdir = FsRmdir;
  ops.symlink = FsSymlink;
  ops.rename = FsRename;
  ops.link = FsLink;
  ops.chmod = FsChmod;
  ops.chown = FsChown;
  ops.truncate = FsTruncate;
  ops.open = FsOpen;
  ops.read = FsRead;
  ops.write = FsWrite;
  ops.statfs = FsStatfs;
  // No flush: nothing is buffered, and ENOSYS makes the kernel stop sending
  // one FLUSH per close(2).
  ops.release = FsRelease;
  ops.fsync = FsFsync;
  ops.opendir = FsOpendir;
  ops.releasedir = FsReleasedir;
  ops.readdir = FsReaddir;
  ops.fsyncdir = FsFsyncdir;
  ops.create = FsCreate;
  ops.utimens = FsUtimens;
  return ops;
}

}  // namespace

FuseMount::~FuseMount() {
  if (state_ && state_->fuse != nullptr) {
    if (state_->mounted) fuse_unmount(state_->fuse);
    fuse_destroy(state_->fuse);
  }
}

StatusOr<std::unique_ptr<FuseMount>> FuseMount::Mount(
    std::unique_ptr<Store> store, MountOptions options) {
  struct stat st {};
  if (::stat(options.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return FailedPreconditionError("mountpoint " + options.mountpoint +
                                   " is not a directory");
  }
  std::unique_ptr<FuseMount> m(new FuseMount());
  m->state_ = std::make_unique<State>();
  State& s = *m->state_;
  s.data = store->data_dir();
  s.store = std::move(store);
  VOLMGR_RETURN_IF_ERROR(
      s.store->keys().SetDurability(KeyStoreDurability::kOnSync));
  s.shredder = std::make_unique<KeyShredder>(
      *s.store, [&s](const std::string& line) { s.Log(line); });
  s.options = std::move(options);
  // The store path in fsname lets `files umount` wait for this daemon.
  std::string fsname = "volmgr-files";
  if (s.store->root().find_first_of(", \t\n\\") == std::string::npos) {
    char real[PATH_MAX];
    if (::realpath(s.store->root().c_str(), real) != nullptr) {
      fsname += std::string(":") + real;
    }
  }
  {
    char real[PATH_MAX];
    if (::realpath(s.options.mountpoint.c_str(), real) != nullptr) {
      s.real_mountpoint = real;
    }
  }
  std::string opts = "default_permissions,fsname=" + fsname + ",subtype=volmgr";
  if (s.options.allow_other) opts += ",allow_other";
  std::vector<std::string> argv_s = {"volmgr-files", "-o", opts};
  if (s.options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  static const fuse_operations ops = MakeOps();
  s.fuse = fuse_new(&args, &ops, sizeof ops, &s);
  if (s.fuse == nullptr) return UnavailableError("fuse_new failed");
  if (fuse_mount(s.fuse, s.options.mountpoint.c_str()) != 0) {
    return UnavailableError("cannot mount FUSE at " + s.options.mountpoint +
                            " (is /dev/fuse there and fusermount3 installed?)");
  }
  s.mounted = true;
  return m;
}

Status FuseMount::Serve() {
  fuse_session* se = fuse_get_session(state_->fuse);
  if (fuse_set_signal_handlers(se) != 0) {
    return InternalError("cannot install signal handlers");
  }
  {
    StopSignalsBlocked blocked;  // they are for the loop's waiting thread
    state_->shredder->Start();
  }
  // Leader/followers instead of fuse_loop_mt(): a sequential workload stays
  // on one warm thread (volmgr/files/fuse_loop.h). Eight threads at most,
  // as before; they are kept once started.
  const int rc = ServeLeaderFollowers(se, 8);
  state_->shredder->Stop();
  fuse_remove_signal_handlers(se);
  // A clean unmount leaves every key change on stable storage.
  if (state_->SyncKeys() != 0)
    return IoError("key store sync at unmount failed");
  if (rc < 0) return ErrnoToStatus(-rc, "reading the FUSE device");
  return Status::Ok();
}

namespace {

// The store a volmgr files mount at `mountpoint` serves, from its fsname.
std::string StoreOfMount(const std::string& mountpoint) {
  char real[PATH_MAX];
  if (::realpath(mountpoint.c_str(), real) == nullptr) return "";
  FILE* f = std::fopen("/proc/self/mounts", "re");
  if (f == nullptr) return "";
  std::string store;
  char src[4096], dir[4096];
  while (std::fscanf(f, "%4095s %4095s %*[^\n]", src, dir) == 2) {
    std::string_view sv(src);
    if (std::string_view(dir) == real && sv.starts_with("volmgr-files:")) {
      store = std::string(sv.substr(13));
    }
  }
  std::fclose(f);
  return store;
}

}  // namespace

Status Unmount(const std::string& mountpoint) {
  const std::string store = StoreOfMount(mountpoint);
  VOLMGR_RETURN_IF_ERROR(UnmountOnly(mountpoint));
  // Return only once the daemon has let go of the store (its lock), so a
  // following command on the store does not find it busy.
  for (int i = 0; !store.empty() && i < 100; ++i) {
    auto lock = StoreLock::Acquire(store);
    if (lock.ok() || lock.status().code() != StatusCode::kBusy) break;
    ::usleep(100 * 1000);
  }
  return Status::Ok();
}

Status UnmountOnly(const std::string& mountpoint) {
  if (geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), 0) != 0) {
      return ErrnoToStatus(errno, "unmount " + mountpoint);
    }
    return Status::Ok();
  }
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ::execlp("fusermount3", "fusermount3", "-u", "--", mountpoint.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return FailedPreconditionError("fusermount3 -u " + mountpoint + " failed");
  }
  return Status::Ok();
}

}  // namespace volmgr::files
