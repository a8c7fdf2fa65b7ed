// The request loop of a files mount: leader/followers over /dev/fuse.
//
// libfuse's multi-threaded loop keeps its idle workers all blocked in
// read(2) on /dev/fuse, and the kernel hands each request to the worker
// that has waited longest: a sequential workload (untar, rm -r) rotates
// through every worker, one cold thread wake-up per request. On a
// paravirtualised guest a wake-up and context switch cost more than most
// metadata requests themselves (docs/PERFORMANCE.md, "File encryption").
//
// Here one thread at a time reads the device, the leader, and answers what
// it read itself unless that could hold up other requests; then it hands
// leadership to an idle follower first (starting one if none is idle and
// fewer than `max_threads` exist), so the slow request runs in parallel
// with what comes next, as in libfuse's loop. By RequestCost:
//   kQuick     lookup, attributes, create, unlink, open, release, ...:
//              always answered by the leader, which then reads the next
//              one; a sequential workload runs on one warm thread.
//   kBounded   CPU work of up to a millisecond or so (a large READ or WRITE,
//              a directory listing): handed off only when another request
//              is already waiting (poll(2) on the device). A hand-off costs a
//              thread wake-up, more than it saves for a lone stream: a cold
//              250 MiB read ran 12 % slower when every 1 MiB READ was handed
//              off (docs/PERFORMANCE.md, "File encryption").
//   kBlocking  may wait on the disk for long (fsync, flush): always handed
//              off.
#ifndef VOLMGR_FILES_FUSE_LOOP_H_
#define VOLMGR_FILES_FUSE_LOOP_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <span>

struct fuse_session;

namespace volmgr::files {

// READ and WRITE requests of at least this many bytes are kBounded.
inline constexpr uint32_t kHandOffIoBytes = 64 * 1024;

enum class RequestCost { kQuick, kBounded, kBlocking };

// The cost class of a raw request. `header` is the start of the request as
// read from /dev/fuse (a struct fuse_in_header and what follows); `spliced`
// is true when libfuse left the payload in a pipe (only done for large
// WRITEs).
RequestCost ClassifyRequest(std::span<const uint8_t> header, bool spliced);

// Blocks SIGHUP, SIGINT and SIGTERM (the signals libfuse's handlers catch)
// in the calling thread for the object's lifetime. Threads started meanwhile
// inherit the mask, so those signals reach the one thread that leaves them
// open: the one waiting in ServeLeaderFollowers().
class StopSignalsBlocked {
 public:
  StopSignalsBlocked();
  ~StopSignalsBlocked();
  StopSignalsBlocked(const StopSignalsBlocked&) = delete;
  StopSignalsBlocked& operator=(const StopSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

// Serves `se` until the session exits: unmounted, or fuse_session_exit()
// (libfuse's SIGHUP/SIGINT/SIGTERM handlers call it; those signals are
// blocked in the loop's threads, so they reach the calling thread, which
// waits here). Then it ends the threads, joins them, and resets the
// session's exit flag as fuse_session_loop_mt() does. While it runs it
// owns SIGRTMIN (a no-op handler, used to interrupt the reading thread).
// Returns 0, or the negative errno with which reading the device failed.
// REQUIRES: max_threads >= 1; the session is mounted.
int ServeLeaderFollowers(fuse_session* se, unsigned max_threads);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_FUSE_LOOP_H_
