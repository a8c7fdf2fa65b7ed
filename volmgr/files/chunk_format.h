// The volmgr file-encryption container format (docs/FORMAT.md, "Encrypted
// file format"): a 32-byte header, then the content in authenticated
// AES-256-GCM chunks under the file's own random 256-bit key.
//
//   header  = "VMGRFILE" || u16be version (1) || u16be 0
//             || u32be chunk_size || file_id (16 bytes)
//   chunk i = nonce (12, random) || AES-256-GCM(plaintext_i) || tag (16)
//   AAD_i   = header (32 bytes) || u64be(i) || u8(last ? 1 : 0)
//
// Every chunk holds chunk_size plaintext bytes except the last, which holds
// 0..chunk_size (an empty file is one empty last chunk). Binding the whole
// header into every tag ties each chunk to its file ID and format; the index
// detects reordering; the last flag detects truncation at a chunk boundary
// (the new final chunk was sealed with last = 0). A chunk moved in from
// another file fails because that file's key and ID differ.
//
// Thread-safety: free functions are reentrant. A ChunkCipher must not be
// used from two threads at once; make one per thread or per request (it is
// cheap: one key schedule).
#ifndef VOLMGR_FILES_CHUNK_FORMAT_H_
#define VOLMGR_FILES_CHUNK_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::files {

inline constexpr uint16_t kFileFormatVersion = 1;
inline constexpr size_t kFileHeaderSize = 32;
inline constexpr size_t kFileIdSize = 16;
inline constexpr size_t kFileKeySize = 32;
inline constexpr size_t kChunkNonceSize = 12;
inline constexpr size_t kChunkTagSize = 16;
inline constexpr size_t kChunkOverhead = kChunkNonceSize + kChunkTagSize;
// 16 KiB: AES-256-GCM on this class of machine runs at ~2.8 GB/s on 4 KiB
// and ~4.2 GB/s on 16 KiB messages (openssl speed, docs/PERFORMANCE.md), so
// 16 KiB keeps per-chunk overhead small while a 4 KiB random write still
// only re-encrypts 16 KiB. Readers accept any power of two in the range.
inline constexpr uint32_t kDefaultChunkSize = 16384;
inline constexpr uint32_t kMinChunkSize = 64;
inline constexpr uint32_t kMaxChunkSize = 1u << 20;

using FileId = std::array<uint8_t, kFileIdSize>;

std::string FileIdHex(const FileId& id);
StatusOr<FileId> FileIdFromHex(std::string_view hex);

struct FileHeader {
  uint32_t chunk_size = kDefaultChunkSize;
  FileId file_id{};

  std::array<uint8_t, kFileHeaderSize> Encode() const;
  // kCorruption for a wrong magic, reserved bits or chunk size;
  // kUnsupported for another version; kCorruption if shorter than 32 bytes.
  static StatusOr<FileHeader> Parse(std::span<const uint8_t> bytes);
};

// Geometry of a container with a given header.
struct ChunkLayout {
  uint32_t chunk_size = kDefaultChunkSize;

  uint64_t sealed_chunk_size() const { return chunk_size + kChunkOverhead; }
  // Chunks a file of `plaintext_size` bytes has (at least 1).
  uint64_t ChunkCount(uint64_t plaintext_size) const;
  // Container size (header included) for `plaintext_size` bytes.
  uint64_t CiphertextSize(uint64_t plaintext_size) const;
  // The reverse. kCorruption if no plaintext size maps to this size
  // (a truncated or extended container).
  StatusOr<uint64_t> PlaintextSize(uint64_t ciphertext_size) const;
  // Offset of chunk `index` in the container.
  uint64_t ChunkOffset(uint64_t index) const {
    return kFileHeaderSize + index * sealed_chunk_size();
  }
};

// The AAD of chunk `index` (docs/FORMAT.md).
std::array<uint8_t, kFileHeaderSize + 9> ChunkAad(
    const std::array<uint8_t, kFileHeaderSize>& header, uint64_t index,
    bool last);

// Seals and opens the chunks of one file.
class ChunkCipher {
 public:
  // REQUIRES: key.size() == 32. The key is copied into OpenSSL's contexts
  // (freed and cleansed with them).
  static StatusOr<ChunkCipher> Create(const SecretBytes& key,
                                      const FileHeader& header);

  // Moves take the unused nonces along; the source keeps none, so no
  // nonce can be used twice.
  ChunkCipher(ChunkCipher&& o) noexcept { *this = std::move(o); }
  ChunkCipher& operator=(ChunkCipher&& o) noexcept;

  const FileHeader& header() const { return header_; }
  const std::array<uint8_t, kFileHeaderSize>& header_bytes() const {
    return header_bytes_;
  }
  ChunkLayout layout() const { return {header_.chunk_size}; }

  // Seals `plaintext` (<= chunk_size bytes) as chunk `index` with a fresh
  // random nonce into `out` (exactly plaintext.size() + 28 bytes).
  Status Seal(uint64_t index, bool last, std::span<const uint8_t> plaintext,
              std::span<uint8_t> out);
  // The same with a caller-chosen nonce: ONLY for known-answer tests. A
  // repeated nonce under one key breaks GCM (SP 800-38D section 8).
  Status SealWithNonceForTesting(uint64_t index, bool last,
                                 std::span<const uint8_t> nonce,
                                 std::span<const uint8_t> plaintext,
                                 std::span<uint8_t> out);
  // Verifies and decrypts sealed chunk `index` into `out` (sealed.size() -
  // 28 bytes). kCorruption ("chunk N failed authentication") if anything
  // differs (key, file ID, index, last flag, any byte), `out` is then wiped;
  // kCorruption too if shorter than 28.
  Status Open(uint64_t index, bool last, std::span<const uint8_t> sealed,
              std::span<uint8_t> out);

 private:
  ChunkCipher() = default;
  Status SealImpl(uint64_t index, bool last, std::span<const uint8_t> nonce,
                  std::span<const uint8_t> plaintext, std::span<uint8_t> out);

  FileHeader header_;
  std::array<uint8_t, kFileHeaderSize> header_bytes_{};
  crypto::EvpCipherCtxPtr enc_;
  crypto::EvpCipherCtxPtr dec_;
  // Random nonces drawn 32 at a time: one RAND_bytes per 16 KiB chunk was
  // 7 % of a sequential write's CPU. Each is used once, then wiped.
  static constexpr size_t kNoncePool = 32;
  std::array<uint8_t, kNoncePool * kChunkNonceSize> nonces_{};
  size_t nonces_left_ = 0;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_CHUNK_FORMAT_H_
