// KeyShredder: deletes the keys of a mount's unlinked files in the
// background, many per key-store transaction.
//
// An UNLINK (or a RENAME over an existing file) opens the ciphertext entry
// before it removes the name and hands the descriptor here; the FUSE
// request is then answered without reading the header or touching the key
// store. The shredder thread reads the file ID from the still-open inode,
// and once the inode has no link left (st_nlink 0: a hard link elsewhere
// keeps the key) deletes the key. Deletions that arrive close together
// (rm -r) gather for up to kGatherDelay and commit in one transaction.
//
// When a key is gone: within a few milliseconds of the unlink under load,
// and always before Drain() returns; the mount drains before any fsync or
// fsyncdir returns and at unmount. Its bytes leave keys.db and the WAL
// (KeyStore::ScrubFreed, one checkpoint for a burst of deletions) once no
// deletion has come for kScrubDelay, and also before Drain() returns. A crash
// between the unlink and the commit leaves the key behind with no file: an
// orphan key, which `verify` reports and `verify --repair` deletes
// (docs/FORMAT.md, "File key store"); the ciphertext itself is gone with its
// last link either way.
//
// Thread-safety: Enqueue and Drain may be called from any thread.
#ifndef VOLMGR_FILES_KEY_SHREDDER_H_
#define VOLMGR_FILES_KEY_SHREDDER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "volmgr/files/store.h"

namespace volmgr::files {

class KeyShredder {
 public:
  // How long the thread waits for more deletions before it commits.
  static constexpr std::chrono::microseconds kGatherDelay{1000};
  // Enqueue blocks (back-pressure) while this many descriptors wait.
  static constexpr size_t kMaxPending = 256;
  // How long the thread waits after its last commit before it scrubs the
  // deleted keys' bytes out of the key store's files: a checkpoint per
  // batch would cost an rm -r two fsyncs per millisecond.
  static constexpr std::chrono::milliseconds kScrubDelay{50};

  // `store` must outlive the shredder. `log` gets one line per key that
  // could not be deleted (it stays as an orphan for verify --repair).
  KeyShredder(Store& store, std::function<void(const std::string&)> log);
  KeyShredder(const KeyShredder&) = delete;
  KeyShredder& operator=(const KeyShredder&) = delete;
  // Stop().
  ~KeyShredder();

  // Starts the thread; it inherits the caller's signal mask.
  void Start();

  // Takes ownership of `fd`, a descriptor (any access mode) of a
  // ciphertext entry whose name was just removed or replaced.
  // REQUIRES: Start() was called, Stop() was not.
  void Enqueue(int fd);

  // Returns once every descriptor enqueued before the call is handled:
  // its key deleted, the transaction committed and the key's bytes
  // scrubbed from the store's files, or the failure logged.
  void Drain();

  // Drains, then ends the thread. Idempotent.
  void Stop();

  // Keys deleted (committed) so far.
  uint64_t deleted() const;

 private:
  void Run();
  // Deletes the keys of the unlinked files behind `fds`; closes them all.
  // Returns how many keys it deleted.
  uint64_t Shred(const std::vector<int>& fds);
  // KeyStore::ScrubFreed, failures logged.
  void Scrub();

  Store& store_;
  std::function<void(const std::string&)> log_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable work_;     // pending_ non-empty, drain or stop
  std::condition_variable handled_;  // handled_count_ moved
  std::vector<int> pending_;
  uint64_t enqueued_ = 0;
  uint64_t handled_count_ = 0;
  // Descriptors handled whose keys are also scrubbed (or had none to
  // delete); a Drain() waits for settled_count_ >= what it wants.
  uint64_t settled_count_ = 0;
  uint64_t drain_upto_ = 0;  // a Drain() wants settled_count_ >= this
  // When the oldest deletion not yet scrubbed was committed.
  std::chrono::steady_clock::time_point unscrubbed_since_;
  uint64_t deleted_ = 0;
  bool stop_ = false;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_KEY_SHREDDER_H_
