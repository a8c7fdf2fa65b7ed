#include "volmgr/files/encrypted_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace volmgr::files {
namespace {

// Reads until `buf` is full or end of file.
StatusOr<size_t> ReadFull(int fd, std::span<uint8_t> buf) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "read");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

Status WriteFull(int fd, std::span<const uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "write");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

StatusOr<size_t> PreadFull(int fd, std::span<uint8_t> buf, uint64_t off) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got,
                        static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "pread");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// Per-thread scratch space for whole requests: 128 KiB buffers would
// otherwise cross glibc's mmap threshold on every FUSE request (mmap,
// zero-fill, munmap). Holds ciphertext or file data, never keys.
std::span<uint8_t> Scratch(int slot, size_t n) {
  thread_local std::unique_ptr<uint8_t[]> buf[2];
  thread_local size_t cap[2] = {0, 0};
  if (cap[slot] < n) {
    buf[slot].reset(new uint8_t[n]);
    cap[slot] = n;
  }
  return {buf[slot].get(), n};
}

}  // namespace

StatusOr<FileHeader> ReadFileHeader(int fd) {
  uint8_t buf[kFileHeaderSize];
  VOLMGR_ASSIGN_OR_RETURN(size_t n, PreadFull(fd, buf, 0));
  return FileHeader::Parse(std::span<const uint8_t>(buf, n));
}

uint64_t EncryptedFile::PlainLen(uint64_t index, uint64_t size) const {
  const ChunkLayout l = cipher_->layout();
  const uint64_t last = l.ChunkCount(size) - 1;
  return index < last ? l.chunk_size : size - last * l.chunk_size;
}

Status EncryptedFile::PwriteAll(std::span<const uint8_t> data,
                                uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "pwrite");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status EncryptedFile::Initialize() {
  std::vector<uint8_t> buf(kFileHeaderSize + kChunkOverhead);
  std::memcpy(buf.data(), cipher_->header_bytes().data(), kFileHeaderSize);
  VOLMGR_RETURN_IF_ERROR(cipher_->Seal(
      0, true, {}, std::span(buf).subspan(kFileHeaderSize, kChunkOverhead)));
  VOLMGR_RETURN_IF_ERROR(PwriteAll(buf, 0));
  if (::ftruncate(fd_, static_cast<off_t>(buf.size())) != 0) {
    return ErrnoToStatus(errno, "ftruncate");
  }
  return Status::Ok();
}

StatusOr<uint64_t> EncryptedFile::Size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return ErrnoToStatus(errno, "fstat");
  return cipher_->layout().PlaintextSize(static_cast<uint64_t>(st.st_size));
}

Status EncryptedFile::ReadChunk(uint64_t index, uint64_t size,
                                std::vector<uint8_t>& out) {
  const ChunkLayout l = cipher_->layout();
  const uint64_t len = PlainLen(index, size);
  std::vector<uint8_t> sealed(len + kChunkOverhead);
  VOLMGR_ASSIGN_OR_RETURN(size_t n,
                          PreadFull(fd_, sealed, l.ChunkOffset(index)));
  if (n != sealed.size()) {
    return CorruptionError("chunk " + std::to_string(index) + " is truncated");
  }
  out.resize(len);
  return cipher_->Open(index, index == l.ChunkCount(size) - 1, sealed, out);
}

Status EncryptedFile::VerifyIfEmpty() {
  VOLMGR_ASSIGN_OR_RETURN(uint64_t size, Size());
  if (size != 0) return Status::Ok();
  std::vector<uint8_t> plain;
  return ReadChunk(0, 0, plain);
}

