// Scheduler — the inference thread of one loaded model and the queue that feeds it (the shape of
// llama.cpp's server queue), with continuous batching.
//
// Loop (one iteration; everything runs on the inference thread):
//   1. Admit from the FIFO queue while fewer than maxBatch sequences run and the head request's KV reservation fits
//      the budget next to the running ones (strict FIFO: a head that does not fit waits, and so does everyone behind
//      it). Queued requests whose stream was aborted are settled and dropped.
//   2. Settle sequences whose stream was aborted (between steps: never inside another sequence's model call).
//   3. Prefill: admitted sequences that are not prefilled, oldest first, share a budget of prefillChunk prompt
//      tokens per step (solo Forwards; the oldest gets its whole prompt when nothing else is decoding, and what it
//      used comes off the budget). So newcomers delay the running sequences by at most one chunk per step (chunked
//      prefill), a long prompt is spread over several steps, and short prompts that arrive together are all
//      prefilled in one step. When its prompt is complete a sequence samples its first token and joins the batch at
//      the next step.
//   4. Decode: one LanguageModel::ForwardBatch over every prefilled sequence that is not parked, then each samples
//      its token (its own processors, sampler, stop rules) and streams it. Sequences that finish leave at once.
// Backpressure: the consumer acknowledges tokens it has taken (GenerationStream::Acknowledge). A sequence whose
// `window` tokens are delivered but unacknowledged is parked: it keeps its KV (the model moves it out of the batch
// into its own cache) and is left out of the steps until the consumer takes tokens; the others keep stepping. A
// consumer that never reads therefore holds its own KV reservation and batch slot, nothing else.
// KV budget (kvBudgetBytes, shared with the prefix cache): the running set — prefilling, decoding and parked — is
// charged KvReservation(kvBytesPerToken, n, C) (kv_budget.h), where n is its size and C the largest KvCapacity among
// them: exactly the batch's ping-pong buffers with every row padded to the longest (batch_kv.h). The prefix cache may
// hold the rest (PrefixCache::SetLimit evicts when a request is admitted). Submit refuses a request whose
// reservation alone (2 x kvBytesPerToken x capacity) exceeds the budget with ERR_KV_BUDGET. Not counted: the transient
// copy while a relayout grows the batch buffers, and a sequence's own cache while it is prefilled (its pages are
// touched as the prompt goes in, at most 2 x prompt x kvBytesPerToken). Streaming contract (per generation, through a
// GenerationStream): sink->OnStep() after every step, sink->OnDone() exactly once at the end (also after an abort or an
// error). Nothing here knows N-API. Abort: GenerationStream::Abort() (any thread) marks the generation and wakes the
// loop; the loop settles it before the next step (interrupting its own prefill Run, never a batched Run), frees its KV,
// reports usage of what was processed. The other sequences are not touched. Lifetime: the Scheduler is owned by the
// Engine (engine.h). Shutdown() aborts queued and running generations (their sinks still get OnDone with finish reason
// 'abort'), then joins the thread; it is idempotent and the destructor calls it. Shutdown must not be called from the
// inference thread itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/generator.h"

namespace tokmeter::engine {

struct GenerationOutcome {
  FinishReason finishReason = FinishReason::kNone;
  Usage usage;
  bool failed = false;
  std::string errorCode;
  std::string errorMessage;
};

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void OnStep(const StepResult& step) = 0;            // inference thread
  virtual void OnDone(const GenerationOutcome& outcome) = 0;  // inference thread (or Shutdown's caller)
};

// What wakes the inference thread: a submit, an acknowledgement, an abort, a shutdown. Shared by the scheduler and
// every stream it was given (a stream may outlive the scheduler).
struct SchedulerSignal {
  std::mutex mutex;  // also guards the scheduler's queue and counters
  std::condition_variable cv;
  uint64_t epoch = 0;
  void Notify() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++epoch;
    }
    cv.notify_all();
  }
};

class GenerationStream {
 public:
  GenerationStream(std::unique_ptr<StreamSink> sink, size_t window) : sink_(std::move(sink)), window_(window) {}
  void Abort() noexcept;
  void Acknowledge(size_t tokens) noexcept;
  bool aborted() const noexcept;
  StreamSink& sink() noexcept { return *sink_; }

