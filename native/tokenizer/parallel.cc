#include "tokenizer/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tokmeter::tokenizer {

// Indices are dealt to lanes, one lane per participant: lane l holds l, l + lanes, l + 2 * lanes, ... Each participant
// claims a lane, preferring the same lane on every call (a pool helper's number, the caller's lane 0), runs its own
// lane from the front and, once it is empty, takes from the back of the others. So a batch counted again (a
// conversation's messages recounted on every request, a benchmark's repeated texts) lands mostly on the threads
// that counted the same documents last time, whose word caches hold them; dealing one shared index at a time sent
// each document to either thread at random and re-merged half the words on each.
struct PoolJob {
  // `caller_lane`: lane 0 belongs to the calling thread (ParallelFor), the helpers prefer the others.
  PoolJob(size_t n_, unsigned lanes_, bool caller_lane, FnRef<void(size_t)> body_)
      : n(n_),
        lane_count(std::max(1u, lanes_)),
        first_helper_lane(caller_lane && lane_count > 1 ? 1 : 0),
        lanes(lane_count),
        body(body_) {
    for (unsigned l = 0; l < lane_count; ++l) lanes[l].back = l < n ? (n - l + lane_count - 1) / lane_count : 0;
  }
  struct Lane {
    std::mutex mu;
    size_t front = 0, back = 0;  // the lane's k-th index is l + k * lane_count, for k in [front, back)
    bool claimed = false;        // guarded by PoolJob::mu
  };
  const size_t n;
  const unsigned lane_count;
  const unsigned first_helper_lane;
  std::vector<Lane> lanes;
  const FnRef<void(size_t)> body;  // valid until the caller has closed the job and every helper inside it has left
  std::atomic<size_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable left;
  unsigned inside = 0;  // helpers running items (guarded by mu)
  bool closed = false;  // the caller is done: late helpers must not start (guarded by mu)
  std::exception_ptr error;
  // The lane a pool helper numbered h prefers: the same one on every call while the pool does not grow.
  unsigned HelperLane(unsigned h) const { return first_helper_lane + h % (lane_count - first_helper_lane); }

