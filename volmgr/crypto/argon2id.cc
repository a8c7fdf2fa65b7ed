#include "volmgr/crypto/argon2id.h"

#include <argon2.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace volmgr::crypto {
namespace {

// libargon2's block memory holds values derived from the password (RFC 9106
// section 3.2 step 3 onwards). libargon2 wipes it before freeing; mapping it
// ourselves also keeps it out of core dumps. It is not mlock'd: it can be
// gigabytes, beyond any RLIMIT_MEMLOCK.
int AllocateBlocks(uint8_t** memory, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    *memory = nullptr;
    return ARGON2_MEMORY_ALLOCATION_ERROR;
  }
  (void)madvise(p, bytes, MADV_DONTDUMP);
  *memory = static_cast<uint8_t*>(p);
  return ARGON2_OK;
}

void FreeBlocks(uint8_t* memory, size_t bytes) {
  if (memory != nullptr) munmap(memory, bytes);
}

Status Argon2Error(int rc) {
  std::string message = "argon2id: ";
  message += argon2_error_message(rc);
  switch (rc) {
    case ARGON2_MEMORY_ALLOCATION_ERROR:
      return UnavailableError(std::move(message));
    case ARGON2_THREAD_FAIL:
      return InternalError(std::move(message));
    default:
      // Every other libargon2 code is a parameter it rejected.
      return InvalidArgumentError(std::move(message));
  }
}

// The derivation proper; bounds on salt and output are checked by callers.
StatusOr<SecretBytes> Derive(const SecretBytes& password,
                             std::span<const uint8_t> salt,
                             const SecretBytes& secret,
                             std::span<const uint8_t> associated_data,
                             const Argon2Params& params, size_t out_len) {
  VOLMGR_RETURN_IF_ERROR(params.Validate());
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes out, SecretBytes::Allocate(out_len));
  argon2_context ctx{};
  // The tag is written straight into locked secret memory.
  ctx.out = out.RevealMutable().data();
  ctx.outlen = static_cast<uint32_t>(out_len);
  // libargon2 takes non-const pointers but writes to pwd/secret only with
  // ARGON2_FLAG_CLEAR_PASSWORD / _SECRET, which are not set: the caller
  // owns (and wipes) its secrets.
  ctx.pwd = const_cast<uint8_t*>(password.Reveal().data());
  ctx.pwdlen = static_cast<uint32_t>(password.size());
  ctx.salt = const_cast<uint8_t*>(salt.data());
  ctx.saltlen = static_cast<uint32_t>(salt.size());
  ctx.secret = const_cast<uint8_t*>(secret.Reveal().data());
  ctx.secretlen = static_cast<uint32_t>(secret.size());
  ctx.ad = const_cast<uint8_t*>(associated_data.data());
  ctx.adlen = static_cast<uint32_t>(associated_data.size());
  ctx.t_cost = params.time_cost;
  ctx.m_cost = params.memory_kib;
  ctx.lanes = params.parallelism;
  ctx.threads = params.parallelism;
  ctx.version = ARGON2_VERSION_13;  // RFC 9106 specifies only v0x13.
  ctx.allocate_cbk = AllocateBlocks;
  ctx.free_cbk = FreeBlocks;
  ctx.flags = ARGON2_DEFAULT_FLAGS;
  const int rc = argon2_ctx(&ctx, Argon2_id);
  if (rc != ARGON2_OK) return Argon2Error(rc);
  return out;
}

constexpr uint64_t kMaxInputSize = UINT32_MAX;  // libargon2 lengths are u32

Status CheckLengths(const SecretBytes& password, std::span<const uint8_t> salt,
                    size_t min_salt, size_t min_out, size_t out_len) {
  if (salt.size() < min_salt || salt.size() > kMaxInputSize) {
    return InvalidArgumentError(
        "argon2id salt is " + std::to_string(salt.size()) +
        " bytes, need at least " + std::to_string(min_salt));
  }
  if (out_len < min_out || out_len > kArgon2MaxOutputSize) {
    return InvalidArgumentError(
        "argon2id output length " + std::to_string(out_len) + " is outside " +
        std::to_string(min_out) + ".." + std::to_string(kArgon2MaxOutputSize));
  }
  if (password.size() > kMaxInputSize) {
    return InvalidArgumentError("argon2id password too long");
  }
  return Status::Ok();
}

// Calibration constants. kCalibrationMinTimeCost: RFC 9106 section 4,
// second recommended option (t = 3). Start at 1 MiB per lane: fast enough
// to be negligible, big enough to measure.
constexpr uint32_t kCalibrationMinTimeCost = 3;
constexpr uint32_t kCalibrationStartMemoryKibPerLane = 1024;
constexpr uint32_t kCalibrationMaxTargetMs = 60000;

StatusOr<double> MeasureMs(const Argon2Params& params) {
  static constexpr uint8_t kSalt[kArgon2MinSaltSize] = {};
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes password,
                          SecretBytes::CopyOf("volmgr calibration"));
  const auto start = std::chrono::steady_clock::now();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes out,
                          DeriveArgon2id(password, kSalt, params, 32));
  const auto end = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// Memory is kept a multiple of 4 * lanes KiB, the granularity libargon2
// uses (4 slices per lane, RFC 9106 section 3.4), so the stored value is the
// memory actually used.
uint32_t RoundMemory(double kib, uint32_t parallelism, uint32_t max_kib) {
  const uint32_t grain = 4 * parallelism;
  const uint32_t min_kib = kArgon2MinMemoryKibPerLane * parallelism;
  double clamped = std::clamp(kib, static_cast<double>(min_kib),
                              static_cast<double>(max_kib));
  uint32_t m = static_cast<uint32_t>(clamped) / grain * grain;
  return std::max(m, min_kib);
}