StatusOr<size_t> EncryptedFile::Read(uint64_t offset, std::span<uint8_t> out) {
  VOLMGR_ASSIGN_OR_RETURN(uint64_t size, Size());
  if (size == 0) {
    // Nothing to read, but the emptiness itself must authenticate.
    std::vector<uint8_t> none;
    VOLMGR_RETURN_IF_ERROR(ReadChunk(0, 0, none));
    return size_t{0};
  }
  if (offset >= size || out.empty()) return size_t{0};
  const size_t n =
      static_cast<size_t>(std::min<uint64_t>(out.size(), size - offset));
  const ChunkLayout l = cipher_->layout();
  const uint64_t first = offset / l.chunk_size;
  const uint64_t lastc = (offset + n - 1) / l.chunk_size;
  const uint64_t last_idx = l.ChunkCount(size) - 1;
  // One pread for the whole range, then verify chunk by chunk.
  const uint64_t begin = l.ChunkOffset(first);
  const uint64_t end =
      l.ChunkOffset(lastc) + PlainLen(lastc, size) + kChunkOverhead;
  std::span<uint8_t> sealed = Scratch(0, end - begin);
  VOLMGR_ASSIGN_OR_RETURN(size_t got, PreadFull(fd_, sealed, begin));
  if (got != sealed.size()) return CorruptionError("file is truncated");
  std::vector<uint8_t> plain;
  size_t copied = 0;
  for (uint64_t i = first; i <= lastc; ++i) {
    const uint64_t len = PlainLen(i, size);
    const uint64_t chunk_start = i * l.chunk_size;
    const uint64_t from = std::max(offset, chunk_start) - chunk_start;
    const uint64_t to =
        std::min<uint64_t>(offset + n, chunk_start + len) - chunk_start;
    std::span<const uint8_t> s(sealed.data() + (l.ChunkOffset(i) - begin),
                               len + kChunkOverhead);
    if (from == 0 && to == len) {
      // Whole chunk wanted: decrypt straight into the caller's buffer.
      VOLMGR_RETURN_IF_ERROR(
          cipher_->Open(i, i == last_idx, s, out.subspan(copied, len)));
    } else {
      plain.resize(len);
      VOLMGR_RETURN_IF_ERROR(cipher_->Open(i, i == last_idx, s, plain));
      std::memcpy(out.data() + copied, plain.data() + from, to - from);
    }
    copied += to - from;
  }
  return copied;
}

Status EncryptedFile::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return Status::Ok();
  VOLMGR_ASSIGN_OR_RETURN(uint64_t size, Size());
  if (offset > size) {
    VOLMGR_RETURN_IF_ERROR(Truncate(offset));
    size = offset;
  }
  const ChunkLayout l = cipher_->layout();
  const uint64_t end = offset + data.size();
  const uint64_t new_size = std::max(size, end);
  const uint64_t first = offset / l.chunk_size;
  const uint64_t lastw = (end - 1) / l.chunk_size;
  const uint64_t old_last = l.ChunkCount(size) - 1;
  const uint64_t new_last = l.ChunkCount(new_size) - 1;
  // A grown file's old last chunk must be resealed with last = 0.
  const uint64_t start =
      (new_last > old_last && old_last < first) ? old_last : first;
  size_t total = 0;
  for (uint64_t i = start; i <= lastw; ++i) {
    total += PlainLen(i, new_size) + kChunkOverhead;
  }
  std::span<uint8_t> out = Scratch(1, total);
  size_t pos = 0;
  std::vector<uint8_t> plain, new_tail;
  const bool tail_before = tail_ != nullptr && tail_->valid;
  for (uint64_t i = start; i <= lastw; ++i) {
    const uint64_t chunk_start = i * l.chunk_size;
    const uint64_t len_new = PlainLen(i, new_size);
    const bool covered = offset <= chunk_start && end >= chunk_start + len_new;
    if (!covered && chunk_start < size) {
      if (tail_ != nullptr && tail_->valid && tail_->index == i &&
          i == old_last && tail_->plain.size() == PlainLen(i, size)) {
        plain = tail_->plain;
      } else {
        VOLMGR_RETURN_IF_ERROR(ReadChunk(i, size, plain));
      }
    } else {
      plain.clear();
    }
    plain.resize(len_new, 0);
    const uint64_t from = std::max(offset, chunk_start);
    const uint64_t to = std::min(end, chunk_start + len_new);
    if (from < to) {
      std::memcpy(plain.data() + (from - chunk_start),
                  data.data() + (from - offset), to - from);
    }
    VOLMGR_RETURN_IF_ERROR(cipher_->Seal(
        i, i == new_last, plain, out.subspan(pos, len_new + kChunkOverhead)));
    pos += len_new + kChunkOverhead;
    if (i == new_last) new_tail = plain;
  }
  if (tail_ != nullptr) tail_->valid = false;
  VOLMGR_RETURN_IF_ERROR(PwriteAll(out, l.ChunkOffset(start)));
  if (tail_ != nullptr && lastw == new_last) {
    tail_->plain = std::move(new_tail);
    tail_->index = new_last;
    tail_->valid = true;
  } else if (tail_ != nullptr && new_last == old_last) {
    tail_->valid = tail_before;  // the last chunk was not rewritten
  }
  return Status::Ok();
}