  // The first unclaimed lane from `preferred` on (guarded by mu), or lane_count when every lane has an owner.
  unsigned ClaimLane(unsigned preferred) {
    for (unsigned k = 0; k < lane_count; ++k) {
      unsigned l = (preferred + k) % lane_count;
      if (!lanes[l].claimed) {
        lanes[l].claimed = true;
        return l;
      }
    }
    return lane_count;
  }
  bool TakeFront(unsigned l, size_t& i) {
    Lane& lane = lanes[l];
    std::lock_guard<std::mutex> lock(lane.mu);
    if (lane.front >= lane.back) return false;
    i = l + lane.front++ * lane_count;
    return true;
  }
  bool TakeBack(unsigned l, size_t& i) {
    Lane& lane = lanes[l];
    std::lock_guard<std::mutex> lock(lane.mu);
    if (lane.front >= lane.back) return false;
    i = l + --lane.back * lane_count;
    return true;
  }
  bool Next(unsigned own, size_t& i) {
    if (failed.load(std::memory_order_relaxed)) return false;
    if (own < lane_count && TakeFront(own, i)) return true;
    for (unsigned k = 1; k <= lane_count; ++k)
      if (TakeBack((own + k) % lane_count, i)) return true;
    return false;
  }
  void RunItems(unsigned own) {
    size_t i;
    while (Next(own, i)) {
      try {
        body(i);
        done.fetch_add(1, std::memory_order_release);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  }
};

namespace {
using Job = PoolJob;

#ifdef __linux__
// Where a helper that is woken starts running. Linux puts a woken thread on an idle CPU when it sees one; when every
// CPU is busy at that moment (on two CPUs: the caller still copying the batch's texts on one, the first helper
// already counting on the other), it may queue the second helper behind the first on the same CPU. The CPU the
// caller leaves a few microseconds later does not always pull it over: on 2-vCPU VMs the two helpers were seen
// sharing one CPU for a whole 2-5 ms batch (one of them starting only when the other's time slice ended) while
// the other CPU was idle, which made the batch as slow as one thread. So when the threads that want a CPU (the
// woken helpers and the caller) outnumber the CPUs, each woken helper is narrowed to one CPU of its own, the
// caller's last (the caller gives it up when it returns or waits); a helper widens its affinity back to what it
// had as soon as it runs, so the scheduler is free to move it from then on. Placement is only a hint: when a call
// fails, it is left off for the rest of the process.
struct Placement {
  pid_t tid = 0;
  cpu_set_t home;  // the helper's affinity when it started
  bool known = false;
  void Learn() {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    CPU_ZERO(&home);
    known = sched_getaffinity(0, sizeof home, &home) == 0 && CPU_COUNT(&home) > 0;
  }
};
std::atomic<bool> g_placement{true};
#endif

class Pool {
 public:
  static constexpr unsigned kMaxHelpers = 63;
  // Never destroyed: detached helpers may still be waiting on it at exit.
  static Pool& Get() {
    static Pool* pool = new Pool();
    return *pool;
  }
  Pool() {
#ifdef __linux__
    // A child forked without exec has only the forking thread: the helpers, and the jobs queued for them, stay in
    // the parent. The child starts a pool of its own (without this it waited forever on helpers it does not have,
    // and would have narrowed the affinity of the parent's threads by their ids). mu_ is held across the fork so
    // that the child's copy is not locked by a thread it does not have.
    pthread_atfork([] { Get().mu_.lock(); }, [] { Get().mu_.unlock(); }, [] { Get().ForgetAfterFork(); });
#endif
  }
  // Hands `job` to `count` helpers. Idle helpers are woken one by one, lowest number first (a helper's number picks
  // its lane, so a repeated batch meets the same caches); a copy no idle helper takes waits in the queue for the
  // next helper that finishes what it runs.
  void Offer(const std::shared_ptr<Job>& job, unsigned count) {
    std::vector<Helper*> woken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (helpers_.size() < count && helpers_.size() < kMaxHelpers) {
        helpers_.reserve(helpers_.size() + 1);
        auto h = std::make_unique<Helper>();
        h->number = static_cast<unsigned>(helpers_.size());
        Helper* raw = h.get();
        std::thread t([this, raw] { Loop(*raw); });  // may throw: then no helper is recorded that does not run
        helpers_.push_back(std::move(h));            // cannot throw: the capacity is there
        t.detach();
      }
      for (unsigned k = 0; k < count; ++k) {
        Helper* idle = nullptr;
        for (auto& h : helpers_)
          if (h->idle) {
            idle = h.get();
            break;
          }
        if (!idle) {
          queue_.push_back(job);
          continue;
        }
        idle->job = job;
        idle->idle = false;
        woken.push_back(idle);
      }
      Place(woken);
    }
    for (Helper* h : woken) h->wake.notify_one();  // helpers are never destroyed
  }

 private:
  struct Helper {
    unsigned number = 0;
    std::condition_variable wake;
    std::shared_ptr<Job> job;  // handed to this helper by Offer (guarded by mu_)
    bool idle = false;         // waiting on `wake` with nothing handed to it: job is empty (guarded by mu_)
    bool pinned = false;       // narrowed to one CPU for this wake-up (guarded by mu_)
#ifdef __linux__
    Placement where;  // written by the helper before it first takes mu_
#endif
  };

  // Narrows each of `woken` (idle helpers about to be woken; under mu_, so none of them runs) to one CPU when the
  // threads that want a CPU outnumber the CPUs: the CPUs after the caller's first, the caller's own last.
  void Place(const std::vector<Helper*>& woken) {
#ifdef __linux__
    if (woken.empty() || !g_placement.load(std::memory_order_relaxed) || !woken[0]->where.known) return;
    const cpu_set_t& home = woken[0]->where.home;
    const int cpus = CPU_COUNT(&home);
    if (cpus < 2 || woken.size() + 1 <= static_cast<size_t>(cpus)) return;  // an idle CPU for each: the kernel's pick
    const int caller = sched_getcpu();
    int order[CPU_SETSIZE];
    int n = 0;
    for (int k = 1; k <= CPU_SETSIZE; ++k) {
      const int c = caller < 0 ? k - 1 : (caller + k) % CPU_SETSIZE;  // ends with the caller's own CPU
      if (CPU_ISSET(c, &home)) order[n++] = c;
    }
    for (size_t k = 0; k < woken.size(); ++k) {
      Helper& h = *woken[k];
      const int cpu = order[k % static_cast<size_t>(n)];
      if (!h.where.known || !CPU_ISSET(cpu, &h.where.home)) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (sched_setaffinity(h.where.tid, sizeof one, &one) != 0) {
        g_placement.store(false, std::memory_order_relaxed);
        return;
      }
      h.pinned = true;
    }
#else
    (void)woken;
#endif
  }

#ifdef __linux__
  // In the child of a fork (mu_ held, copied from the parent): the parent's helpers and queued jobs are left as they
  // are, never touched or destroyed (their locks and condition variables describe the parent's threads).
  void ForgetAfterFork() {
    for (auto& h : helpers_) (void)h.release();
    helpers_.clear();
    (void)new std::deque<std::shared_ptr<Job>>(std::move(queue_));
    queue_.clear();
    mu_.unlock();
  }
#endif

  void Loop(Helper& me) {
#ifdef __linux__
    me.where.Learn();
#endif
    for (;;) {
      std::shared_ptr<Job> job;
      bool pinned;
      {
        std::unique_lock<std::mutex> lock(mu_);
        while (!me.job && queue_.empty()) {
          me.idle = true;
          me.wake.wait(lock);
        }
        me.idle = false;
        if (me.job) {
          job = std::move(me.job);
        } else {
          job = std::move(queue_.front());
          queue_.pop_front();
        }
        pinned = std::exchange(me.pinned, false);
      }
#ifdef __linux__
      // Running now, on the CPU it was woken on: free to move again. A helper that cannot widen its affinity back
      // stays where it is (it still runs everything it is given), and nobody is narrowed again.
      if (pinned && sched_setaffinity(0, sizeof me.where.home, &me.where.home) != 0)
        g_placement.store(false, std::memory_order_relaxed);
#else
      (void)pinned;
#endif
      unsigned lane;
      {
        std::lock_guard<std::mutex> lock(job->mu);
        if (job->closed) continue;
        ++job->inside;
        lane = job->ClaimLane(job->HelperLane(me.number));
      }
      job->RunItems(lane);
      std::lock_guard<std::mutex> lock(job->mu);
      if (--job->inside == 0) job->left.notify_all();
    }
  }
  std::mutex mu_;
  std::vector<std::unique_ptr<Helper>> helpers_;  // never shrinks (but in a forked child); a Helper never moves
  std::deque<std::shared_ptr<Job>> queue_;
};

}  // namespace

void ParallelFor(size_t n, unsigned threads, FnRef<void(size_t)> body) {
  unsigned helpers = static_cast<unsigned>(std::min<size_t>(threads > 0 ? threads - 1 : 0, n > 0 ? n - 1 : 0));
  helpers = std::min(helpers, Pool::kMaxHelpers);
  if (helpers == 0) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  auto job = std::make_shared<Job>(n, helpers + 1, /*caller_lane=*/true, body);
  unsigned own;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    own = job->ClaimLane(0);
  }
  Pool::Get().Offer(job, helpers);
  job->RunItems(own);
  std::unique_lock<std::mutex> lock(job->mu);
  job->closed = true;
  job->left.wait(lock, [&] { return job->inside == 0; });
  if (job->error) std::rethrow_exception(job->error);
}

