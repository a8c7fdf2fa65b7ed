#include "tpm/seal.h"

#include <tss2/tss2_mu.h>

#include <cstring>
#include <string>

#include "tpm/internal/sha256.h"
#include "tpm/internal/unseal_testing.h"
#include "tpm/srk.h"
#include "tpm/tss_handles.h"

namespace volmgr::tpm {
namespace {

// Wipes a stack structure that held key material when the scope ends.
template <typename T>
class WipeOnExit {
 public:
  explicit WipeOnExit(T* p) : p_(p) {}
  ~WipeOnExit() { WipeMemory(p_, sizeof(T)); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  T* p_;
};

// authValue = SHA-256(PIN), trailing zero octets removed. The TPM drops
// trailing zeros of an authValue when it is set and when it is used in an
// HMAC (Part 1 §19.6.4.3, "authValue ... trailing octets of zero are
// removed"); doing it here keeps ESYS's HMAC key and the TPM's identical.
Status PinAuthValue(const SecretBytes& pin, TPM2B_AUTH* out) {
  if (pin.empty()) return InvalidArgumentError("empty PIN");
  std::memset(out, 0, sizeof *out);
  if (!internal::Sha256Into({pin.Reveal()},
                            std::span<uint8_t>(out->buffer, 32))) {
    return InternalError("SHA-256 of PIN failed");
  }
  out->size = 32;
  while (out->size > 0 && out->buffer[out->size - 1] == 0) --out->size;
  return Status::Ok();
}

// A session salted with the SRK (its salt is encrypted to the SRK's public
// key, Part 1 §19.6.13), with AES-128-CFB parameter encryption: session keys
// are unknown to anyone on the bus, so are the encrypted first parameters.
StatusOr<EsysTr> StartSaltedSession(Tpm& tpm, const Srk& srk, TPM2_SE type,
                                    TPMA_SESSION attrs) {
  TPMT_SYM_DEF sym{};
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  ESYS_TR raw = ESYS_TR_NONE;
  TSS2_RC rc = Esys_StartAuthSession(
      tpm.esys(), srk.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
      ESYS_TR_NONE, nullptr, type, &sym, TPM2_ALG_SHA256, &raw);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, "starting salted session");
  }
  EsysTr session(tpm.esys(), raw);
  // Replace ESYS's defaults (which include CONTINUESESSION) with ours.
  rc = Esys_TRSess_SetAttributes(tpm.esys(), session.get(), attrs, 0xFF);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "setting session attributes");
  return session;
}

StatusOr<std::vector<uint8_t>> MarshalPublic(const TPM2B_PUBLIC& in) {
  std::vector<uint8_t> out(sizeof(TPM2B_PUBLIC));
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&in, out.data(), out.size(), &off);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "marshalling public area");
  out.resize(off);
  return out;
}

StatusOr<std::vector<uint8_t>> MarshalPrivate(const TPM2B_PRIVATE& in) {
  std::vector<uint8_t> out(sizeof(TPM2B_PRIVATE));
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PRIVATE_Marshal(&in, out.data(), out.size(), &off);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "marshalling private area");
  out.resize(off);
  return out;
}

// "PCR 7 changed (sealed 3a9f1c20…, now 51c2d9e0…)", joined with "; ".
Status ComparePcrs(const SealedBlob& blob, std::span<const PcrValue> now) {
  std::string changed;
  for (size_t i = 0; i < blob.pcr_values.size() && i < now.size(); ++i) {
    const PcrValue& sealed = blob.pcr_values[i];
    if (sealed.digest == now[i].digest) continue;
    if (!changed.empty()) changed += "; ";
    changed += "PCR " + std::to_string(sealed.index) + " changed (sealed " +
               DigestHex(sealed.digest, 4) + ", now " +
               DigestHex(now[i].digest, 4) + ")";
  }
  if (changed.empty()) return Status::Ok();
  return AuthFailedError("TPM refused: " + changed);
}

