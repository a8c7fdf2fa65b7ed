#include "tpm/tss_handles.h"

#include <openssl/crypto.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <string>
#include <utility>

namespace volmgr::tpm {
namespace {

constexpr TSS2_RC kTpmLayer = TSS2_TPM_RC_LAYER;
constexpr TSS2_RC kResMgrTpmLayer = TSS2_RESMGR_TPM_RC_LAYER;

bool IsTpmLayer(TSS2_RC rc) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return layer == kTpmLayer || layer == kResMgrTpmLayer;
}

struct Meaning {
  StatusCode code;
  const char* text;
};

Meaning MeaningOf(TSS2_RC rc, TssOp op) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  if (layer == TSS2_TCTI_RC_LAYER) {
    return {StatusCode::kUnavailable, "TPM not reachable"};
  }
  if (!IsTpmLayer(rc)) {
    // Software layers (ESAPI, SAPI, MU, TCTI loader, resource manager): the
    // base code is in the low 16 bits (tss2_common.h).
    switch (rc & 0xFFFF) {
      case TSS2_BASE_RC_IO_ERROR:
      case TSS2_BASE_RC_NO_CONNECTION:
      case TSS2_BASE_RC_NOT_SUPPORTED:
      case TSS2_BASE_RC_INCOMPATIBLE_TCTI:
        return {StatusCode::kUnavailable, "TPM not reachable"};
      case TSS2_BASE_RC_TRY_AGAIN:
        return {StatusCode::kBusy, "TPM did not answer in time"};
      case TSS2_BASE_RC_RSP_AUTH_FAILED:
        // The response HMAC did not verify: someone or something changed the
        // TPM's answer on its way to us (Part 1 §19.6.14).
        return {StatusCode::kInternal,
                "TPM response failed its HMAC check (bus tampering?)"};
      case TSS2_BASE_RC_MEMORY:
        return {StatusCode::kInternal, "out of memory in tpm2-tss"};
      default:
        return {StatusCode::kInternal, "tpm2-tss error"};
    }
  }

  TSS2_RC base = TssBaseCode(rc);
  switch (base) {
    case TPM2_RC_LOCKOUT:
      return {StatusCode::kUnavailable, "TPM is in dictionary-attack lockout"};
    case TPM2_RC_AUTH_FAIL:
    case TPM2_RC_BAD_AUTH:
      if (op == TssOp::kOwnerAuth) {
        return {StatusCode::kFailedPrecondition,
                "owner hierarchy auth is set; volmgr needs an empty owner "
                "password to create its storage root key"};
      }
      return {StatusCode::kAuthFailed, "wrong PIN"};
    case TPM2_RC_POLICY_FAIL:
      return {StatusCode::kAuthFailed, "PCR policy not satisfied"};
    case TPM2_RC_VALUE:
      if (op == TssOp::kPolicy) {
        return {StatusCode::kAuthFailed, "PCR policy not satisfied"};
      }
      break;
    case TPM2_RC_HIERARCHY:
      return {StatusCode::kFailedPrecondition,
              "owner hierarchy is disabled or not usable here"};
    case TPM2_RC_INTEGRITY:
      return {StatusCode::kCorruption,
              "sealed object failed the TPM's integrity check"};
    case TPM2_RC_INITIALIZE:
    case TPM2_RC_REBOOT:
      return {StatusCode::kUnavailable, "TPM has not been started up"};
    case TPM2_RC_FAILURE:
      return {StatusCode::kUnavailable, "TPM is in failure mode"};
    case TPM2_RC_RETRY:
    case TPM2_RC_YIELDED:
    case TPM2_RC_TESTING:
    case TPM2_RC_CANCELED:
    case TPM2_RC_NV_RATE:
    case TPM2_RC_NV_UNAVAILABLE:
    case TPM2_RC_OBJECT_MEMORY:
    case TPM2_RC_SESSION_MEMORY:
    case TPM2_RC_MEMORY:
    case TPM2_RC_SESSION_HANDLES:
    case TPM2_RC_PCR_CHANGED:
      return {StatusCode::kBusy, "TPM is busy; retry"};
    default:
      break;
  }
  if (op == TssOp::kLoadSealed && (base & TPM2_RC_FMT1) != 0) {
    // Any structural complaint about a sealed object read from disk means the
    // blob is not what the TPM produced (Part 3 §12.2: TPM2_Load checks the
    // public area, the integrity HMAC over the private area and its binding
    // to the public area's Name).
    return {StatusCode::kCorruption, "TPM rejected the sealed object"};
  }
  return {StatusCode::kInternal, "TPM command failed"};
}

}  // namespace

