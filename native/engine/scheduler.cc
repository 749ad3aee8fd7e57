#include "engine/scheduler.h"

#include "util/error.h"

namespace tokmeter::engine {

void GenerationStream::Abort() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  aborted_ = true;
  if (running_ != nullptr) running_->Abort();
  cv_.notify_all();
}

void GenerationStream::Acknowledge(size_t tokens) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  acknowledged_ += tokens;
  cv_.notify_all();
}

bool GenerationStream::aborted() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return aborted_;
}

bool GenerationStream::DeliveredAndWait() {
  std::unique_lock<std::mutex> lock(mutex_);
  ++delivered_;
  cv_.wait(lock, [&] { return aborted_ || delivered_ - std::min(acknowledged_, delivered_) < window_; });
  return !aborted_;
}

void GenerationStream::Attach(Generator* generator) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = generator;
  if (generator != nullptr && aborted_) generator->Abort();
}

Scheduler::Scheduler(std::shared_ptr<LanguageModel> model, size_t maxQueue)
    : model_(std::move(model)), max_queue_(maxQueue) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::Submit(GenerationRequest request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw Error("ERR_DISPOSED", "the model is disposed");
    if (max_queue_ > 0 && queue_.size() >= max_queue_) {
      throw Error("ERR_QUEUE_FULL", "the model's queue is full: " + std::to_string(queue_.size()) +
                                        " generations are waiting (maxQueue " + std::to_string(max_queue_) +
                                        "); retry later");
    }
    queue_.push_back(std::move(request));
  }
  cv_.notify_one();
}

size_t Scheduler::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size() + (current_ ? 1 : 0);
}

size_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

size_t Scheduler::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_ ? 1 : 0;
}

void Scheduler::Shutdown() {
  std::deque<GenerationRequest> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    dropped.swap(queue_);
    if (current_) current_->Abort();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& request : dropped) {
    GenerationOutcome outcome;
    outcome.finishReason = FinishReason::kAbort;
    request.stream->sink().OnDone(outcome);
  }
}

void Scheduler::Loop() {
  for (;;) {
    GenerationRequest request;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // Shutdown() settles what is left in the queue
      request = std::move(queue_.front());
      queue_.pop_front();
      current_ = request.stream;
    }
    const GenerationOutcome outcome = Run(request);
    {
      // Not running any more before the consumer hears that it is done (stats().running is then exact).
      std::lock_guard<std::mutex> lock(mutex_);
      current_.reset();
    }
    request.stream->sink().OnDone(outcome);
  }
}

GenerationOutcome Scheduler::Run(GenerationRequest& request) {
  GenerationStream& stream = *request.stream;
  GenerationOutcome outcome;
  std::unique_ptr<Generator> generator;
  try {
    generator = std::make_unique<Generator>(model_, std::move(request.prompt), std::move(request.params),
                                            request.detokenizer ? request.detokenizer() : nullptr);
    stream.Attach(generator.get());
    while (!generator->done()) {
      try {
        const StepResult& step = generator->Step();
        stream.sink().OnStep(step);
      } catch (const Error& e) {
        if (e.code() != "ERR_ABORTED") throw;
        generator->FinishAborted();
        break;
      }
      if (generator->done()) break;
      if (!stream.DeliveredAndWait()) generator->Abort();
    }
    outcome.finishReason = generator->finishReason();
    outcome.usage = generator->usage();
  } catch (const Error& e) {
    outcome.failed = true;
    outcome.errorCode = e.code();
    outcome.errorMessage = e.what();
    if (generator) outcome.usage = generator->usage();
  } catch (const std::bad_alloc&) {
    outcome.failed = true;
    outcome.errorCode = "ERR_OUT_OF_MEMORY";
    outcome.errorMessage = "native code ran out of memory during generation";
  } catch (const std::exception& e) {
    outcome.failed = true;
    outcome.errorCode = codes::kInternal;
    outcome.errorMessage = std::string("internal error: ") + e.what();
  }
  stream.Attach(nullptr);
  generator.reset();  // frees the sequence before the consumer hears that it is done
  return outcome;
}

}  // namespace tokmeter::engine
