#include "volmgr/files/chunk_format.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <cstring>
#include <utility>

namespace volmgr::files {
namespace {

constexpr char kMagic[8] = {'V', 'M', 'G', 'R', 'F', 'I', 'L', 'E'};

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint64_t GetBe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

bool ValidChunkSize(uint32_t c) {
  return c >= kMinChunkSize && c <= kMaxChunkSize && (c & (c - 1)) == 0;
}

// Fetched once; EVP_CIPHER objects may be shared between threads.
const EVP_CIPHER* AesGcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

}  // namespace

std::string FileIdHex(const FileId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

StatusOr<FileId> FileIdFromHex(std::string_view hex) {
  if (hex.size() != 2 * kFileIdSize) {
    return InvalidArgumentError("file ID must be 32 hex digits");
  }
  FileId id{};
  for (size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0) return InvalidArgumentError("file ID is not hex");
    id[i / 2] = static_cast<uint8_t>(id[i / 2] << 4 | v);
  }
  return id;
}

std::array<uint8_t, kFileHeaderSize> FileHeader::Encode() const {
  std::array<uint8_t, kFileHeaderSize> b{};
  std::memcpy(b.data(), kMagic, 8);
  PutBe(&b[8], kFileFormatVersion, 2);
  PutBe(&b[10], 0, 2);
  PutBe(&b[12], chunk_size, 4);
  std::memcpy(&b[16], file_id.data(), kFileIdSize);
  return b;
}

StatusOr<FileHeader> FileHeader::Parse(std::span<const uint8_t> b) {
  if (b.size() < kFileHeaderSize) {
    return CorruptionError("file header is " + std::to_string(b.size()) +
                           " bytes, shorter than 32");
  }
  if (std::memcmp(b.data(), kMagic, 8) != 0) {
    return CorruptionError("not a volmgr encrypted file (bad magic)");
  }
  const uint64_t version = GetBe(&b[8], 2);
  if (version != kFileFormatVersion) {
    return UnsupportedError("encrypted file format version " +
                            std::to_string(version) + " (this build reads 1)");
  }
  if (GetBe(&b[10], 2) != 0) {
    return CorruptionError("file header: reserved field is not zero");
  }
  FileHeader h;
  h.chunk_size = static_cast<uint32_t>(GetBe(&b[12], 4));
  if (!ValidChunkSize(h.chunk_size)) {
    return CorruptionError("file header: bad chunk size " +
                           std::to_string(h.chunk_size));
  }
  std::memcpy(h.file_id.data(), &b[16], kFileIdSize);
  return h;
}

uint64_t ChunkLayout::ChunkCount(uint64_t plaintext_size) const {
  if (plaintext_size == 0) return 1;
  return (plaintext_size + chunk_size - 1) / chunk_size;
}

uint64_t ChunkLayout::CiphertextSize(uint64_t plaintext_size) const {
  return kFileHeaderSize + plaintext_size +
         ChunkCount(plaintext_size) * kChunkOverhead;
}

StatusOr<uint64_t> ChunkLayout::PlaintextSize(uint64_t ciphertext_size) const {
  if (ciphertext_size < kFileHeaderSize + kChunkOverhead) {
    return CorruptionError("encrypted file is truncated (" +
                           std::to_string(ciphertext_size) + " bytes)");
  }
  const uint64_t body = ciphertext_size - kFileHeaderSize;
  const uint64_t full = body / sealed_chunk_size();
  const uint64_t rem = body % sealed_chunk_size();
  if (rem == 0) return full * chunk_size;
  // A partial last chunk needs its nonce and tag; an empty one is only the
  // whole of an empty file.
  if (rem < kChunkOverhead || (rem == kChunkOverhead && full > 0)) {
    return CorruptionError("encrypted file size " +
                           std::to_string(ciphertext_size) +
                           " is not a whole number of chunks");
  }
  return full * chunk_size + (rem - kChunkOverhead);
}

std::array<uint8_t, kFileHeaderSize + 9> ChunkAad(
    const std::array<uint8_t, kFileHeaderSize>& header, uint64_t index,
    bool last) {
  std::array<uint8_t, kFileHeaderSize + 9> aad{};
  std::memcpy(aad.data(), header.data(), kFileHeaderSize);
  PutBe(&aad[kFileHeaderSize], index, 8);
  aad[kFileHeaderSize + 8] = last ? 1 : 0;
  return aad;
}

StatusOr<ChunkCipher> ChunkCipher::Create(const SecretBytes& key,
                                          const FileHeader& header) {
  if (key.size() != kFileKeySize) {
    return InvalidArgumentError("file key must be 32 bytes");
  }
  if (AesGcm() == nullptr) return crypto::OpenSslError("fetch AES-256-GCM");
  ChunkCipher c;
  c.header_ = header;
  c.header_bytes_ = header.Encode();
  c.enc_.reset(EVP_CIPHER_CTX_new());
  c.dec_.reset(EVP_CIPHER_CTX_new());
  if (!c.enc_ || !c.dec_) return crypto::OpenSslError("EVP_CIPHER_CTX_new");
  // The key schedule is done once here; each chunk only sets its nonce.
  if (EVP_EncryptInit_ex2(c.enc_.get(), AesGcm(), key.Reveal().data(), nullptr,
                          nullptr) != 1 ||
      EVP_DecryptInit_ex2(c.dec_.get(), AesGcm(), key.Reveal().data(), nullptr,
                          nullptr) != 1) {
    return crypto::OpenSslError("AES-256-GCM key setup");
  }
  return c;
}

ChunkCipher& ChunkCipher::operator=(ChunkCipher&& o) noexcept {
  if (this == &o) return *this;
  header_ = o.header_;
  header_bytes_ = o.header_bytes_;
  enc_ = std::move(o.enc_);
  dec_ = std::move(o.dec_);
  nonces_ = o.nonces_;
  nonces_left_ = std::exchange(o.nonces_left_, 0);
  OPENSSL_cleanse(o.nonces_.data(), o.nonces_.size());
  return *this;
}

Status ChunkCipher::Seal(uint64_t index, bool last,
                         std::span<const uint8_t> plaintext,
                         std::span<uint8_t> out) {
  if (out.size() != plaintext.size() + kChunkOverhead) {
    return InvalidArgumentError("chunk output buffer has the wrong size");
  }
  // Public and unique is what a GCM nonce needs (SP 800-38D 8.2.2); 96
  // random bits per chunk, as before, only fetched in batches.
  if (nonces_left_ == 0) {
    if (RAND_bytes(nonces_.data(), static_cast<int>(nonces_.size())) != 1) {
      return crypto::OpenSslError("RAND_bytes for chunk nonces");
    }
    nonces_left_ = kNoncePool;
  }
  --nonces_left_;
  uint8_t* nonce = nonces_.data() + nonces_left_ * kChunkNonceSize;
  std::memcpy(out.data(), nonce, kChunkNonceSize);
  OPENSSL_cleanse(nonce, kChunkNonceSize);
  return SealImpl(index, last, out.first(kChunkNonceSize), plaintext, out);
}

Status ChunkCipher::SealWithNonceForTesting(uint64_t index, bool last,
                                            std::span<const uint8_t> nonce,
                                            std::span<const uint8_t> plaintext,
                                            std::span<uint8_t> out) {
  if (nonce.size() != kChunkNonceSize ||
      out.size() != plaintext.size() + kChunkOverhead) {
    return InvalidArgumentError("bad nonce or output size");
  }
  std::memcpy(out.data(), nonce.data(), kChunkNonceSize);
  return SealImpl(index, last, out.first(kChunkNonceSize), plaintext, out);
}

Status ChunkCipher::SealImpl(uint64_t index, bool last,
                             std::span<const uint8_t> nonce,
                             std::span<const uint8_t> plaintext,
                             std::span<uint8_t> out) {
  if (plaintext.size() > header_.chunk_size) {
    return InvalidArgumentError("chunk plaintext exceeds the chunk size");
  }
  const auto aad = ChunkAad(header_bytes_, index, last);
  EVP_CIPHER_CTX* ctx = enc_.get();
  int len = 0;
  if (EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(),
                        static_cast<int>(aad.size())) != 1 ||
      (!plaintext.empty() &&
       EVP_EncryptUpdate(ctx, out.data() + kChunkNonceSize, &len,
                         plaintext.data(),
                         static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, out.data() + kChunkNonceSize, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kChunkTagSize,
                          out.data() + out.size() - kChunkTagSize) != 1) {
    return crypto::OpenSslError("AES-256-GCM chunk seal");
  }
  return Status::Ok();
}

Status ChunkCipher::Open(uint64_t index, bool last,
                         std::span<const uint8_t> sealed,
                         std::span<uint8_t> out) {
  if (sealed.size() < kChunkOverhead) {
    return CorruptionError("chunk " + std::to_string(index) +
                           " is shorter than nonce and tag");
  }
  const size_t n = sealed.size() - kChunkOverhead;
  if (out.size() != n || n > header_.chunk_size) {
    return InvalidArgumentError("chunk output buffer has the wrong size");
  }
  const auto aad = ChunkAad(header_bytes_, index, last);
  EVP_CIPHER_CTX* ctx = dec_.get();
  int len = 0;
  uint8_t tag[kChunkTagSize];
  std::memcpy(tag, sealed.data() + sealed.size() - kChunkTagSize,
              kChunkTagSize);
  if (EVP_DecryptInit_ex2(ctx, nullptr, nullptr, sealed.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(),
                        static_cast<int>(aad.size())) != 1 ||
      (n > 0 &&
       EVP_DecryptUpdate(ctx, out.data(), &len, sealed.data() + kChunkNonceSize,
                         static_cast<int>(n)) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kChunkTagSize, tag) !=
          1) {
    return crypto::OpenSslError("AES-256-GCM chunk open");
  }
  if (EVP_DecryptFinal_ex(ctx, out.data() + n, &len) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    // The key came verified from the key store, so a chunk that does not
    // verify is damaged, reordered, truncated or from another file.
    return CorruptionError("chunk " + std::to_string(index) +
                           " failed authentication");
  }
  return Status::Ok();
}

}  // namespace volmgr::files
