#include "tpm/pcr_policy.h"

#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cstring>

#include "tpm/internal/sha256.h"

namespace volmgr::tpm {
namespace {

constexpr uint8_t kSizeofSelect = 3;

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

}  // namespace

StatusOr<PcrSelection> PcrSelection::FromMask(TPM2_ALG_ID bank, uint32_t mask) {
  if (bank != TPM2_ALG_SHA256) {
    return UnsupportedError(
        "PCR bank 0x" +
        DigestHex(std::array<uint8_t, 2>{static_cast<uint8_t>(bank >> 8),
                                         static_cast<uint8_t>(bank)}) +
        " is not supported; volmgr seals to sha256 only");
  }
  if (mask == 0) return InvalidArgumentError("empty PCR selection");
  if (mask >> kPcrCount != 0) {
    return InvalidArgumentError("PCR index out of range (0-23)");
  }
  return PcrSelection(bank, mask);
}

StatusOr<PcrSelection> PcrSelection::Create(TPM2_ALG_ID bank,
                                            std::span<const uint32_t> pcrs) {
  uint32_t mask = 0;
  for (uint32_t i : pcrs) {
    if (i >= kPcrCount) {
      return InvalidArgumentError("PCR " + std::to_string(i) +
                                  " is out of range (0-23)");
    }
    mask |= 1u << i;
  }
  return FromMask(bank, mask);
}

std::vector<uint32_t> PcrSelection::Indices() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < kPcrCount; ++i) {
    if (mask_ & (1u << i)) out.push_back(i);
  }
  return out;
}

TPML_PCR_SELECTION PcrSelection::ToTpml() const {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = bank_;
  sel.pcrSelections[0].sizeofSelect = kSizeofSelect;
  for (uint32_t i = 0; i < kSizeofSelect; ++i) {
    sel.pcrSelections[0].pcrSelect[i] = static_cast<uint8_t>(mask_ >> (8 * i));
  }
  return sel;
}

std::string PcrSelection::ToString() const {
  std::string s = bank_ == TPM2_ALG_SHA256 ? "sha256:" : "bank?:";
  bool first = true;
  for (uint32_t i : Indices()) {
    if (!first) s += ',';
    s += std::to_string(i);
    first = false;
  }
  return s;
}

std::string DigestHex(std::span<const uint8_t> digest, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t n = digest.size();
  bool cut = max_bytes > 0 && n > max_bytes;
  if (cut) n = max_bytes;
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kHex[digest[i] >> 4];
    s += kHex[digest[i] & 0xF];
  }
  if (cut) s += "\u2026";
  return s;
}

StatusOr<std::vector<PcrValue>> ReadPcrs(Tpm& tpm, const PcrSelection& sel) {
  std::vector<PcrValue> out;
  uint32_t remaining = sel.mask();
  while (remaining != 0) {
    VOLMGR_ASSIGN_OR_RETURN(PcrSelection want,
                            PcrSelection::FromMask(sel.bank(), remaining));
    TPML_PCR_SELECTION in = want.ToTpml();
    EsysPtr<TPML_PCR_SELECTION> got_sel;
    EsysPtr<TPML_DIGEST> digests;
    TPML_PCR_SELECTION* raw_sel = nullptr;
    TPML_DIGEST* raw_digests = nullptr;
    TSS2_RC rc =
        Esys_PCR_Read(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in,
                      nullptr, &raw_sel, &raw_digests);
    got_sel.reset(raw_sel);
    digests.reset(raw_digests);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "reading PCRs");
    // Digests come in selection order: bank by bank, ascending PCR index
    // (Part 3 §22.4.1).
    uint32_t k = 0;
    uint32_t got_any = 0;
    for (uint32_t s = 0; s < got_sel->count; ++s) {
      const TPMS_PCR_SELECTION& ps = got_sel->pcrSelections[s];
      for (uint32_t i = 0; i < kPcrCount && i / 8 < ps.sizeofSelect; ++i) {
        if ((ps.pcrSelect[i / 8] & (1u << (i % 8))) == 0) continue;
        if (k >= digests->count) {
          return InternalError(
              "TPM2_PCR_Read returned fewer digests than "
              "its selection says");
        }
        const TPM2B_DIGEST& d = digests->digests[k++];
        if (ps.hash != sel.bank() || d.size != 32 ||
            (remaining & (1u << i)) == 0) {
          return InternalError("TPM2_PCR_Read returned an unexpected PCR");
        }
        PcrValue v;
        v.index = i;
        std::memcpy(v.digest.data(), d.buffer, 32);
        out.push_back(v);
        got_any |= 1u << i;
      }
    }
    if (got_any == 0) {
      return FailedPreconditionError("PCR bank " + sel.ToString() +
                                     " is not active on this TPM");
    }
    remaining &= ~got_any;
  }
  std::sort(out.begin(), out.end(), [](const PcrValue& a, const PcrValue& b) {
    return a.index < b.index;
  });
  return out;
}

