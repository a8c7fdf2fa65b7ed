// Test helper: a reader for NIST CAVP ".rsp"-style vector files.
//
// The format, as in NIST's files: '#' starts a comment line; "[Name = v]"
// lines set section attributes that apply to the records after them, and a
// bare "[NAME]" (CAVP's [ENCRYPT] / [DECRYPT]) sets attribute NAME to "";
// records are runs of "Name = value" lines separated by blank lines; a bare
// "FAIL" line marks a decrypt record whose tag must be rejected.
#ifndef VOLMGR_TESTS_UNIT_TESTING_VECTOR_FILE_H_
#define VOLMGR_TESTS_UNIT_TESTING_VECTOR_FILE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace volmgr::testing {

struct VectorRecord {
  std::string file;  // base name, for test names and failure messages
  int line = 0;      // line of the record's first field
  std::map<std::string, std::string> section;  // "[Name = v]" in effect
  std::map<std::string, std::string> fields;   // "Name = value"
  bool fail = false;                           // a "FAIL" line was present
  std::string load_error;  // non-empty: the file could not be read/parsed

  // The field's value; an absent field is an empty string.
  const std::string& Field(const std::string& name) const;
  // The field decoded from hex (aborts the test via ADD_FAILURE on bad hex).
  std::vector<uint8_t> Hex(const std::string& name) const;
  // "<file>:<line>" for messages.
  std::string Where() const;
};

// Loads every record of `path`. Never returns an empty list: a file that
// cannot be read or holds no record yields one record with load_error set,
// so a parameterised test fails loudly instead of silently running nothing.
std::vector<VectorRecord> LoadVectorFile(const std::string& path);

// Decodes lower- or upper-case hex; sets *ok to false on odd length or a
// non-hex character.
std::vector<uint8_t> DecodeHex(std::string_view hex, bool* ok);
std::string EncodeHex(const uint8_t* data, size_t size);

// Test name fragment: [A-Za-z0-9_] only, as GoogleTest requires.
std::string SanitizeTestName(std::string_view s);

// Names a parameterised test "<prefix><value of field>", or "LoadError".
struct NameFromField {
  NameFromField(std::string prefix_in, std::string field_in)
      : prefix(std::move(prefix_in)), field(std::move(field_in)) {}
  std::string prefix;
  std::string field;
  std::string operator()(
      const ::testing::TestParamInfo<VectorRecord>& param_info) const;
};

// GoogleTest prints parameters with this.
void PrintTo(const VectorRecord& r, std::ostream* os);

}  // namespace volmgr::testing

#endif  // VOLMGR_TESTS_UNIT_TESTING_VECTOR_FILE_H_
