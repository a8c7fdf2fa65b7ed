#include "volmgr/base/secret_bytes.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "volmgr/base/internal/secret_pool.h"

namespace volmgr {
namespace {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

}  // namespace

SecretBytes::~SecretBytes() { Release(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      mapped_(std::exchange(other.mapped_, 0)),
      locked_(std::exchange(other.locked_, false)),
      pooled_(std::exchange(other.pooled_, false)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
    locked_ = std::exchange(other.locked_, false);
    pooled_ = std::exchange(other.pooled_, false);
  }
  return *this;
}

void SecretBytes::Release() {
  if (data_ == nullptr) return;
  if (pooled_) {
    internal::ReleaseSecretSlot({data_, mapped_, locked_});  // wipes it
  } else {
    OPENSSL_cleanse(data_, capacity_);
    if (locked_) munlock(data_, mapped_);
    munmap(data_, mapped_);
  }
  data_ = nullptr;
  size_ = capacity_ = mapped_ = 0;
  locked_ = pooled_ = false;
}

StatusOr<SecretBytes> SecretBytes::Allocate(size_t size, size_t capacity) {
  if (capacity < size) capacity = size;
  SecretBytes s;
  if (capacity == 0) return s;
  if (capacity <= internal::kMaxPooledSecret) {
    const internal::PoolSlot slot = internal::AcquireSecretSlot(capacity);
    if (slot.data != nullptr) {
      s.data_ = slot.data;
      s.mapped_ = slot.size;
      s.locked_ = slot.locked;
      s.pooled_ = true;
      s.size_ = size;
      s.capacity_ = capacity;
      return s;
    }
  }
  const size_t page = PageSize();
  const size_t mapped = (capacity + page - 1) / page * page;
  bool locked = false;
  uint8_t* p = internal::MapSecretPages(mapped, &locked);
  if (p == nullptr) return ErrnoToStatus(errno, "mmap for secret memory");
  s.locked_ = locked;
  s.data_ = p;
  s.size_ = size;
  s.capacity_ = capacity;
  s.mapped_ = mapped;
  return s;
}

StatusOr<SecretBytes> SecretBytes::Random(size_t size) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes s, Allocate(size));
  if (size > 0 && RAND_priv_bytes(s.data_, static_cast<int>(size)) != 1) {
    return Status(StatusCode::kInternal, "RAND_priv_bytes failed",
                  {ForeignSource::kOpenSsl, 0});
  }
  return s;
}

StatusOr<SecretBytes> SecretBytes::CopyOf(std::span<const uint8_t> bytes) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes s, Allocate(bytes.size()));
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

StatusOr<SecretBytes> SecretBytes::CopyOf(std::string_view bytes) {
  return CopyOf(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

void SecretBytes::Resize(size_t new_size) {
  if (new_size > capacity_) new_size = capacity_;
  if (new_size < size_) {
    OPENSSL_cleanse(data_ + new_size, size_ - new_size);
  } else if (new_size > size_) {
    std::memset(data_ + size_, 0, new_size - size_);
  }
  size_ = new_size;
}

StatusOr<SecretBytes> SecretBytes::Slice(size_t offset, size_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return InvalidArgumentError("secret slice out of range");
  }
  return CopyOf(Reveal().subspan(offset, length));
}

bool SecretBytes::ConstantTimeEquals(std::span<const uint8_t> other) const {
  if (other.size() != size_) return false;
  if (size_ == 0) return true;
  return CRYPTO_memcmp(data_, other.data(), size_) == 0;
}

bool SecretBytes::ConstantTimeEquals(const SecretBytes& other) const {
  return ConstantTimeEquals(other.Reveal());
}

Status HardenProcess() {
  struct rlimit zero = {0, 0};
  if (setrlimit(RLIMIT_CORE, &zero) != 0) {
    return ErrnoToStatus(errno, "setrlimit(RLIMIT_CORE)");
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return ErrnoToStatus(errno, "prctl(PR_SET_DUMPABLE)");
  }
  return Status::Ok();
}

}  // namespace volmgr
