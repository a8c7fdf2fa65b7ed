#include "volmgr/protectors/protector.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

#include "volmgr/base/clock.h"
#include "volmgr/base/uuid.h"

namespace volmgr::protectors {
namespace {

using Json = nlohmann::json;

std::map<std::string, std::unique_ptr<ProtectorHandler>, std::less<>>&
Registry() {
  static auto* registry =
      new std::map<std::string, std::unique_ptr<ProtectorHandler>,
                   std::less<>>();
  return *registry;
}

}  // namespace

HandlerRegistration::HandlerRegistration(
    std::unique_ptr<ProtectorHandler> handler) {
  std::string kind(handler->kind());
  Registry()[kind] = std::move(handler);
}

const ProtectorHandler* FindHandler(std::string_view kind) {
  auto it = Registry().find(kind);
  return it == Registry().end() ? nullptr : it->second.get();
}

std::vector<std::string> RegisteredKinds() {
  std::vector<std::string> kinds;
  for (const auto& [k, h] : Registry()) kinds.push_back(k);
  return kinds;
}

StatusOr<ProtectorRecord> ProtectorRecord::FromTokenJson(
    int token_id, std::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return CorruptionError("token " + std::to_string(token_id) +
                           " is not valid JSON");
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    return CorruptionError("token " + std::to_string(token_id) +
                           " has no type");
  }
  const std::string& t = type->get_ref<const std::string&>();
  if (t.rfind(kTokenTypePrefix, 0) != 0) {
    return UnsupportedError("token " + std::to_string(token_id) + " (" + t +
                            ") is not a volmgr token");
  }
  ProtectorRecord r;
  r.token_id = token_id;
  r.kind = t.substr(kTokenTypePrefix.size());
  auto bad = [&](std::string_view field) {
    return CorruptionError("volmgr token " + std::to_string(token_id) + " (" +
                           t + "): field \"" + std::string(field) +
                           "\" is missing or has the wrong type");
  };
  auto get_string = [&](const char* key, std::string& out) -> bool {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer()) return bad("version");
  r.version = v->get<int>();
  if (!get_string("id", r.id)) return bad("id");
  if (!get_string("created", r.created)) return bad("created");
  if (!get_string("wrapped_vmk", r.wrapped_vmk)) return bad("wrapped_vmk");
  get_string("description", r.description);
  auto ks = j.find("keyslots");
  if (ks == j.end() || !ks->is_array()) return bad("keyslots");
  for (const auto& s : *ks) {
    if (!s.is_string()) return bad("keyslots");
    try {
      r.keyslots.push_back(std::stoi(s.get<std::string>()));
    } catch (...) {
      return bad("keyslots");
    }
  }
  auto p = j.find("params");
  if (p == j.end() || !p->is_object()) return bad("params");
  r.params = *p;
  return r;
}

std::string ProtectorRecord::ToTokenJson() const {
  Json ks = Json::array();
  for (int s : keyslots) ks.push_back(std::to_string(s));
  Json j = {
      {"type", std::string(kTokenTypePrefix) + kind},
      {"keyslots", ks},
      {"version", version},
      {"id", id},
      {"created", created},
      {"description", description},
      {"params", params},
      {"wrapped_vmk", wrapped_vmk},
  };
  return j.dump();
}

crypto::WrapContext VmkWrapContext(const ProtectorRecord& record,
                                   const Binding& binding) {
  crypto::WrapContext ctx;
  ctx.purpose = "vmk";
  ctx.volume_uuid = binding.volume_uuid;
  ctx.protector_id = record.id;
  ctx.protector_kind = record.kind;
  return ctx;
}

Status WrapVmkInto(ProtectorRecord& record, const SecretBytes& kek,
                   const SecretBytes& vmk, const Binding& binding) {
  VOLMGR_ASSIGN_OR_RETURN(
      crypto::WrappedKey w,
      crypto::WrapKey(kek, vmk, VmkWrapContext(record, binding)));
  record.wrapped_vmk = w.ToBase64();
  return Status::Ok();
}

StatusOr<SecretBytes> UnwrapVmkFrom(const ProtectorRecord& record,
                                    const SecretBytes& kek,
                                    const Binding& binding) {
  auto w = crypto::WrappedKey::FromBase64(record.wrapped_vmk);
  if (!w.ok()) {
    return CorruptionError("protector " + record.id +
                           ": wrapped VMK is malformed (" +
                           w.status().message() + ")");
  }
  auto vmk = crypto::UnwrapKey(kek, *w, VmkWrapContext(record, binding));
  if (!vmk.ok() && vmk.status().code() == StatusCode::kCorruption) {
    return CorruptionError("protector " + record.id +
                           ": wrapped VMK is malformed (" +
                           vmk.status().message() + ")");
  }
  return vmk;
}

StatusOr<ProtectorRecord> NewRecord(std::string_view kind, int version,
                                    std::string description) {
  VOLMGR_ASSIGN_OR_RETURN(Uuid id, Uuid::Random());
  ProtectorRecord r;
  r.kind = std::string(kind);
  r.version = version;
  r.id = id.ToString();
  r.created = NowRfc3339Utc();
  r.description = std::move(description);
  return r;
}

StatusOr<std::vector<uint8_t>> SaltParam(const ProtectorRecord& record,
                                         size_t size) {
  Status bad = CorruptionError(record.kind + " protector " + record.id +
                               ": malformed parameters");
  auto it = record.params.find("salt");
  if (it == record.params.end() || !it->is_string()) return bad;
  auto salt = FromBase64(it->get<std::string>());
  if (!salt.ok() || salt->size() != size) return bad;
  return salt;
}

std::string ToBase64(std::span<const uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

StatusOr<std::vector<uint8_t>> FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) return CorruptionError("bad base64 length");
  std::vector<uint8_t> out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return CorruptionError("bad base64");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace volmgr::protectors
