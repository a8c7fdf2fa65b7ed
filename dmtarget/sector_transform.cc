#include "dmtarget/sector_transform.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dmtarget/internal/xts_backend.h"

namespace volmgr::dmtarget {
namespace {

using internal::XtsBackend;

bool ValidSectorSize(uint32_t s) {
  return s == 512 || s == 1024 || s == 2048 || s == 4096;
}

// The plain64 IV: le64(sector) in bytes 0..7, zero in 8..15.
void StorePlain64(uint64_t sector, uint8_t (&tweak)[16]) {
  for (size_t i = 0; i < 8; ++i) {
    tweak[i] = static_cast<uint8_t>(sector >> (8 * i));
  }
  for (size_t i = 8; i < 16; ++i) tweak[i] = 0;
}

StatusOr<std::unique_ptr<XtsBackend>> NewBackend(
    XtsSectorTransform::Backend backend, const SecretBytes& key) {
  switch (backend) {
    case XtsSectorTransform::Backend::kLibgcrypt:
      return internal::NewGcryptXtsBackend(key);
    case XtsSectorTransform::Backend::kOpenSsl:
      return internal::NewOpenSslXtsBackend(key);
  }
  return InvalidArgumentError("unknown XTS backend");
}

}  // namespace

class XtsSectorTransform::Impl {
 public:
  Impl(uint32_t sector_size, uint64_t iv_offset, unsigned threads)
      : sector_size_(sector_size),
        iv_step_(sector_size / kIvSectorSize),
        iv_offset_(iv_offset),
        lanes_(threads),
        tasks_(threads),
        results_(threads) {}

  ~Impl() {
    // request_stop + join before the members the workers use go away.
    workers_.clear();
  }

  Status Init(Backend backend, const SecretBytes& key) {
    for (std::unique_ptr<XtsBackend>& lane : lanes_) {
      VOLMGR_ASSIGN_OR_RETURN(lane, NewBackend(backend, key));
    }
    workers_.reserve(lanes_.size() - 1);
    for (size_t w = 1; w < lanes_.size(); ++w) {
      workers_.emplace_back(
          [this, w](std::stop_token stop) { WorkerLoop(stop, w); });
    }
    return Status::Ok();
  }

  Status Run(bool encrypt, uint64_t first_sector, std::span<const uint8_t> in,
             std::span<uint8_t> out) {
    const char* what = encrypt ? "XTS encrypt" : "XTS decrypt";
    if (in.size() != out.size()) {
      return InvalidArgumentError(
          std::string(what) + ": input is " + std::to_string(in.size()) +
          " bytes, output " + std::to_string(out.size()));
    }
    if (in.size() % sector_size_ != 0) {
      return InvalidArgumentError(std::string(what) + ": length " +
                                  std::to_string(in.size()) +
                                  " is not a multiple of the sector size " +
                                  std::to_string(sector_size_));
    }
    if (in.empty()) return Status::Ok();
    const uintptr_t in_begin = reinterpret_cast<uintptr_t>(in.data());
    const uintptr_t out_begin = reinterpret_cast<uintptr_t>(out.data());
    if (in_begin != out_begin && in_begin < out_begin + out.size() &&
        out_begin < in_begin + in.size()) {
      return InvalidArgumentError(std::string(what) +
                                  ": input and output partially overlap");
    }
    const uint64_t sectors = in.size() / sector_size_;
    // The last 512-byte sector number, before iv_offset, must fit in 64
    // bits; a device that large cannot exist, so this is a caller bug.
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    if (first_sector > kMax - (sectors - 1) ||
        first_sector + (sectors - 1) > kMax / iv_step_) {
      return InvalidArgumentError(
          std::string(what) + ": sectors " + std::to_string(first_sector) +
          "+" + std::to_string(sectors) + " overflow the 64-bit IV");
    }

    std::lock_guard<std::mutex> call(call_mu_);
    const uint64_t by_size = in.size() / kMinBytesPerLane;
    const size_t lanes = static_cast<size_t>(std::clamp<uint64_t>(
        std::min<uint64_t>(by_size, sectors), 1, lanes_.size()));
    if (lanes == 1) {
      return RunLane(*lanes_[0],
                     {encrypt, first_sector, in.data(), out.data(), sectors});
    }

    // Lane i gets a contiguous run; the first (sectors % lanes) lanes get
    // one extra sector.
    const uint64_t base = sectors / lanes;
    const uint64_t extra = sectors % lanes;
    uint64_t next = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < lanes; ++i) {
        const uint64_t count = base + (i < extra ? 1 : 0);
        const size_t offset = static_cast<size_t>(next * sector_size_);
        tasks_[i] = {encrypt, first_sector + next, in.data() + offset,
                     out.data() + offset, count};
        results_[i] = Status::Ok();
        next += count;
      }
      active_lanes_ = lanes;
      pending_ = lanes - 1;
      ++generation_;
    }
    work_cv_.notify_all();
    Status status = RunLane(*lanes_[0], tasks_[0]);
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return pending_ == 0; });
    }
    for (size_t i = 1; i < lanes && status.ok(); ++i) status = results_[i];
    return status;
  }

  uint32_t sector_size() const { return sector_size_; }
  uint64_t iv_offset() const { return iv_offset_; }
  unsigned threads() const { return static_cast<unsigned>(lanes_.size()); }

 private:
  struct Task {
    bool encrypt = true;
    uint64_t first_sector = 0;
    const uint8_t* in = nullptr;
    uint8_t* out = nullptr;
    uint64_t sectors = 0;
  };

  // Runs one lane's sectors with that lane's backend, one XTS data unit
  // per sector.
  Status RunLane(XtsBackend& lane, const Task& task) const {
    uint8_t tweak[16];
    for (uint64_t i = 0; i < task.sectors; ++i) {
      // dm-crypt: iv_sector = sector (in 512-byte units) + iv_offset, u64
      // arithmetic (wraps), then crypt_iv_plain64_gen writes le64.
      StorePlain64((task.first_sector + i) * iv_step_ + iv_offset_, tweak);
      const size_t offset = static_cast<size_t>(i) * sector_size_;
      VOLMGR_RETURN_IF_ERROR(lane.Crypt(task.encrypt, tweak, task.in + offset,
                                        task.out + offset, sector_size_));
    }
    return Status::Ok();
  }

  void WorkerLoop(std::stop_token stop, size_t lane) {
    uint64_t seen = 0;
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!work_cv_.wait(lock, stop, [&] { return generation_ != seen; })) {
          return;  // stop requested
        }
        seen = generation_;
        if (lane >= active_lanes_) continue;
        task = tasks_[lane];
      }
      Status status = RunLane(*lanes_[lane], task);
      std::lock_guard<std::mutex> lock(mu_);
      results_[lane] = std::move(status);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  const uint32_t sector_size_;
  const uint64_t iv_step_;
  const uint64_t iv_offset_;
  std::vector<std::unique_ptr<XtsBackend>> lanes_;

  std::mutex call_mu_;  // serializes Run
  std::mutex mu_;       // guards everything below except workers_
  std::condition_variable_any work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  size_t active_lanes_ = 0;
  size_t pending_ = 0;
  std::vector<Task> tasks_;
  std::vector<Status> results_;

  // Last: destroyed (stopped and joined) first.
  std::vector<std::jthread> workers_;
};