Status EncryptedFile::Truncate(uint64_t new_size) {
  if (tail_ != nullptr) tail_->valid = false;
  VOLMGR_ASSIGN_OR_RETURN(uint64_t size, Size());
  if (new_size == size) return Status::Ok();
  const ChunkLayout l = cipher_->layout();
  std::vector<uint8_t> plain;
  if (new_size < size) {
    const uint64_t nl = l.ChunkCount(new_size) - 1;
    VOLMGR_RETURN_IF_ERROR(ReadChunk(nl, size, plain));
    plain.resize(PlainLen(nl, new_size));
    std::vector<uint8_t> sealed(plain.size() + kChunkOverhead);
    VOLMGR_RETURN_IF_ERROR(cipher_->Seal(nl, true, plain, sealed));
    VOLMGR_RETURN_IF_ERROR(PwriteAll(sealed, l.ChunkOffset(nl)));
    if (::ftruncate(fd_, static_cast<off_t>(l.CiphertextSize(new_size))) != 0) {
      return ErrnoToStatus(errno, "ftruncate");
    }
    return Status::Ok();
  }
  // Extend: reseal the old last chunk padded with zeros, then zero chunks,
  // at most 64 chunks per pwrite.
  const uint64_t old_last = l.ChunkCount(size) - 1;
  const uint64_t new_last = l.ChunkCount(new_size) - 1;
  VOLMGR_RETURN_IF_ERROR(ReadChunk(old_last, size, plain));
  std::vector<uint8_t> out;
  uint64_t batch_start = old_last;
  for (uint64_t i = old_last; i <= new_last; ++i) {
    const uint64_t len = PlainLen(i, new_size);
    if (i != old_last) plain.assign(len, 0);
    plain.resize(len, 0);
    const size_t pos = out.size();
    out.resize(pos + len + kChunkOverhead);
    VOLMGR_RETURN_IF_ERROR(
        cipher_->Seal(i, i == new_last, plain,
                      std::span(out).subspan(pos, len + kChunkOverhead)));
    if (out.size() >= 64 * l.sealed_chunk_size() || i == new_last) {
      VOLMGR_RETURN_IF_ERROR(PwriteAll(out, l.ChunkOffset(batch_start)));
      out.clear();
      batch_start = i + 1;
    }
  }
  return Status::Ok();
}

Status EncryptedFile::VerifyAll() {
  VOLMGR_ASSIGN_OR_RETURN(uint64_t size, Size());
  const ChunkLayout l = cipher_->layout();
  std::vector<uint8_t> plain;
  for (uint64_t i = 0; i < l.ChunkCount(size); ++i) {
    VOLMGR_RETURN_IF_ERROR(ReadChunk(i, size, plain));
  }
  return Status::Ok();
}

StatusOr<uint64_t> EncryptStream(int in_fd, int out_fd, ChunkCipher& cipher) {
  const uint32_t c = cipher.header().chunk_size;
  VOLMGR_RETURN_IF_ERROR(WriteFull(out_fd, cipher.header_bytes()));
  std::vector<uint8_t> cur(c), next(c), sealed(c + kChunkOverhead);
  VOLMGR_ASSIGN_OR_RETURN(size_t cur_n, ReadFull(in_fd, cur));
  uint64_t total = 0;
  for (uint64_t i = 0;; ++i) {
    size_t next_n = 0;
    // Only a full chunk can have a successor; read ahead to know "last".
    if (cur_n == c) {
      VOLMGR_ASSIGN_OR_RETURN(next_n, ReadFull(in_fd, next));
    }
    const bool last = next_n == 0;
    std::span<uint8_t> out(sealed.data(), cur_n + kChunkOverhead);
    VOLMGR_RETURN_IF_ERROR(
        cipher.Seal(i, last, std::span(cur).first(cur_n), out));
    VOLMGR_RETURN_IF_ERROR(WriteFull(out_fd, out));
    total += cur_n;
    if (last) break;
    std::swap(cur, next);
    cur_n = next_n;
  }
  return total;
}

StatusOr<uint64_t> DecryptStream(int in_fd, int out_fd, ChunkCipher& cipher) {
  const uint64_t sc = cipher.layout().sealed_chunk_size();
  std::vector<uint8_t> cur(sc), next(sc), plain(cipher.header().chunk_size);
  VOLMGR_ASSIGN_OR_RETURN(size_t cur_n, ReadFull(in_fd, cur));
  uint64_t total = 0;
  for (uint64_t i = 0;; ++i) {
    if (cur_n < kChunkOverhead) {
      return CorruptionError("chunk " + std::to_string(i) +
                             " is truncated or missing");
    }
    size_t next_n = 0;
    if (cur_n == sc) {
      VOLMGR_ASSIGN_OR_RETURN(next_n, ReadFull(in_fd, next));
    }
    const bool last = next_n == 0;
    std::span<uint8_t> p(plain.data(), cur_n - kChunkOverhead);
    VOLMGR_RETURN_IF_ERROR(
        cipher.Open(i, last, std::span(cur).first(cur_n), p));
    if (out_fd >= 0) VOLMGR_RETURN_IF_ERROR(WriteFull(out_fd, p));
    total += p.size();
    if (last) break;
    std::swap(cur, next);
    cur_n = next_n;
  }
  return total;
}

}  // namespace volmgr::files
