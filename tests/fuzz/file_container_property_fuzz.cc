// Property mode for the file container (issue 17): a valid container plus
// one mutation must never read back as data. The harness seals a container
// with the real writer (EncryptedFile::Write, as the mount writes, or
// EncryptStream, as `files encrypt` does), applies ONE mutation chosen by
// the input, and aborts if any reader accepts the result: the mount's
// Read of the whole file, VerifyAll (`files verify`) or DecryptStream
// (`files decrypt`).
//
// Input: [0] chunk size (64 << (b % 4)), [1] writer and mutation kind,
// [2..3] plaintext length (LE, mod 1500), [4..7] mutation position (LE),
// [8..9] mutation length / value, the rest is the plaintext (repeated).
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/files/encrypted_file.h"

namespace f = volmgr::files;

namespace {

const volmgr::SecretBytes& Key() {
  static const volmgr::SecretBytes* k = [] {
    auto s = volmgr::SecretBytes::CopyOf(
        std::string(f::kFileKeySize, char(volmgr::fuzz::kFileKeyByte)));
    if (!s.ok()) volmgr::fuzz::SetupFailed("secret memory");
    return new volmgr::SecretBytes(std::move(s).value());
  }();
  return *k;
}

f::ChunkCipher Cipher(const f::FileHeader& h) {
  auto c = f::ChunkCipher::Create(Key(), h);
  if (!c.ok()) volmgr::fuzz::SetupFailed("ChunkCipher");
  return std::move(c).value();
}

std::vector<uint8_t> FileBytes(int fd) {
  const off_t n = lseek(fd, 0, SEEK_END);
  std::vector<uint8_t> out(static_cast<size_t>(n));
  if (pread(fd, out.data(), out.size(), 0) != n) {
    volmgr::fuzz::SetupFailed("pread");
  }
  return out;
}

// Seals `plain` into a container the given way; returns its bytes.
std::vector<uint8_t> Seal(volmgr::fuzz::MemFile& mem, const f::FileHeader& h,
                          const std::vector<uint8_t>& plain, bool stream,
                          uint8_t file_id_byte) {
  f::FileHeader hh = h;
  hh.file_id.fill(file_id_byte);
  mem.Set({});
  if (stream) {
    volmgr::fuzz::MemFile in;
    in.Set(plain);
    f::ChunkCipher c = Cipher(hh);
    if (!f::EncryptStream(in.fd(), mem.fd(), c).ok()) {
      volmgr::fuzz::SetupFailed("EncryptStream");
    }
  } else {
    f::EncryptedFile ef(mem.fd(), Cipher(hh));
    if (!ef.Initialize().ok() || !ef.Write(0, plain).ok()) {
      volmgr::fuzz::SetupFailed("EncryptedFile::Write");
    }
  }
  return FileBytes(mem.fd());
}

uint32_t Le(const uint8_t* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 10) return 0;
  static volmgr::fuzz::MemFile* mem = new volmgr::fuzz::MemFile;
  static const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  f::FileHeader h;
  h.chunk_size = 64u << (data[0] % 4);
  const bool stream = data[1] & 1;
  const int kind = (data[1] >> 1) % 9;
  const size_t plain_len = Le(data + 2, 2) % 1500;
  const uint32_t pos = Le(data + 4, 4);
  const uint32_t arg = Le(data + 8, 2);
  std::vector<uint8_t> plain(plain_len);
  for (size_t i = 0; i < plain_len; ++i) {
    plain[i] = size > 10 ? data[10 + i % (size - 10)] : uint8_t(i);
  }
  const std::vector<uint8_t> good = Seal(*mem, h, plain, stream, 0x11);
  std::vector<uint8_t> bad = good;
  const size_t at = pos % (good.size() + 1);
  const f::ChunkLayout layout{h.chunk_size};
  const size_t sc = layout.sealed_chunk_size();
  const size_t chunks = layout.ChunkCount(plain_len);
  switch (kind) {
    case 0:  // flip one bit
      if (at == good.size()) return 0;
      bad[at] ^= uint8_t(1u << (arg % 8));
      break;
    case 1:  // truncate
      bad.resize(at);
      break;
    case 2:  // insert bytes
      bad.insert(bad.begin() + at, 1 + arg % 64, uint8_t(arg >> 8));
      break;
    case 3:  // delete bytes
      bad.erase(bad.begin() + at,
                bad.begin() + std::min(good.size(), at + 1 + arg % 64));
      break;
    case 4:  // append bytes
      bad.insert(bad.end(), 1 + arg % 64, uint8_t(arg >> 8));
      break;
    case 5: {  // swap two chunks
      const size_t a = pos % chunks, b = arg % chunks;
      if (a == b) return 0;
      const size_t la = std::min(sc, good.size() - layout.ChunkOffset(a));
      const size_t lb = std::min(sc, good.size() - layout.ChunkOffset(b));
      if (la != lb) return 0;  // the short last chunk: a truncation
      std::memcpy(bad.data() + layout.ChunkOffset(a),
                  good.data() + layout.ChunkOffset(b), la);
      std::memcpy(bad.data() + layout.ChunkOffset(b),
                  good.data() + layout.ChunkOffset(a), la);
      break;
    }
    case 6: {  // drop whole chunks from the end (a cut at a chunk boundary)
      const size_t keep = pos % chunks;
      bad.resize(layout.ChunkOffset(keep));
      break;
    }
    case 7: {  // a chunk (or the header) from another file with the same key
      const std::vector<uint8_t> other = Seal(*mem, h, plain, stream, 0x22);
      if (other.size() != good.size()) return 0;
      const size_t c = pos % (chunks + 1);  // chunks: the header
      if (c == chunks) {
        std::memcpy(bad.data(), other.data(), f::kFileHeaderSize);
      } else {
        const size_t off = layout.ChunkOffset(c);
        std::memcpy(bad.data() + off, other.data() + off,
                    std::min(sc, good.size() - off));
      }
      break;
    }
    case 8: {  // the whole container replaced by another one's prefix:
               // a shorter file of the same ID resealed is not possible
               // without the key, so replay an older version of this file
               // cut to the new size.
      const std::vector<uint8_t> older =
          Seal(*mem, h, std::vector<uint8_t>(plain_len + 1 + arg % 200, 7),
               stream, 0x11);
      bad.assign(older.begin(),
                 older.begin() + std::min(older.size(), good.size()));
      break;
    }
  }
  if (bad == good) return 0;
  mem->Set(bad);
  auto header = f::ReadFileHeader(mem->fd());
  if (!header.ok()) return 0;
  {
    f::EncryptedFile ef(mem->fd(), Cipher(*header));
    auto n = ef.Size();
    if (n.ok()) {
      std::vector<uint8_t> buf(*n + 1);
      auto got = ef.Read(0, buf);
      if (got.ok() && *got == *n) {
        volmgr::fuzz::Violation("mutation " + std::to_string(kind) +
                                " reads back through the mount (" +
                                std::to_string(*n) + " bytes)");
      }
    }
    if (ef.VerifyAll().ok()) {
      volmgr::fuzz::Violation("mutation " + std::to_string(kind) +
                              " passes VerifyAll");
    }
  }
  f::ChunkCipher c = Cipher(*header);
  lseek(mem->fd(), f::kFileHeaderSize, SEEK_SET);
  if (f::DecryptStream(mem->fd(), devnull, c).ok()) {
    volmgr::fuzz::Violation("mutation " + std::to_string(kind) +
                            " passes DecryptStream");
  }
  return 0;
}
