// Owning wrappers for tpm2-tss ESAPI handles, and the one conversion from a
// TSS2_RC to a Status.
//
// Every C handle the TPM code touches has exactly one owner here:
//   EsysContext  - ESYS_CONTEXT plus the TCTI it was initialised with
//                  (Esys_Finalize does not finalise the TCTI; we do).
//   EsysTr       - an ESYS_TR for a transient object or session, flushed
//                  from the TPM (TPM2_FlushContext) when the owner goes away;
//                  or a persistent object, only closed in ESYS.
//   EsysPtr<T>   - a buffer ESYS allocated for us, released with Esys_Free.
//   EsysSecretPtr<T> - the same, wiped before it is released (for unsealed
//                  data and anything else that holds key material).
//
// Thread-safety: none of these types may be used from two threads at once;
// an ESYS_CONTEXT is not thread-safe (tpm2-tss ESAPI spec, §1).
#ifndef VOLMGR_TPM_TSS_HANDLES_H_
#define VOLMGR_TPM_TSS_HANDLES_H_

#include <tss2/tss2_common.h>
#include <tss2/tss2_esys.h>

#include <memory>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr::tpm {

// What the failing call was doing, for the few response codes whose meaning
// depends on it. TPM2_RC_VALUE, for instance, is "PCR policy not satisfied"
// when TPM2_PolicyPCR returns it (the pcrDigest parameter did not match the
// current PCRs, Part 3 §23.7) but a plain bad argument elsewhere.
enum class TssOp : uint8_t {
  kGeneric,
  kOwnerAuth,   // a command authorised by the owner hierarchy (empty auth)
  kPolicy,      // a policy command (TPM2_PolicyPCR, TPM2_PolicyAuthValue)
  kObjectAuth,  // a command authorised with the sealed object's PIN/policy
  kLoadSealed,  // TPM2_Load of a sealed object read from disk
};

// The one conversion from a TSS2_RC. Decodes the code once (Tss2_RC_Decode),
// picks the StatusCode, and keeps the raw code as ForeignSource::kTss2:
//   TPM2_RC_LOCKOUT                        -> kUnavailable ("dictionary-attack
//                                             lockout")
//   TPM2_RC_AUTH_FAIL, TPM2_RC_BAD_AUTH    -> kAuthFailed ("wrong PIN"), or
//                                             kFailedPrecondition ("owner
//                                             hierarchy auth is set") for
//                                             kOwnerAuth
//   TPM2_RC_POLICY_FAIL, TPM2_RC_VALUE on kPolicy
//                                          -> kAuthFailed ("PCR policy not
//                                             satisfied")
//   TPM2_RC_HIERARCHY                      -> kFailedPrecondition
//   TPM2_RC_INTEGRITY, any format-one error on kLoadSealed
//                                          -> kCorruption
//   TCTI layer errors, I/O and connection errors in any layer
//                                          -> kUnavailable
//   TPM2_RC_RETRY/YIELDED/TESTING/..._MEMORY -> kBusy
//   everything else                        -> kInternal
// Format-one codes carry a handle, session or parameter number (Part 2
// §6.6.3, bits 6 and 8-11); it is masked off before matching, so
// TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_1 is recognised as AUTH_FAIL.
// The message is "<what>: <meaning> (<Tss2_RC_Decode text>)".
Status TssError(TSS2_RC rc, std::string_view what, TssOp op = TssOp::kGeneric);

// The response code with its layer, and for format-one TPM codes the
// handle/session/parameter number and the P bit, removed: the value to
// compare against TPM2_RC_* constants. Exposed for tests.
TSS2_RC TssBaseCode(TSS2_RC rc);

// Owns an ESYS_CONTEXT and the TCTI below it.
class EsysContext {
 public:
  EsysContext() = default;
  // Takes ownership of both. REQUIRES: esys was initialised on tcti.
  EsysContext(ESYS_CONTEXT* esys, TSS2_TCTI_CONTEXT* tcti)
      : esys_(esys), tcti_(tcti) {}
  ~EsysContext() { Reset(); }
  EsysContext(const EsysContext&) = delete;
  EsysContext& operator=(const EsysContext&) = delete;
  EsysContext(EsysContext&& other) noexcept;
  EsysContext& operator=(EsysContext&& other) noexcept;

  ESYS_CONTEXT* get() const { return esys_; }
  explicit operator bool() const { return esys_ != nullptr; }

 private:
  void Reset();
  ESYS_CONTEXT* esys_ = nullptr;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
};

// Owns an ESYS_TR. A transient object or session is flushed from the TPM on
// destruction (TPM2_FlushContext, Part 3 §28.4), so it never lingers in one
// of the TPM's few object slots; a persistent object is only closed in ESYS
// (flushing it is not allowed, and would not evict it anyway).
// REQUIRES: the EsysContext outlives every EsysTr made on it.
class EsysTr {
 public:
  enum class Kind : uint8_t { kTransient, kPersistent };

  EsysTr() = default;
  EsysTr(ESYS_CONTEXT* ctx, ESYS_TR tr, Kind kind = Kind::kTransient)
      : ctx_(ctx), tr_(tr), kind_(kind) {}
  ~EsysTr() { Reset(); }
  EsysTr(const EsysTr&) = delete;
  EsysTr& operator=(const EsysTr&) = delete;
  EsysTr(EsysTr&& other) noexcept;
  EsysTr& operator=(EsysTr&& other) noexcept;

  ESYS_TR get() const { return tr_; }
  Kind kind() const { return kind_; }
  explicit operator bool() const { return tr_ != ESYS_TR_NONE; }

  // Flushes (or closes) now. Best effort: errors are ignored, as in the
  // destructor.
  void Reset();

  // For a session the TPM has already ended: one used for a command that
  // succeeded with continueSession clear (Part 1 §19.6.5: the TPM flushes
  // it when the command completes). Drops ESYS's metadata without sending
  // TPM2_FlushContext, which would only fail, and under the kernel's
  // resource manager cost context loads besides.
  void Forget();

 private:
  ESYS_CONTEXT* ctx_ = nullptr;
  ESYS_TR tr_ = ESYS_TR_NONE;
  Kind kind_ = Kind::kTransient;
};

struct EsysFreeDeleter {
  void operator()(void* p) const { Esys_Free(p); }
};

// Wipes sizeof(T) bytes before Esys_Free. For ESYS outputs that hold key
// material (TPM2B_SENSITIVE_DATA from TPM2_Unseal).
template <typename T>
struct EsysWipeDeleter {
  void operator()(T* p) const;
};

template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFreeDeleter>;

template <typename T>
using EsysSecretPtr = std::unique_ptr<T, EsysWipeDeleter<T>>;

// OPENSSL_cleanse, spelled once so this header needs no OpenSSL include.
void WipeMemory(void* p, size_t n);

template <typename T>
void EsysWipeDeleter<T>::operator()(T* p) const {
  if (p == nullptr) return;
  WipeMemory(p, sizeof(T));
  Esys_Free(p);
}

}  // namespace volmgr::tpm

#endif  // VOLMGR_TPM_TSS_HANDLES_H_
