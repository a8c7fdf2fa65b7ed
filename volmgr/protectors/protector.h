// Key protectors: the ways a volume's VMK is wrapped and recovered.
//
// Each protector lives in one LUKS2 token whose "type" is "volmgr-<kind>"
// (docs/FORMAT.md, "Protector tokens"). A ProtectorHandler knows one kind: it
// validates the token's kind-specific parameters, wraps a VMK for a new
// protector, and unwraps it from the user's credentials. Handlers register
// themselves in a table keyed by kind (VOLMGR_REGISTER_PROTECTOR), so adding
// a kind is adding one file. Tokens of kinds this build does not know are
// kept untouched and reported, never deleted.
//
// Every wrapped VMK is bound (AES-GCM associated data) to the volume UUID, the
// protector ID and the kind: a token copied to another volume, or edited to
// claim another kind, no longer unwraps.
#ifndef VOLMGR_PROTECTORS_PROTECTOR_H_
#define VOLMGR_PROTECTORS_PROTECTOR_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/json_reader.h"
#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/crypto/argon2id.h"
#include "volmgr/crypto/key_wrap.h"

namespace volmgr::protectors {

inline constexpr std::string_view kTokenTypePrefix = "volmgr-";
inline constexpr std::string_view kVolumeTokenType = "volmgr-volume";

// One protector as stored in its LUKS2 token.
struct ProtectorRecord {
  int token_id = -1;
  std::string kind;         // e.g. "passphrase"; token type is volmgr-<kind>
  int version = 1;          // version of the kind's token layout
  std::string id;           // UUID; for recovery passwords, the recovery ID
  std::string created;      // RFC 3339, UTC
  std::string description;  // free text from the user
  std::vector<int> keyslots;
  nlohmann::json params = nlohmann::json::object();  // kind-specific
  std::string wrapped_vmk;  // base64 of crypto::WrappedKey

  // Parses a volmgr protector token. kCorruption for malformed JSON or a
  // missing field; kUnsupported for a token type not starting "volmgr-".
  static StatusOr<ProtectorRecord> FromTokenJson(int token_id,
                                                 std::string_view json);
  std::string ToTokenJson() const;
};

// What the user supplied to unlock. Secrets typed at a prompt or read from a
// key file go in `secrets`; handlers decide whether one is theirs.
struct Credentials {
  std::vector<SecretBytes> secrets;
  std::vector<std::string> startup_key_files;
  std::optional<std::string> recovery_id;  // only this recovery protector
  // TPM protectors: the PIN of a TPM+PIN protector (never a passphrase: a
  // wrong PIN counts towards the TPM's dictionary-attack lockout), and the
  // TCTI to reach the TPM (configuration, not a secret; empty means
  // tpm::kDefaultTcti, device:/dev/tpmrm0).
  std::optional<SecretBytes> pin;
  std::string tcti;
  // Set once the TPM protectors were tried in this unlock, so a fallback to
  // other protectors does not ask the TPM again (and does not count a wrong
  // PIN twice).
  bool skip_tpm = false;
  // PKCS#11 protectors (customer keys): tried only when `use_pkcs11`, with
  // the token PIN; `pkcs11_module` overrides the module stored in the token
  // (empty: the stored one, else p11-kit's registered modules).
  bool use_pkcs11 = false;
  std::optional<SecretBytes> token_pin;
  std::string pkcs11_module;
  // volmgr-recover only: the availability key may be used, and data
  // recovery agent private keys (PEM files or pkcs11: URIs) are given.
  bool allow_availability_key = false;
  std::vector<std::string> agent_keys;
};

// What a new protector binds to.
struct Binding {
  std::string volume_uuid;
};

// Inputs for creating a protector; each kind reads the fields it needs.
struct CreateRequest {
  std::string description;
  const SecretBytes* passphrase = nullptr;  // passphrase kind
  // startup-key kind, and tpm kind for TPM+startup key: the file to write.
  std::string startup_key_file;
  crypto::Argon2Params argon2{};  // passphrase kind; 0s: calibrate
  // tpm kind: PCRs to seal to (empty: the default set, docs/SECURITY.md),
  // the new PIN for TPM+PIN, and the TCTI (empty: device:/dev/tpmrm0).
  std::vector<uint32_t> pcrs;
  const SecretBytes* pin = nullptr;
  std::string tcti;
  // tpm kind, reseal: re-create this protector in place (same ID,
  // description, creation time, PIN and startup-key requirement). A PIN
  // protector needs `pin`; a startup-key one reads its existing key from
  // `startup_key_files` (the file is not rewritten, its ID stays valid).
  const ProtectorRecord* reseal = nullptr;
  std::vector<std::string> startup_key_files;
  // pkcs11 kind: the key's RFC 7512 URI, the module (empty: the URI's
  // module-path, else p11-kit's registered modules), the token PIN, and the
  // role: "customer" (default) or "availability" (volmgr-recover only).
  std::string pkcs11_uri;
  std::string pkcs11_module;
  const SecretBytes* token_pin = nullptr;
  std::string role;
  // cert kind: the recovery agent's certificate (PEM or DER file).
  std::string certificate_file;
};

struct CreateResult {
  ProtectorRecord record;
  // A secret to show the user exactly once (the recovery password).
  std::optional<SecretBytes> shown_secret;
  // When set, the volume adds a LUKS2 keyslot that opens with this secret,
  // so stock cryptsetup can open the volume with it (recovery password).
  std::optional<SecretBytes> keyslot_passphrase;
};

class ProtectorHandler {
 public:
  virtual ~ProtectorHandler() = default;

