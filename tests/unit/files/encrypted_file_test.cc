#include "volmgr/files/encrypted_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "tests/unit/files/test_util.h"

namespace volmgr::files {
namespace {

using testing::Filled;
using testing::TempDir;

constexpr uint32_t kChunk = 64;  // small chunks: many boundaries per test

struct Container {
  TempDir dir;
  std::string path = dir.path() + "/c";
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  SecretBytes key = Filled(32, 9);
  FileHeader header = [] {
    FileHeader h;
    h.chunk_size = kChunk;
    h.file_id.fill(0x42);
    return h;
  }();
  TailCache tail;  // as the FUSE layer keeps one per open file
  ~Container() { ::close(fd); }

  EncryptedFile File() {
    return EncryptedFile(
        fd, std::move(ChunkCipher::Create(key, header)).value(), &tail);
  }
  std::vector<uint8_t> ReadAll() {
    auto f = File();
    std::vector<uint8_t> out(*f.Size());
    auto n = f.Read(0, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return out;
  }
  std::vector<uint8_t> Raw() {
    std::vector<uint8_t> b(::lseek(fd, 0, SEEK_END));
    EXPECT_EQ(::pread(fd, b.data(), b.size(), 0),
              static_cast<ssize_t>(b.size()));
    return b;
  }
  void SetRaw(const std::vector<uint8_t>& b) {
    ASSERT_EQ(::ftruncate(fd, 0), 0);
    ASSERT_EQ(::pwrite(fd, b.data(), b.size(), 0),
              static_cast<ssize_t>(b.size()));
  }
};

TEST(EncryptedFileTest, RandomWritesTruncatesAndReadsMatchAPlainModel) {
  Container c;
  ASSERT_TRUE(c.File().Initialize().ok());
  std::vector<uint8_t> model;
  std::mt19937 rng(1234);
  for (int step = 0; step < 400; ++step) {
    auto f = c.File();
    int op = rng() % 10;
    if (op < 6) {
      uint64_t off = rng() % (model.size() + 3 * kChunk);
      std::vector<uint8_t> data(rng() % (3 * kChunk) + 1);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      ASSERT_TRUE(f.Write(off, data).ok()) << step;
      if (model.size() < off + data.size()) model.resize(off + data.size(), 0);
      std::copy(data.begin(), data.end(), model.begin() + off);
    } else if (op < 8) {
      uint64_t size = rng() % (model.size() + 2 * kChunk + 1);
      ASSERT_TRUE(f.Truncate(size).ok()) << step;
      model.resize(size, 0);
    } else {
      uint64_t off = rng() % (model.size() + 1);
      std::vector<uint8_t> out(rng() % (4 * kChunk) + 1);
      auto n = f.Read(off, out);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      size_t want = std::min<size_t>(out.size(), model.size() - off);
      ASSERT_EQ(*n, want);
      EXPECT_TRUE(
          std::equal(out.begin(), out.begin() + want, model.begin() + off))
          << step;
    }
    ASSERT_EQ(*c.File().Size(), model.size()) << step;
  }
  EXPECT_EQ(c.ReadAll(), model);
  EXPECT_TRUE(c.File().VerifyAll().ok());
}

// A file of 3.5 chunks, for the tamper cases.
Container* Tamperable() {
  auto* c = new Container;
  EXPECT_TRUE(c->File().Initialize().ok());
  std::vector<uint8_t> data(kChunk * 3 + kChunk / 2);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  EXPECT_TRUE(c->File().Write(0, data).ok());
  return c;
}

Status ReadChunkAt(Container& c, uint64_t off) {
  std::vector<uint8_t> out(8);
  return c.File().Read(off, out).status();
}

TEST(EncryptedFileTest, FlippedByteFailsOnlyThatChunk) {
  std::unique_ptr<Container> c(Tamperable());
  auto raw = c->Raw();
  raw[kFileHeaderSize + (kChunk + kChunkOverhead) + 20] ^= 1;  // chunk 1
  c->SetRaw(raw);
  EXPECT_TRUE(ReadChunkAt(*c, 0).ok());
  EXPECT_EQ(ReadChunkAt(*c, kChunk + 5).code(), StatusCode::kCorruption);
  EXPECT_TRUE(ReadChunkAt(*c, 2 * kChunk).ok());
  EXPECT_FALSE(c->File().VerifyAll().ok());
}

TEST(EncryptedFileTest, SwappedChunksFail) {
  std::unique_ptr<Container> c(Tamperable());
  auto raw = c->Raw();
  const size_t sc = kChunk + kChunkOverhead;
  std::swap_ranges(raw.begin() + kFileHeaderSize,
                   raw.begin() + kFileHeaderSize + sc,
                   raw.begin() + kFileHeaderSize + sc);
  c->SetRaw(raw);
  EXPECT_EQ(ReadChunkAt(*c, 0).code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadChunkAt(*c, kChunk).code(), StatusCode::kCorruption);
  EXPECT_TRUE(ReadChunkAt(*c, 2 * kChunk).ok());
}

TEST(EncryptedFileTest, TruncationAtAChunkBoundaryIsDetected) {
  std::unique_ptr<Container> c(Tamperable());
  auto raw = c->Raw();
  // Drop the (partial) last chunk: chunk 2, sealed as not-last, is now last.
  raw.resize(kFileHeaderSize + 3 * (kChunk + kChunkOverhead));
  c->SetRaw(raw);
  EXPECT_EQ(*c->File().Size(), 3 * kChunk);
  EXPECT_EQ(ReadChunkAt(*c, 2 * kChunk).code(), StatusCode::kCorruption);
  EXPECT_TRUE(ReadChunkAt(*c, 0).ok());
}

TEST(EncryptedFileTest, TruncationMidChunkIsCorruption) {
  std::unique_ptr<Container> c(Tamperable());
  auto raw = c->Raw();
  raw.resize(kFileHeaderSize + 3 * (kChunk + kChunkOverhead) + 10);
  c->SetRaw(raw);
  EXPECT_EQ(c->File().Size().status().code(), StatusCode::kCorruption);
}

TEST(EncryptedFileTest, ChunkFromAnotherFileWithTheSameKeyFails) {
  std::unique_ptr<Container> a(Tamperable());
  Container b;
  b.header.file_id.fill(0x43);
  ASSERT_TRUE(b.File().Initialize().ok());
  std::vector<uint8_t> data(kChunk * 3 + kChunk / 2, 0x11);
  ASSERT_TRUE(b.File().Write(0, data).ok());
  auto ra = a->Raw();
  auto rb = b.Raw();
  // Same key, same index, other file ID: the header in the AAD differs.
  std::copy(rb.begin() + kFileHeaderSize,
            rb.begin() + kFileHeaderSize + kChunk + kChunkOverhead,
            ra.begin() + kFileHeaderSize);
  a->SetRaw(ra);
  EXPECT_EQ(ReadChunkAt(*a, 0).code(), StatusCode::kCorruption);
}

TEST(EncryptedFileTest, StreamRoundTripAndTruncatedStreamFails) {
  TempDir d;
  for (size_t size : {0ul, 1ul, 64ul, 128ul, 1000ul}) {
    std::vector<uint8_t> pt(size);
    for (size_t i = 0; i < size; ++i) pt[i] = static_cast<uint8_t>(i * 7);
    const std::string in = d.path() + "/in", ct = d.path() + "/ct",
                      out = d.path() + "/out";
    int fi = ::open(in.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    ASSERT_EQ(::write(fi, pt.data(), pt.size()), static_cast<ssize_t>(size));
    ::lseek(fi, 0, SEEK_SET);
    int fc = ::open(ct.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    FileHeader h;
    h.chunk_size = kChunk;
    auto key = Filled(32, 3);
    auto c = std::move(ChunkCipher::Create(key, h)).value();
    ASSERT_TRUE(EncryptStream(fi, fc, c).ok());
    // The stream writer and the random-access reader agree.
    EncryptedFile ef(fc, std::move(ChunkCipher::Create(key, h)).value());
    ASSERT_EQ(*ef.Size(), size);
    ::lseek(fc, kFileHeaderSize, SEEK_SET);
    int fo = ::open(out.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    auto n = DecryptStream(fc, fo, c);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, size);
    if (size >= 2 * kChunk) {
      // Cut the last chunk off: the stream must not end cleanly.
      ASSERT_EQ(::ftruncate(fc, kFileHeaderSize + (kChunk + kChunkOverhead)),
                0);
      ::lseek(fc, kFileHeaderSize, SEEK_SET);
      EXPECT_EQ(DecryptStream(fc, -1, c).status().code(),
                StatusCode::kCorruption);
    }
    ::close(fi);
    ::close(fc);
    ::close(fo);
  }
}

// A longer file cut to the 60 bytes of an empty one must not read as an
// empty file (issue 17, item 6): its one "chunk" does not verify.
TEST(EncryptedFileTest, AContainerCutToAnEmptyFilesSizeIsCorruption) {
  Container c;
  ASSERT_TRUE(c.File().Initialize().ok());
  EXPECT_TRUE(c.File().VerifyIfEmpty().ok());
  uint8_t buf[16];
  EXPECT_EQ(*c.File().Read(0, buf), 0u);
  ASSERT_TRUE(c.File().Write(0, std::vector<uint8_t>(500, 7)).ok());
  EXPECT_TRUE(c.File().VerifyIfEmpty().ok());  // not empty: reads verify
  ASSERT_EQ(::ftruncate(c.fd, kFileHeaderSize + kChunkOverhead), 0);
  EXPECT_EQ(*c.File().Size(), 0u);
  EXPECT_EQ(c.File().VerifyIfEmpty().code(), StatusCode::kCorruption);
  EXPECT_EQ(c.File().Read(0, buf).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(c.File().VerifyAll().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace volmgr::files
