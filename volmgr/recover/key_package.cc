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
  if (h.version == kKeyPackageAgentVersion) {
    out.push_back(static_cast<uint8_t>(h.sealer));
    auto put_str = [&out](std::string_view v) {
      out.push_back(static_cast<uint8_t>(v.size()));
      out.insert(out.end(), v.begin(), v.end());
    };
    put_str(h.cert_sha256);
    put_str(h.cert_subject);
    put_str(x509::AlgorithmName(h.encapsulation.algorithm));
    PutBe(out, h.encapsulation.data.size(), 2);
    out.insert(out.end(), h.encapsulation.data.begin(),
               h.encapsulation.data.end());
  }
  return out;
}

std::vector<uint8_t> AgentInfo(const KeyPackageHeader& h) {
  std::vector<uint8_t> info =
      crypto::HkdfInfo(kKeyPackageAgentLabel, h.volume_uuid.bytes());
  info.insert(info.end(), h.salt.begin(), h.salt.end());
  return info;
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

// Checks a package's inputs and draws its salt.
Status Prepare(KeyPackageHeader& header, const KeyPackageSecret& s) {
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
  return Status::Ok();
}

// clear || AES-256-GCM(kek, the sealed part, AAD = clear).
StatusOr<std::vector<uint8_t>> Seal(std::vector<uint8_t> clear,
                                    const SecretBytes& kek,
                                    const KeyPackageSecret& s) {
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

// Length of the clear header of a parsed package (the AAD).
size_t ClearLength(const KeyPackageHeader& h) { return EncodeHeader(h).size(); }

}  // namespace

StatusOr<std::vector<uint8_t>> SealKeyPackage(
    KeyPackageHeader header, const KeyPackageSecret& s,
    const keys::RecoveryPassword& rp) {
  VOLMGR_RETURN_IF_ERROR(Prepare(header, s));
  header.version = kKeyPackageVersion;
  header.sealer = KeyPackageSealer::kRecoveryPassword;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(header, rp));
  return Seal(EncodeHeader(header), kek, s);
}

StatusOr<std::vector<uint8_t>> SealKeyPackageForAgent(
    KeyPackageHeader header, const KeyPackageSecret& s,
    const x509::Certificate& agent) {
  VOLMGR_RETURN_IF_ERROR(Prepare(header, s));
  header.version = kKeyPackageAgentVersion;
  header.sealer = KeyPackageSealer::kCertificate;
  header.recovery_id = Uuid();
  header.cert_sha256 = agent.Sha256Fingerprint();
  header.cert_subject = agent.Subject().substr(0, 255);
  VOLMGR_ASSIGN_OR_RETURN(
      x509::Encapsulated e,
      x509::Encapsulate(agent.public_key(), AgentInfo(header)));
  if (e.encapsulation.data.size() > 0xFFFF) {
    return InvalidArgumentError("the agent key's encapsulation is too long");
  }
  header.encapsulation = std::move(e.encapsulation);
  return Seal(EncodeHeader(header), e.kek, s);
}

StatusOr<KeyPackageHeader> ReadKeyPackageHeader(std::span<const uint8_t> f) {
  if (f.size() < kFixedHeaderBytes ||
      std::memcmp(f.data(), kKeyPackageMagic.data(), kKeyPackageMagic.size()) !=
          0) {
    return CorruptionError("not a volmgr key package (no VMGRKPKG magic)");
  }
  KeyPackageHeader h;
  h.version = static_cast<uint16_t>(GetBe(f, 8, 2));
  if (h.version != kKeyPackageVersion && h.version != kKeyPackageAgentVersion) {
    return UnsupportedError("key package version " + std::to_string(h.version) +
                            " is newer than this volmgr-recover (reads 1 "
                            "and 2)");
  }
  h.volume_uuid = Uuid::FromBytes(f.subspan<10, 16>());
  h.recovery_id = Uuid::FromBytes(f.subspan<26, 16>());
  std::memcpy(h.salt.data(), f.data() + 42, 32);
  h.created_unix = static_cast<int64_t>(GetBe(f, 74, 8));
  const auto truncated = CorruptionError("the key package is truncated");
  size_t at = kFixedHeaderBytes - 1;
  // A length-prefixed string (1-byte length) at `at`.
  auto get_str = [&](std::string* out) {
    if (at + 1 > f.size() || at + 1 + f[at] > f.size()) return false;
    out->assign(reinterpret_cast<const char*>(f.data()) + at + 1, f[at]);
    at += 1 + f[at];
    return true;
  };
  if (!get_str(&h.label)) return truncated;
  if (h.version == kKeyPackageAgentVersion) {
    if (at + 1 > f.size()) return truncated;
    if (f[at] != static_cast<uint8_t>(KeyPackageSealer::kCertificate)) {
      return CorruptionError("unknown key package sealer " +
                             std::to_string(f[at]));
    }
    h.sealer = KeyPackageSealer::kCertificate;
    ++at;
    std::string alg;
    if (!get_str(&h.cert_sha256) || !get_str(&h.cert_subject) ||
        !get_str(&alg) || at + 2 > f.size()) {
      return truncated;
    }
    VOLMGR_ASSIGN_OR_RETURN(h.encapsulation.algorithm,
                            x509::ParseAlgorithmName(alg));
    const size_t n = GetBe(f, at, 2);
    at += 2;
    if (at + n > f.size()) return truncated;
    h.encapsulation.data.assign(f.begin() + at, f.begin() + at + n);
    at += n;
  }
  if (f.size() < at + crypto::kAesGcmOverhead) return truncated;
  return h;
}

namespace {

StatusOr<KeyPackageSecret> DecodeSecret(const SecretBytes& opened) {
  auto p = opened.Reveal();
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

}  // namespace

StatusOr<KeyPackageSecret> OpenKeyPackage(std::span<const uint8_t> f,
                                          const keys::RecoveryPassword& rp) {
  VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
  if (h.sealer != KeyPackageSealer::kRecoveryPassword) {
    return InvalidArgumentError(
        "this key package is sealed to the recovery agent certificate " +
        h.cert_subject + " (SHA-256 " + h.cert_sha256.substr(0, 16) +
        "...), not a recovery password: pass --agent-key");
  }
  const size_t clear_len = ClearLength(h);
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
  return DecodeSecret(*opened);
}

StatusOr<KeyPackageSecret> OpenKeyPackageWithAgent(
    std::span<const uint8_t> f, const x509::PrivateKeyOps& key) {
  VOLMGR_ASSIGN_OR_RETURN(KeyPackageHeader h, ReadKeyPackageHeader(f));
  if (h.sealer != KeyPackageSealer::kCertificate) {
    return InvalidArgumentError(
        "this key package is sealed under recovery password " +
        h.recovery_id.ToString() + ", not to an agent certificate");
  }
  const auto not_ours = AuthFailedError(
      "the agent key does not open this key package (it is sealed to " +
      h.cert_subject + ", SHA-256 " + h.cert_sha256.substr(0, 16) +
      "...), or the package was altered");
  const size_t clear_len = ClearLength(h);
  auto kek = x509::Decapsulate(key, h.encapsulation, AgentInfo(h));
  if (!kek.ok()) {
    return kek.status().code() == StatusCode::kAuthFailed ? not_ours
                                                          : kek.status();
  }
  auto opened =
      crypto::AesGcmOpen(*kek, f.subspan(clear_len), f.first(clear_len));
  if (!opened.ok()) {
    return opened.status().code() == StatusCode::kAuthFailed ? not_ours
                                                             : opened.status();
  }
  return DecodeSecret(*opened);
}

}  // namespace volmgr::recover