  virtual std::string_view kind() const = 0;
  // Newest token layout version this handler writes and reads.
  virtual int version() const = 0;
  // A human name: "recovery password".
  virtual std::string_view display_name() const = 0;
  // The human name of one protector of this kind, where its parameters
  // decide it (a PKCS#11 protector is a customer key or the availability
  // key). The default: display_name().
  virtual std::string DisplayNameOf(const ProtectorRecord& record) const {
    return std::string(display_name());
  }
  // Checks the kind-specific parameters of a stored token.
  virtual Status Validate(const ProtectorRecord& record) const = 0;
  // True if `creds` holds something this protector could try.
  virtual bool CanTry(const ProtectorRecord& record,
                      const Credentials& creds) const = 0;
  // Recovers the VMK. kAuthFailed when the credentials do not open it;
  // kInvalidArgument when a credential is malformed (e.g. a recovery
  // password typo, naming the group).
  virtual StatusOr<SecretBytes> UnwrapVmk(const ProtectorRecord& record,
                                          const Credentials& creds,
                                          const Binding& binding) const = 0;
  // Checks, without writing anything, what Create(request) needs that can
  // fail for reasons outside volmgr (the TPM is reachable, the PIN is long
  // enough), so `format` can refuse before it touches the device. The
  // default accepts everything.
  virtual Status CheckCreate(const CreateRequest& request) const {
    return Status::Ok();
  }
  // Wraps `vmk` into a new protector with a fresh ID.
  virtual StatusOr<CreateResult> Create(const SecretBytes& vmk,
                                        const CreateRequest& request,
                                        const Binding& binding) const = 0;
  // One line for `status` / `protector list`, never secret.
  virtual std::string Describe(const ProtectorRecord& record) const = 0;
};

// The handler for `kind`, or nullptr if this build does not know it.
const ProtectorHandler* FindHandler(std::string_view kind);
// Every registered kind, sorted by kind name.
std::vector<std::string> RegisteredKinds();

// Registers a handler at static-initialisation time. The protector library
// is linked as an object library, so every registration is kept.
class HandlerRegistration {
 public:
  explicit HandlerRegistration(std::unique_ptr<ProtectorHandler> handler);
};

#define VOLMGR_REGISTER_PROTECTOR(Type)                  \
  static const ::volmgr::protectors::HandlerRegistration \
      volmgr_registration_##Type {                       \
    std::make_unique<Type>()                             \
  }

// Shared by handlers: the AES-GCM binding for a protector's wrapped VMK.
crypto::WrapContext VmkWrapContext(const ProtectorRecord& record,
                                   const Binding& binding);

// Shared by handlers: wraps `vmk` under `kek` into record.wrapped_vmk, and
// the reverse.
Status WrapVmkInto(ProtectorRecord& record, const SecretBytes& kek,
                   const SecretBytes& vmk, const Binding& binding);
StatusOr<SecretBytes> UnwrapVmkFrom(const ProtectorRecord& record,
                                    const SecretBytes& kek,
                                    const Binding& binding);

// Fresh record skeleton: new UUID, creation time now, given kind/version.
StatusOr<ProtectorRecord> NewRecord(std::string_view kind, int version,
                                    std::string description);

// The token's "keyslots": decimal strings "0".."31". kCorruption naming the
// element otherwise.
StatusOr<std::vector<int>> KeyslotsOf(const JsonReader& token);

// Reads record.params with type checks (base/json_reader.h); messages name
// "<kind> protector <id>: field "params.<key>"". Every handler reads its
// params through it, never with nlohmann's throwing value()/get<T>().
// REQUIRES: `record` outlives the reader.
JsonReader ParamsReader(const ProtectorRecord& record);

// params[key] when it is a string, else `fallback`; never throws. For reads
// of records that Validate() accepted (role, token label, certificate).
std::string StringParamOr(const ProtectorRecord& record, std::string_view key,
                          std::string fallback = "");

// params["salt"] decoded; kCorruption ("<kind> protector <id>: malformed
// parameters") unless it is base64 of exactly `size` bytes.
StatusOr<std::vector<uint8_t>> SaltParam(const ProtectorRecord& record,
                                         size_t size);

// Base64 helpers for binary params (salts).
std::string ToBase64(std::span<const uint8_t> bytes);
StatusOr<std::vector<uint8_t>> FromBase64(std::string_view text);

}  // namespace volmgr::protectors

#endif  // VOLMGR_PROTECTORS_PROTECTOR_H_
