#include "volmgr/base/json_reader.h"

#include <utility>

namespace volmgr {
namespace {

// nlohmann's type names, with the kinds of number told apart: "must be an
// unsigned integer, not a negative integer" says more than "not a number".
std::string TypeName(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return "an unsigned integer";
  if (j.is_number_integer()) return "a negative integer";
  if (j.is_number_float()) return "a fractional number";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  if (j.is_null()) return "null";
  return "a binary value";
}

}  // namespace

Status JsonReader::ParseObject(std::string_view text, std::string_view what,
                               nlohmann::json& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return CorruptionError(std::string(what) + " is not valid JSON");
  }
  if (!j.is_object()) {
    return CorruptionError(std::string(what) + " is not a JSON object (it is " +
                           TypeName(j) + ")");
  }
  out = std::move(j);
  return Status::Ok();
}

JsonReader::JsonReader(const nlohmann::json& object, std::string what,
                       std::string path)
    : object_(&object), what_(std::move(what)), path_(std::move(path)) {}

Status JsonReader::CheckObject() const {
  if (object_->is_object()) return Status::Ok();
  if (path_.empty()) {
    return CorruptionError(what_ + " is not a JSON object (it is " +
                           TypeName(*object_) + ")");
  }
  return CorruptionError(what_ + ": field \"" + path_ +
                         "\" must be an object, not " + TypeName(*object_));
}

const nlohmann::json* JsonReader::Find(std::string_view key) const {
  if (!object_->is_object()) return nullptr;
  auto it = object_->find(std::string(key));
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonReader::Has(std::string_view key) const {
  return object_->is_object() && object_->contains(std::string(key));
}

std::string JsonReader::FieldPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Status JsonReader::FieldError(std::string_view key,
                              std::string_view problem) const {
  return CorruptionError(what_ + ": field \"" + FieldPath(key) + "\" " +
                         std::string(problem));
}

Status JsonReader::ArrayElementError(std::string_view key, size_t index,
                                     std::string_view problem) const {
  return CorruptionError(what_ + ": field \"" + FieldPath(key) + "[" +
                         std::to_string(index) + "]\" " + std::string(problem));
}

Status JsonReader::WrongType(std::string_view key, std::string_view wanted,
                             const nlohmann::json* found) const {
  if (!object_->is_object()) return CheckObject();
  if (found == nullptr) {
    return FieldError(key,
                      "is missing (it must be " + std::string(wanted) + ")");
  }
  return FieldError(
      key, "must be " + std::string(wanted) + ", not " + TypeName(*found));
}

StatusOr<std::string> JsonReader::String(std::string_view key) const {
  const nlohmann::json* f = Find(key);
  if (f == nullptr || !f->is_string()) return WrongType(key, "a string", f);
  return f->get_ref<const std::string&>();
}

StatusOr<bool> JsonReader::Bool(std::string_view key) const {
  const nlohmann::json* f = Find(key);
  if (f == nullptr || !f->is_boolean()) return WrongType(key, "a boolean", f);
  return f->get<bool>();
}

StatusOr<uint64_t> JsonReader::Unsigned(std::string_view key,
                                        uint64_t max) const {
  const nlohmann::json* f = Find(key);
  const std::string wanted =
      max == std::numeric_limits<uint64_t>::max()
          ? std::string("an unsigned integer")
          : "an unsigned integer up to " + std::to_string(max);
  if (f == nullptr || !f->is_number_unsigned())
    return WrongType(key, wanted, f);
  const uint64_t v = f->get<uint64_t>();
  if (v > max)
    return FieldError(
        key, "is " + std::to_string(v) + ", more than " + std::to_string(max));
  return v;
}

StatusOr<int64_t> JsonReader::Integer(std::string_view key, int64_t min,
                                      int64_t max) const {
  const nlohmann::json* f = Find(key);
  const std::string wanted =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (f == nullptr || !f->is_number_integer()) return WrongType(key, wanted, f);
  if (f->is_number_unsigned()) {
    const uint64_t u = f->get<uint64_t>();
    if (max < 0 || u > static_cast<uint64_t>(max)) {
      return FieldError(key, "is " + std::to_string(u) + ", not " + wanted);
    }
    return static_cast<int64_t>(u);
  }
  const int64_t v = f->get<int64_t>();
  if (v < min || v > max) {
    return FieldError(key, "is " + std::to_string(v) + ", not " + wanted);
  }
  return v;
}

StatusOr<JsonReader> JsonReader::Object(std::string_view key) const {
  const nlohmann::json* f = Find(key);
  if (f == nullptr || !f->is_object()) return WrongType(key, "an object", f);
  return JsonReader(*f, what_, FieldPath(key));
}

StatusOr<const nlohmann::json*> JsonReader::Array(std::string_view key) const {
  const nlohmann::json* f = Find(key);
  if (f == nullptr || !f->is_array()) return WrongType(key, "an array", f);
  return f;
}

StatusOr<std::string> JsonReader::OptionalString(std::string_view key,
                                                 std::string fallback) const {
  if (Find(key) == nullptr) {
    if (!object_->is_object()) return CheckObject();
    return fallback;
  }
  return String(key);
}

StatusOr<bool> JsonReader::OptionalBool(std::string_view key,
                                        bool fallback) const {
  if (Find(key) == nullptr) {
    if (!object_->is_object()) return CheckObject();
    return fallback;
  }
  return Bool(key);
}

StatusOr<uint64_t> JsonReader::OptionalUnsigned(std::string_view key,
                                                uint64_t fallback,
                                                uint64_t max) const {
  if (Find(key) == nullptr) {
    if (!object_->is_object()) return CheckObject();
    return fallback;
  }
  return Unsigned(key, max);
}

}  // namespace volmgr
