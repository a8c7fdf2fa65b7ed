#include "volmgr/recover/key_package.h"

#include <openssl/rand.h>

#include <cstring>

#include "volmgr/crypto/aead.h"
#include "volmgr/crypto/hkdf.h"

namespace volmgr::recover {
namespace {

// Fixed part of the clear header; the label follows it.
constexpr size_t kFixedHeaderBytes = 8 + 2 + 16 + 16 + 32 + 8 + 1;
constexpr size_t kFvekBytes = 64;

void PutBe(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
}

uint64_t GetBe(std::span<const uint8_t> in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | in[at + i];
  return v;
}

std::vector<uint8_t> EncodeHeader(const KeyPackageHeader& h) {
  std::vector<uint8_t> out(kKeyPackageMagic.begin(), kKeyPackageMagic.end());
  PutBe(out, h.version, 2);
  out.insert(out.end(), h.volume_uuid.bytes().begin(),
             h.volume_uuid.bytes().end());
  out.insert(out.end(), h.recovery_id.bytes().begin(),
             h.recovery_id.bytes().end());
  out.insert(out.end(), h.salt.begin(), h.salt.end());
  PutBe(out, static_cast<uint64_t>(h.created_unix), 8);
  out.push_back(static_cast<uint8_t>(h.label.size()));
  out.insert(out.end(), h.label.begin(), h.label.end());
  return out;
}

StatusOr<SecretBytes> DeriveKek(const KeyPackageHeader& h,
                                const keys::RecoveryPassword& rp) {
  std::vector<uint8_t> info(kKeyPackageKdfLabel.begin(),
                            kKeyPackageKdfLabel.end());
  info.insert(info.end(), h.recovery_id.bytes().begin(),
              h.recovery_id.bytes().end());
  return crypto::HkdfSha256(rp.key(), h.salt, info, 32);
}

// Size of the sealed plaintext for a cipher name of `cipher_len` bytes.
size_t SecretBytesFor(size_t cipher_len) {
  return 2 + kFvekBytes + 1 + cipher_len + 4 + 8 + 8 + 8 + 4 + 32;
}

}  // namespace

StatusOr<std::vector<uint8_t>> SealKeyPackage(
    KeyPackageHeader header, const KeyPackageSecret& s,
    const keys::RecoveryPassword& rp) {
  if (s.fvek.size() != kFvekBytes) {
    return InvalidArgumentError("the FVEK must be 64 bytes");
  }
  if (header.label.size() > 255 || s.cipher.empty() || s.cipher.size() > 255) {
    return InvalidArgumentError("label or cipher name longer than 255 bytes");
  }
  if (RAND_bytes(header.salt.data(), static_cast<int>(header.salt.size())) !=
      1) {
    return InternalError("no randomness for the key package salt");
  }
  header.version = kKeyPackageVersion;
  std::vector<uint8_t> clear = EncodeHeader(header);
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(header, rp));

  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes plain,
      SecretBytes::Allocate(SecretBytesFor(s.cipher.size())));
  auto p = plain.RevealMutable();
  size_t at = 0;
  auto put = [&](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i)
      p[at++] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(kFvekBytes, 2);
  std::memcpy(p.data() + at, s.fvek.Reveal().data(), kFvekBytes);
  at += kFvekBytes;
  put(s.cipher.size(), 1);
  std::memcpy(p.data() + at, s.cipher.data(), s.cipher.size());
  at += s.cipher.size();
  put(s.sector_size, 4);
  put(s.data_offset_bytes, 8);
  put(s.payload_bytes, 8);
  put(s.iv_offset, 8);
  put(s.check_bytes, 4);
  std::memcpy(p.data() + at, s.check_sha256.data(), 32);

  VOLMGR_ASSIGN_OR_RETURN(std::vector<uint8_t> sealed,
                          crypto::AesGcmSeal(kek, plain.Reveal(), clear));
  clear.insert(clear.end(), sealed.begin(), sealed.end());
  return clear;
}

StatusOr<KeyPackageHeader> ReadKeyPackageHeader(std::span<const uint8_t> f) {
  if (f.size() < kFixedHeaderBytes ||
      std::memcmp(f.data(), kKeyPackageMagic.data(), kKeyPackageMagic.size()) !=
          0) {
    return CorruptionError("not a volmgr key package (no VMGRKPKG magic)");
  }
  KeyPackageHeader h;
  h.version = static_cast<uint16_t>(GetBe(f, 8, 2));
  if (h.version != kKeyPackageVersion) {
    return UnsupportedError("key package version " + std::to_string(h.version) +
                            " is newer than this volmgr-recover (reads 1)");
  }
  h.volume_uuid = Uuid::FromBytes(f.subspan<10, 16>());
  h.recovery_id = Uuid::FromBytes(f.subspan<26, 16>());
  std::memcpy(h.salt.data(), f.data() + 42, 32);
  h.created_unix = static_cast<int64_t>(GetBe(f, 74, 8));
  const size_t label_len = f[82];
  if (f.size() < kFixedHeaderBytes + label_len + crypto::kAesGcmOverhead) {
    return CorruptionError("the key package is truncated");
  }
  h.label.assign(reinterpret_cast<const char*>(f.data()) + kFixedHeaderBytes,
                 label_len);
  return h;
}

StatusOr<KeyPackageSecret> OpenKeyPackage(std::span<const uint8_t> f,
                                          const keys::RecoveryPassword& rp) {
  VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
  const size_t clear_len = kFixedHeaderBytes + h.label.size();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(h, rp));
  auto opened =
      crypto::AesGcmOpen(kek, f.subspan(clear_len), f.first(clear_len));
  if (!opened.ok()) {
    if (opened.status().code() == StatusCode::kAuthFailed) {
      return AuthFailedError(
          "the recovery password does not open this key package (it is "
          "sealed under recovery ID " +
          h.recovery_id.ToString() + " of volume " + h.volume_uuid.ToString() +
          "), or the package was altered");
    }
    return opened.status();
  }
  auto p = opened->Reveal();
  auto bad = CorruptionError("the key package's sealed contents are malformed");
  size_t at = 0;
  auto need = [&](size_t n) { return at + n <= p.size(); };
  auto get = [&](int bytes) {
    uint64_t v = GetBe(p, at, bytes);
    at += static_cast<size_t>(bytes);
    return v;
  };
  if (!need(2) || get(2) != kFvekBytes || !need(kFvekBytes + 1)) return bad;
  KeyPackageSecret s;
  VOLMGR_ASSIGN_OR_RETURN(s.fvek,
                          SecretBytes::CopyOf(p.subspan(at, kFvekBytes)));
  at += kFvekBytes;
  const size_t clen = get(1);
  if (p.size() != SecretBytesFor(clen)) return bad;
  s.cipher.assign(reinterpret_cast<const char*>(p.data()) + at, clen);
  at += clen;
  s.sector_size = static_cast<uint32_t>(get(4));
  s.data_offset_bytes = get(8);
  s.payload_bytes = get(8);
  s.iv_offset = get(8);
  s.check_bytes = static_cast<uint32_t>(get(4));
  std::memcpy(s.check_sha256.data(), p.data() + at, 32);
  return s;
}

}  // namespace volmgr::recover
