// XtsSectorTransform: the userspace twin of the kernel's dm-crypt
// "aes-xts-plain64" data path, for LUKS2 data segments.
//
// Given the 64-byte volume key, the segment's sector size and iv_offset, it
// encrypts and decrypts whole data sectors exactly as dm-crypt does, so that a
// buffer this class encrypts reads back through `cryptsetup open` and vice
// versa (docs: /tmp/volmgr-docs/xts.md until it moves to docs/).
//
// The IV rule (dm-crypt plain64, drivers/md/dm-crypt.c crypt_iv_plain64_gen):
//   * Each data sector of `sector_size` bytes is ONE XTS data unit
//     (IEEE 1619-2007): a 4096-byte sector is encrypted as a single unit, not
//     as eight 512-byte units.
//   * The tweak of data sector k (k counted in units of `sector_size` from the
//     start of the data segment) is the 64-bit little-endian integer
//         k * (sector_size / 512) + iv_offset      (mod 2^64)
//     in bytes 0..7 of the 16-byte tweak; bytes 8..15 are zero. The count is
//     in 512-byte sectors even when sector_size is 4096, because LUKS2 never
//     sets dm-crypt's `iv_large_sectors` option.
//   * Key: AES-256-XTS, 64 bytes = Key1 (data) || Key2 (tweak).
//
// Threading model: Options::threads lanes. Lane 0 is the calling thread;
// lanes 1..threads-1 are persistent worker threads created by Create() and
// joined by the destructor (no thread is created per call). A large buffer
// is cut on sector boundaries into one contiguous run per lane. Every lane
// owns its own cipher context, keyed once in Create(); per sector only the
// IV is set.
//
// Crypto backend (Options::backend): libgcrypt by default, whose per-sector
// IV change is a 16-byte copy and whose XTS bulk path uses VAES/AVX2 where
// the CPU has it; OpenSSL 3 EVP as the alternative. Both produce the same
// bytes (the unit tests hold them to the same vectors and to each other);
// they differ only in speed (docs/PERFORMANCE.md).
//
// Thread-safety: Encrypt and Decrypt may be called from any thread; calls on
// one object are serialized by an internal mutex (use one object per caller
// thread, or Options::threads, for parallelism). The object is move-only; a
// moved-from object may only be destroyed or assigned to.
#ifndef VOLMGR_DMTARGET_SECTOR_TRANSFORM_H_
#define VOLMGR_DMTARGET_SECTOR_TRANSFORM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"

namespace volmgr::dmtarget {

class XtsSectorTransform {
 public:
  // AES-256-XTS: two 32-byte AES-256 keys.
  static constexpr size_t kKeySize = 64;
  // dm-crypt's IV sector unit, independent of the data sector size.
  static constexpr uint32_t kIvSectorSize = 512;
  // Upper bound on Options::threads.
  static constexpr unsigned kMaxThreads = 64;
  // A call is split across lanes only when every lane gets at least this
  // many bytes; below that, waking a worker costs more than it saves. 1 MiB
  // is ~125 us of AES-XTS on one core, against a wake-up that took tens of
  // microseconds on the 2-vCPU test machine (at 64 KiB, a 256 KiB call on
  // two lanes ran at a third of one lane's speed; docs/PERFORMANCE.md).
  static constexpr size_t kMinBytesPerLane = size_t{1} << 20;

  enum class Backend : uint8_t { kLibgcrypt, kOpenSsl };

  struct Options {
    // Number of lanes (calling thread + threads-1 workers). 1..kMaxThreads.
    unsigned threads = 1;
    Backend backend = Backend::kLibgcrypt;
  };

  // Validates and keys the transform.
  //   key:         64 bytes (AES-256-XTS). The bytes are copied into the
  //                backend's contexts, which wipe them when freed; the caller
  //                may destroy `key` after Create returns.
  //   sector_size: 512, 1024, 2048 or 4096 (the LUKS2 segment sector_size).
  //   iv_offset:   the dm-crypt table's iv_offset (LUKS2 segment iv_tweak),
  //                in 512-byte sectors.
  // Errors: kInvalidArgument for a key that is not 64 bytes, a key whose two
  // halves are equal (IEEE 1619-2018 5.1 / SP 800-38E require distinct
  // halves; OpenSSL enforces it only in its FIPS provider, we always do), a
  // sector size outside the list, or threads outside 1..kMaxThreads;
  // kUnavailable if the backend lacks AES-256-XTS (no OpenSSL provider
  // offers it, or libgcrypt is older than 1.9); kInternal for any other
  // library failure.
  static StatusOr<XtsSectorTransform> Create(const SecretBytes& key,
                                             uint32_t sector_size,
                                             uint64_t iv_offset,
                                             Options options);
  static StatusOr<XtsSectorTransform> Create(const SecretBytes& key,
                                             uint32_t sector_size,
                                             uint64_t iv_offset) {
    return Create(key, sector_size, iv_offset, Options());
  }

  XtsSectorTransform(XtsSectorTransform&&) noexcept;
  XtsSectorTransform& operator=(XtsSectorTransform&&) noexcept;
  XtsSectorTransform(const XtsSectorTransform&) = delete;
  XtsSectorTransform& operator=(const XtsSectorTransform&) = delete;
  // Stops and joins the worker threads.
  ~XtsSectorTransform();

  // Encrypts (Decrypts) in.size() / sector_size() consecutive data sectors,
  // the first of which is data sector `first_sector` (in units of
  // sector_size, from the start of the data segment), into `out`.
  // REQUIRES: in.size() == out.size(), a multiple of sector_size().
  // `in` and `out` may be the same buffer (in-place); any other overlap is
  // rejected. Empty buffers are a no-op.
  // Errors: kInvalidArgument for mismatched or misaligned lengths, partial
  // overlap, or a sector range whose 512-byte sector number does not fit in
  // 64 bits (iv_offset itself is added modulo 2^64, as the kernel does);
  // kInternal if the crypto library fails (out is then unspecified).
  Status Encrypt(uint64_t first_sector, std::span<const uint8_t> in,
                 std::span<uint8_t> out) const;
  Status Decrypt(uint64_t first_sector, std::span<const uint8_t> in,
                 std::span<uint8_t> out) const;

  uint32_t sector_size() const;
  uint64_t iv_offset() const;
  unsigned threads() const;

 private:
  class Impl;
  explicit XtsSectorTransform(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace volmgr::dmtarget

#endif  // VOLMGR_DMTARGET_SECTOR_TRANSFORM_H_
