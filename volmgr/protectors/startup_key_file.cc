#include "volmgr/protectors/startup_key_file.h"

#include <sys/stat.h>

#include <cstring>
#include <string_view>

#include "volmgr/base/secret_io.h"

namespace volmgr::protectors {
namespace {

constexpr std::string_view kMagic = "VMGRSK01";
constexpr size_t kKeyOffset = 24;

}  // namespace

StatusOr<SecretBytes> NewStartupKeyFile(const Uuid& id) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes file,
                          SecretBytes::Allocate(kStartupKeyFileBytes));
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes key,
                          SecretBytes::Random(kStartupKeyBytes));
  auto f = file.RevealMutable();
  std::memcpy(f.data(), kMagic.data(), kMagic.size());
  std::memcpy(f.data() + 8, id.bytes().data(), 16);
  std::memcpy(f.data() + kKeyOffset, key.Reveal().data(), kStartupKeyBytes);
  return file;
}

StatusOr<SecretBytes> StartupKeyOf(const SecretBytes& file) {
  return file.Slice(kKeyOffset, kStartupKeyBytes);
}

StatusOr<std::string> WriteStartupKeyFile(const std::string& path,
                                          const std::string& id,
                                          const SecretBytes& file) {
  std::string out = path;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    out += "/" + id + ".BEK";
  }
  VOLMGR_RETURN_IF_ERROR(WriteNewSecretFile(out, file, 0400));
  return out;
}

StatusOr<SecretBytes> ReadStartupKey(const std::vector<std::string>& paths,
                                     const Uuid& id,
                                     const std::string& protector_id) {
  Status last = NotFoundError("no startup key file given");
  for (const std::string& path : paths) {
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes file, ReadSecretFile(path, 4096));
    auto bytes = file.Reveal();
    if (bytes.size() != kStartupKeyFileBytes ||
        std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
      return InvalidArgumentError(path + " is not a volmgr startup key");
    }
    if (std::memcmp(bytes.data() + 8, id.bytes().data(), 16) != 0) {
      last = NotFoundError(path +
                           " is the startup key of another protector, "
                           "not " +
                           protector_id);
      continue;
    }
    return file;
  }
  return last;
}

}  // namespace volmgr::protectors