Sha256Digest PcrValuesDigest(std::span<const PcrValue> values) {
  std::vector<uint8_t> cat;
  cat.reserve(values.size() * 32);
  for (const PcrValue& v : values) {
    cat.insert(cat.end(), v.digest.begin(), v.digest.end());
  }
  return internal::Sha256({cat});
}

StatusOr<Sha256Digest> ComputePolicyDigest(const PcrSelection& sel,
                                           std::span<const PcrValue> values,
                                           bool with_auth_value) {
  std::vector<uint32_t> idx = sel.Indices();
  if (values.size() != idx.size()) {
    return InvalidArgumentError("PCR values do not match selection " +
                                sel.ToString());
  }
  for (size_t i = 0; i < idx.size(); ++i) {
    if (values[i].index != idx[i]) {
      return InvalidArgumentError("PCR values do not match selection " +
                                  sel.ToString());
    }
  }
  TPML_PCR_SELECTION tpml = sel.ToTpml();
  uint8_t buf[sizeof(TPML_PCR_SELECTION)];
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPML_PCR_SELECTION_Marshal(&tpml, buf, sizeof buf, &off);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "marshalling PCR selection");

  Sha256Digest pcr_digest = PcrValuesDigest(values);
  Sha256Digest policy{};  // Part 1 §19.7.2: a policy session starts at zero.
  std::vector<uint8_t> cc;
  PutU32(cc, TPM2_CC_PolicyPCR);
  policy = internal::Sha256(
      {policy, cc, std::span<const uint8_t>(buf, off), pcr_digest});
  if (with_auth_value) {
    cc.clear();
    PutU32(cc, TPM2_CC_PolicyAuthValue);
    policy = internal::Sha256({policy, cc});
  }
  return policy;
}

StatusOr<Sha256Digest> TrialPolicyDigest(Tpm& tpm, const PcrSelection& sel,
                                         bool with_auth_value) {
  TPMT_SYM_DEF no_sym{};
  no_sym.algorithm = TPM2_ALG_NULL;
  ESYS_TR raw = ESYS_TR_NONE;
  TSS2_RC rc = Esys_StartAuthSession(
      tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
      ESYS_TR_NONE, nullptr, TPM2_SE_TRIAL, &no_sym, TPM2_ALG_SHA256, &raw);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "starting trial session");
  EsysTr session(tpm.esys(), raw);

  TPM2B_DIGEST empty{};  // empty pcrDigest: the TPM uses its current PCRs
  TPML_PCR_SELECTION tpml = sel.ToTpml();
  rc = Esys_PolicyPCR(tpm.esys(), session.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                      ESYS_TR_NONE, &empty, &tpml);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, "TPM2_PolicyPCR (trial)", TssOp::kPolicy);
  }
  if (with_auth_value) {
    rc = Esys_PolicyAuthValue(tpm.esys(), session.get(), ESYS_TR_NONE,
                              ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
      return TssError(rc, "TPM2_PolicyAuthValue (trial)", TssOp::kPolicy);
    }
  }
  TPM2B_DIGEST* raw_digest = nullptr;
  rc = Esys_PolicyGetDigest(tpm.esys(), session.get(), ESYS_TR_NONE,
                            ESYS_TR_NONE, ESYS_TR_NONE, &raw_digest);
  EsysPtr<TPM2B_DIGEST> digest(raw_digest);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "TPM2_PolicyGetDigest");
  if (digest->size != 32) {
    return InternalError("TPM returned a policy digest of " +
                         std::to_string(digest->size) + " bytes");
  }
  Sha256Digest out{};
  std::memcpy(out.data(), digest->buffer, 32);
  return out;
}

}  // namespace volmgr::tpm
