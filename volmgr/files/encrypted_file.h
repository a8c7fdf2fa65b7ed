// Reading and writing the content of one encrypted container
// (chunk_format.h): random access for the FUSE mount, and whole-file
// streams for `files encrypt|decrypt|verify`.
//
// Crash behaviour: each Write/Truncate ends in one pwrite of all the chunks
// it changes (then ftruncate when shrinking), so a process killed between
// calls leaves every chunk either old or new. A power loss in the middle of
// a pwrite can leave the final chunk unreadable; `files verify` reports it.
//
// Thread-safety: an EncryptedFile is not thread-safe; the caller serialises
// writers (the FUSE layer holds a per-inode lock; readers may share it
// because Read only preads and uses its own ChunkCipher).
#ifndef VOLMGR_FILES_ENCRYPTED_FILE_H_
#define VOLMGR_FILES_ENCRYPTED_FILE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/files/chunk_format.h"

namespace volmgr::files {

// Reads and parses the header at offset 0 of `fd`.
StatusOr<FileHeader> ReadFileHeader(int fd);

// The plaintext of a file's last chunk as this process last wrote it, so
// an append need not read and decrypt it again to reseal it with last = 0.
// Owned by the caller (one per open file), guarded by its writer lock.
struct TailCache {
  bool valid = false;
  uint64_t index = 0;
  std::vector<uint8_t> plain;
};

class EncryptedFile {
 public:
  // `fd` is the container (not owned; opened read-write for writes).
  // `tail` (optional) must outlive this object and belong to this file.
  EncryptedFile(int fd, ChunkCipher cipher, TailCache* tail = nullptr)
      : fd_(fd), owned_(std::move(cipher)), cipher_(&*owned_), tail_(tail) {}
  // The same with a cipher the caller keeps (e.g. one pooled per open
  // file); it must outlive this object and not be used meanwhile.
  EncryptedFile(int fd, ChunkCipher* cipher, TailCache* tail = nullptr)
      : fd_(fd), cipher_(cipher), tail_(tail) {}
  EncryptedFile(EncryptedFile&& o) noexcept
      : fd_(o.fd_),
        owned_(std::move(o.owned_)),
        cipher_(owned_ ? &*owned_ : o.cipher_),
        tail_(o.tail_) {}
  EncryptedFile& operator=(EncryptedFile&&) = delete;

  // Writes the header and one empty last chunk: an empty file.
  Status Initialize();

  // The plaintext size, from the container size. kCorruption if the
  // container size is impossible (truncated mid-chunk).
  StatusOr<uint64_t> Size() const;

  // Reads up to out.size() bytes at `offset`; fewer at end of file.
  // kCorruption naming the chunk if any chunk it touches does not verify;
  // for an empty file, that is its one empty last chunk.
  StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out);

  // kCorruption if the container has the size of an empty file but its
  // one chunk does not verify as an empty last chunk (say, a longer file
  // cut to 60 bytes). An empty file has no content whose chunk a read
  // would verify, and a kernel reads nothing from a file whose size is 0,
  // so the mount calls this at open. Cheap: one 28-byte read. OK for
  // files that are not empty (their reads verify their chunks).
  Status VerifyIfEmpty();

  // Writes `data` at `offset`; a gap past the end reads back as zeros.
  Status Write(uint64_t offset, std::span<const uint8_t> data);

  // Shrinks or extends (with zeros) to `size` bytes.
  Status Truncate(uint64_t size);

  // Reads every chunk; kCorruption naming the first bad one.
  Status VerifyAll();

 private:
  uint64_t PlainLen(uint64_t index, uint64_t size) const;
  // Decrypts chunk `index` of a file of plaintext size `size`.
  Status ReadChunk(uint64_t index, uint64_t size, std::vector<uint8_t>& out);
  Status PwriteAll(std::span<const uint8_t> data, uint64_t offset);

  int fd_;
  std::optional<ChunkCipher> owned_;
  ChunkCipher* cipher_;
  TailCache* tail_;
};

// Encrypts all of `in_fd` into a new container on `out_fd` (sequential
// writes). Returns the plaintext byte count.
StatusOr<uint64_t> EncryptStream(int in_fd, int out_fd, ChunkCipher& cipher);
// Decrypts a whole container from `in_fd` (positioned after the header) to
// `out_fd`. Plaintext is written chunk by chunk as it verifies: on an error
// the output holds the verified prefix only.
StatusOr<uint64_t> DecryptStream(int in_fd, int out_fd, ChunkCipher& cipher);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_ENCRYPTED_FILE_H_
