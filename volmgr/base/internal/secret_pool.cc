#include "volmgr/base/internal/secret_pool.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

namespace volmgr::internal {
namespace {

// Size classes: 32, 64, 128, 256, 512 bytes.
constexpr size_t kMinClass = 32;
constexpr size_t kClasses = 5;

size_t ClassIndex(size_t size) {
  size_t i = 0;
  for (size_t c = kMinClass; c < size; c <<= 1) ++i;
  return i;
}

struct Pool {
  std::mutex mu;
  // Free slots per class; a slot's lock state is that of its page.
  std::array<std::vector<PoolSlot>, kClasses> free;
};

// Never destroyed: secrets with static storage return their slots during
// exit, after function-local statics would have been torn down.
Pool& ThePool() {
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

uint8_t* MapSecretPages(size_t bytes, bool* locked) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Keep secrets out of core dumps and out of forked children. Both are
  // advisory on old kernels; mlock failing (RLIMIT_MEMLOCK) is tolerated
  // and reported through `locked`.
  (void)madvise(p, bytes, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
  (void)madvise(p, bytes, MADV_WIPEONFORK);
#endif
  *locked = mlock(p, bytes) == 0;
  return static_cast<uint8_t*>(p);
}

PoolSlot AcquireSecretSlot(size_t size) {
  const size_t index = ClassIndex(size);
  const size_t class_size = kMinClass << index;
  Pool& pool = ThePool();
  std::lock_guard l(pool.mu);
  std::vector<PoolSlot>& free = pool.free[index];
  if (free.empty()) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    bool locked = false;
    uint8_t* p = MapSecretPages(page, &locked);
    if (p == nullptr) return {};
    // Hand out the lowest slot last, so a page fills from its start.
    for (size_t off = page; off >= class_size * 2; off -= class_size) {
      free.push_back({p + off - class_size, class_size, locked});
    }
    return {p, class_size, locked};
  }
  PoolSlot s = free.back();
  free.pop_back();
  return s;  // zero: wiped when it was released (new pages are zero)
}

void ReleaseSecretSlot(const PoolSlot& slot) {
  if (slot.data == nullptr) return;
  OPENSSL_cleanse(slot.data, slot.size);
  Pool& pool = ThePool();
  std::lock_guard l(pool.mu);
  pool.free[ClassIndex(slot.size)].push_back(slot);
}

}  // namespace volmgr::internal
