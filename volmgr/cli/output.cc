#include "volmgr/cli/output.h"

#include <cmath>
#include <cstdio>

#include "volmgr/base/terminal_text.h"
#include "volmgr/protectors/customer_key_policy.h"
#include "volmgr/volume/conversion.h"

namespace volmgr::cli {

int ReportError(const Status& status, std::string_view program) {
  // Messages quote what the disk holds (token types, labels, file names):
  // escaped, keeping the line breaks of volmgr's own multi-line messages.
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()),
               program.data(),
               TerminalSafe(status.message(), /*keep_newlines=*/true).c_str());
  return ExitCodeFor(status.code());
}

std::string JsonText(const nlohmann::json& doc) {
  return doc.dump(2, ' ', /*ensure_ascii=*/false,
                  nlohmann::json::error_handler_t::replace);
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

nlohmann::json ProtectorJson(const protectors::ProtectorRecord& p) {
  const auto* h = protectors::FindHandler(p.kind);
  nlohmann::json ks = nlohmann::json::array();
  for (int s : p.keyslots) ks.push_back(s);
  return {{"id", p.id},
          {"kind", p.kind},
          {"version", p.version},
          {"created", p.created},
          {"description", p.description},
          {"keyslots", ks},
          {"summary", h ? h->Describe(p) : p.kind}};
}

namespace {

// "on", "off", or BitLocker's "suspended" while a clear key exists.
std::string ProtectionText(const volume::Volume& vol) {
  if (const auto& ck = vol.clear_key()) {
    if (ck->remaining == 0) return "suspended until resume";
    return "suspended (" + std::to_string(ck->remaining) + " unlock" +
           (ck->remaining == 1 ? "" : "s") + " left)";
  }
  return vol.protectors().empty() ? "off" : "on";
}

// The Customer Key policy (null when the volume has no customer key,
// availability key or data recovery agent).
nlohmann::json CustomerKeyPolicyJson(const volume::Volume& vol) {
  const auto p = protectors::EvaluatePolicy(vol.protectors());
  if (!p.applies()) return nullptr;
  return {{"customer_keys", p.customer_keys},
          {"customer_tokens", p.customer_tokens},
          {"redundant", p.redundant()},
          {"availability_keys", p.availability_keys},
          {"recovery_agents", p.agents},
          {"summary", p.Summary()}};
}

}  // namespace

nlohmann::json ConversionJson(const std::string& device,
                              const volume::ConversionStatus& s) {
  nlohmann::json j = {{"device", device},
                      {"volume", s.is_volume},
                      {"in_progress", s.in_progress}};
  if (!s.in_progress) return j;
  const bool enc = s.direction == volume::ConversionDirection::kEncrypt;
  j["direction"] = enc ? "encrypt" : "decrypt";
  j["state"] = s.running ? "running"
               : (s.crashed || s.interrupted || s.cleanup_pending)
                   ? "interrupted"
                   : "paused";
  j["cleanup_pending"] = s.cleanup_pending;
  j["resilience"] = s.resilience;
  j["header"] = s.header;
  j["uuid"] = s.uuid;
  j["percent"] = std::round(s.progress.percent() * 10) / 10;
  j["size_bytes"] = s.progress.size_bytes;
  j["done_bytes"] = s.progress.done_bytes;
  j["bytes_per_second"] = std::llround(s.progress.bytes_per_second);
  j["eta_seconds"] = s.running && s.progress.eta_seconds >= 0
                         ? nlohmann::json(std::llround(s.progress.eta_seconds))
                         : nlohmann::json(nullptr);
  j["summary"] = volume::ConversionStatusLine(s);
  return j;
}

namespace {

// In-place encryption in progress (issue 9): null when there is none.
nlohmann::json VolumeConversionJson(const volume::Volume& vol) {
  // Asked only when the header already read shows one: the conversion
  // engine loads the header again, writable, and a read-only `status` must
  // not give libcryptsetup that chance to rewrite a damaged copy.
  if (!vol.luks().ReencryptionInProgress()) return nullptr;
  auto s = volume::GetConversionStatus(vol.device(), vol.device());
  if (!s.ok() || !s->in_progress) return nullptr;
  return ConversionJson(vol.device(), *s);
}

}  // namespace

nlohmann::json VolumeJson(const volume::Volume& vol) {
  const auto& l = vol.luks();
  nlohmann::json prot = nlohmann::json::array();
  for (const auto& p : vol.protectors()) prot.push_back(ProtectorJson(p));
  auto mappings = vol.ActiveMappingNames();
  auto payload = l.payload_bytes();
  const auto& ck = vol.clear_key();
  nlohmann::json unlocks_left =
      nullptr;  // null: not suspended, or until resume
  if (ck && ck->remaining > 0) unlocks_left = ck->remaining;
  return {
      {"device", vol.device()},
      {"uuid", vol.uuid()},
      {"label", l.label()},
      {"format", "LUKS2"},
      {"encryption_method", l.cipher_spec()},
      {"key_bits", l.volume_key_bits()},
      {"sector_size", l.sector_size()},
      {"data_offset_bytes", l.data_offset_bytes()},
      {"size_bytes", payload.ok() ? *payload : 0},
      {"protection",
       ck ? "suspended" : (vol.protectors().empty() ? "off" : "on")},
      {"unlocks_left", unlocks_left},
      {"lock_state", mappings.empty() ? "locked" : "unlocked"},
      {"mappings", mappings},
      {"protectors", prot},
      {"customer_key_policy", CustomerKeyPolicyJson(vol)},
      {"warnings", vol.warnings()},
      {"conversion", VolumeConversionJson(vol)},
  };
}

std::string VolumeText(const volume::Volume& vol) {
  // Everything below but the numbers comes from the header, which whoever
  // wrote the disk chose: every value goes through TerminalSafe().
  const auto& l = vol.luks();
  auto payload = l.payload_bytes();
  auto mappings = vol.ActiveMappingNames();
  std::string out;
  auto row = [&](const std::string& k, const std::string& v) {
    out += "  " + k + std::string(k.size() < 20 ? 20 - k.size() : 1, ' ') +
           TerminalSafe(v) + "\n";
  };
  out += "Volume " + TerminalSafe(vol.device()) + "\n";
  row("UUID:", vol.uuid());
  if (!l.label().empty()) row("Label:", l.label());
  row("Size:", payload.ok() ? HumanBytes(*payload) : "unknown");
  row("Encryption method:",
      l.cipher_spec() + ", " + std::to_string(l.volume_key_bits()) +
          "-bit key, " + std::to_string(l.sector_size()) + "-byte sectors");
  row("Protection:", ProtectionText(vol));
  std::string lock = "locked";
  if (!mappings.empty()) {
    lock = "unlocked as";
    for (const auto& m : mappings) lock += " /dev/mapper/" + m;
  }
  row("Lock state:", lock);
  if (auto c =
          vol.luks().ReencryptionInProgress()
              ? volume::GetConversionStatus(vol.device(), vol.device())
              : StatusOr<volume::ConversionStatus>(volume::ConversionStatus{});
      c.ok() && c->in_progress) {
    row("Conversion:", volume::ConversionStatusLine(*c));
  }
  out += "  Key protectors:\n";
  for (const auto& p : vol.protectors()) {
    out += "    " + ProtectorLine(p);
    if (!p.description.empty()) {
      out += "  \"" + TerminalSafe(p.description) + "\"";
    }
    out += "\n";
  }
  const auto policy = protectors::EvaluatePolicy(vol.protectors());
  if (policy.applies()) row("Customer Key:", policy.Summary());
  for (const auto& w : vol.warnings()) {
    out += "  Warning: " + TerminalSafe(w) + "\n";
  }
  return out;
}

std::string ProtectorLine(const protectors::ProtectorRecord& p) {
  const auto* h = protectors::FindHandler(p.kind);
  return TerminalSafe(p.id) + "  " + TerminalSafe(h ? h->Describe(p) : p.kind);
}

}  // namespace volmgr::cli
