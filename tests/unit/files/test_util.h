// Small helpers for the volmgr_files unit tests.
#ifndef VOLMGR_TESTS_UNIT_FILES_TEST_UTIL_H_
#define VOLMGR_TESTS_UNIT_FILES_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"

namespace volmgr::files::testing {

inline SecretBytes Secret(std::span<const uint8_t> b) {
  return std::move(SecretBytes::CopyOf(b)).value();
}

inline SecretBytes Filled(size_t n, uint8_t v) {
  return Secret(std::vector<uint8_t>(n, v));
}

// A fresh temp directory, removed with its contents at destruction.
class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "vfXXXXXX");
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace volmgr::files::testing

#endif  // VOLMGR_TESTS_UNIT_FILES_TEST_UTIL_H_