namespace {
unsigned PoolHelpers(size_t n, unsigned threads) {
  return std::min(static_cast<unsigned>(std::min<size_t>(std::max(threads, 1u), std::max<size_t>(n, 1))),
                  Pool::kMaxHelpers);
}
}  // namespace

PoolRun::PoolRun(size_t n, unsigned threads, FnRef<void(size_t)> body)
    : job_(std::make_shared<Job>(n, PoolHelpers(n, threads), /*caller_lane=*/false, body)) {
  if (n == 0) return;
  Pool::Get().Offer(job_, job_->lane_count);
}

void PoolRun::Wait() {
  if (waited_) return;
  waited_ = true;
  Job& job = *job_;
  std::unique_lock<std::mutex> lock(job.mu);
  // Every index done (or one failed), and no helper inside: helpers notify `left` when the last one leaves.
  job.left.wait(lock, [&] {
    return (job.done.load(std::memory_order_acquire) == job.n || job.failed.load()) && job.inside == 0;
  });
  job.closed = true;
  if (job.error) std::rethrow_exception(job.error);
}

PoolRun::~PoolRun() {
  try {
    Wait();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the caller did not wait, so it does not want the error
  }
}

void ParallelForOnPool(size_t n, unsigned threads, FnRef<void(size_t)> body) { PoolRun(n, threads, body).Wait(); }

}  // namespace tokmeter::tokenizer
