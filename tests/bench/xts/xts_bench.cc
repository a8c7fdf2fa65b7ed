// Throughput of the userspace dm-crypt twin (XtsSectorTransform) at 4 KiB
// sectors over a 64 MiB buffer, with raw OpenSSL EVP baselines in the same
// binary. Bytes/s is the number to compare (run.sh prints ratios against
// `openssl speed -evp aes-256-xts -bytes 4096`).
//
//   BM_Transform/threads:N/encrypt:E/inplace:P/backend:B
//                                     XtsSectorTransform, N lanes, 64 MiB;
//                                     inplace:1 = in == out (dm-crypt reads
//                                     decrypt in place; saves the write-
//                                     allocate traffic of a second buffer);
//                                     backend 0 = libgcrypt (default),
//                                     1 = OpenSSL
//   BM_TransformHot/threads:N/...     the same over a 256 KiB buffer that
//                                     stays in cache, as `openssl speed`'s
//                                     4 KiB buffer does: isolates per-
//                                     sector cost from memory bandwidth.
//                                     256 KiB is below kMinBytesPerLane,
//                                     so it runs on one lane whatever N
//   BM_TransformWarm/threads:N/...    4 MiB in place: large enough to be
//                                     split (2 MiB per lane at N = 2), small
//                                     enough to stay in the caches (2 MiB
//                                     L2 per core, 32 MiB L3 here), so two
//                                     lanes are measured on AES work, not
//                                     on DRAM bandwidth
//   BM_RawEvpIvOnly                   one context keyed once, per sector
//                                     only the IV is set (the transform's
//                                     inner loop, without the pool)
//   BM_RawEvpRekeyPerSector           key + IV set per sector (what keying
//                                     once saves)
//   BM_RawEvpSameIv                   no per-sector init at all, as
//                                     `openssl speed` does (upper bound)
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "dmtarget/sector_transform.h"
#include "volmgr/base/secret_bytes.h"
#include "volmgr/crypto/openssl_handles.h"

namespace {

using volmgr::SecretBytes;
using volmgr::crypto::EvpCipherCtxPtr;
using volmgr::dmtarget::XtsSectorTransform;

constexpr size_t kSector = 4096;
constexpr size_t kBuffer = size_t{64} << 20;

struct Buffers {
  Buffers() : in(kBuffer), out(kBuffer) {
    // Touch every page before timing; content is irrelevant to AES speed.
    for (size_t i = 0; i < kBuffer; ++i) in[i] = static_cast<uint8_t>(i * 131);
    std::memset(out.data(), 0, out.size());
    auto k = SecretBytes::Random(XtsSectorTransform::kKeySize);
    if (!k.ok()) std::abort();
    key = std::move(k).value();
  }
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  SecretBytes key;
};

Buffers& Shared() {
  static Buffers* buffers = new Buffers();
  return *buffers;
}

void StoreIv(uint64_t sector, uint8_t* iv) {
  std::memset(iv, 0, 16);
  for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(sector >> 8 * i);
}

void RunTransform(benchmark::State& state, size_t bytes) {
  Buffers& b = Shared();
  const unsigned threads = static_cast<unsigned>(state.range(0));
  const bool encrypt = state.range(1) != 0;
  const bool in_place = state.range(2) != 0;
  const auto backend = state.range(3) == 0
                           ? XtsSectorTransform::Backend::kLibgcrypt
                           : XtsSectorTransform::Backend::kOpenSsl;
  std::span<const uint8_t> in(in_place ? b.out.data() : b.in.data(), bytes);
  std::span<uint8_t> out(b.out.data(), bytes);
  auto xts = XtsSectorTransform::Create(
      b.key, kSector, 0, {.threads = threads, .backend = backend});
  if (!xts.ok()) {
    state.SkipWithError(xts.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    volmgr::Status s =
        encrypt ? xts->Encrypt(0, in, out) : xts->Decrypt(0, in, out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(bytes));
}
void BM_Transform(benchmark::State& state) { RunTransform(state, kBuffer); }
void BM_TransformHot(benchmark::State& state) {
  RunTransform(state, size_t{256} << 10);
}
void BM_TransformWarm(benchmark::State& state) {
  RunTransform(state, size_t{4} << 20);
}
BENCHMARK(BM_Transform)
    ->ArgNames({"threads", "encrypt", "inplace", "backend"})
    ->ArgsProduct({{1, 2}, {1, 0}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_TransformHot)
    ->ArgNames({"threads", "encrypt", "inplace", "backend"})
    ->ArgsProduct({{1, 2}, {1, 0}, {1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_TransformWarm)
    ->ArgNames({"threads", "encrypt", "inplace", "backend"})
    ->ArgsProduct({{1, 2}, {1, 0}, {1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

enum class EvpMode { kIvOnly, kRekey, kSameIv };

template <EvpMode kMode>
void BM_RawEvp(benchmark::State& state) {
  Buffers& b = Shared();
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  uint8_t iv[16];
  StoreIv(0, iv);
  const uint8_t* key = b.key.Reveal().data();
  if (EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_xts(), key, iv, 1, nullptr) !=
      1) {
    state.SkipWithError("EVP_CipherInit_ex2");
    return;
  }
  bool failed = false;
  for (auto _ : state) {
    for (size_t off = 0; off < kBuffer; off += kSector) {
      StoreIv(off / 512, iv);
      int rc = 1;
      if constexpr (kMode == EvpMode::kIvOnly) {
        rc = EVP_CipherInit_ex2(ctx.get(), nullptr, nullptr, iv, 1, nullptr);
      } else if constexpr (kMode == EvpMode::kRekey) {
        rc = EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_xts(), key, iv, 1,
                                nullptr);
      }
      int len = 0;
      rc &= EVP_CipherUpdate(ctx.get(), b.out.data() + off, &len,
                             b.in.data() + off, static_cast<int>(kSector));
      failed |= rc != 1;
    }
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  if (failed) state.SkipWithError("EVP failure");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kBuffer));
}
void BM_RawEvpIvOnly(benchmark::State& s) { BM_RawEvp<EvpMode::kIvOnly>(s); }
void BM_RawEvpRekeyPerSector(benchmark::State& s) {
  BM_RawEvp<EvpMode::kRekey>(s);
}
void BM_RawEvpSameIv(benchmark::State& s) { BM_RawEvp<EvpMode::kSameIv>(s); }
BENCHMARK(BM_RawEvpIvOnly)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RawEvpRekeyPerSector)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_RawEvpSameIv)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
