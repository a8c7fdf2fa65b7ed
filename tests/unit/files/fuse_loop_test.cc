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

constexpr auto kQuick = RequestCost::kQuick;
constexpr auto kBounded = RequestCost::kBounded;
constexpr auto kBlocking = RequestCost::kBlocking;

RequestCost Cost(std::span<const uint8_t> req, bool spliced) {
  return ClassifyRequest(req, spliced);
}

TEST(FuseLoopTest, LargeReadsAndWritesAreBoundedSmallOnesQuick) {
  EXPECT_EQ(Cost(Read(kHandOffIoBytes), false), kBounded);
  EXPECT_EQ(Cost(Read(1 << 20), false), kBounded);
  EXPECT_EQ(Cost(Read(kHandOffIoBytes - 1), false), kQuick);
  EXPECT_EQ(Cost(Write(128 << 10), false), kBounded);
  EXPECT_EQ(Cost(Write(4096), false), kQuick);
}

TEST(FuseLoopTest, SyncsBlockListingsAreBounded) {
  fuse_fsync_in f{};
  fuse_flush_in fl{};
  fuse_read_in r{};
  EXPECT_EQ(Cost(Request(FUSE_FSYNC, f), false), kBlocking);
  EXPECT_EQ(Cost(Request(FUSE_FSYNCDIR, f), false), kBlocking);
  EXPECT_EQ(Cost(Request(FUSE_FLUSH, fl), false), kBlocking);
  EXPECT_EQ(Cost(Request(FUSE_READDIRPLUS, r), false), kBounded);
  EXPECT_EQ(Cost(Request(FUSE_READDIR, r), false), kBounded);
}

TEST(FuseLoopTest, MetadataRequestsAreQuick) {
  fuse_getattr_in g{};
  fuse_setattr_in s{};
  fuse_create_in c{};
  fuse_release_in rel{};
  EXPECT_EQ(Cost(Request(FUSE_GETATTR, g), false), kQuick);
  EXPECT_EQ(Cost(Request(FUSE_SETATTR, s), false), kQuick);
  EXPECT_EQ(Cost(Request(FUSE_CREATE, c), false), kQuick);
  EXPECT_EQ(Cost(Request(FUSE_RELEASE, rel), false), kQuick);
  EXPECT_EQ(Cost(Request(FUSE_UNLINK, g), false), kQuick);
}

TEST(FuseLoopTest, SplicedAndTruncatedRequests) {
  // libfuse splices only large WRITEs: bounded, without a header to see.
  EXPECT_EQ(Cost({}, true), kBounded);
  // A buffer shorter than its header or body is answered in place (libfuse
  // rejects it); the classifier must not read past it.
  auto w = Write(1 << 20);
  EXPECT_EQ(Cost(std::span(w).first(10), false), kQuick);
  EXPECT_EQ(Cost(std::span(w).first(sizeof(fuse_in_header) + 4), false),
            kQuick);
}

}  // namespace
}  // namespace volmgr::files
