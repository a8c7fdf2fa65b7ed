// Shared by the libFuzzer harnesses (tests/fuzz): a file in memory for the
// parsers that read from a path or a file descriptor, and the fixed test
// secrets the seed corpora were made with (tests/fuzz/keys, written by
// make_corpora.sh: test material, never a real secret).
#ifndef VOLMGR_TESTS_FUZZ_FUZZ_UTIL_H_
#define VOLMGR_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <span>
#include <sstream>
#include <string>

namespace volmgr::fuzz {

// Aborts with a message: a harness's own assertion (a property violated).
[[noreturn]] inline void Violation(const std::string& what) {
  std::fprintf(stderr, "FUZZ PROPERTY VIOLATED: %s\n", what.c_str());
  std::abort();
}

// Aborts when the harness cannot set itself up (missing key file...).
[[noreturn]] inline void SetupFailed(const std::string& what) {
  std::fprintf(stderr, "fuzz harness setup failed: %s\n", what.c_str());
  std::abort();
}

// A memfd holding bytes; path() names it for APIs that take a path.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("volmgr-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) SetupFailed("memfd_create");
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the content with `bytes` (file offset back at 0).
  void Set(std::span<const uint8_t> bytes) {
    if (ftruncate(fd_, 0) != 0) SetupFailed("ftruncate");
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done,
                         static_cast<off_t>(done));
      if (n <= 0) SetupFailed("pwrite");
      done += static_cast<size_t>(n);
    }
    lseek(fd_, 0, SEEK_SET);
  }
  int fd() const { return fd_; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// A file under tests/fuzz, whole.
inline std::string ReadFuzzFile(const std::string& relative) {
  const std::string path = std::string(VOLMGR_FUZZ_DIR) + "/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) SetupFailed("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The file layer's harnesses and fuzz_seedgen share these keys: the seeds
// it writes decrypt in the harnesses.
inline constexpr uint8_t kFileKeyByte = 0x5a;  // 32 bytes of it
inline constexpr uint8_t kNameKeyByte = 0xa5;  // 64 bytes of it
inline constexpr uint8_t kDirIdByte = 0x3c;    // the directory ID

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace volmgr::fuzz

#endif  // VOLMGR_TESTS_FUZZ_FUZZ_UTIL_H_
