/* A disk that loses writes: LD_PRELOAD this library and every write to the
 * file named by $VOLMGR_TEST_LOST_FILE that overlaps the byte range
 * $VOLMGR_TEST_LOST_RANGE ("START:END", END exclusive) reports success but
 * writes nothing, as a failing disk or a volatile write cache that drops its
 * content does. Used by keyslot_proof.sh (issue 17, item 8): a keyslot that
 * never reached the disk must be noticed before volmgr promises that the
 * recovery password opens the volume with stock cryptsetup.
 *
 * Covers write, pwrite, pwrite64 and writev: libcryptsetup writes keyslot
 * areas with lseek + write (utils_io.c) and headers with the same helpers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int target_of(int fd) {
  const char* want = getenv("VOLMGR_TEST_LOST_FILE");
  struct stat a, b;
  if (want == NULL || fstat(fd, &a) != 0 || stat(want, &b) != 0) return 0;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* 1 if [off, off + len) overlaps the lost range of the target file. */
static int lost(int fd, off_t off, size_t len) {
  const char* range = getenv("VOLMGR_TEST_LOST_RANGE");
  if (range == NULL || len == 0 || !target_of(fd)) return 0;
  char* colon = NULL;
  long long start = strtoll(range, &colon, 0);
  if (colon == NULL || *colon != ':') return 0;
  long long end = strtoll(colon + 1, NULL, 0);
  return off < end && (long long)(off + (off_t)len) > start;
}

ssize_t write(int fd, const void* buf, size_t n) {
  static ssize_t (*real)(int, const void*, size_t);
  if (real == NULL)
    real = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  off_t at = lseek(fd, 0, SEEK_CUR);
  if (at >= 0 && lost(fd, at, n)) {
    lseek(fd, at + (off_t)n, SEEK_SET);
    return (ssize_t)n;
  }
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (real == NULL)
    real =
        (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  if (lost(fd, off, n)) return (ssize_t)n;
  return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (real == NULL)
    real = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT,
                                                              "pwrite64");
  if (lost(fd, off, n)) return (ssize_t)n;
  return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  static ssize_t (*real)(int, const struct iovec*, int);
  if (real == NULL)
    real =
        (ssize_t(*)(int, const struct iovec*, int))dlsym(RTLD_NEXT, "writev");
  size_t n = 0;
  for (int i = 0; i < cnt; ++i) n += iov[i].iov_len;
  off_t at = lseek(fd, 0, SEEK_CUR);
  if (at >= 0 && lost(fd, at, n)) {
    lseek(fd, at + (off_t)n, SEEK_SET);
    return (ssize_t)n;
  }
  return real(fd, iov, cnt);
}
