#include "volmgr/boot/volumes_conf.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace volmgr::boot {
namespace {

constexpr size_t kMaxConfBytes = 1 << 20;
constexpr uint32_t kMaxTimeoutSeconds = 24 * 3600;
constexpr uint32_t kMaxTries = 100;

// Splits a line into whitespace-separated fields; '#' at the start of a
// field starts a comment that runs to the end of the line.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size() || line[i] == '#') break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return r;
}

std::optional<uint32_t> ParseUint(std::string_view s, uint32_t max) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > max) {
    return std::nullopt;
  }
  return v;
}

Status ParseOptions(std::string_view text, BootOptions& o,
                    const std::string& where) {
  if (text == "-" || text == "defaults") return Status::Ok();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view opt = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (opt.empty()) {
      return InvalidArgumentError(where + ": empty option in '" +
                                  std::string(text) + "'");
    }
    size_t eq = opt.find('=');
    std::string_view key = opt.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : opt.substr(eq + 1);
    auto need_value = [&]() -> Status {
      if (eq == std::string_view::npos || value.empty()) {
        return InvalidArgumentError(where + ": option '" + std::string(key) +
                                    "' needs a value (" + std::string(key) +
                                    "=...)");
      }
      return Status::Ok();
    };
    auto no_value = [&]() -> Status {
      if (eq != std::string_view::npos) {
        return InvalidArgumentError(where + ": option '" + std::string(key) +
                                    "' takes no value");
      }
      return Status::Ok();
    };
    if (key == "tpm-only") {
      VOLMGR_RETURN_IF_ERROR(no_value());
      o.tpm_only = true;
    } else if (key == "discard") {
      VOLMGR_RETURN_IF_ERROR(no_value());
      o.discard = true;
    } else if (key == "readonly" || key == "read-only") {
      VOLMGR_RETURN_IF_ERROR(no_value());
      o.read_only = true;
    } else if (key == "nofail") {
      VOLMGR_RETURN_IF_ERROR(no_value());
      o.nofail = true;
    } else if (key == "noauto") {
      VOLMGR_RETURN_IF_ERROR(no_value());
      o.noauto = true;
    } else if (key == "timeout") {
      VOLMGR_RETURN_IF_ERROR(need_value());
      o.timeout_s = ParseUint(value, kMaxTimeoutSeconds);
      if (!o.timeout_s) {
        return InvalidArgumentError(where + ": timeout '" + std::string(value) +
                                    "' is not a number of seconds (0.." +
                                    std::to_string(kMaxTimeoutSeconds) + ")");
      }
    } else if (key == "tries") {
      VOLMGR_RETURN_IF_ERROR(need_value());
      o.tries = ParseUint(value, kMaxTries);
      if (!o.tries || *o.tries == 0) {
        return InvalidArgumentError(where + ": tries '" + std::string(value) +
                                    "' is not a number from 1 to " +
                                    std::to_string(kMaxTries));
      }
    } else if (key == "tcti") {
      VOLMGR_RETURN_IF_ERROR(need_value());
      o.tcti = std::string(value);
    } else if (key == "console") {
      VOLMGR_RETURN_IF_ERROR(need_value());
      if (value.front() != '/') {
        return InvalidArgumentError(where + ": console '" + std::string(value) +
                                    "' is not an absolute path");
      }
      o.console = std::string(value);
    } else {
      return InvalidArgumentError(
          where + ": unknown option '" + std::string(key) +
          "' (known: tpm-only, discard, readonly, nofail, noauto, timeout=, "
          "tries=, tcti=, console=)");
    }
  }
  return Status::Ok();
}

}  // namespace

bool IsValidMappingName(std::string_view name) {
  if (name.empty() || name.size() > 127 || name == "." || name == "..") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+';
  });
}

std::string DerivedMappingName(std::string_view uuid, std::string_view label) {
  if (IsValidMappingName(label)) return std::string(label);
  return "volmgr-" + Lower(uuid);
}

