#include "volmgr/recover/bitlocker.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace volmgr::recover {
namespace {

struct CryptFree {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};
using CryptHandle = std::unique_ptr<crypt_device, CryptFree>;

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
Status CredentialError(int rc, const std::string& device, const char* what) {
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
  if (rc == -ENOTSUP) {
    return UnsupportedError(
        "libcryptsetup cannot unlock this BitLocker volume with that "
        "credential (TPM, smart card and network unlock protectors are not "
        "supported; use the recovery password)");
  }
  return ErrnoToStatus(-rc, std::string(what) + " " + device);
}

}  // namespace

bool IsBitlocker(const std::string& device) { return LoadBitlk(device).ok(); }

StatusOr<BitlockerInfo> InspectBitlocker(const std::string& device) {
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  BitlockerInfo info;
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

Status CheckBitlockerCredential(const std::string& device,
                                const SecretBytes& credential) {
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  const int size = crypt_get_volume_key_size(cd.get());
  if (size <= 0) return InternalError("BitLocker volume key size unknown");
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes fvek,
                          SecretBytes::Allocate(static_cast<size_t>(size)));
  size_t len = fvek.size();
  auto pass = credential.RevealAsString();
  int rc =
      crypt_volume_key_get(cd.get(), CRYPT_ANY_SLOT,
                           reinterpret_cast<char*>(fvek.RevealMutable().data()),
                           &len, pass.data(), pass.size());
  if (rc < 0) return CredentialError(rc, device, "unlocking");
  return Status::Ok();
}

Status OpenBitlocker(const std::string& device, const std::string& name,
                     const SecretBytes& credential) {
  // The node can exist while the kernel lacks the driver (ENODEV on open).
  const int ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (ctl >= 0) close(ctl);
  if (ctl < 0) {
    return UnavailableError(
        "device-mapper is not available here (/dev/mapper/control): "
        "BitLocker data is read through a dm-crypt mapping; `volmgr-recover "
        "bitlk-dump --key-file` still checks the credential offline");
  }
  VOLMGR_ASSIGN_OR_RETURN(CryptHandle cd, LoadBitlk(device));
  auto pass = credential.RevealAsString();
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
  if (rc < 0) return CredentialError(rc, device, "activating");
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
