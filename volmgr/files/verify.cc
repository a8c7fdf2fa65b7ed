#include "volmgr/files/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "volmgr/files/encrypted_file.h"

namespace volmgr::files {
namespace {

StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  std::string s(max, '\0');
  ssize_t n = ::read(fd, s.data(), max);
  int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoToStatus(err, "read " + path);
  s.resize(static_cast<size_t>(n));
  return s;
}

struct Walker {
  Store& store;
  bool repair;
  VerifyReport& report;
  std::set<FileId> seen;

  Status Walk(const std::string& cdir, const std::string& pdir) {
    VOLMGR_ASSIGN_OR_RETURN(DirId dirid, ReadDirId(cdir));
    DIR* d = ::opendir(cdir.c_str());
    if (d == nullptr) return ErrnoToStatus(errno, "open " + cdir);
    std::vector<std::pair<std::string, unsigned char>> entries;
    while (dirent* e = ::readdir(d)) entries.emplace_back(e->d_name, e->d_type);
    ::closedir(d);
    for (const auto& [name, type] : entries) {
      if (name == "." || name == ".." || name == kDirIdFileName ||
          name.starts_with(kLongNameSidecarPrefix)) {
        continue;
      }
      const std::string cpath = cdir + "/" + name;
      std::string encoded = name;
      if (NameCipher::IsLongEntry(name)) {
        auto full =
            ReadSmallFile(cdir + "/" + NameCipher::SidecarFor(name), 4096);
        if (!full.ok()) {
          report.damaged.push_back(pdir + "/" + name +
                                   ": long-name sidecar missing");
          continue;
        }
        encoded = *full;
      }
      auto plain = store.names().Decrypt(dirid, encoded);
      const std::string ppath = pdir + "/" + (plain.ok() ? *plain : "?" + name);
      if (!plain.ok()) {
        report.damaged.push_back(ppath + ": name does not authenticate");
      }
      struct stat st {};
      if (::lstat(cpath.c_str(), &st) != 0) continue;  // raced away
      if (S_ISDIR(st.st_mode)) {
        VOLMGR_RETURN_IF_ERROR(Walk(cpath, ppath));
      } else if (S_ISREG(st.st_mode)) {
        VOLMGR_RETURN_IF_ERROR(CheckFile(cpath, ppath));
      }
    }
    return Status::Ok();
  }

  Status CheckFile(const std::string& cpath, const std::string& ppath) {
    int fd = ::open(cpath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open " + cpath);
    auto close_fd = [fd] { ::close(fd); };
    auto header = ReadFileHeader(fd);
    if (!header.ok()) {
      close_fd();
      report.damaged.push_back(ppath + ": " + header.status().message());
      return Status::Ok();
    }
    seen.insert(header->file_id);
    auto key = store.FileKey(header->file_id);
    if (!key.ok()) {
      close_fd();
      if (key.status().code() == StatusCode::kNotFound) {
        report.keyless.push_back(ppath);
        if (repair && ::unlink(cpath.c_str()) == 0) ++report.removed_files;
      } else {
        report.damaged.push_back(ppath + ": " + key.status().message());
      }
      return Status::Ok();
    }
    auto cipher = ChunkCipher::Create(*key, *header);
    if (!cipher.ok()) {
      close_fd();
      return cipher.status();
    }
    EncryptedFile f(fd, std::move(cipher).value());
    Status s = f.VerifyAll();
    auto size = f.Size();
    close_fd();
    if (!s.ok()) {
      report.damaged.push_back(ppath + ": " + s.message());
    } else {
      ++report.files_ok;
      report.bytes_ok += size.ok() ? *size : 0;
    }
    return Status::Ok();
  }
};

}  // namespace

StatusOr<DirId> ReadDirId(const std::string& cipher_dir) {
  const std::string path = cipher_dir + "/" + std::string(kDirIdFileName);
  VOLMGR_ASSIGN_OR_RETURN(std::string s, ReadSmallFile(path, kDirIdSize + 1));
  if (s.size() != kDirIdSize) {
    return CorruptionError(path + " is not a " + std::to_string(kDirIdSize) +
                           "-byte directory ID");
  }
  DirId id{};
  std::copy(s.begin(), s.end(), id.begin());
  return id;
}

StatusOr<VerifyReport> VerifyStore(Store& store, bool repair) {
  VerifyReport report;
  Walker w{store, repair, report, {}};
  VOLMGR_RETURN_IF_ERROR(w.Walk(store.data_dir(), ""));
  std::vector<FileId> orphans;
  VOLMGR_RETURN_IF_ERROR(
      store.keys().ForEachFileKey([&](const FileKeyRecord& r) {
        if (r.location == KeyLocation::kTree && !w.seen.contains(r.file_id)) {
          orphans.push_back(r.file_id);
        }
        return Status::Ok();
      }));
  for (const auto& id : orphans) {
    report.orphan_keys.push_back(FileIdHex(id));
    if (repair) {
      VOLMGR_RETURN_IF_ERROR(store.Shred(id));
      ++report.removed_keys;
    }
  }
  // Deleted keys leave no bytes behind in keys.db or its WAL.
  if (report.removed_keys > 0) {
    VOLMGR_RETURN_IF_ERROR(store.keys().ScrubFreed());
  }
  return report;
}

}  // namespace volmgr::files