StatusOr<VolumesConf> VolumesConf::Parse(std::string_view text,
                                         std::string_view origin) {
  VolumesConf conf;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> f = Fields(line);
    if (f.empty()) continue;
    const std::string where =
        std::string(origin) + ":" + std::to_string(line_no);
    if (f.size() < 2 || f.size() > 3) {
      return InvalidArgumentError(where +
                                  ": expected 'NAME DEVICE [OPTIONS]', got " +
                                  std::to_string(f.size()) + " field(s)");
    }
    VolumeEntry e;
    e.line = line_no;
    e.name = std::string(f[0]);
    if (f.size() == 3) {
      VOLMGR_RETURN_IF_ERROR(ParseOptions(f[2], e.options, where));
    }
    if (e.name == "*" || f[1] == "*") {
      if (e.name != "*" || f[1] != "*") {
        return InvalidArgumentError(
            where + ": the defaults line is '* * OPTIONS' (both fields '*')");
      }
      if (conf.defaults_) {
        return InvalidArgumentError(where +
                                    ": a second '* *' line (first on "
                                    "line " +
                                    std::to_string(conf.defaults_->line) + ")");
      }
      e.match = VolumeEntry::Match::kAny;
      conf.defaults_ = std::move(e);
      continue;
    }
    if (!IsValidMappingName(e.name)) {
      return InvalidArgumentError(
          where + ": '" + e.name +
          "' is not a valid mapping name (1-127 of A-Z a-z 0-9 . _ - +)");
    }
    if (f[1].substr(0, 5) == "UUID=") {
      std::string_view u = f[1].substr(5);
      if (!IsUuid(u)) {
        return InvalidArgumentError(where + ": '" + std::string(u) +
                                    "' is not a UUID "
                                    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
      }
      e.match = VolumeEntry::Match::kUuid;
      e.device = Lower(u);
    } else if (f[1].front() == '/') {
      e.match = VolumeEntry::Match::kPath;
      e.device = std::string(f[1]);
    } else {
      return InvalidArgumentError(where + ": device '" + std::string(f[1]) +
                                  "' must be UUID=<LUKS UUID> or an absolute "
                                  "path");
    }
    for (const auto& other : conf.entries_) {
      if (other.name == e.name) {
        return InvalidArgumentError(where + ": mapping name '" + e.name +
                                    "' is already used on line " +
                                    std::to_string(other.line));
      }
      if (other.match == e.match && other.device == e.device) {
        return InvalidArgumentError(where + ": device " + std::string(f[1]) +
                                    " is already listed on line " +
                                    std::to_string(other.line));
      }
    }
    conf.entries_.push_back(std::move(e));
  }
  return conf;
}

StatusOr<VolumesConf> VolumesConf::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return VolumesConf{};
    return ErrnoToStatus(errno, "reading " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > kMaxConfBytes) {
    return InvalidArgumentError(path + " is larger than 1 MiB");
  }
  return Parse(text, path);
}

const VolumeEntry* VolumesConf::Find(std::string_view uuid,
                                     const std::string& devnode) const {
  const std::string want = Lower(uuid);
  struct stat dev_st {};
  const bool have_dev = !devnode.empty() && stat(devnode.c_str(), &dev_st) == 0;
  for (const auto& e : entries_) {
    if (e.match == VolumeEntry::Match::kUuid && !want.empty() &&
        e.device == want) {
      return &e;
    }
  }
  for (const auto& e : entries_) {
    if (e.match != VolumeEntry::Match::kPath) continue;
    if (e.device == devnode) return &e;
    struct stat st {};
    // Same block device (a /dev/disk/by-* link) or the same file.
    if (have_dev && stat(e.device.c_str(), &st) == 0) {
      if (S_ISBLK(st.st_mode) && S_ISBLK(dev_st.st_mode) &&
          st.st_rdev == dev_st.st_rdev) {
        return &e;
      }
      if (st.st_dev == dev_st.st_dev && st.st_ino == dev_st.st_ino) return &e;
    }
  }
  return nullptr;
}

BootOptions EffectiveOptions(const VolumesConf& conf,
                             const VolumeEntry* entry) {
  BootOptions d;
  if (conf.defaults()) d = conf.defaults()->options;
  if (entry == nullptr) return d;
  BootOptions o = entry->options;
  // Flags: the defaults line can switch them on for every volume; the
  // listed volume's own flags add to them (except noauto, which on the
  // defaults line only concerns auto-detected volumes).
  o.tpm_only = o.tpm_only || d.tpm_only;
  o.discard = o.discard || d.discard;
  o.read_only = o.read_only || d.read_only;
  o.nofail = o.nofail || d.nofail;
  if (!o.timeout_s) o.timeout_s = d.timeout_s;
  if (!o.tries) o.tries = d.tries;
  if (o.tcti.empty()) o.tcti = d.tcti;
  if (o.console.empty()) o.console = d.console;
  return o;
}

}  // namespace volmgr::boot