StatusOr<SecretBytes> UnsealImpl(Tpm& tpm, const SealedBlob& blob,
                                 const std::optional<SecretBytes>& pin,
                                 bool encrypt) {
  // Checks that need no TPM come first: a corrupt blob or a missing PIN is
  // reported as such, not as whatever the TPM makes of it.
  VOLMGR_RETURN_IF_ERROR(ValidateSealedBlob(blob));
  if (blob.has_pin && !pin.has_value()) {
    return PinRequiredError("this TPM-sealed key needs its PIN");
  }
  TPM2B_AUTH auth{};
  WipeOnExit<TPM2B_AUTH> wipe_auth(&auth);
  if (blob.has_pin) VOLMGR_RETURN_IF_ERROR(PinAuthValue(*pin, &auth));

  // Compare PCRs ourselves before the TPM does: its TPM_RC_VALUE says only
  // "some PCR differs", we can say which (as systemd compares the stored
  // policy before TPM2_Unseal). The TPM check below still decides.
  VOLMGR_ASSIGN_OR_RETURN(std::vector<PcrValue> now, ReadPcrs(tpm, blob.pcrs));
  VOLMGR_RETURN_IF_ERROR(ComparePcrs(blob, now));

  // The SRK the blob was sealed under: a transient primary is recreated
  // from its template without probing 0x81000001 first (one TPM command and
  // its resource-manager context swaps fewer). Either way the name check
  // below decides.
  VOLMGR_ASSIGN_OR_RETURN(Srk srk,
                          blob.srk.persistent
                              ? Srk::LoadOrCreate(tpm, blob.srk.algorithm)
                              : Srk::CreatePrimary(tpm, blob.srk.algorithm));
  if (srk.info().name != blob.srk.name) {
    return FailedPreconditionError(
        "the TPM's storage root key is not the one this key was sealed "
        "under (TPM cleared, another machine, or a different SRK at "
        "0x81000001)");
  }

  TPM2B_PUBLIC in_public{};
  TPM2B_PRIVATE in_private{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob.public_area.data(),
                                     blob.public_area.size(), &off,
                                     &in_public) != TSS2_RC_SUCCESS) {
    return CorruptionError("TPM sealed blob: public area does not unmarshal");
  }
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob.private_area.data(),
                                      blob.private_area.size(), &off,
                                      &in_private) != TSS2_RC_SUCCESS) {
    return CorruptionError("TPM sealed blob: private area does not unmarshal");
  }
  // ENCRYPT protects the response's outData, the secret. TPM2_Unseal has no
  // command parameter to encrypt, so DECRYPT has nothing to do; ESYS clears
  // it on the wire for such commands (the swtpm log shows the Unseal
  // session attributes as 0x40, encrypt; continueSession is cleared for the
  // Unseal below), and we keep it set so the session's attributes read the
  // same as in TPM2_Create.
  TPMA_SESSION attrs = TPMA_SESSION_CONTINUESESSION;
  if (encrypt) attrs |= TPMA_SESSION_ENCRYPT | TPMA_SESSION_DECRYPT;
  VOLMGR_ASSIGN_OR_RETURN(EsysTr session,
                          StartSaltedSession(tpm, srk, TPM2_SE_POLICY, attrs));

  ESYS_TR raw_obj = ESYS_TR_NONE;
  TSS2_RC rc =
      Esys_Load(tpm.esys(), srk.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                ESYS_TR_NONE, &in_private, &in_public, &raw_obj);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, "loading sealed object", TssOp::kLoadSealed);
  }
  EsysTr sealed(tpm.esys(), raw_obj);
  // The session is salted and the object loaded: the SRK has done its part.
  // Under the kernel's resource manager every live object is context-saved,
  // flushed and reloaded around each command, so fewer live objects means
  // fewer TPM commands for the rest of the unseal.
  srk.Release();

  // pcrDigest = the sealed values' digest: if the PCRs changed between our
  // read and here, the TPM answers TPM_RC_VALUE (Part 3 §23.7).
  TPM2B_DIGEST pcr_digest{};
  pcr_digest.size = 32;
  std::memcpy(pcr_digest.buffer, blob.pcr_digest.data(), 32);
  TPML_PCR_SELECTION tpml = blob.pcrs.ToTpml();
  rc = Esys_PolicyPCR(tpm.esys(), session.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                      ESYS_TR_NONE, &pcr_digest, &tpml);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, "TPM2_PolicyPCR", TssOp::kPolicy);
  }
  if (blob.has_pin) {
    rc = Esys_PolicyAuthValue(tpm.esys(), session.get(), ESYS_TR_NONE,
                              ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
      return TssError(rc, "TPM2_PolicyAuthValue", TssOp::kPolicy);
    }
    rc = Esys_TR_SetAuth(tpm.esys(), sealed.get(), &auth);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "setting PIN auth");
  }

  // The Unseal is the session's last use: with continueSession clear the
  // TPM ends it as the command completes, so no TPM2_FlushContext follows
  // (and, under the kernel's resource manager, none of the context save /
  // load / flush traffic that keeping it alive costs).
  rc = Esys_TRSess_SetAttributes(tpm.esys(), session.get(), 0,
                                 TPMA_SESSION_CONTINUESESSION);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "setting session attributes");
  TPM2B_SENSITIVE_DATA* raw_out = nullptr;
  rc = Esys_Unseal(tpm.esys(), sealed.get(), session.get(), ESYS_TR_NONE,
                   ESYS_TR_NONE, &raw_out);
  EsysSecretPtr<TPM2B_SENSITIVE_DATA> out(raw_out);
  // On failure the TPM keeps the session; the owner flushes it as usual.
  if (rc == TSS2_RC_SUCCESS) session.Forget();
  if (blob.has_pin) {
    // ESYS keeps a copy of the authValue in the object's metadata; replace
    // it with zeros (Esys_TR_SetAuth copies the whole TPM2B) before the
    // object is flushed and its metadata freed.
    TPM2B_AUTH zero{};
    Esys_TR_SetAuth(tpm.esys(), sealed.get(), &zero);
  }
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, "TPM2_Unseal", TssOp::kObjectAuth);
  }
  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes secret,
      SecretBytes::CopyOf(std::span<const uint8_t>(out->buffer, out->size)));
  return secret;
}

}  // namespace