// Chooses (t, m) doing `work` = t * m block-passes, memory first.
Argon2Params FitWork(double work, uint32_t max_memory_kib,
                     uint32_t parallelism) {
  Argon2Params p;
  p.parallelism = parallelism;
  p.memory_kib =
      RoundMemory(work / kCalibrationMinTimeCost, parallelism, max_memory_kib);
  const double t = std::round(work / p.memory_kib);
  p.time_cost = static_cast<uint32_t>(
      std::clamp(t, static_cast<double>(kCalibrationMinTimeCost),
                 static_cast<double>(kArgon2MaxTimeCost)));
  return p;
}

}  // namespace

Status Argon2Params::Validate() const {
  if (time_cost < kArgon2MinTimeCost || time_cost > kArgon2MaxTimeCost) {
    return InvalidArgumentError("argon2id time_cost " +
                                std::to_string(time_cost) +
                                " is outside 1..1000");
  }
  if (parallelism < kArgon2MinParallelism ||
      parallelism > kArgon2MaxParallelism) {
    return InvalidArgumentError("argon2id parallelism " +
                                std::to_string(parallelism) +
                                " is outside 1..16");
  }
  const uint32_t min_memory = kArgon2MinMemoryKibPerLane * parallelism;
  if (memory_kib < min_memory || memory_kib > kArgon2MaxMemoryKib) {
    return InvalidArgumentError(
        "argon2id memory_kib " + std::to_string(memory_kib) + " is outside " +
        std::to_string(min_memory) + ".." +
        std::to_string(kArgon2MaxMemoryKib) + " (8 KiB per lane minimum)");
  }
  return Status::Ok();
}

StatusOr<SecretBytes> DeriveArgon2id(const SecretBytes& password,
                                     std::span<const uint8_t> salt,
                                     const Argon2Params& params,
                                     size_t out_len) {
  VOLMGR_RETURN_IF_ERROR(CheckLengths(password, salt, kArgon2MinSaltSize,
                                      kArgon2MinOutputSize, out_len));
  return Derive(password, salt, SecretBytes(), {}, params, out_len);
}

StatusOr<SecretBytes> DeriveArgon2id(const SecretBytes& password,
                                     std::span<const uint8_t> salt,
                                     const SecretBytes& secret,
                                     std::span<const uint8_t> associated_data,
                                     const Argon2Params& params,
                                     size_t out_len) {
  VOLMGR_RETURN_IF_ERROR(CheckLengths(password, salt, ARGON2_MIN_SALT_LENGTH,
                                      ARGON2_MIN_OUTLEN, out_len));
  if (secret.size() > kMaxInputSize || associated_data.size() > kMaxInputSize) {
    return InvalidArgumentError("argon2id secret or associated data too long");
  }
  return Derive(password, salt, secret, associated_data, params, out_len);
}

StatusOr<Argon2Params> CalibrateArgon2id(uint32_t target_ms,
                                         uint32_t max_memory_kib,
                                         uint32_t parallelism) {
  if (target_ms < 1 || target_ms > kCalibrationMaxTargetMs) {
    return InvalidArgumentError("argon2id calibration target " +
                                std::to_string(target_ms) +
                                " ms is outside 1..60000");
  }
  // Validate parallelism and the memory bound through the params check.
  VOLMGR_RETURN_IF_ERROR(
      (Argon2Params{kCalibrationMinTimeCost, max_memory_kib, parallelism})
          .Validate()
          .WithContext("argon2id calibration bounds"));

  const double target = target_ms;
  Argon2Params p;
  p.parallelism = parallelism;
  p.time_cost = kCalibrationMinTimeCost;
  p.memory_kib = RoundMemory(
      static_cast<double>(kCalibrationStartMemoryKibPerLane) * parallelism,
      parallelism, max_memory_kib);

  // Grow the cost 4x per step until a run takes at least target/8: long
  // enough to extrapolate from, and the geometric series of these runs
  // sums to at most 4/3 of the last one (< target/2).
  double ms = 0;
  for (;;) {
    VOLMGR_ASSIGN_OR_RETURN(ms, MeasureMs(p));
    if (ms >= target / 8) break;
    if (p.memory_kib < max_memory_kib) {
      p.memory_kib = RoundMemory(static_cast<double>(p.memory_kib) * 4,
                                 parallelism, max_memory_kib);
    } else if (p.time_cost < kArgon2MaxTimeCost) {
      p.time_cost = std::min(kArgon2MaxTimeCost, p.time_cost * 4);
    } else {
      return p;  // The largest cost we allow is still faster than the target.
    }
  }

  // Argon2 time is close to linear in t * m (RFC 9106 section 3.2 fills and
  // passes over m blocks t times), so extrapolate the work to the target.
  ms = std::max(ms, 0.01);
  const double work_per_ms =
      static_cast<double>(p.time_cost) * p.memory_kib / ms;
  p = FitWork(work_per_ms * target, max_memory_kib, parallelism);

  // One run at the predicted cost (about target_ms) corrects for cache
  // effects that make larger memory slower per block. The correction is
  // applied without another run, keeping the total under ~2 * target.
  VOLMGR_ASSIGN_OR_RETURN(ms, MeasureMs(p));
  ms = std::max(ms, 0.01);
  if (ms > target * 1.2 || ms < target / 1.2) {
    const double work = static_cast<double>(p.time_cost) * p.memory_kib;
    p = FitWork(work * target / ms, max_memory_kib, parallelism);
  }
  return p;
}

}  // namespace volmgr::crypto
