#include "tpm/srk.h"

#include <tss2/tss2_mu.h>

#include <string>

#include "tpm/internal/sha256.h"

namespace volmgr::tpm {
namespace {

// TCG TPM v2.0 Provisioning Guidance §7.5.1, storage key template.
constexpr TPMA_OBJECT kSrkAttributes =
    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
    TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

TPM2B_PUBLIC SrkTemplate(SrkAlgorithm algorithm) {
  TPM2B_PUBLIC pub{};
  TPMT_PUBLIC& a = pub.publicArea;
  a.nameAlg = TPM2_ALG_SHA256;
  a.objectAttributes = kSrkAttributes;
  TPMT_SYM_DEF_OBJECT sym{};
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  if (algorithm == SrkAlgorithm::kEccP256) {
    a.type = TPM2_ALG_ECC;
    a.parameters.eccDetail.symmetric = sym;
    a.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  } else {
    a.type = TPM2_ALG_RSA;
    a.parameters.rsaDetail.symmetric = sym;
    a.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    a.parameters.rsaDetail.keyBits = 2048;
    a.parameters.rsaDetail.exponent = 0;
  }
  return pub;
}

StatusOr<std::vector<uint8_t>> NameOf(Tpm& tpm, ESYS_TR tr) {
  TPM2B_NAME* raw = nullptr;
  TSS2_RC rc = Esys_TR_GetName(tpm.esys(), tr, &raw);
  EsysPtr<TPM2B_NAME> name(raw);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "reading SRK name");
  return std::vector<uint8_t>(name->name, name->name + name->size);
}

// The Name of an object with a SHA-256 nameAlg (Part 1 §16): the nameAlg,
// big-endian, then SHA-256 of the marshalled TPMT_PUBLIC. Computed here
// rather than with Esys_TR_GetName, which in tpm2-tss 3.x sets up a fresh
// OpenSSL library context for the one hash (millions of instructions per
// unlock, docs/PERFORMANCE.md); Esys_CreatePrimary has already checked that
// the TPM's Name for the object matches this public area.
StatusOr<std::vector<uint8_t>> Sha256NameOf(const TPM2B_PUBLIC& pub) {
  if (pub.publicArea.nameAlg != TPM2_ALG_SHA256) {
    return InternalError("SRK nameAlg is not SHA-256");
  }
  uint8_t buf[sizeof(TPMT_PUBLIC)];
  size_t off = 0;
  TSS2_RC rc =
      Tss2_MU_TPMT_PUBLIC_Marshal(&pub.publicArea, buf, sizeof buf, &off);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "marshalling SRK public");
  std::vector<uint8_t> name(2 + 32);
  name[0] = static_cast<uint8_t>(TPM2_ALG_SHA256 >> 8);
  name[1] = static_cast<uint8_t>(TPM2_ALG_SHA256 & 0xff);
  if (!internal::Sha256Into({std::span<const uint8_t>(buf, off)},
                            std::span<uint8_t>(name).subspan(2))) {
    return InternalError("SHA-256 of the SRK public area failed");
  }
  return name;
}

// TPM_RC_P-flagged format-one errors from CreatePrimary (CURVE, KEY_SIZE,
// ASYMMETRIC, VALUE, ...) are how a TPM says "I do not do this algorithm".
bool IsParameterError(TSS2_RC rc) {
  return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
         (rc & TPM2_RC_FMT1) != 0 && (rc & TPM2_RC_P) != 0;
}

}  // namespace

