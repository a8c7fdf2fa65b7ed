#include "tpm/sealed_blob.h"

#include <tss2/tss2_mu.h>

#include <cstring>
#include <string>

namespace volmgr::tpm {
namespace {

// "VMTS": VolMgr Tpm Sealed.
constexpr uint8_t kMagic[4] = {'V', 'M', 'T', 'S'};
constexpr uint16_t kFlagHasPin = 0x0001;
constexpr size_t kSrkNameSize = 34;  // TPM2_ALG_SHA256 || 32-byte digest

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void Bytes(std::span<const uint8_t> b) {
    out_.insert(out_.end(), b.begin(), b.end());
  }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (left() < 1) return false;
    *v = in_[pos_++];
    return true;
  }
  bool U16(uint16_t* v) {
    uint8_t a = 0, b = 0;
    if (!U8(&a) || !U8(&b)) return false;
    *v = static_cast<uint16_t>(a << 8 | b);
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t a = 0, b = 0;
    if (!U16(&a) || !U16(&b)) return false;
    *v = static_cast<uint32_t>(a) << 16 | b;
    return true;
  }
  bool Bytes(std::span<uint8_t> out) {
    if (left() < out.size()) return false;
    std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
    return true;
  }
  std::span<const uint8_t> Rest() const { return in_.subspan(pos_); }
  void Skip(size_t n) { pos_ += n; }
  size_t left() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

Status Malformed(const std::string& what, size_t offset) {
  return CorruptionError("TPM sealed blob is malformed: " + what +
                         " (at byte " + std::to_string(offset) + ")");
}

Status Inconsistent(const std::string& what) {
  return CorruptionError("TPM sealed blob is inconsistent: " + what);
}

}  // namespace

std::vector<uint8_t> SerializeSealedBlob(const SealedBlob& blob) {
  Writer w;
  w.Bytes(kMagic);
  w.U16(kSealedBlobVersion);
  w.U16(blob.has_pin ? kFlagHasPin : 0);
  w.U8(static_cast<uint8_t>(blob.srk.algorithm));
  w.U8(blob.srk.persistent ? 1 : 0);
  w.U16(static_cast<uint16_t>(blob.srk.name.size()));
  w.Bytes(blob.srk.name);
  w.U16(blob.pcrs.bank());
  w.U32(blob.pcrs.mask());
  for (const PcrValue& v : blob.pcr_values) w.Bytes(v.digest);
  w.Bytes(blob.pcr_digest);
  w.Bytes(blob.policy_digest);
  w.Bytes(blob.public_area);
  w.Bytes(blob.private_area);
  return w.Take();
}

StatusOr<SealedBlob> ParseSealedBlob(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  SealedBlob blob;

  uint8_t magic[4];
  if (!r.Bytes(magic) || std::memcmp(magic, kMagic, 4) != 0) {
    return Malformed("bad magic (not a volmgr TPM sealed blob)", 0);
  }
  uint16_t version = 0;
  if (!r.U16(&version)) return Malformed("truncated header", r.pos());
  if (version != kSealedBlobVersion) {
    return UnsupportedError("TPM sealed blob version " +
                            std::to_string(version) +
                            " is not supported (this volmgr reads 1)");
  }
  uint16_t flags = 0;
  if (!r.U16(&flags)) return Malformed("truncated header", r.pos());
  if ((flags & ~kFlagHasPin) != 0) {
    return Malformed("unknown flags", r.pos() - 2);
  }
  blob.has_pin = (flags & kFlagHasPin) != 0;

  uint8_t alg = 0, persistent = 0;
  if (!r.U8(&alg) || !r.U8(&persistent)) {
    return Malformed("truncated SRK", r.pos());
  }
  if (alg != static_cast<uint8_t>(SrkAlgorithm::kEccP256) &&
      alg != static_cast<uint8_t>(SrkAlgorithm::kRsa2048)) {
    return Malformed("unknown SRK algorithm " + std::to_string(alg),
                     r.pos() - 2);
  }
  if (persistent > 1) return Malformed("bad SRK persistent flag", r.pos() - 1);
  blob.srk.algorithm = static_cast<SrkAlgorithm>(alg);
  blob.srk.persistent = persistent == 1;
  uint16_t name_size = 0;
  if (!r.U16(&name_size)) return Malformed("truncated SRK name", r.pos());
  if (name_size != kSrkNameSize) {
    return Malformed(
        "SRK name size " + std::to_string(name_size) + " (expected 34)",
        r.pos() - 2);
  }
  blob.srk.name.resize(name_size);
  if (!r.Bytes(blob.srk.name)) return Malformed("truncated SRK name", r.pos());
  if (blob.srk.name[0] != 0x00 || blob.srk.name[1] != 0x0B) {
    return Malformed("SRK name is not a SHA-256 name", r.pos() - name_size);
  }

  uint16_t bank = 0;
  uint32_t mask = 0;
  if (!r.U16(&bank) || !r.U32(&mask)) {
    return Malformed("truncated PCR selection", r.pos());
  }
  StatusOr<PcrSelection> sel = PcrSelection::FromMask(bank, mask);
  if (!sel.ok()) {
    return Malformed("bad PCR selection: " + sel.status().message(),
                     r.pos() - 6);
  }
  blob.pcrs = *sel;
  for (uint32_t i : blob.pcrs.Indices()) {
    PcrValue v;
    v.index = i;
    if (!r.Bytes(v.digest)) return Malformed("truncated PCR values", r.pos());
    blob.pcr_values.push_back(v);
  }
  if (!r.Bytes(blob.pcr_digest) || !r.Bytes(blob.policy_digest)) {
    return Malformed("truncated digests", r.pos());
  }

  // The two TPM2B structures are self-delimiting; let tss2-mu find their
  // ends so what we store is exactly what the TPM produced.
  TPM2B_PUBLIC pub{};
  size_t off = 0;
  std::span<const uint8_t> rest = r.Rest();
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(rest.data(), rest.size(), &off, &pub) !=
      TSS2_RC_SUCCESS) {
    return Malformed("bad TPM2B_PUBLIC", r.pos());
  }
  blob.public_area.assign(rest.begin(), rest.begin() + off);
  r.Skip(off);

  TPM2B_PRIVATE priv{};
  off = 0;
  rest = r.Rest();
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(rest.data(), rest.size(), &off, &priv) !=
      TSS2_RC_SUCCESS) {
    return Malformed("bad TPM2B_PRIVATE", r.pos());
  }
  if (priv.size == 0) return Malformed("empty TPM2B_PRIVATE", r.pos());
  blob.private_area.assign(rest.begin(), rest.begin() + off);
  r.Skip(off);
  if (r.left() != 0) {
    return Malformed(std::to_string(r.left()) + " trailing bytes", r.pos());
  }
  VOLMGR_RETURN_IF_ERROR(ValidateSealedBlob(blob));
  return blob;
}

