#include "volmgr/recover/bitlocker.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace volmgr::recover {
namespace {

struct CryptFree {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};
using CryptHandle = std::unique_ptr<crypt_device, CryptFree>;

// libcryptsetup's log of one handle, captured instead of printed: its
// error lines (the reason an activation is refused) and its normal output
// (crypt_dump). Installed for the handle's lifetime.
struct LogCapture {
  std::string errors;
  std::string normal;
  static void Callback(int level, const char* msg, void* usr) {
    auto* self = static_cast<LogCapture*>(usr);
    if (msg == nullptr) return;
    if (level == CRYPT_LOG_ERROR) {
      self->errors += msg;
    } else if (level == CRYPT_LOG_NORMAL) {
      self->normal += msg;
    }
  }
  void Attach(crypt_device* cd) { crypt_set_log_callback(cd, Callback, this); }
  // The last error line, without its newline.
  std::string LastError() const {
    std::string e = errors;
    while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
    const size_t nl = e.rfind('\n');
    return nl == std::string::npos ? e : e.substr(nl + 1);
  }
};

// The VMK protections crypt_dump lists ("\tProtection: \tVMK protected
// with passphrase"), in our words. Only the fixed strings of libcryptsetup
// 2.6 lib/bitlk/bitlk.c get_vmk_protection_string() are recognised.
std::vector<std::string> ProtectorsFromDump(const std::string& dump) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"VMK protected with clear key", "clear key"},
      {"VMK protected with TPM and PIN", "TPM+PIN"},
      {"VMK protected with TPM", "TPM"},
      {"VMK protected with startup key", "startup key"},
      {"VMK protected with recovery passphrase", "recovery password"},
      {"VMK protected with passphrase", "password"},
      {"VMK protected with smart card", "smart card"},
      {"VMK with unknown protection", "unknown"},
  };
  std::vector<std::string> out;
  const std::string tag = "\tProtection: \t";
  size_t pos = 0;
  while ((pos = dump.find(tag, pos)) != std::string::npos) {
    pos += tag.size();
    const size_t end = dump.find('\n', pos);
    const std::string v = dump.substr(
        pos, end == std::string::npos ? std::string::npos : end - pos);
    for (const auto& [text, name] : kNames) {
      if (v == text) {
        out.push_back(name);
        break;
      }
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

bool Has(const std::vector<std::string>& v, const char* what) {
  return std::find(v.begin(), v.end(), what) != v.end();
}

// The answer to ENOTSUP from a credential check: only protectors
// libcryptsetup cannot use were tried.
Status UnusableProtectorsError(const std::string& device,
                               const std::vector<std::string>& protectors) {
  std::string advice =
      Has(protectors, "recovery password")
          ? "give its recovery password (Windows: `manage-bde -protectors "
            "-get C:`)"
          : "it has no recovery password: add one in Windows (`manage-bde "
            "-protectors -add C: -RecoveryPassword`)";
  return UnsupportedError(
      "libcryptsetup cannot unlock the BitLocker volume " + device +
      " with that credential: its protectors are " + Join(protectors) +
      ", and TPM, TPM+PIN, smart card and clear-key protectors cannot be "
      "used here; " +
      advice);
}

StatusOr<CryptHandle> LoadBitlk(const std::string& device) {
  if (access(device.c_str(), R_OK) != 0) {
    return ErrnoToStatus(errno, "opening " + device);
  }
  crypt_device* raw = nullptr;
  int rc = crypt_init(&raw, device.c_str());
  if (rc < 0) return ErrnoToStatus(-rc, "opening " + device);
  CryptHandle cd(raw);
  rc = crypt_load(cd.get(), CRYPT_BITLK, nullptr);
  if (rc < 0) {
    return FailedPreconditionError(device +
                                   " holds no BitLocker volume that "
                                   "libcryptsetup can read");
  }
  return cd;
}

// libcryptsetup's answers to a credential, as a Status.
Status CredentialError(int rc, const std::string& device, const char* what,
                       const std::vector<std::string>& protectors) {
  // libcryptsetup 2.6 answers -EPERM for a wrong password but -EINVAL for a
  // well-formed recovery password that opens no VMK (seen with another
  // volume's recovery password): both mean "wrong credential" here, as the
  // volume itself loaded fine.
  if (rc == -EPERM || rc == -EINVAL) {
    return AuthFailedError(
        "the password, recovery password or startup key does not open the "
        "BitLocker volume " +
        device);
  }
  if (rc == -ENOTSUP) return UnusableProtectorsError(device, protectors);
  return ErrnoToStatus(-rc, std::string(what) + " " + device);
}

}  // namespace

bool IsBitlocker(const std::string& device) { return LoadBitlk(device).ok(); }

StatusOr<BitlockerInfo> InspectBitlocker(const std::string& device,
                                         bool probe_activation) {
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  LogCapture log;
  log.Attach(cd.get());
  BitlockerInfo info;
  if (crypt_dump(cd.get()) == 0) {
    info.protectors = ProtectorsFromDump(log.normal);
  }
  // A clear key always fails libcryptsetup's activation check, before any
  // KDF runs: then the probe is free, and its reason is wanted.
  if (probe_activation || Has(info.protectors, "clear key")) {
    // libcryptsetup checks whether it would activate the volume at all
    // (lib/bitlk/bitlk.c _activate_check: state, encryption type, clear
    // key) before it tries the passphrase; a test activation without a
    // mapping asks exactly that. An empty passphrase opens nothing, so any
    // other answer (-EPERM) means: activatable with the right credential.
    // It costs one BitLocker KDF when the check passes.
    log.errors.clear();
    const char empty[1] = {0};
    const int rc = crypt_activate_by_passphrase(cd.get(), nullptr,
                                                CRYPT_ANY_SLOT, empty, 0, 0);
    if (rc == -ENOTSUP && !log.errors.empty()) {
      info.activatable = false;
      info.activation_problem = log.LastError();
    }
  }
  if (const char* u = crypt_get_uuid(cd.get())) info.guid = u;
  const char* c = crypt_get_cipher(cd.get());
  const char* m = crypt_get_cipher_mode(cd.get());
  info.cipher = std::string(c ? c : "?") + "-" + (m ? m : "?");
  info.volume_key_bits = crypt_get_volume_key_size(cd.get()) * 8;
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end > 0) info.device_bytes = static_cast<uint64_t>(end);
    close(fd);
  }
  return info;
}