StatusOr<XtsSectorTransform> XtsSectorTransform::Create(const SecretBytes& key,
                                                        uint32_t sector_size,
                                                        uint64_t iv_offset,
                                                        Options options) {
  if (key.size() != kKeySize) {
    return InvalidArgumentError("AES-256-XTS key must be 64 bytes, got " +
                                std::to_string(key.size()));
  }
  const std::span<const uint8_t> k = key.Reveal();
  if (CRYPTO_memcmp(k.data(), k.data() + kKeySize / 2, kKeySize / 2) == 0) {
    // IEEE 1619-2018 section 5.1 and FIPS 140-3 IG C.I: Key1 != Key2.
    return InvalidArgumentError(
        "AES-256-XTS key halves are equal; XTS requires two distinct keys");
  }
  if (!ValidSectorSize(sector_size)) {
    return InvalidArgumentError(
        "sector size must be 512, 1024, 2048 or "
        "4096, got " +
        std::to_string(sector_size));
  }
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return InvalidArgumentError("threads must be 1.." +
                                std::to_string(kMaxThreads) + ", got " +
                                std::to_string(options.threads));
  }
  auto impl = std::make_unique<Impl>(sector_size, iv_offset, options.threads);
  VOLMGR_RETURN_IF_ERROR(impl->Init(options.backend, key));
  return XtsSectorTransform(std::move(impl));
}

XtsSectorTransform::XtsSectorTransform(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
XtsSectorTransform::XtsSectorTransform(XtsSectorTransform&&) noexcept = default;
XtsSectorTransform& XtsSectorTransform::operator=(
    XtsSectorTransform&&) noexcept = default;
XtsSectorTransform::~XtsSectorTransform() = default;

Status XtsSectorTransform::Encrypt(uint64_t first_sector,
                                   std::span<const uint8_t> in,
                                   std::span<uint8_t> out) const {
  return impl_->Run(true, first_sector, in, out);
}

Status XtsSectorTransform::Decrypt(uint64_t first_sector,
                                   std::span<const uint8_t> in,
                                   std::span<uint8_t> out) const {
  return impl_->Run(false, first_sector, in, out);
}

uint32_t XtsSectorTransform::sector_size() const {
  return impl_->sector_size();
}
uint64_t XtsSectorTransform::iv_offset() const { return impl_->iv_offset(); }
unsigned XtsSectorTransform::threads() const { return impl_->threads(); }

}  // namespace volmgr::dmtarget
