// The request loop of a files mount: leader/followers over /dev/fuse.
//
// libfuse's multi-threaded loop keeps its idle workers all blocked in
// read(2) on /dev/fuse, and the kernel hands each request to the worker
// that has waited longest: a sequential workload (untar, rm -r) rotates
// through every worker, one cold thread wake-up per request. On a
// paravirtualised guest a wake-up and context switch cost more than most
// metadata requests themselves (docs/PERFORMANCE.md, "File encryption").
//
// Here one thread at a time reads the device, the leader. A request that is
// quick to answer (lookup, attributes, create, unlink, open, release, ...)
// is answered by the leader itself, which then reads the next one: a
// sequential workload runs on one warm thread. Before it starts a request
// that can take long (a large READ or WRITE, fsync, a directory listing),
// the leader hands leadership to an idle follower, starting one if none is
// idle and fewer than `max_threads` exist, so slow requests still run in
// parallel with each other and with the quick ones, as in libfuse's loop.
#ifndef VOLMGR_FILES_FUSE_LOOP_H_
#define VOLMGR_FILES_FUSE_LOOP_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <span>

struct fuse_session;

namespace volmgr::files {

// READ and WRITE requests of at least this many bytes are handed off.
inline constexpr uint32_t kHandOffIoBytes = 64 * 1024;

// Whether the leader hands a raw request off before answering it.
// `header` is the start of the request as read from /dev/fuse (a
// struct fuse_in_header and what follows); `spliced` is true when libfuse
// left the payload in a pipe (only done for large WRITEs).
bool IsSlowRequest(std::span<const uint8_t> header, bool spliced);

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
// session's exit flag as fuse_session_loop_mt() does.
// Returns 0, or the negative errno with which reading the device failed.
// REQUIRES: max_threads >= 1; the session is mounted.
int ServeLeaderFollowers(fuse_session* se, unsigned max_threads);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_FUSE_LOOP_H_
