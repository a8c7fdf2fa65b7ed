// /etc/volmgr/volumes.conf (volmgr/boot/volumes_conf.h). Root writes it,
// but `volmgr unlock --probe` reads it for every disk udev sees: it must
// never crash. Properties: an error names the origin; every entry has a
// valid mapping name; derived names are valid mapping names.
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/boot/volumes_conf.h"

using volmgr::boot::VolumesConf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto conf = VolumesConf::Parse(text, "fuzz.conf");
  // The label of a disk is as hostile as the file: derive a name from it.
  const std::string derived = volmgr::boot::DerivedMappingName(
      "5d1c2a10-8f3e-4c55-9e0b-3a1f7c6d2e44", text.substr(0, 200));
  if (!volmgr::boot::IsValidMappingName(derived)) {
    volmgr::fuzz::Violation("DerivedMappingName gave an invalid name");
  }
  if (!conf.ok()) {
    if (conf.status().message().rfind("fuzz.conf", 0) != 0) {
      volmgr::fuzz::Violation("error does not name the file: " +
                              conf.status().message());
    }
    return 0;
  }
  for (const auto& e : conf->entries()) {
    if (!volmgr::boot::IsValidMappingName(e.name)) {
      volmgr::fuzz::Violation("accepted an invalid mapping name");
    }
    (void)volmgr::boot::EffectiveOptions(*conf, &e);
  }
  (void)volmgr::boot::EffectiveOptions(*conf, nullptr);
  (void)conf->Find("5d1c2a10-8f3e-4c55-9e0b-3a1f7c6d2e44", "/nonexistent");
  return 0;
}
