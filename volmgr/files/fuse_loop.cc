#define FUSE_USE_VERSION 312
#include "volmgr/files/fuse_loop.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace volmgr::files {

namespace {

// READ and WRITE: bounded from kHandOffIoBytes on (both bodies start with
// fh, offset, size).
template <typename In>
RequestCost IoCost(std::span<const uint8_t> body) {
  In in;
  if (body.size() < sizeof in) return RequestCost::kQuick;
  std::memcpy(&in, body.data(), sizeof in);
  return in.size >= kHandOffIoBytes ? RequestCost::kBounded
                                    : RequestCost::kQuick;
}

}  // namespace

RequestCost ClassifyRequest(std::span<const uint8_t> header, bool spliced) {
  // libfuse splices only WRITEs larger than a page into a pipe.
  if (spliced) return RequestCost::kBounded;
  fuse_in_header in;
  if (header.size() < sizeof in) return RequestCost::kQuick;
  std::memcpy(&in, header.data(), sizeof in);
  const auto body = header.subspan(sizeof in);
  switch (in.opcode) {
    case FUSE_READ:
      return IoCost<fuse_read_in>(body);
    case FUSE_WRITE:
      return IoCost<fuse_write_in>(body);
    case FUSE_READDIR:
    case FUSE_READDIRPLUS:
    case FUSE_COPY_FILE_RANGE:
      return RequestCost::kBounded;
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR:
    case FUSE_FLUSH:
    case FUSE_FALLOCATE:
      return RequestCost::kBlocking;
    default:
      return RequestCost::kQuick;
  }
}

namespace {

// Whether a request is waiting on the device that no thread is reading.
bool RequestWaiting(fuse_session* se) {
  pollfd p{fuse_session_fd(se), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

StopSignalsBlocked::StopSignalsBlocked() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGHUP);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, &old_);
}

StopSignalsBlocked::~StopSignalsBlocked() {
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

namespace {

// A thread's request buffer; libfuse allocates `mem` on first use.
struct RequestBuffer {
  fuse_buf buf{};
  RequestBuffer() = default;
  RequestBuffer(const RequestBuffer&) = delete;
  RequestBuffer& operator=(const RequestBuffer&) = delete;
  ~RequestBuffer() { std::free(buf.mem); }
};

class Loop {
 public:
  Loop(fuse_session* se, unsigned max_threads)
      : se_(se), max_threads_(max_threads) {
    sem_init(&finished_, 0, 0);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop() { sem_destroy(&finished_); }

  int Run() {
    {
      // The first thread (and every thread it starts) leaves the stop
      // signals to this one, which waits in sem_wait() below.
      StopSignalsBlocked blocked;
      std::lock_guard l(mu_);
      StartThread();
    }

    while (!fuse_session_exited(se_)) {
      if (sem_wait(&finished_) == 0) break;  // a thread saw the end
    }
    std::vector<pthread_t> threads;
    {
      std::lock_guard l(mu_);
      done_ = true;
      followers_.notify_all();
      threads = threads_;
    }
    // The leader may be blocked in read(2) with nothing more to come
    // (fuse_session_exit() from a signal handler). libfuse's loop cancels
    // such a thread; unwinding a cancelled thread through our C++ frames
    // aborted the process (the binary carries its own libgcc unwinder), so
    // the read is interrupted instead: WakeSignal() has a handler without
    // SA_RESTART, read(2) fails with EINTR and the leader sees done_. The
    // signal is sent again until the leader is out of the read, in case it
    // arrived just before the read began.
    for (;;) {
      {
        std::lock_guard l(mu_);
        if (!reading_) break;
        pthread_kill(reader_, WakeSignal());
      }
      ::usleep(5000);
    }
    for (pthread_t t : threads) pthread_join(t, nullptr);
    fuse_session_reset(se_);
    return error_;
  }

  // SIGRTMIN is the first real-time signal glibc leaves to programs.
  static int WakeSignal() { return SIGRTMIN; }

 private:
  static void* ThreadMain(void* self) {
    static_cast<Loop*>(self)->Work();
    return nullptr;
  }

  // REQUIRES: mu_ held.
  void StartThread() {
    if (done_ || threads_.size() >= max_threads_) return;
    pthread_t t;
    if (pthread_create(&t, nullptr, ThreadMain, this) == 0) {
      threads_.push_back(t);
    }
  }

  // REQUIRES: mu_ held. Ends the loop: every thread leaves, Run() returns.
  void Finish(int error) {
    if (!done_) {
      done_ = true;
      error_ = error;
      sem_post(&finished_);
    }
    followers_.notify_all();
  }

  void Work() {
    RequestBuffer rb;
    std::unique_lock l(mu_);
    while (!done_) {
      // Follow until leadership is free.
      ++idle_;
      followers_.wait(l, [&] { return done_ || !leader_; });
      --idle_;
      if (done_) break;
      leader_ = true;
      // Lead: answer quick requests in turn until a slow one comes.
      for (;;) {
        if (done_ || fuse_session_exited(se_)) {
          Finish(0);
          break;
        }
        reader_ = pthread_self();
        reading_ = true;
        l.unlock();
        const int res = fuse_session_receive_buf(se_, &rb.buf);
        l.lock();
        reading_ = false;
        if (res == -EINTR) continue;
        if (res <= 0 || done_) {
          Finish(res < 0 ? res : 0);
          break;
        }
        const bool spliced = (rb.buf.flags & FUSE_BUF_IS_FD) != 0;
        std::span<const uint8_t> head;
        if (!spliced) {
          head = {static_cast<const uint8_t*>(rb.buf.mem),
                  static_cast<size_t>(res)};
        }
        const RequestCost cost = ClassifyRequest(head, spliced);
        const bool slow =
            cost == RequestCost::kBlocking ||
            (cost == RequestCost::kBounded && RequestWaiting(se_));
        if (slow) {
          leader_ = false;
          if (idle_ > 0) {
            followers_.notify_one();
          } else {
            StartThread();
          }
        }
        l.unlock();
        fuse_session_process_buf(se_, &rb.buf);
        l.lock();
        if (slow) break;  // back to following
      }
    }
  }

  fuse_session* const se_;
  const unsigned max_threads_;
  sem_t finished_;

  std::mutex mu_;
  std::condition_variable followers_;  // waits for !leader_ or done_
  bool leader_ = false;                // a thread holds leadership
  bool done_ = false;
  int error_ = 0;
  unsigned idle_ = 0;  // followers waiting
  bool reading_ = false;
  pthread_t reader_{};  // the leader, while reading_ (in read(2))
  std::vector<pthread_t> threads_;
};

}  // namespace

int ServeLeaderFollowers(fuse_session* se, unsigned max_threads) {
  // A handler that does nothing, installed without SA_RESTART: the signal
  // only makes the leader's read(2) return EINTR (see Loop::Run).
  struct sigaction wake {
  }, old{};
  wake.sa_handler = [](int) {};
  sigemptyset(&wake.sa_mask);
  sigaction(SIGRTMIN, &wake, &old);
  int rc;
  {
    Loop loop(se, max_threads < 1 ? 1 : max_threads);
    rc = loop.Run();
  }
  sigaction(SIGRTMIN, &old, nullptr);
  return rc;
}

}  // namespace volmgr::files