Status NotActivatableError(const std::string& device,
                           const BitlockerInfo& info) {
  const std::string stock = info.activation_problem.empty()
                                ? ""
                                : "; stock cryptsetup refuses it too: \"" +
                                      info.activation_problem + "\"";
  if (info.clear_key_only()) {
    return UnsupportedError(
        "the BitLocker volume " + device +
        " is protected only by a clear key (BitLocker protection is "
        "suspended, or Windows is decrypting it): there is no password, "
        "recovery password or startup key to give, and libcryptsetup "
        "cannot activate such a volume" +
        stock +
        ". In Windows, resume the protection (`manage-bde -protectors "
        "-enable X:`) or let the decryption finish (`manage-bde -status`)");
  }
  return UnsupportedError(
      "the BitLocker volume " + device +
      " cannot be activated: it is not a fully encrypted volume "
      "(encrypt-on-write, or encryption or decryption in progress), and "
      "libcryptsetup activates only fully encrypted ones" +
      stock +
      ". In Windows, let the conversion finish (`manage-bde -status`); an "
      "encrypt-on-write (used space only) volume must be encrypted in full "
      "before Linux can read it");
}

namespace {

// libcryptsetup's activation check refused the volume (lib/bitlk/bitlk.c
// _activate_check; its sentences all say "cannot be activated" or "is not
// supported").
bool ActivationRefused(int rc, const LogCapture& log) {
  if (rc != -ENOTSUP) return false;
  const std::string e = log.LastError();
  return e.find("cannot be activated") != std::string::npos ||
         e.find("partially decrypted") != std::string::npos;
}

// A test activation (no mapping) with `credential`, as `cryptsetup open
// --test-passphrase`: the activation check first (no KDF when it refuses),
// then the credential (one KDF per VMK it tries).
StatusOr<CredentialCheck> TestActivation(crypt_device* cd, LogCapture& log,
                                         const std::string& device,
                                         const SecretBytes& credential) {
  auto pass = credential.RevealAsString();
  log.errors.clear();
  int rc = crypt_activate_by_passphrase(cd, nullptr, CRYPT_ANY_SLOT,
                                        pass.data(), pass.size(), 0);
  if (rc >= 0) return CredentialCheck{};
  if (ActivationRefused(rc, log)) {
    CredentialCheck c{false, log.LastError()};
    // Is the credential right all the same? crypt_volume_key_get skips the
    // activation check.
    const int size = crypt_get_volume_key_size(cd);
    if (size <= 0) return InternalError("BitLocker volume key size unknown");
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek,
                            SecretBytes::Allocate(static_cast<size_t>(size)));
    size_t len = fvek.size();
    rc = crypt_volume_key_get(
        cd, CRYPT_ANY_SLOT,
        reinterpret_cast<char*>(fvek.RevealMutable().data()), &len, pass.data(),
        pass.size());
    if (rc >= 0) return c;
  }
  if (rc == -ENOTSUP) {
    VOLMGR_ASSIGN_OR_RETURN(BitlockerInfo info,
                            InspectBitlocker(device, false));
    return CredentialError(rc, device, "unlocking", info.protectors);
  }
  return CredentialError(rc, device, "unlocking", {});
}

}  // namespace

