#include "volmgr/files/key_shredder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "volmgr/files/encrypted_file.h"

namespace volmgr::files {
namespace {

// The file ID of the ciphertext behind `fd` if that inode has no link
// left, else nullopt (a directory, a symlink, a file still linked
// elsewhere, or a header that does not parse: nothing to shred).
std::optional<FileId> IdIfUnlinked(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 0) {
    return std::nullopt;
  }
  auto h = ReadFileHeader(fd);
  if (!h.ok()) return std::nullopt;
  return h->file_id;
}

}  // namespace

KeyShredder::KeyShredder(Store& store,
                         std::function<void(const std::string&)> log)
    : store_(store), log_(std::move(log)) {}

KeyShredder::~KeyShredder() { Stop(); }

void KeyShredder::Start() {
  thread_ = std::thread([this] { Run(); });
}

void KeyShredder::Enqueue(int fd) {
  std::unique_lock l(mu_);
  handled_.wait(l, [&] { return pending_.size() < kMaxPending || stop_; });
  pending_.push_back(fd);
  ++enqueued_;
  // Wake the thread only when it sleeps on an empty queue; later
  // deletions join the batch it is gathering.
  if (pending_.size() == 1) work_.notify_one();
}

void KeyShredder::Drain() {
  std::unique_lock l(mu_);
  const uint64_t upto = enqueued_;
  if (settled_count_ >= upto) return;
  if (drain_upto_ < upto) drain_upto_ = upto;
  work_.notify_one();  // cut the gathering or scrub delay short
  handled_.wait(l, [&] { return settled_count_ >= upto; });
}

void KeyShredder::Stop() {
  {
    std::lock_guard l(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    work_.notify_one();
    handled_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t KeyShredder::deleted() const {
  std::lock_guard l(mu_);
  return deleted_;
}

void KeyShredder::Run() {
  std::unique_lock l(mu_);
  for (;;) {
    if (settled_count_ < handled_count_) {
      // Keys were deleted and their bytes are still in the WAL and in the
      // database's old pages: scrub when the deletions pause, or at once
      // for a Drain() or Stop().
      work_.wait_for(l, kScrubDelay, [&] {
        return stop_ || !pending_.empty() || drain_upto_ > settled_count_;
      });
      // A steady stream of deletions (a long rm -r) still gets a scrub at
      // least every kScrubDelay * 20; a Drain() gets one as soon as what it
      // waits for is committed.
      const bool drain_ready =
          drain_upto_ > settled_count_ && handled_count_ >= drain_upto_;
      if (pending_.empty() || drain_ready ||
          std::chrono::steady_clock::now() - unscrubbed_since_ >
              kScrubDelay * 20) {
        const uint64_t upto = handled_count_;
        l.unlock();
        Scrub();
        l.lock();
        settled_count_ = upto;
        handled_.notify_all();
        continue;
      }
    } else {
      work_.wait(l, [&] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) break;  // stop_, nothing left, all scrubbed
    }
    // Gather: an rm -r unlinks the next file about 0.1 ms later.
    work_.wait_for(l, kGatherDelay, [&] {
      return stop_ || drain_upto_ > handled_count_ ||
             pending_.size() >= kMaxPending;
    });
    std::vector<int> batch;
    batch.swap(pending_);
    handled_.notify_all();  // room for blocked Enqueue calls
    l.unlock();
    const uint64_t deleted = Shred(batch);
    l.lock();
    // Settled at once when nothing was deleted and nothing waits for a
    // scrub; else the scrub above settles them.
    const bool was_settled = settled_count_ == handled_count_;
    handled_count_ += batch.size();
    if (deleted == 0 && was_settled) settled_count_ = handled_count_;
    if (deleted > 0 && was_settled) {
      unscrubbed_since_ = std::chrono::steady_clock::now();
    }
    handled_.notify_all();
  }
}

void KeyShredder::Scrub() {
  Status s = store_.keys().ScrubFreed();
  if (!s.ok() && log_) {
    log_("volmgr files: deleted keys are still in the key store's journal: " +
         s.message() + " (the next shred or unmount retries)");
  }
}

uint64_t KeyShredder::Shred(const std::vector<int>& fds) {
  std::vector<FileId> ids;
  ids.reserve(fds.size());
  for (int fd : fds) {
    if (auto id = IdIfUnlinked(fd)) ids.push_back(*id);
    ::close(fd);
  }
  if (ids.empty()) return 0;
  // One transaction for the batch; a key already gone (a racing `files
  // shred`) is not an error.
  Status s = store_.keys().Transaction([&]() -> Status {
    for (const FileId& id : ids) {
      Status d = store_.Shred(id);
      if (!d.ok() && d.code() != StatusCode::kNotFound) return d;
    }
    return Status::Ok();
  });
  if (s.ok()) {
    std::lock_guard l(mu_);
    deleted_ += ids.size();
    return ids.size();
  }
  // The batch rolled back: try each key on its own, so one bad record
  // does not keep the others.
  uint64_t n = 0;
  for (const FileId& id : ids) {
    Status d = store_.Shred(id);
    if (d.ok()) {
      ++n;
    } else if (d.code() != StatusCode::kNotFound && log_) {
      log_("volmgr files: could not delete key " + FileIdHex(id) + ": " +
           d.message() + " (verify --repair will)");
    }
  }
  std::lock_guard l(mu_);
  deleted_ += n;
  return n;
}

}  // namespace volmgr::files