 private:
  friend class Scheduler;
  void Delivered() noexcept;   // inference thread: one more token handed to the sink
  bool Full() const noexcept;  // `window` tokens unacknowledged: park
  void Attach(Generator* generator);
  void SetSignal(std::shared_ptr<SchedulerSignal> signal);

  std::unique_ptr<StreamSink> sink_;
  size_t window_;
  mutable std::mutex mutex_;
  size_t delivered_ = 0;
  size_t acknowledged_ = 0;
  bool aborted_ = false;
  Generator* running_ = nullptr;  // set while the generator exists, under mutex_
  std::shared_ptr<SchedulerSignal> signal_;
};

struct GenerationRequest {
  std::vector<uint32_t> prompt;
  GenerationParams params;
  DetokenizerFactory detokenizer;  // may be empty (no text)
  std::shared_ptr<GenerationStream> stream;
};

struct SchedulerOptions {
  size_t maxQueue = 0;        // most generations waiting (0: unbounded)
  size_t maxBatch = 1;        // most generations running together (clamped to the model's maxBatchRows())
  size_t kvBudgetBytes = 0;   // running KV reservation + prefix cache (0: no budget)
  size_t prefillChunk = 256;  // most prompt tokens prefilled per step while others decode (0: whole prompts)
  // The engine's prompt-prefix cache (null: none): every generation reuses and offers prompts through it, and it may
  // hold what the running generations' reservation leaves of kvBudgetBytes.
  std::shared_ptr<PrefixCache> prefixCache;
};

struct SchedulerStats {
  size_t running = 0;     // admitted and not finished: prefilling + decoding + parked
  size_t queued = 0;      // waiting in the FIFO queue
  size_t prefilling = 0;  // admitted, prompt not complete
  size_t parked = 0;      // left out of the steps: their consumer has `window` tokens unread
  size_t lastBatch = 0;   // rows of the last decode step
  size_t maxBatch = 0;    // the effective limit
  uint64_t steps = 0;     // decode steps (batched model calls)
  uint64_t rows = 0;      // sequence-steps they made (rows / steps = mean batch)
  size_t kvReservedBytes = 0;
  size_t kvBudgetBytes = 0;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<LanguageModel> model, SchedulerOptions options);
  // Batch 1, no budget (the tests' shorthand).
  explicit Scheduler(std::shared_ptr<LanguageModel> model, size_t maxQueue = 0)
      : Scheduler(std::move(model), SchedulerOptions{maxQueue, 1, 0, 0}) {}
  ~Scheduler();
  // Queues a generation (FIFO). Throws ERR_DISPOSED after Shutdown(), ERR_KV_BUDGET when the request's KV
  // reservation alone exceeds the budget, ERR_QUEUE_FULL when maxQueue generations are already waiting (the request
  // is not queued; nothing ran).
  void Submit(GenerationRequest request);
  void Shutdown();
  size_t pending() const;  // queued + running
  size_t queued() const;
  size_t running() const;
  SchedulerStats stats() const;

 private:
  struct Slot;
  void Loop();
  size_t CapacityOf(const GenerationRequest& request) const noexcept;
  size_t Reservation(size_t count, size_t maxCapacity) const noexcept;
  void UpdateReservation();
  void Finish(Slot& slot, GenerationOutcome outcome);

  std::shared_ptr<LanguageModel> model_;
  SchedulerOptions options_;
  size_t max_batch_;
  size_t per_token_;
  std::shared_ptr<SchedulerSignal> signal_;
  // Under signal_->mutex:
  std::deque<GenerationRequest> queue_;
  std::vector<std::shared_ptr<GenerationStream>> active_;  // streams of admitted generations (Shutdown aborts them)
  size_t running_ = 0;
  size_t reserved_ = 0;
  bool stopping_ = false;
  // Inference thread only:
  std::vector<std::unique_ptr<Slot>> slots_;
  // Written by the inference thread, read by stats():
  std::atomic<size_t> prefilling_{0}, parked_{0}, last_batch_{0};
  std::atomic<uint64_t> steps_{0}, rows_{0};
  std::thread thread_;
};

}  // namespace tokmeter::engine
