// Recovery password text (volmgr/keys/recovery_password.h): whatever the
// user types or a --key-file holds. Properties: Parse never crashes; what
// it accepts formats back to a canonical text that parses to the same key;
// the per-group check agrees with Parse on canonical text.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/keys/recovery_password.h"

using volmgr::SecretBytes;
using volmgr::keys::RecoveryPassword;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = SecretBytes::CopyOf(std::span<const uint8_t>(data, size));
  if (!text.ok()) return 0;
  auto rp = RecoveryPassword::Parse(*text);
  // Interactive prompts check one group at a time.
  if (size >= volmgr::keys::kRecoveryPasswordGroupDigits) {
    (void)volmgr::keys::ValidateRecoveryPasswordGroup(
        1 + data[0] % 8,
        std::string_view(reinterpret_cast<const char*>(data + 1),
                         std::min<size_t>(size - 1, 6)));
  }
  if (!rp.ok()) {
    if (rp.status().message().empty()) volmgr::fuzz::Violation("empty error");
    return 0;
  }
  auto canonical = rp->Format();
  if (!canonical.ok()) volmgr::fuzz::Violation("Format failed");
  if (canonical->size() != volmgr::keys::kRecoveryPasswordFormattedSize) {
    volmgr::fuzz::Violation("canonical text has the wrong length");
  }
  auto again = RecoveryPassword::Parse(*canonical);
  if (!again.ok() || !again->key().ConstantTimeEquals(rp->key())) {
    volmgr::fuzz::Violation("canonical text does not parse to the same key");
  }
  const std::string_view c = canonical->RevealAsString();
  for (int g = 0; g < 8; ++g) {
    if (!volmgr::keys::ValidateRecoveryPasswordGroup(g + 1, c.substr(7 * g, 6))
             .ok()) {
      volmgr::fuzz::Violation("a group of a valid password is refused");
    }
  }
  return 0;
}
