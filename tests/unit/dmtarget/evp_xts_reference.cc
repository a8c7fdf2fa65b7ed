#include "evp_xts_reference.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "volmgr/crypto/openssl_handles.h"

namespace volmgr::dmtarget::testing {

std::vector<uint8_t> EvpXts(bool encrypt, std::span<const uint8_t> key,
                            const Tweak& tweak,
                            std::span<const uint8_t> data_unit) {
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::vector<uint8_t> out(data_unit.size());
  int len = 0;
  if (ctx == nullptr ||
      EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_xts(), key.data(), tweak.data(),
                         encrypt ? 1 : 0, nullptr) != 1 ||
      EVP_CipherUpdate(ctx.get(), out.data(), &len, data_unit.data(),
                       static_cast<int>(data_unit.size())) != 1 ||
      len != static_cast<int>(data_unit.size())) {
    ADD_FAILURE()
        << crypto::OpenSslError("reference EVP AES-256-XTS").ToString();
    return {};
  }
  return out;
}

Tweak KernelPlain64(uint64_t iv_sector) {
  Tweak iv{};
  for (int i = 0; i < 8; ++i) {
    iv[i] = static_cast<uint8_t>(iv_sector >> (8 * i));
  }
  return iv;
}

std::vector<uint8_t> DmCryptReference(bool encrypt,
                                      std::span<const uint8_t> key,
                                      uint32_t sector_size, uint64_t iv_offset,
                                      uint64_t first_sector,
                                      std::span<const uint8_t> data) {
  std::vector<uint8_t> out;
  out.reserve(data.size());
  for (size_t off = 0; off < data.size(); off += sector_size) {
    const uint64_t sector_512 =
        (first_sector + off / sector_size) * (sector_size >> 9);
    std::vector<uint8_t> unit =
        EvpXts(encrypt, key, KernelPlain64(sector_512 + iv_offset),
               data.subspan(off, sector_size));
    out.insert(out.end(), unit.begin(), unit.end());
  }
  return out;
}

}  // namespace volmgr::dmtarget::testing
