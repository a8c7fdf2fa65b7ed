#include "tpm/internal/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace volmgr::tpm::internal {

bool Sha256Into(std::initializer_list<std::span<const uint8_t>> parts,
                std::span<uint8_t> out) {
  if (out.size() != 32) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return false;
  }
  for (auto part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) {
      return false;
    }
  }
  unsigned int len = 0;
  return EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == 32;
}

}  // namespace volmgr::tpm::internal
