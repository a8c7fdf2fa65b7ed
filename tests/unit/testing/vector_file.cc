#include "tests/unit/testing/vector_file.h"

#include <gtest/gtest.h>

#include <fstream>

namespace volmgr::testing {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool SplitAssignment(std::string_view line, std::string* name,
                     std::string* value) {
  const size_t eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  *name = std::string(Trim(line.substr(0, eq)));
  *value = std::string(Trim(line.substr(eq + 1)));
  return !name->empty();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const std::string& VectorRecord::Field(const std::string& name) const {
  static const std::string kEmpty;
  auto it = fields.find(name);
  return it == fields.end() ? kEmpty : it->second;
}

std::vector<uint8_t> VectorRecord::Hex(const std::string& name) const {
  bool ok = true;
  std::vector<uint8_t> out = DecodeHex(Field(name), &ok);
  if (!ok) ADD_FAILURE() << Where() << ": field " << name << " is not hex";
  return out;
}

std::string VectorRecord::Where() const {
  return file + ":" + std::to_string(line);
}

std::vector<uint8_t> DecodeHex(std::string_view hex, bool* ok) {
  *ok = hex.size() % 2 == 0;
  std::vector<uint8_t> out;
  if (!*ok) return out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]);
    const int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      *ok = false;
      return {};
    }
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string EncodeHex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

std::string SanitizeTestName(std::string_view s) {
  std::string out;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9');
    out.push_back(alnum ? c : '_');
  }
  return out;
}

std::vector<VectorRecord> LoadVectorFile(const std::string& path) {
  const std::string base = path.substr(path.find_last_of('/') + 1);
  auto error = [&](std::string message) {
    VectorRecord r;
    r.file = base;
    r.load_error = path + ": " + message;
    return std::vector<VectorRecord>{r};
  };
  std::ifstream in(path);
  if (!in) return error("cannot open");

  std::vector<VectorRecord> records;
  std::map<std::string, std::string> section;
  bool section_open = false;  // the last non-blank line was a [..] header
  VectorRecord current;
  auto flush = [&] {
    if (!current.fields.empty() || current.fail) records.push_back(current);
    current = VectorRecord();
  };

  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.front() == '#') continue;
    std::string name, value;
    if (line.front() == '[') {
      flush();
      if (line.back() != ']') {
        return error("line " + std::to_string(line_no) + ": bad section");
      }
      const std::string_view inner = line.substr(1, line.size() - 2);
      if (!SplitAssignment(inner, &name, &value)) {
        name = std::string(Trim(inner));  // bare "[NAME]"
        value.clear();
        if (name.empty()) {
          return error("line " + std::to_string(line_no) + ": bad section");
        }
      }
      // A header that follows records starts a new section.
      if (!section_open) section.clear();
      section[name] = value;
      section_open = true;
      continue;
    }
    section_open = false;
    if (current.fields.empty() && !current.fail) {
      current.file = base;
      current.line = line_no;
      current.section = section;
    }
    if (line == "FAIL") {
      current.fail = true;
    } else if (SplitAssignment(line, &name, &value)) {
      current.fields[name] = value;
    } else {
      return error("line " + std::to_string(line_no) + ": cannot parse '" +
                   std::string(line) + "'");
    }
  }
  flush();
  if (records.empty()) return error("no records");
  return records;
}

std::string NameFromField::operator()(
    const ::testing::TestParamInfo<VectorRecord>& param_info) const {
  const VectorRecord& r = param_info.param;
  if (!r.load_error.empty()) return "LoadError";
  return SanitizeTestName(prefix + r.Field(field));
}

void PrintTo(const VectorRecord& r, std::ostream* os) {
  *os << r.Where();
  if (!r.load_error.empty()) *os << " (" << r.load_error << ")";
}

}  // namespace volmgr::testing
