// JsonReader: typed, non-throwing reads of untrusted JSON.
//
// Everything volmgr parses from a disk or a file (LUKS2 tokens, a file
// store's protector records, state files) is hostile. nlohmann's
// `value(key, default)` and `get<T>()` throw `type_error` when a field has
// another type than the caller assumed, and an exception that reaches main()
// aborts the process. Read such JSON only through this class: every accessor
// checks the type (and range) and returns kCorruption with a message that
// names the object, the field's path and the type wanted:
//
//   token 3 (volmgr-passphrase): field "params.kdf" must be a string, not a
//   number
//
// The reader holds a reference to the JSON value: the value must outlive it
// (and the readers Object() returns).
//
// Thread-safety: const methods may run concurrently on distinct readers.
#ifndef VOLMGR_BASE_JSON_READER_H_
#define VOLMGR_BASE_JSON_READER_H_

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "volmgr/base/status.h"

namespace volmgr {

class JsonReader {
 public:
  // Parses `text` without exceptions; kCorruption "<what> is not valid JSON"
  // or "<what> is not a JSON object". Nothing is read into `out` otherwise.
  static Status ParseObject(std::string_view text, std::string_view what,
                            nlohmann::json& out);

  // `what` names the object in messages ("token 3 (volmgr-tpm)"); `path` is
  // the object's own path inside it ("params"), empty for the top level.
  // REQUIRES: `object` outlives the reader.
  JsonReader(const nlohmann::json& object, std::string what,
             std::string path = "");

  // kCorruption unless the value the reader was made for is an object.
  Status CheckObject() const;

  // True if the field is present (with any type).
  bool Has(std::string_view key) const;

  // Required fields: kCorruption when absent or of another type.
  StatusOr<std::string> String(std::string_view key) const;
  StatusOr<bool> Bool(std::string_view key) const;
  StatusOr<uint64_t> Unsigned(
      std::string_view key,
      uint64_t max = std::numeric_limits<uint64_t>::max()) const;
  StatusOr<int64_t> Integer(std::string_view key, int64_t min,
                            int64_t max) const;
  // A nested object, read with the same `what` and a longer path.
  StatusOr<JsonReader> Object(std::string_view key) const;
  // An array; its elements are checked by the caller (ArrayElementError).
  StatusOr<const nlohmann::json*> Array(std::string_view key) const;

  // Optional fields: `fallback` when absent (or null); kCorruption when
  // present with another type, never the fallback.
  StatusOr<std::string> OptionalString(std::string_view key,
                                       std::string fallback = "") const;
  StatusOr<bool> OptionalBool(std::string_view key, bool fallback) const;
  StatusOr<uint64_t> OptionalUnsigned(
      std::string_view key, uint64_t fallback,
      uint64_t max = std::numeric_limits<uint64_t>::max()) const;

  // kCorruption "<what>: field "<path.key>" <problem>", for checks of a
  // field's content the accessors cannot make ("is not base64").
  Status FieldError(std::string_view key, std::string_view problem) const;
  // The same for element `index` of array `key` ("keyslots[2]").
  Status ArrayElementError(std::string_view key, size_t index,
                           std::string_view problem) const;

  const std::string& what() const { return what_; }

 private:
  // The field, or nullptr when absent or null.
  const nlohmann::json* Find(std::string_view key) const;
  std::string FieldPath(std::string_view key) const;
  Status WrongType(std::string_view key, std::string_view wanted,
                   const nlohmann::json* found) const;

  const nlohmann::json* object_;
  std::string what_;
  std::string path_;
};

}  // namespace volmgr

#endif  // VOLMGR_BASE_JSON_READER_H_
