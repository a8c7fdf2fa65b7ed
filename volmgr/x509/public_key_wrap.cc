#include "volmgr/x509/public_key_wrap.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "volmgr/crypto/hkdf.h"

namespace volmgr::x509 {
namespace {

constexpr size_t kSeedBytes = 32;
constexpr size_t kKekBytes = 32;
constexpr int kMinRsaBits = 2048;

size_t FieldBytes(KemAlgorithm a) {
  return a == KemAlgorithm::kEcdhP384 ? 48 : 32;
}

Status SetOaepSha256(EVP_PKEY_CTX* ctx) {
  if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0) {
    return crypto::OpenSslError("RSA-OAEP-SHA256 parameters");
  }
  return Status::Ok();
}

}  // namespace

std::string_view AlgorithmName(KemAlgorithm a) {
  switch (a) {
    case KemAlgorithm::kRsaOaepSha256:
      return "rsa-oaep-sha256";
    case KemAlgorithm::kEcdhP256:
      return "ecdh-p256-hkdf-sha256";
    case KemAlgorithm::kEcdhP384:
      return "ecdh-p384-hkdf-sha256";
  }
  return "?";
}

StatusOr<KemAlgorithm> ParseAlgorithmName(std::string_view name) {
  for (KemAlgorithm a : {KemAlgorithm::kRsaOaepSha256, KemAlgorithm::kEcdhP256,
                         KemAlgorithm::kEcdhP384}) {
    if (AlgorithmName(a) == name) return a;
  }
  return CorruptionError("unknown key encapsulation \"" + std::string(name) +
                         "\"");
}

StatusOr<KemAlgorithm> AlgorithmFor(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kMinRsaBits) {
      return InvalidArgumentError("the RSA key has " + std::to_string(bits) +
                                  " bits; at least 2048 are required");
    }
    return KemAlgorithm::kRsaOaepSha256;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
      return InvalidArgumentError("the EC key has no named curve");
    }
    std::string g(group, len);
    if (g == "prime256v1" || g == "P-256") return KemAlgorithm::kEcdhP256;
    if (g == "secp384r1" || g == "P-384") return KemAlgorithm::kEcdhP384;
    return InvalidArgumentError("EC curve " + g +
                                " is not supported (P-256 or P-384)");
  }
  return InvalidArgumentError(std::string("a ") + EVP_PKEY_get0_type_name(key) +
                              " key is not supported (RSA or EC P-256/P-384)");
}

StatusOr<Encapsulated> Encapsulate(EVP_PKEY* recipient,
                                   std::span<const uint8_t> info) {
  VOLMGR_ASSIGN_OR_RETURN(KemAlgorithm alg, AlgorithmFor(recipient));
  Encapsulated out;
  out.encapsulation.algorithm = alg;
  std::optional<SecretBytes> ikm;
  if (alg == KemAlgorithm::kRsaOaepSha256) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes seed, SecretBytes::Random(kSeedBytes));
    crypto::EvpPkeyCtxPtr ctx(
        EVP_PKEY_CTX_new_from_pkey(nullptr, recipient, nullptr));
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0) {
      return crypto::OpenSslError("RSA-OAEP encryption");
    }
    VOLMGR_RETURN_IF_ERROR(SetOaepSha256(ctx.get()));
    size_t n = 0;
    if (EVP_PKEY_encrypt(ctx.get(), nullptr, &n, seed.Reveal().data(),
                         seed.size()) <= 0) {
      return crypto::OpenSslError("RSA-OAEP encryption");
    }
    out.encapsulation.data.resize(n);
    if (EVP_PKEY_encrypt(ctx.get(), out.encapsulation.data.data(), &n,
                         seed.Reveal().data(), seed.size()) <= 0) {
      return crypto::OpenSslError("RSA-OAEP encryption");
    }
    out.encapsulation.data.resize(n);
    ikm = std::move(seed);
  } else {
    const char* curve = alg == KemAlgorithm::kEcdhP256 ? "P-256" : "P-384";
    crypto::EvpPkeyPtr eph(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    if (!eph) return crypto::OpenSslError("ephemeral EC key");
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(eph.get(),
                                        OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        nullptr, 0, &n) != 1) {
      return crypto::OpenSslError("ephemeral EC public point");
    }
    out.encapsulation.data.resize(n);
    if (EVP_PKEY_get_octet_string_param(
            eph.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
            out.encapsulation.data.data(), n, &n) != 1) {
      return crypto::OpenSslError("ephemeral EC public point");
    }
    PemPrivateKey ephemeral(std::move(eph));
    crypto::EvpPkeyCtxPtr ctx(
        EVP_PKEY_CTX_new_from_pkey(nullptr, ephemeral.pkey(), nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
        EVP_PKEY_derive_set_peer(ctx.get(), recipient) <= 0) {
      return crypto::OpenSslError("ECDH");
    }
    size_t zlen = 0;
    if (EVP_PKEY_derive(ctx.get(), nullptr, &zlen) <= 0) {
      return crypto::OpenSslError("ECDH");
    }
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes z, SecretBytes::Allocate(zlen, zlen));
    if (EVP_PKEY_derive(ctx.get(), z.RevealMutable().data(), &zlen) <= 0) {
      return crypto::OpenSslError("ECDH");
    }
    z.Resize(zlen);
    ikm = std::move(z);
  }
  VOLMGR_ASSIGN_OR_RETURN(
      out.kek,
      crypto::HkdfSha256(*ikm, out.encapsulation.data, info, kKekBytes));
  return out;
}

