// SecretBytes: the one owning type for key material, passphrases and PINs.
//
// The bytes live in anonymous pages that are mlock'd (never swapped), marked
// MADV_DONTDUMP (never in a core dump) and MADV_WIPEONFORK, and are wiped
// with OPENSSL_cleanse when the secret goes. Secrets of up to 512 bytes
// (keys, PINs, passphrases) share such pages through a pool of slots
// (volmgr/base/internal/secret_pool.h); larger ones get their own mapping,
// unmapped when they go. The type is move-only, compares in constant time,
// and has no stream operator or formatter. The raw bytes are reached only
// through Reveal() / RevealMutable(), so every place that touches key material
// is greppable.
//
// Thread-safety: like std::vector: const methods may run concurrently.
#ifndef VOLMGR_BASE_SECRET_BYTES_H_
#define VOLMGR_BASE_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr {

class SecretBytes {
 public:
  // An empty secret (no mapping).
  SecretBytes() = default;
  ~SecretBytes();

  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;

  // A zero-filled secret of `size` bytes with room for `capacity`
  // (>= size; 0 means size). Fails only if the mapping cannot be made.
  static StatusOr<SecretBytes> Allocate(size_t size, size_t capacity = 0);

  // `size` bytes from the OS CSPRNG (OpenSSL RAND_priv_bytes, seeded by
  // getrandom).
  static StatusOr<SecretBytes> Random(size_t size);

  // Copies bytes into a new secret. The caller stays responsible for wiping
  // its own copy.
  static StatusOr<SecretBytes> CopyOf(std::span<const uint8_t> bytes);
  static StatusOr<SecretBytes> CopyOf(std::string_view bytes);

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // True when mlock succeeded (it can fail under a small RLIMIT_MEMLOCK; the
  // memory is still excluded from core dumps and wiped).
  bool locked() const { return locked_; }

  // The raw bytes. Every caller is a place where key material is used.
  std::span<const uint8_t> Reveal() const { return {data_, size_}; }
  std::span<uint8_t> RevealMutable() { return {data_, size_}; }
  std::string_view RevealAsString() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }

  // Changes the logical size within capacity; bytes beyond the new size are
  // wiped, bytes gained are zero.
  // REQUIRES: new_size <= capacity().
  void Resize(size_t new_size);

  // Returns a new secret holding bytes [offset, offset + length).
  // REQUIRES: offset + length <= size().
  StatusOr<SecretBytes> Slice(size_t offset, size_t length) const;

  // Constant-time over the contents when sizes match; sizes are not secret.
  bool ConstantTimeEquals(const SecretBytes& other) const;
  bool ConstantTimeEquals(std::span<const uint8_t> other) const;

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t mapped_ = 0;  // bytes mapped, or the pool slot's size
  bool locked_ = false;
  bool pooled_ = false;
};

// Process hardening for binaries that handle secrets: no core dumps
// (RLIMIT_CORE 0, PR_SET_DUMPABLE 0). Call first thing in main().
Status HardenProcess();

}  // namespace volmgr

#endif  // VOLMGR_BASE_SECRET_BYTES_H_
