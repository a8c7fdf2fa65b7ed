#include "volmgr/files/fuse_loop.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>

#include <cstring>
#include <vector>

namespace volmgr::files {
namespace {

// A raw request as /dev/fuse delivers it: header, then the opcode's body.
template <typename Body>
std::vector<uint8_t> Request(uint32_t opcode, const Body& body) {
  fuse_in_header h{};
  h.opcode = opcode;
  h.len = sizeof h + sizeof body;
  std::vector<uint8_t> out(sizeof h + sizeof body);
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, &body, sizeof body);
  return out;
}

std::vector<uint8_t> Read(uint32_t size) {
  fuse_read_in r{};
  r.size = size;
  return Request(FUSE_READ, r);
}

std::vector<uint8_t> Write(uint32_t size) {
  fuse_write_in w{};
  w.size = size;
  return Request(FUSE_WRITE, w);
}

TEST(FuseLoopTest, LargeReadsAndWritesAreHandedOffSmallOnesAreNot) {
  EXPECT_TRUE(IsSlowRequest(Read(kHandOffIoBytes), false));
  EXPECT_TRUE(IsSlowRequest(Read(1 << 20), false));
  EXPECT_FALSE(IsSlowRequest(Read(kHandOffIoBytes - 1), false));
  EXPECT_TRUE(IsSlowRequest(Write(128 << 10), false));
  EXPECT_FALSE(IsSlowRequest(Write(4096), false));
}

TEST(FuseLoopTest, SyncAndListingRequestsAreHandedOff) {
  fuse_fsync_in f{};
  fuse_read_in r{};
  EXPECT_TRUE(IsSlowRequest(Request(FUSE_FSYNC, f), false));
  EXPECT_TRUE(IsSlowRequest(Request(FUSE_FSYNCDIR, f), false));
  EXPECT_TRUE(IsSlowRequest(Request(FUSE_READDIRPLUS, r), false));
  EXPECT_TRUE(IsSlowRequest(Request(FUSE_READDIR, r), false));
}

TEST(FuseLoopTest, MetadataRequestsStayWithTheLeader) {
  fuse_getattr_in g{};
  fuse_setattr_in s{};
  fuse_create_in c{};
  fuse_release_in rel{};
  EXPECT_FALSE(IsSlowRequest(Request(FUSE_GETATTR, g), false));
  EXPECT_FALSE(IsSlowRequest(Request(FUSE_SETATTR, s), false));
  EXPECT_FALSE(IsSlowRequest(Request(FUSE_CREATE, c), false));
  EXPECT_FALSE(IsSlowRequest(Request(FUSE_RELEASE, rel), false));
  EXPECT_FALSE(IsSlowRequest(Request(FUSE_UNLINK, g), false));
}

TEST(FuseLoopTest, SplicedAndTruncatedRequests) {
  // libfuse splices only large WRITEs: handed off without a header to see.
  EXPECT_TRUE(IsSlowRequest({}, true));
  // A buffer shorter than its header or body is answered in place (libfuse
  // rejects it); the classifier must not read past it.
  auto w = Write(1 << 20);
  EXPECT_FALSE(IsSlowRequest(std::span(w).first(10), false));
  EXPECT_FALSE(
      IsSlowRequest(std::span(w).first(sizeof(fuse_in_header) + 4), false));
}

}  // namespace
}  // namespace volmgr::files
