// tokmeter::tokenizer::ParallelFor — runs body(i) for i in [0, n) on up to `threads` threads, the calling thread
// included, for batch counting and encoding (countBatch / encodeBatch).
//
// Threads: the helpers come from one process-wide pool that is created on first use, grows to the largest number of
// helpers asked for (capped at 63) and lives until the process exits (its threads are detached and idle on a
// condition variable; nothing is torn down at exit, so a batch still running then cannot hang it). Helpers keep
// their thread-local tokenizer scratch (BPE word and pair caches) warm across batches: fresh threads per call made
// every batch start with cold caches on all threads but the caller's, which is what a 2-thread run measured.
// Helpers are woken one by one, each with a job handed to it; on Linux, when the woken helpers and the caller
// outnumber the CPUs, each starts on a CPU of its own (parallel.cc, Placement). A child forked without exec starts
// helpers of its own.
// Work is handed out one index at a time (dynamic balancing: documents differ in size by orders of magnitude), from
// per-thread lanes: each thread runs the indices of its own lane first (the same lane on every call, so a batch
// counted again mostly meets the caches that saw its documents) and then takes from the back of the others.
//
// Errors: the first exception thrown by body is rethrown on the calling thread after every index that was started
// has finished; indices not yet started are skipped. ParallelFor returns only when no helper touches `body` any
// more, so body may reference the caller's stack.
#pragma once

#include <cstddef>
#include <memory>

#include "tokenizer/fn_ref.h"

namespace tokmeter::tokenizer {

void ParallelFor(size_t n, unsigned threads, FnRef<void(size_t)> body);

// Like ParallelFor, but every index runs on `threads` pool helpers while the calling thread only waits. For callers
// that are not where the work should run: a libuv worker (one of several, picked per call) would run its share with
// its own thread-local caches, cold on most calls, where the pool's helpers have theirs warm from the last batch.
void ParallelForOnPool(size_t n, unsigned threads, FnRef<void(size_t)> body);

struct PoolJob;

// ParallelForOnPool started without waiting: the helpers start on the indices at once while the caller goes on (a
// batch's texts are still being copied on the JS thread while the first ones are counted). Wait() returns when
// every index has run and no helper touches `body` any more, and rethrows body's first error; the destructor waits
// too (errors dropped), so body's referents must outlive the PoolRun.
class PoolRun {
 public:
  PoolRun(size_t n, unsigned threads, FnRef<void(size_t)> body);
  PoolRun(const PoolRun&) = delete;
  PoolRun& operator=(const PoolRun&) = delete;
  ~PoolRun();
  void Wait();

 private:
  std::shared_ptr<PoolJob> job_;
  bool waited_ = false;
};

}  // namespace tokmeter::tokenizer
