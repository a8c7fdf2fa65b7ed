// Owning handles for the OpenSSL 3 objects volmgr::crypto uses, and the one
// conversion from OpenSSL's error queue to a Status.
//
// Every handle is a std::unique_ptr with an explicit deleter that calls the
// matching OpenSSL *_free function, so no code path leaks a context or a
// fetched algorithm (OpenSSL 3 fetched algorithms are reference counted and
// must be freed: see "ALGORITHM FETCHING" in crypto(7)).
//
// Thread-safety: a handle is as thread-safe as the object it owns. Fetched
// algorithms (EVP_CIPHER, EVP_MD, EVP_KDF, EVP_MAC) may be shared; contexts
// (*_CTX) must not be used from two threads at once.
#ifndef VOLMGR_CRYPTO_OPENSSL_HANDLES_H_
#define VOLMGR_CRYPTO_OPENSSL_HANDLES_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr::crypto {

namespace internal {
// Deleter adaptor: calls Free on the pointer. Free functions accept nullptr.
template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};
}  // namespace internal

using EvpCipherCtxPtr = std::unique_ptr<
    EVP_CIPHER_CTX,
    internal::OpenSslDeleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
// A cipher from EVP_CIPHER_fetch (not a static EVP_aes_256_gcm()).
using EvpCipherPtr =
    std::unique_ptr<EVP_CIPHER,
                    internal::OpenSslDeleter<EVP_CIPHER, EVP_CIPHER_free>>;
// A digest from EVP_MD_fetch.
using EvpMdPtr =
    std::unique_ptr<EVP_MD, internal::OpenSslDeleter<EVP_MD, EVP_MD_free>>;
using EvpKdfPtr =
    std::unique_ptr<EVP_KDF, internal::OpenSslDeleter<EVP_KDF, EVP_KDF_free>>;
// EVP_KDF_CTX_free clears the key material the context copied.
using EvpKdfCtxPtr =
    std::unique_ptr<EVP_KDF_CTX,
                    internal::OpenSslDeleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;
using EvpMacPtr =
    std::unique_ptr<EVP_MAC, internal::OpenSslDeleter<EVP_MAC, EVP_MAC_free>>;
using EvpMacCtxPtr =
    std::unique_ptr<EVP_MAC_CTX,
                    internal::OpenSslDeleter<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using EvpPkeyPtr =
    std::unique_ptr<EVP_PKEY,
                    internal::OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr =
    std::unique_ptr<EVP_PKEY_CTX,
                    internal::OpenSslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;

// The one conversion from OpenSSL's thread-local error queue to a Status.
//
// Drains the queue (ERR_get_error until empty) so a stale error never leaks
// into a later, unrelated failure. The message is "context: <reason>[; ...]"
// listing every queued reason, oldest first; the foreign code is the oldest
// packed error code (the root cause) with ForeignSource::kOpenSsl. The status
// code is kUnavailable when OpenSSL reports a missing algorithm or provider
// (e.g. FIPS provider without AES-GCM), otherwise kInternal: OpenSSL failing
// on inputs this library already validated is a bug or an environment fault,
// never a wrong secret (those are reported as kAuthFailed by the callers).
Status OpenSslError(std::string_view context);

}  // namespace volmgr::crypto

#endif  // VOLMGR_CRYPTO_OPENSSL_HANDLES_H_