Status ValidateSealedBlob(const SealedBlob& blob) {
  if (blob.pcrs.mask() == 0) return Inconsistent("empty PCR selection");
  if (blob.srk.name.size() != kSrkNameSize) {
    return Inconsistent("SRK name is not 34 bytes");
  }
  if (PcrValuesDigest(blob.pcr_values) != blob.pcr_digest) {
    return Inconsistent("PCR values do not hash to the recorded PCR digest");
  }
  StatusOr<Sha256Digest> policy =
      ComputePolicyDigest(blob.pcrs, blob.pcr_values, blob.has_pin);
  if (!policy.ok()) return Inconsistent(policy.status().message());
  if (*policy != blob.policy_digest) {
    return Inconsistent(
        "policy digest does not match the PCR values and PIN flag");
  }

  TPM2B_PUBLIC pub{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob.public_area.data(),
                                     blob.public_area.size(), &off,
                                     &pub) != TSS2_RC_SUCCESS ||
      off != blob.public_area.size()) {
    return Inconsistent("public area does not unmarshal");
  }
  TPM2B_PRIVATE priv{};
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob.private_area.data(),
                                      blob.private_area.size(), &off,
                                      &priv) != TSS2_RC_SUCCESS ||
      off != blob.private_area.size() || priv.size == 0) {
    return Inconsistent("private area does not unmarshal");
  }
  // tss2-mu does not check a TPM2B_PUBLIC's size against its contents;
  // accept only the canonical encoding, so no two blobs mean the same thing.
  if (blob.public_area.size() < 2 ||
      (static_cast<size_t>(blob.public_area[0]) << 8 | blob.public_area[1]) !=
          blob.public_area.size() - 2) {
    return Inconsistent("public area size prefix does not match its contents");
  }
  const TPMT_PUBLIC& a = pub.publicArea;
  if (a.type != TPM2_ALG_KEYEDHASH || a.nameAlg != TPM2_ALG_SHA256) {
    return Inconsistent("public area is not a SHA-256 KEYEDHASH object");
  }
  if (a.authPolicy.size != 32 ||
      std::memcmp(a.authPolicy.buffer, blob.policy_digest.data(), 32) != 0) {
    return Inconsistent("public area authPolicy differs from policy digest");
  }
  const TPMA_OBJECT attrs = a.objectAttributes;
  if ((attrs & TPMA_OBJECT_USERWITHAUTH) != 0) {
    // With userWithAuth set the PIN alone would unseal, bypassing the PCR
    // policy (Part 1 §19.7.1).
    return Inconsistent("userWithAuth is set: the PCR policy is bypassable");
  }
  if ((attrs & TPMA_OBJECT_FIXEDTPM) == 0 ||
      (attrs & TPMA_OBJECT_FIXEDPARENT) == 0) {
    return Inconsistent("object is not fixedTPM|fixedParent");
  }
  if (((attrs & TPMA_OBJECT_NODA) != 0) == blob.has_pin) {
    return Inconsistent(blob.has_pin
                            ? "PIN-protected object is exempt from "
                              "dictionary-attack protection (noDA set)"
                            : "noDA is clear on an object without PIN");
  }
  return Status::Ok();
}

}  // namespace volmgr::tpm