StatusOr<SecretBytes> Decapsulate(const PrivateKeyOps& key,
                                  const Encapsulation& enc,
                                  std::span<const uint8_t> info) {
  std::optional<SecretBytes> ikm;
  if (enc.algorithm == KemAlgorithm::kRsaOaepSha256) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes seed,
                            key.RsaOaepSha256Decrypt(enc.data));
    if (seed.size() != kSeedBytes) {
      return AuthFailedError("the RSA-OAEP seed has the wrong length");
    }
    ikm = std::move(seed);
  } else {
    const size_t field = FieldBytes(enc.algorithm);
    if (enc.data.size() != 1 + 2 * field || enc.data[0] != 0x04) {
      return CorruptionError("the ephemeral EC point is malformed");
    }
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes z, key.Ecdh(enc.data, field));
    ikm = std::move(z);
  }
  return crypto::HkdfSha256(*ikm, enc.data, info, kKekBytes);
}

StatusOr<PemPrivateKey> PemPrivateKey::Load(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"),
                                          &std::fclose);
  if (!f) {
    return NotFoundError("cannot read private key " + path + ": " +
                         std::strerror(errno));
  }
  crypto::EvpPkeyPtr key(
      PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return InvalidArgumentError(path + " holds no unencrypted PEM private key");
  }
  return PemPrivateKey(std::move(key));
}

StatusOr<SecretBytes> PemPrivateKey::RsaOaepSha256Decrypt(
    std::span<const uint8_t> ciphertext) const {
  if (!EVP_PKEY_is_a(key_.get(), "RSA")) {
    return AuthFailedError("the agent key is not an RSA key");
  }
  crypto::EvpPkeyCtxPtr ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0) {
    return crypto::OpenSslError("RSA-OAEP decryption");
  }
  VOLMGR_RETURN_IF_ERROR(SetOaepSha256(ctx.get()));
  size_t n = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &n, ciphertext.data(),
                       ciphertext.size()) <= 0) {
    ERR_clear_error();
    return AuthFailedError("RSA-OAEP: the key does not decrypt this");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes out, SecretBytes::Allocate(n, n));
  if (EVP_PKEY_decrypt(ctx.get(), out.RevealMutable().data(), &n,
                       ciphertext.data(), ciphertext.size()) <= 0) {
    ERR_clear_error();
    return AuthFailedError("RSA-OAEP: the key does not decrypt this");
  }
  out.Resize(n);
  return out;
}

StatusOr<SecretBytes> PemPrivateKey::Ecdh(std::span<const uint8_t> peer,
                                          size_t len) const {
  if (!EVP_PKEY_is_a(key_.get(), "EC")) {
    return AuthFailedError("the agent key is not an EC key");
  }
  crypto::EvpPkeyPtr p(EVP_PKEY_new());
  if (!p || EVP_PKEY_copy_parameters(p.get(), key_.get()) != 1 ||
      EVP_PKEY_set1_encoded_public_key(p.get(), peer.data(), peer.size()) !=
          1) {
    ERR_clear_error();
    return AuthFailedError(
        "the ephemeral point is not on the agent key's curve");
  }
  crypto::EvpPkeyCtxPtr ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  size_t n = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_derive_set_peer(ctx.get(), p.get()) <= 0 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &n) <= 0) {
    ERR_clear_error();
    return AuthFailedError("ECDH with the agent key failed");
  }
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes z, SecretBytes::Allocate(n, n));
  if (EVP_PKEY_derive(ctx.get(), z.RevealMutable().data(), &n) <= 0) {
    return crypto::OpenSslError("ECDH");
  }
  z.Resize(n);
  if (z.size() != len) {
    return AuthFailedError("the agent key is on another curve");
  }
  return z;
}

}  // namespace volmgr::x509