StatusOr<SealedBlob> Seal(Tpm& tpm, const SecretBytes& secret,
                          const PcrSelection& pcrs,
                          const std::optional<SecretBytes>& pin) {
  if (secret.empty() || secret.size() > kMaxSealedSecretSize) {
    return InvalidArgumentError(
        "a TPM-sealed secret must be 1 to 128 bytes, "
        "got " +
        std::to_string(secret.size()));
  }
  if (pcrs.mask() == 0) return InvalidArgumentError("empty PCR selection");
  const bool has_pin = pin.has_value();

  SealedBlob blob;
  blob.pcrs = pcrs;
  blob.has_pin = has_pin;
  VOLMGR_ASSIGN_OR_RETURN(blob.pcr_values, ReadPcrs(tpm, pcrs));
  blob.pcr_digest = PcrValuesDigest(blob.pcr_values);
  VOLMGR_ASSIGN_OR_RETURN(blob.policy_digest,
                          ComputePolicyDigest(pcrs, blob.pcr_values, has_pin));

  VOLMGR_ASSIGN_OR_RETURN(Srk srk, Srk::LoadOrCreate(tpm));
  blob.srk = srk.info();

  TPM2B_SENSITIVE_CREATE sensitive{};
  WipeOnExit<TPM2B_SENSITIVE_CREATE> wipe_sensitive(&sensitive);
  if (has_pin) {
    VOLMGR_RETURN_IF_ERROR(PinAuthValue(*pin, &sensitive.sensitive.userAuth));
  }
  sensitive.sensitive.data.size = static_cast<uint16_t>(secret.size());
  std::memcpy(sensitive.sensitive.data.buffer, secret.Reveal().data(),
              secret.size());

  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& a = in_public.publicArea;
  a.type = TPM2_ALG_KEYEDHASH;
  a.nameAlg = TPM2_ALG_SHA256;
  // No sensitiveDataOrigin: the data comes from us (Part 1 §27.2.2 requires
  // it clear when sensitive.data is supplied). No sign/decrypt: a sealed
  // data object (Part 1 §27.2.3).
  a.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
  if (!has_pin) a.objectAttributes |= TPMA_OBJECT_NODA;
  a.authPolicy.size = 32;
  std::memcpy(a.authPolicy.buffer, blob.policy_digest.data(), 32);
  a.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;

  // The secret travels in inSensitive, the first command parameter: the
  // session's DECRYPT attribute encrypts it on the bus.
  VOLMGR_ASSIGN_OR_RETURN(
      EsysTr session,
      StartSaltedSession(tpm, srk, TPM2_SE_HMAC,
                         TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT |
                             TPMA_SESSION_CONTINUESESSION));
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  TPM2B_PRIVATE* raw_priv = nullptr;
  TPM2B_PUBLIC* raw_pub = nullptr;
  TSS2_RC rc =
      Esys_Create(tpm.esys(), srk.handle(), session.get(), ESYS_TR_NONE,
                  ESYS_TR_NONE, &sensitive, &in_public, &outside, &creation_pcr,
                  &raw_priv, &raw_pub, nullptr, nullptr, nullptr);
  EsysPtr<TPM2B_PRIVATE> out_priv(raw_priv);
  EsysPtr<TPM2B_PUBLIC> out_pub(raw_pub);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "creating sealed object");
  VOLMGR_ASSIGN_OR_RETURN(blob.public_area, MarshalPublic(*out_pub));
  VOLMGR_ASSIGN_OR_RETURN(blob.private_area, MarshalPrivate(*out_priv));
  VOLMGR_RETURN_IF_ERROR(ValidateSealedBlob(blob));
  return blob;
}

StatusOr<SecretBytes> Unseal(Tpm& tpm, const SealedBlob& blob,
                             const std::optional<SecretBytes>& pin) {
  return UnsealImpl(tpm, blob, pin, /*encrypt=*/true);
}

StatusOr<SealedBlob> SealAndVerify(Tpm& tpm, const SecretBytes& secret,
                                   const PcrSelection& pcrs,
                                   const std::optional<SecretBytes>& pin) {
  VOLMGR_ASSIGN_OR_RETURN(SealedBlob blob, Seal(tpm, secret, pcrs, pin));
  StatusOr<SecretBytes> back = Unseal(tpm, blob, pin);
  if (!back.ok()) {
    return back.status().WithContext("sealed key failed its round trip");
  }
  if (!back->ConstantTimeEquals(secret)) {
    return InternalError(
        "sealed key failed its round trip: TPM returned "
        "different bytes");
  }
  return blob;
}

namespace internal {

StatusOr<SecretBytes> UnsealWithoutParameterEncryptionForTesting(
    Tpm& tpm, const SealedBlob& blob, const std::optional<SecretBytes>& pin) {
  return UnsealImpl(tpm, blob, pin, /*encrypt=*/false);
}

}  // namespace internal
}  // namespace volmgr::tpm
