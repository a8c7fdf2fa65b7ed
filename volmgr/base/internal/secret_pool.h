// SecretPool: slots for small secrets, carved from pages mapped and
// protected once, as SecretBytes maps its own pages for larger secrets:
// mlock'd, MADV_DONTDUMP, MADV_WIPEONFORK. A slot is wiped when it is
// released and reused for the next secret of its size class; pages are
// never unmapped, so the pool keeps the peak number of slots in use.
//
// Why: a mapping per secret costs mmap, two madvise, mlock, munlock and
// munmap, and the munmap of a multi-threaded process a TLB shootdown on the
// other CPUs: 20-40 us per file key on a paravirtualised guest, more than
// the rest of a FUSE create (docs/PERFORMANCE.md, "File encryption").
//
// Internal to SecretBytes. Thread-safe.
#ifndef VOLMGR_BASE_INTERNAL_SECRET_POOL_H_
#define VOLMGR_BASE_INTERNAL_SECRET_POOL_H_

#include <cstddef>
#include <cstdint>

namespace volmgr::internal {

struct PoolSlot {
  uint8_t* data = nullptr;  // nullptr: the pool could not map a page
  size_t size = 0;          // the slot's size class (>= the request)
  bool locked = false;      // mlock of its page succeeded
};

// Largest request served from the pool; larger secrets get their own pages.
inline constexpr size_t kMaxPooledSecret = 512;

// A zero-filled slot of at least `size` bytes.
// REQUIRES: 0 < size <= kMaxPooledSecret.
PoolSlot AcquireSecretSlot(size_t size);

// Wipes the slot (OPENSSL_cleanse) and makes it available again.
// REQUIRES: `slot` came from AcquireSecretSlot and is released once.
void ReleaseSecretSlot(const PoolSlot& slot);

// Maps a fresh region of `bytes` (a multiple of the page size) with the
// protections above. Returns nullptr on failure; `locked` tells whether
// mlock succeeded. Shared with SecretBytes' own large mappings.
uint8_t* MapSecretPages(size_t bytes, bool* locked);

}  // namespace volmgr::internal

#endif  // VOLMGR_BASE_INTERNAL_SECRET_POOL_H_
