#include "volmgr/protectors/protector.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>

#include "volmgr/base/clock.h"
#include "volmgr/base/json_reader.h"
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
  const std::string name = "token " + std::to_string(token_id);
  Json j;
  VOLMGR_RETURN_IF_ERROR(JsonReader::ParseObject(json, name, j));
  auto type = JsonReader(j, name).String("type");
  if (!type.ok()) {
    return CorruptionError(name + " has no type (" + type.status().message() +
                           ")");
  }
  const std::string& t = *type;
  if (t.rfind(kTokenTypePrefix, 0) != 0) {
    return UnsupportedError(name + " (" + t + ") is not a volmgr token");
  }
  const JsonReader r(
      j, "volmgr token " + std::to_string(token_id) + " (" + t + ")");
  ProtectorRecord rec;
  rec.token_id = token_id;
  rec.kind = t.substr(kTokenTypePrefix.size());
  VOLMGR_ASSIGN_OR_RETURN(
      int64_t version,
      r.Integer("version", 0, std::numeric_limits<int>::max()));
  rec.version = static_cast<int>(version);
  VOLMGR_ASSIGN_OR_RETURN(rec.id, r.String("id"));
  VOLMGR_ASSIGN_OR_RETURN(rec.created, r.String("created"));
  VOLMGR_ASSIGN_OR_RETURN(rec.wrapped_vmk, r.String("wrapped_vmk"));
  VOLMGR_ASSIGN_OR_RETURN(rec.description, r.OptionalString("description"));
  VOLMGR_ASSIGN_OR_RETURN(rec.keyslots, KeyslotsOf(r));
  VOLMGR_RETURN_IF_ERROR(r.Object("params").status());
  rec.params = j["params"];
  return rec;
}

StatusOr<std::vector<int>> KeyslotsOf(const JsonReader& token) {
  VOLMGR_ASSIGN_OR_RETURN(const Json* ks, token.Array("keyslots"));
  std::vector<int> out;
  for (size_t i = 0; i < ks->size(); ++i) {
    const Json& s = (*ks)[i];
    // LUKS2 writes keyslot numbers as decimal strings; there are 32.
    const std::string* text = s.get_ptr<const std::string*>();
    if (text == nullptr || text->empty() || text->size() > 2 ||
        !std::all_of(text->begin(), text->end(),
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(*text) > 31) {
      return token.ArrayElementError("keyslots", i,
                                     "must be a keyslot number as a string");
    }
    out.push_back(std::stoi(*text));
  }
  return out;
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
  // A description from argv need not be valid UTF-8 (dump() would throw).
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
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

JsonReader ParamsReader(const ProtectorRecord& record) {
  return JsonReader(record.params, record.kind + " protector " + record.id,
                    "params");
}

std::string StringParamOr(const ProtectorRecord& record, std::string_view key,
                          std::string fallback) {
  auto v = ParamsReader(record).OptionalString(key);
  return v.ok() && !v->empty() ? *v : fallback;
}

StatusOr<std::vector<uint8_t>> SaltParam(const ProtectorRecord& record,
                                         size_t size) {
  const JsonReader params = ParamsReader(record);
  VOLMGR_ASSIGN_OR_RETURN(std::string text, params.String("salt"));
  auto salt = FromBase64(text);
  if (!salt.ok() || salt->size() != size) {
    return params.FieldError(
        "salt", "must be base64 of " + std::to_string(size) + " bytes");
  }
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