StatusOr<Srk> Srk::LoadPersistent(Tpm& tpm, bool* absent) {
  *absent = false;
  ESYS_TR raw = ESYS_TR_NONE;
  TSS2_RC rc =
      Esys_TR_FromTPMPublic(tpm.esys(), kSrkPersistentHandle, ESYS_TR_NONE,
                            ESYS_TR_NONE, ESYS_TR_NONE, &raw);
  if (rc != TSS2_RC_SUCCESS) {
    if (TssBaseCode(rc) == TPM2_RC_HANDLE) {
      *absent = true;
      return NotFoundError("no persistent SRK");
    }
    return TssError(rc, "reading persistent SRK 0x81000001");
  }
  EsysTr tr(tpm.esys(), raw, EsysTr::Kind::kPersistent);

  TPM2B_PUBLIC* raw_pub = nullptr;
  rc = Esys_ReadPublic(tpm.esys(), tr.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                       ESYS_TR_NONE, &raw_pub, nullptr, nullptr);
  EsysPtr<TPM2B_PUBLIC> pub(raw_pub);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "reading SRK public area");
  const TPMT_PUBLIC& a = pub->publicArea;
  // A parent for Create/Load and a salt key for sessions must be a
  // restricted decryption key (Part 1 §25.1, §19.6.13).
  constexpr TPMA_OBJECT kNeed = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                                TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_USERWITHAUTH;
  if ((a.objectAttributes & kNeed) != kNeed ||
      (a.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) != 0 ||
      a.nameAlg != TPM2_ALG_SHA256) {
    return FailedPreconditionError(
        "persistent handle 0x81000001 holds a key that is not a storage root "
        "key (needs restricted|decrypt|fixedTPM|userWithAuth, SHA-256)");
  }
  SrkInfo info;
  info.persistent = true;
  if (a.type == TPM2_ALG_ECC &&
      a.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) {
    info.algorithm = SrkAlgorithm::kEccP256;
  } else if (a.type == TPM2_ALG_RSA && a.parameters.rsaDetail.keyBits == 2048) {
    info.algorithm = SrkAlgorithm::kRsa2048;
  } else {
    return FailedPreconditionError(
        "persistent SRK 0x81000001 is neither ECC P-256 nor RSA 2048");
  }
  VOLMGR_ASSIGN_OR_RETURN(info.name, NameOf(tpm, tr.get()));
  return Srk(std::move(tr), std::move(info));
}

StatusOr<Srk> Srk::CreatePrimary(Tpm& tpm, SrkAlgorithm algorithm) {
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_PUBLIC in_public = SrkTemplate(algorithm);
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  ESYS_TR raw = ESYS_TR_NONE;
  TPM2B_PUBLIC* raw_out = nullptr;
  TSS2_RC rc = Esys_CreatePrimary(
      tpm.esys(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
      ESYS_TR_NONE, &sensitive, &in_public, &outside, &creation_pcr, &raw,
      &raw_out, nullptr, nullptr, nullptr);
  EsysPtr<TPM2B_PUBLIC> out_public(raw_out);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc,
                    algorithm == SrkAlgorithm::kEccP256
                        ? "creating ECC P-256 storage root key"
                        : "creating RSA 2048 storage root key",
                    TssOp::kOwnerAuth);
  }
  EsysTr tr(tpm.esys(), raw);
  SrkInfo info;
  info.persistent = false;
  info.algorithm = algorithm;
  VOLMGR_ASSIGN_OR_RETURN(info.name, Sha256NameOf(*out_public));
  return Srk(std::move(tr), std::move(info));
}

StatusOr<Srk> Srk::LoadOrCreate(Tpm& tpm,
                                std::optional<SrkAlgorithm> algorithm) {
  bool absent = false;
  StatusOr<Srk> persistent = LoadPersistent(tpm, &absent);
  if (persistent.ok() || !absent) return persistent;
  if (algorithm.has_value()) return CreatePrimary(tpm, *algorithm);

  StatusOr<Srk> ecc = CreatePrimary(tpm, SrkAlgorithm::kEccP256);
  if (ecc.ok()) return ecc;
  if (!IsParameterError(static_cast<TSS2_RC>(ecc.status().foreign().value))) {
    return ecc;
  }
  return CreatePrimary(tpm, SrkAlgorithm::kRsa2048);
}

}  // namespace volmgr::tpm
