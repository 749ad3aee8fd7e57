#include "tokenizer/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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

class Pool {
 public:
  static constexpr unsigned kMaxHelpers = 63;
  // Never destroyed: detached helpers may still be waiting on it at exit.
  static Pool& Get() {
    static Pool* pool = new Pool();
    return *pool;
  }
  void Offer(const std::shared_ptr<Job>& job, unsigned helpers) {
    std::lock_guard<std::mutex> lock(mu_);
    while (started_ < helpers && started_ < kMaxHelpers) {
      std::thread([this, number = started_] { Loop(number); }).detach();
      ++started_;
    }
    for (unsigned k = 0; k < helpers; ++k) queue_.push_back(job);
    for (unsigned k = 0; k < helpers; ++k) wake_.notify_one();
  }

 private:
  void Loop(unsigned number) {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      unsigned lane;
      {
        std::lock_guard<std::mutex> lock(job->mu);
        if (job->closed) continue;
        ++job->inside;
        lane = job->ClaimLane(job->HelperLane(number));
      }
      job->RunItems(lane);
      std::lock_guard<std::mutex> lock(job->mu);
      if (--job->inside == 0) job->left.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  unsigned started_ = 0;
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
