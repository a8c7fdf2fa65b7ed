#include "volmgr/volume/device_probe.h"

#include <blkid/blkid.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace volmgr::volume {
namespace {

struct ProbeDeleter {
  void operator()(blkid_probe p) const { blkid_free_probe(p); }
};
using ProbePtr =
    std::unique_ptr<std::remove_pointer_t<blkid_probe>, ProbeDeleter>;

std::string Lookup(blkid_probe pr, const char* name) {
  const char* value = nullptr;
  if (blkid_probe_lookup_value(pr, name, &value, nullptr) == 0 && value) {
    return value;
  }
  return "";
}

std::string Describe(blkid_probe pr, std::string& type_out) {
  std::string type = Lookup(pr, "TYPE");
  if (!type.empty()) {
    type_out = type;
    std::string desc;
    if (type == "crypto_LUKS") {
      std::string version = Lookup(pr, "VERSION");
      desc = "a LUKS" + version + " header";
    } else if (type == "BitLocker") {
      desc = "a BitLocker volume";
    } else {
      desc = "a" +
             std::string(std::string("aeiou").find(type[0]) != std::string::npos
                             ? "n "
                             : " ") +
             type + " " +
             (Lookup(pr, "USAGE") == "raid" ? "RAID member" : "filesystem");
    }
    std::string label = Lookup(pr, "LABEL");
    std::string uuid = Lookup(pr, "UUID");
    if (!label.empty() || !uuid.empty()) {
      desc += " (";
      if (!label.empty()) desc += "LABEL=" + label;
      if (!label.empty() && !uuid.empty()) desc += ", ";
      if (!uuid.empty()) desc += "UUID=" + uuid;
      desc += ")";
    }
    return desc;
  }
  std::string pttype = Lookup(pr, "PTTYPE");
  if (!pttype.empty()) {
    type_out = pttype;
    return "a " + pttype + " partition table";
  }
  return "";
}

// An image file attached to a loop device is in use by the kernel.
std::string LoopHolding(const std::string& file) {
  char real[PATH_MAX];
  if (realpath(file.c_str(), real) == nullptr) return "";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/sys/block"), closedir);
  if (!dir) return "";
  while (dirent* e = readdir(dir.get())) {
    std::string name = e->d_name;
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream f("/sys/block/" + name + "/loop/backing_file");
    std::string backing;
    if (std::getline(f, backing) && backing == real) {
      return "attached to /dev/" + name;
    }
  }
  return "";
}

}  // namespace

StatusOr<DeviceFacts> ProbeDevice(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, path);
  DeviceFacts f;
  f.path = path;
  if (S_ISBLK(st.st_mode)) {
    f.is_block_device = true;
  } else if (!S_ISREG(st.st_mode)) {
    return InvalidArgumentError(path + " is neither a block device nor a file");
  }

  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  if (f.is_block_device) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) == 0) f.size_bytes = bytes;
  } else {
    f.size_bytes = static_cast<uint64_t>(st.st_size);
  }
  close(fd);

  if (f.is_block_device) {
    // O_EXCL on a block device fails with EBUSY while it is mounted, part
    // of a mapping or RAID, or opened exclusively by anyone else.
    int xfd = open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (xfd < 0 && errno == EBUSY) {
      f.in_use = "in use (mounted, mapped or held open exclusively)";
    } else if (xfd >= 0) {
      close(xfd);
    }
  } else {
    f.in_use = LoopHolding(path);
  }

  ProbePtr pr(blkid_new_probe_from_filename(path.c_str()));
  if (!pr) return ErrnoToStatus(errno ? errno : EIO, "probing " + path);
  blkid_probe_enable_superblocks(pr.get(), 1);
  blkid_probe_set_superblocks_flags(
      pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID |
                    BLKID_SUBLKS_USAGE | BLKID_SUBLKS_VERSION);
  blkid_probe_enable_partitions(pr.get(), 1);
  int rc = blkid_do_safeprobe(pr.get());
  if (rc == -2) {
    f.content = "several conflicting signatures";
    f.content_type = "ambivalent";
  } else if (rc == 0) {
    f.content = Describe(pr.get(), f.content_type);
  }
  return f;
}

Status WipeSignatures(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  ProbePtr pr(blkid_new_probe());
  if (!pr || blkid_probe_set_device(pr.get(), fd, 0, 0) != 0) {
    close(fd);
    return IoError("cannot probe " + path + " for signatures");
  }
  blkid_probe_enable_superblocks(pr.get(), 1);
  blkid_probe_set_superblocks_flags(pr.get(),
                                    BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_BADCSUM);
  blkid_probe_enable_partitions(pr.get(), 1);
  blkid_probe_set_partitions_flags(pr.get(), BLKID_PARTS_MAGIC);
  Status status;
  while (blkid_do_probe(pr.get()) == 0) {
    if (blkid_do_wipe(pr.get(), 0) != 0) {
      status = IoError("cannot erase an old signature on " + path);
      break;
    }
  }
  if (status.ok() && fsync(fd) != 0) status = ErrnoToStatus(errno, "fsync");
  close(fd);
  return status;
}

}  // namespace volmgr::volume