StatusOr<CredentialCheck> CheckBitlockerCredential(
    const std::string& device, const SecretBytes& credential) {
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  LogCapture log;
  log.Attach(cd.get());
  return TestActivation(cd.get(), log, device, credential);
}

Status OpenBitlocker(const std::string& device, const std::string& name,
                     const SecretBytes& credential) {
  VOLMGR_ASSIGN_OR_RETURN(BitlockerInfo info, InspectBitlocker(device, false));
  if (!info.activatable || info.clear_key_only()) {
    return NotActivatableError(device, info);
  }
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  LogCapture log;
  log.Attach(cd.get());
  // The node can exist while the kernel lacks the driver (ENODEV on open).
  const int ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (ctl >= 0) close(ctl);
  if (ctl < 0) {
    // No mapping can be made; the answer about the volume and the
    // credential can still be given (a volume libcryptsetup will not
    // activate is that, not "no device-mapper").
    VOLMGR_ASSIGN_OR_RETURN(CredentialCheck c,
                            TestActivation(cd.get(), log, device, credential));
    if (!c.activatable) {
      info.activatable = false;
      info.activation_problem = c.activation_problem;
      return NotActivatableError(device, info);
    }
    return UnavailableError(
        "device-mapper is not available here (/dev/mapper/control): "
        "BitLocker data is read through a dm-crypt mapping; `volmgr-recover "
        "bitlk-dump --key-file` still checks the credential offline");
  }
  auto pass = credential.RevealAsString();
  log.errors.clear();
  int rc = crypt_activate_by_passphrase(cd.get(), name.c_str(), CRYPT_ANY_SLOT,
                                        pass.data(), pass.size(),
                                        CRYPT_ACTIVATE_READONLY);
  if (rc == -EEXIST) {
    return AlreadyExistsError("a mapping named " + name + " exists");
  }
  if (rc == -ENOENT || rc == -ENODEV) {
    return UnavailableError("the kernel has no dm-crypt (" +
                            std::string(rc == -ENOENT ? "ENOENT" : "ENODEV") +
                            ") to map " + device);
  }
  if (ActivationRefused(rc, log)) {
    info.activatable = false;
    info.activation_problem = log.LastError();
    return NotActivatableError(device, info);
  }
  if (rc < 0) {
    Status st = CredentialError(rc, device, "activating", info.protectors);
    if (log.LastError().empty() || st.code() == StatusCode::kAuthFailed) {
      return st;
    }
    return Status(st.code(),
                  st.message() + " (libcryptsetup: " + log.LastError() + ")",
                  st.foreign());
  }
  return Status::Ok();
}

Status CloseBitlocker(const std::string& name) {
  crypt_device* raw = nullptr;
  int rc = crypt_init_by_name(&raw, name.c_str());
  if (rc < 0) return NotFoundError("no mapping named " + name);
  CryptHandle cd(raw);
  if (crypt_get_type(cd.get()) == nullptr ||
      std::string(crypt_get_type(cd.get())) != CRYPT_BITLK) {
    return FailedPreconditionError(name + " is not a BitLocker mapping");
  }
  rc = crypt_deactivate(cd.get(), name.c_str());
  if (rc == -EBUSY) return BusyError(name + " is in use (mounted?)");
  if (rc < 0) return ErrnoToStatus(-rc, "closing " + name);
  return Status::Ok();
}

}  // namespace volmgr::recover
