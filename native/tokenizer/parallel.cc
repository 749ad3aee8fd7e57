#include "tokenizer/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace tokmeter::tokenizer {

struct PoolJob {
  PoolJob(size_t n_, FnRef<void(size_t)> body_) : n(n_), body(body_) {}
  const size_t n;
  const FnRef<void(size_t)> body;  // valid until the caller has closed the job and every helper inside it has left
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable left;
  unsigned inside = 0;  // helpers running items (guarded by mu)
  bool closed = false;  // the caller is done: late helpers must not start (guarded by mu)
  std::exception_ptr error;

  void RunItems() {
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n || failed.load(std::memory_order_relaxed)) return;
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
      std::thread([this] { Loop(); }).detach();
      ++started_;
    }
    for (unsigned k = 0; k < helpers; ++k) queue_.push_back(job);
    for (unsigned k = 0; k < helpers; ++k) wake_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      {
        std::lock_guard<std::mutex> lock(job->mu);
        if (job->closed) continue;
        ++job->inside;
      }
      job->RunItems();
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
  auto job = std::make_shared<Job>(n, body);
  Pool::Get().Offer(job, helpers);
  job->RunItems();
  std::unique_lock<std::mutex> lock(job->mu);
  job->closed = true;
  job->left.wait(lock, [&] { return job->inside == 0; });
  if (job->error) std::rethrow_exception(job->error);
}

PoolRun::PoolRun(size_t n, unsigned threads, FnRef<void(size_t)> body) : job_(std::make_shared<Job>(n, body)) {
  if (n == 0) return;
  unsigned helpers = static_cast<unsigned>(std::min<size_t>(std::max(threads, 1u), n));
  helpers = std::min(helpers, Pool::kMaxHelpers);
  Pool::Get().Offer(job_, helpers);
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
