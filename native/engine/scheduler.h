// Scheduler — the inference thread of one loaded model and the queue that feeds it (STYLE.md §6; the shape of
// llama.cpp's server queue). Generations run one at a time (batch 1) in arrival order; issue 5's continuous
// batching replaces the inner loop of Run() with steps over all active sequences.
//
// Streaming contract (per generation, through a GenerationStream):
// - The inference thread calls sink->OnStep() after every step and sink->OnDone() exactly once at the end (also
//   after an abort or an error). The sink decides how often to hop to JS (the addon coalesces several steps per
//   hop). Nothing here knows N-API.
// - Backpressure: the consumer acknowledges tokens it has taken (Acknowledge). When `window` tokens are delivered
//   but unacknowledged, the inference thread waits before the next step, so a slow reader holds the engine at a
//   bounded number of buffered tokens instead of letting it buffer the whole completion.
// - Abort: GenerationStream::Abort() (any thread) wakes a waiting loop and interrupts a Run in progress; the loop
//   ends at the next step, frees the sequence (its KV cache) and reports usage of what was processed.
// Lifetime: the Scheduler is owned by the loaded model. Shutdown() aborts queued and running generations (their
// sinks still get OnDone with finish reason 'abort'), then joins the thread; it is idempotent and the destructor
// calls it. Shutdown must not be called from the inference thread itself.
#pragma once

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

class GenerationStream {
 public:
  GenerationStream(std::unique_ptr<StreamSink> sink, size_t window) : sink_(std::move(sink)), window_(window) {}
  void Abort() noexcept;
  void Acknowledge(size_t tokens) noexcept;
  bool aborted() const noexcept;
  StreamSink& sink() noexcept { return *sink_; }

 private:
  friend class Scheduler;
  // Inference thread: counts a delivered token and waits while the window is full. Returns false when aborted.
  bool DeliveredAndWait();
  void Attach(Generator* generator);

  std::unique_ptr<StreamSink> sink_;
  size_t window_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  size_t delivered_ = 0;
  size_t acknowledged_ = 0;
  bool aborted_ = false;
  Generator* running_ = nullptr;  // set while the generator exists, under mutex_
};

struct GenerationRequest {
  std::vector<uint32_t> prompt;
  GenerationParams params;
  DetokenizerFactory detokenizer;  // may be empty (no text)
  std::shared_ptr<GenerationStream> stream;
};

class Scheduler {
 public:
  // maxQueue: most generations waiting behind the running one (0: unbounded).
  explicit Scheduler(std::shared_ptr<LanguageModel> model, size_t maxQueue = 0);
  ~Scheduler();
  // Queues a generation (FIFO). Throws ERR_DISPOSED after Shutdown(), ERR_QUEUE_FULL when maxQueue generations
  // are already waiting (the request is not queued; nothing ran).
  void Submit(GenerationRequest request);
  void Shutdown();
  size_t pending() const;  // queued + running
  size_t queued() const;
  size_t running() const;

 private:
  void Loop();
  GenerationOutcome Run(GenerationRequest& request);  // the caller sends OnDone

  std::shared_ptr<LanguageModel> model_;
  size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<GenerationRequest> queue_;
  std::shared_ptr<GenerationStream> current_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tokmeter::engine