TSS2_RC TssBaseCode(TSS2_RC rc) {
  if (!IsTpmLayer(rc)) return rc;
  TSS2_RC tpm_rc = rc & 0xFFFF;
  if ((tpm_rc & TPM2_RC_FMT1) != 0) {
    // Format one (Part 2 §6.6.3): bits 0-5 are the error number, bit 7 the
    // format, bit 6 (P) and bits 8-11 (N) say where the error was.
    return tpm_rc & (TPM2_RC_FMT1 | 0x3F);
  }
  // Format zero: bits 0-6 error, 8 version, 10 vendor, 11 severity.
  return tpm_rc;
}

Status TssError(TSS2_RC rc, std::string_view what, TssOp op) {
  Meaning m = MeaningOf(rc, op);
  std::string msg(what);
  msg += ": ";
  msg += m.text;
  msg += " (";
  msg += Tss2_RC_Decode(rc);
  msg += ")";
  return Status(m.code, std::move(msg),
                ForeignCode{ForeignSource::kTss2, static_cast<int64_t>(rc)});
}

void WipeMemory(void* p, size_t n) { OPENSSL_cleanse(p, n); }

EsysContext::EsysContext(EsysContext&& other) noexcept
    : esys_(std::exchange(other.esys_, nullptr)),
      tcti_(std::exchange(other.tcti_, nullptr)) {}

EsysContext& EsysContext::operator=(EsysContext&& other) noexcept {
  if (this != &other) {
    Reset();
    esys_ = std::exchange(other.esys_, nullptr);
    tcti_ = std::exchange(other.tcti_, nullptr);
  }
  return *this;
}

void EsysContext::Reset() {
  // Esys_Finalize leaves the TCTI to its owner (tpm2-tss ESAPI spec,
  // Esys_Initialize): finalise it after the ESYS context that uses it.
  if (esys_ != nullptr) Esys_Finalize(&esys_);
  if (tcti_ != nullptr) Tss2_TctiLdr_Finalize(&tcti_);
  esys_ = nullptr;
  tcti_ = nullptr;
}

EsysTr::EsysTr(EsysTr&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      tr_(std::exchange(other.tr_, ESYS_TR_NONE)),
      kind_(other.kind_) {}

EsysTr& EsysTr::operator=(EsysTr&& other) noexcept {
  if (this != &other) {
    Reset();
    ctx_ = std::exchange(other.ctx_, nullptr);
    tr_ = std::exchange(other.tr_, ESYS_TR_NONE);
    kind_ = other.kind_;
  }
  return *this;
}

void EsysTr::Reset() {
  if (ctx_ != nullptr && tr_ != ESYS_TR_NONE) {
    if (kind_ == Kind::kTransient) {
      // Best effort: if the flush fails the object is gone already (e.g. the
      // TPM was reset) or the connection is; either way nothing is left to
      // do, and ESYS frees its metadata only on success, so close it too.
      if (Esys_FlushContext(ctx_, tr_) != TSS2_RC_SUCCESS) {
        Esys_TR_Close(ctx_, &tr_);
      }
    } else {
      Esys_TR_Close(ctx_, &tr_);
    }
  }
  tr_ = ESYS_TR_NONE;
}

void EsysTr::Forget() {
  // ESYS may have dropped the object itself when the response said the
  // session ended; Esys_TR_Close then answers BAD_TR, which is harmless.
  if (ctx_ != nullptr && tr_ != ESYS_TR_NONE) Esys_TR_Close(ctx_, &tr_);
  tr_ = ESYS_TR_NONE;
}

}  // namespace volmgr::tpm
