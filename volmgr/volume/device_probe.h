// What a device or image file holds, before volmgr writes to it.
#ifndef VOLMGR_VOLUME_DEVICE_PROBE_H_
#define VOLMGR_VOLUME_DEVICE_PROBE_H_

#include <cstdint>
#include <string>

#include "volmgr/base/status.h"

namespace volmgr::volume {

struct DeviceFacts {
  std::string path;
  bool is_block_device = false;
  uint64_t size_bytes = 0;
  // What libblkid found, in words ("an ext4 filesystem (LABEL=data,
  // UUID=...)", "a gpt partition table", "a LUKS2 header"); empty if none.
  std::string content;
  std::string content_type;  // blkid TYPE or PTTYPE, e.g. "ext4", "gpt"
  // Why the device is busy (mounted, held by a mapping, attached to a loop
  // device); empty if it is free.
  std::string in_use;
};

// Inspects `path` read-only with libblkid (superblocks and partition tables)
// and checks whether the kernel holds it. kNotFound if absent;
// kInvalidArgument if it is neither a block device nor a regular file.
StatusOr<DeviceFacts> ProbeDevice(const std::string& path);

// Erases every filesystem, RAID and partition-table signature libblkid
// finds on `path` (wipefs's job), so that after a forced format only the
// new LUKS2 header is recognised. Only the magic bytes are cleared.
Status WipeSignatures(const std::string& path);

}  // namespace volmgr::volume

#endif  // VOLMGR_VOLUME_DEVICE_PROBE_H_
