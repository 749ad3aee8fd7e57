#include "engine/scheduler.h"

#include <algorithm>

#include "engine/kv_budget.h"
#include "util/error.h"

namespace tokmeter::engine {

// ---- GenerationStream ----

void GenerationStream::Abort() noexcept {
  std::shared_ptr<SchedulerSignal> signal;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    if (running_ != nullptr) running_->Abort();
    signal = signal_;
  }
  if (signal) signal->Notify();
}

void GenerationStream::Acknowledge(size_t tokens) noexcept {
  std::shared_ptr<SchedulerSignal> signal;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    acknowledged_ += tokens;
    signal = signal_;
  }
  if (signal) signal->Notify();
}

bool GenerationStream::aborted() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return aborted_;
}

void GenerationStream::Delivered() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  ++delivered_;
}

bool GenerationStream::Full() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return delivered_ - std::min(acknowledged_, delivered_) >= window_;
}

void GenerationStream::Attach(Generator* generator) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = generator;
  if (generator != nullptr && aborted_) generator->Abort();
}

void GenerationStream::SetSignal(std::shared_ptr<SchedulerSignal> signal) {
  std::lock_guard<std::mutex> lock(mutex_);
  signal_ = std::move(signal);
}

// ---- Scheduler ----

struct Scheduler::Slot {
  GenerationRequest request;
  std::unique_ptr<Generator> generator;
  size_t capacity = 0;
  bool finished = false;
};

namespace {

GenerationOutcome FailureOf(const std::exception_ptr& error, const Generator* generator) {
  GenerationOutcome outcome;
  outcome.failed = true;
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    outcome.errorCode = e.code();
    outcome.errorMessage = e.what();
  } catch (const std::bad_alloc&) {
    outcome.errorCode = "ERR_OUT_OF_MEMORY";
    outcome.errorMessage = "native code ran out of memory during generation";
  } catch (const std::exception& e) {
    outcome.errorCode = codes::kInternal;
    outcome.errorMessage = std::string("internal error: ") + e.what();
  } catch (...) {
    outcome.errorCode = codes::kInternal;
    outcome.errorMessage = "internal error";
  }
  if (generator != nullptr) outcome.usage = generator->usage();
  return outcome;
}

bool IsAbort(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return e.code() == "ERR_ABORTED";
  } catch (...) {
    return false;
  }
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<LanguageModel> model, SchedulerOptions options)
    : model_(std::move(model)),
      options_(options),
      max_batch_(std::max<size_t>(1, std::min(options.maxBatch, model_->maxBatchRows()))),
      per_token_(model_->kvBytesPerToken()),
      signal_(std::make_shared<SchedulerSignal>()) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

size_t Scheduler::CapacityOf(const GenerationRequest& request) const noexcept {
  return KvCapacity(model_->contextLength(), request.prompt.size(), request.params.maxNewTokens);
}

size_t Scheduler::Reservation(size_t count, size_t maxCapacity) const noexcept {
  return KvReservation(per_token_, count, maxCapacity);
}

void Scheduler::Submit(GenerationRequest request) {
  const size_t capacity = CapacityOf(request);
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    if (stopping_) throw Error("ERR_DISPOSED", "the model is disposed");
    const size_t alone = Reservation(1, capacity);
    if (options_.kvBudgetBytes > 0 && alone > options_.kvBudgetBytes) {
      throw Error("ERR_KV_BUDGET", "the request needs " + std::to_string(alone) + " bytes of KV cache (" +
                                       std::to_string(capacity) + " tokens: prompt " +
                                       std::to_string(request.prompt.size()) +
                                       " + maxNewTokens, within the context; x " + std::to_string(per_token_) +
                                       " bytes per token x 2 buffers), more than the model's kvCacheBytes budget of " +
                                       std::to_string(options_.kvBudgetBytes) +
                                       "; lower maxNewTokens or load the model with a larger kvCacheBytes");
    }
    if (options_.maxQueue > 0 && queue_.size() >= options_.maxQueue) {
      throw Error("ERR_QUEUE_FULL", "the model's queue is full: " + std::to_string(queue_.size()) +
                                        " generations are waiting (maxQueue " + std::to_string(options_.maxQueue) +
                                        "); retry later");
    }
    request.stream->SetSignal(signal_);
    queue_.push_back(std::move(request));
    ++signal_->epoch;
  }
  signal_->cv.notify_all();
}

size_t Scheduler::pending() const {
  std::lock_guard<std::mutex> lock(signal_->mutex);
  return queue_.size() + running_;
}

size_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(signal_->mutex);
  return queue_.size();
}

size_t Scheduler::running() const {
  std::lock_guard<std::mutex> lock(signal_->mutex);
  return running_;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    s.running = running_;
    s.queued = queue_.size();
    s.kvReservedBytes = reserved_;
  }
  s.prefilling = prefilling_.load();
  s.parked = parked_.load();
  s.lastBatch = last_batch_.load();
  s.maxBatch = max_batch_;
  s.steps = steps_.load();
  s.rows = rows_.load();
  s.kvBudgetBytes = options_.kvBudgetBytes;
  return s;
}

void Scheduler::Shutdown() {
  std::deque<GenerationRequest> dropped;
  std::vector<std::shared_ptr<GenerationStream>> running;
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    dropped.swap(queue_);
    running = active_;
    ++signal_->epoch;
  }
  for (auto& stream : running) stream->Abort();  // interrupts a prefill Run in progress (Abort notifies the signal)
  signal_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& request : dropped) {
    GenerationOutcome outcome;
    outcome.finishReason = FinishReason::kAbort;
    request.stream->sink().OnDone(outcome);
  }
}

void Scheduler::UpdateReservation() {
  size_t count = 0, capacity = 0;
  for (const auto& slot : slots_) {
    if (slot->finished) continue;
    ++count;
    capacity = std::max(capacity, slot->capacity);
  }
  const size_t reserved = Reservation(count, capacity);
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    reserved_ = reserved;
  }
  if (options_.kvBudgetBytes > 0 && options_.prefixCache)
    options_.prefixCache->SetLimit(options_.kvBudgetBytes - std::min(reserved, options_.kvBudgetBytes));
}

void Scheduler::Finish(Slot& slot, GenerationOutcome outcome) {
  slot.finished = true;
  slot.request.stream->Attach(nullptr);
  slot.generator.reset();  // frees the sequence (its KV, its batch row) before the consumer hears that it is done
  UpdateReservation();     // and its reservation (stats are exact when the consumer hears it)
  size_t parked = 0, prefilling = 0;
  for (const auto& other : slots_) {
    if (other->finished || !other->generator) continue;
    if (!other->generator->prefilled()) {
      ++prefilling;
    } else if (other->request.stream->Full()) {
      ++parked;
    }
  }
  parked_ = parked;
  prefilling_ = prefilling;
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    --running_;
    auto it = std::find(active_.begin(), active_.end(), slot.request.stream);
    if (it != active_.end()) active_.erase(it);
  }
  slot.request.stream->sink().OnDone(outcome);
}

void Scheduler::Loop() {
  const size_t vocab = model_->vocabSize();
  std::vector<SequenceState*> sequences;
  std::vector<uint32_t> tokens;
  std::vector<float> logits;
  const bool device = model_->samplesOnDevice();
  const bool prefill_whole = model_->prefillWhole();
  std::vector<double> uniforms;
  std::vector<uint32_t> ids;
  std::vector<float> logprobs;
  std::vector<Slot*> decode, prefills;
  for (;;) {
    std::vector<GenerationRequest> admitted, cancelled;
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(signal_->mutex);
      if (stopping_) break;
      seen = signal_->epoch;
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->stream->aborted()) {
          cancelled.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      // 1. Admit, FIFO, within maxBatch and the KV budget.
      size_t count = slots_.size(), capacity = 0;
      for (const auto& slot : slots_) capacity = std::max(capacity, slot->capacity);
      while (!queue_.empty() && count < max_batch_) {
        const size_t need = std::max(capacity, CapacityOf(queue_.front()));
        if (options_.kvBudgetBytes > 0 && count > 0 && Reservation(count + 1, need) > options_.kvBudgetBytes) break;
        capacity = need;
        ++count;
        active_.push_back(queue_.front().stream);
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      running_ += admitted.size();
    }
    for (auto& request : cancelled) {
      GenerationOutcome outcome;
      outcome.finishReason = FinishReason::kAbort;
      request.stream->sink().OnDone(outcome);
    }
    for (auto& request : admitted) {
      auto slot = std::make_unique<Slot>();
      slot->capacity = CapacityOf(request);
      slot->request = std::move(request);
      slots_.push_back(std::move(slot));
    }
    if (!admitted.empty()) UpdateReservation();  // the prefix cache makes room before the newcomers prefill
    for (auto& slot : slots_) {
      if (slot->generator || slot->finished) continue;
      GenerationRequest& r = slot->request;
      try {
        slot->generator = std::make_unique<Generator>(model_, std::move(r.prompt), std::move(r.params),
                                                      r.detokenizer ? r.detokenizer() : nullptr);
        slot->generator->UsePrefixCache(options_.prefixCache);
        r.stream->Attach(slot->generator.get());
      } catch (...) {
        Finish(*slot, FailureOf(std::current_exception(), nullptr));
      }
    }

    // 2. Aborted sequences leave between steps.
    for (auto& slot : slots_) {
      if (slot->finished || !slot->generator->abortRequested()) continue;
      slot->generator->FinishAborted();
      GenerationOutcome outcome;
      outcome.finishReason = FinishReason::kAbort;
      outcome.usage = slot->generator->usage();
      Finish(*slot, outcome);
    }

    // Who steps: prefilled and not parked; unprefilled sequences, oldest first, share this step's prefill budget.
    decode.clear();
    prefills.clear();
    size_t parked = 0, prefilling = 0;
    for (auto& slot : slots_) {
      if (slot->finished) continue;
      if (!slot->generator->prefilled()) {
        ++prefilling;
        prefills.push_back(slot.get());
      } else if (slot->request.stream->Full()) {
        ++parked;
      } else {
        decode.push_back(slot.get());
      }
    }
    parked_ = parked;
    prefilling_ = prefilling;

    const bool work = !prefills.empty() || !decode.empty();
    if (!work) {
      const bool removed = std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->finished; });
      if (removed) {
        std::erase_if(slots_, [](const auto& s) { return s->finished; });
        continue;  // room may have opened for the queue
      }
      std::unique_lock<std::mutex> lock(signal_->mutex);
      signal_->cv.wait(lock, [&] { return stopping_ || signal_->epoch != seen; });
      continue;
    }

    // 3. Prefill: at most prefillChunk prompt tokens per step in all, oldest first (the oldest gets its whole prompt
    // when nothing else decodes). Short prompts arriving together are all prefilled in one step instead of one per
    // step with a decode step between each.
    size_t budget = options_.prefillChunk == 0 ? static_cast<size_t>(-1) : options_.prefillChunk;
    for (size_t i = 0; i < prefills.size(); ++i) {
      Slot* prefill = prefills[i];
      // A model whose prompts must go in whole (prefillWhole) still waits for budget left in this step.
      const bool whole = (i == 0 && decode.empty()) || (prefill_whole && (i == 0 || budget > 0));
      if (!whole && budget == 0) break;
      Generator& g = *prefill->generator;
      const size_t before = g.promptComputed();
      try {
        const StepResult* first = g.Prefill(whole ? 0 : budget);
        if (first != nullptr) {
          prefill->request.stream->sink().OnStep(*first);
          if (g.done()) {
            GenerationOutcome outcome;
            outcome.finishReason = g.finishReason();
            outcome.usage = g.usage();
            Finish(*prefill, outcome);
          } else {
            prefill->request.stream->Delivered();
          }
        }
      } catch (...) {
        const auto error = std::current_exception();
        if (IsAbort(error)) {
          g.FinishAborted();
          GenerationOutcome outcome;
          outcome.finishReason = FinishReason::kAbort;
          outcome.usage = g.usage();
          Finish(*prefill, outcome);
        } else {
          Finish(*prefill, FailureOf(error, &g));
        }
      }
      // What was computed (prompt tokens served by the prefix cache cost nothing).
      const size_t used = g.promptComputed() - before;
      budget = used >= budget ? 0 : budget - used;
    }

    // 4. One batched decode step.
    if (!decode.empty()) {
      sequences.clear();
      tokens.clear();
      for (Slot* slot : decode) {
        sequences.push_back(&slot->generator->sequence());
        tokens.push_back(slot->generator->nextInput());
      }
      last_batch_ = decode.size();
      try {
        if (device) {
          // Logits stay on the device: sample every row there, only the ids come back. Rows that sample on the
          // host (a logit bias, top-N alternatives) also get the batch's logits copied over; their ids are unused.
          const bool host_rows =
              std::any_of(decode.begin(), decode.end(), [](const Slot* s) { return !s->generator->samplesOnDevice(); });
          model_->ForwardBatch(sequences, tokens, {});
          if (host_rows) {
            logits.resize(decode.size() * vocab);
            model_->LastLogitsToHost(logits, false);
          }
          uniforms.clear();
          for (Slot* slot : decode) uniforms.push_back(slot->generator->DrawUniform());
          ids.resize(decode.size());
          logprobs.resize(decode.size());
          model_->SampleLast(sequences, uniforms, ids, logprobs);
        } else {
          logits.resize(decode.size() * vocab);
          model_->ForwardBatch(sequences, tokens, logits);
        }
        steps_ += 1;
        rows_ += decode.size();
      } catch (...) {
        const auto error = std::current_exception();
        for (Slot* slot : decode) Finish(*slot, FailureOf(error, slot->generator.get()));
        decode.clear();
      }
      for (size_t i = 0; i < decode.size(); ++i) {
        Slot& slot = *decode[i];
        Generator& g = *slot.generator;
        try {
          const StepResult& step = device && g.samplesOnDevice()
                                       ? g.AcceptToken(ids[i], logprobs[i])
                                       : g.Accept(std::span<const float>(logits.data() + i * vocab, vocab));
          slot.request.stream->sink().OnStep(step);
          if (g.done()) {
            GenerationOutcome outcome;
            outcome.finishReason = g.finishReason();
            outcome.usage = g.usage();
            Finish(slot, outcome);
          } else {
            slot.request.stream->Delivered();
          }
        } catch (...) {
          Finish(slot, FailureOf(std::current_exception(), &g));
        }
      }
    }
    if (std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->finished; })) {
      std::erase_if(slots_, [](const auto& s) { return s->finished; });
    }
  }
  // Shutdown: every admitted generation ends as aborted, with the usage of what was processed.
  for (auto& slot : slots_) {
    if (slot->finished) continue;
    GenerationOutcome outcome;
    outcome.finishReason = FinishReason::kAbort;
    if (slot->generator) {
      slot->generator->FinishAborted();
      outcome.usage = slot->generator->usage();
    }
    Finish(*slot, outcome);
  }
  slots_.clear();
  parked_ = 0;
  prefilling_ = 0;
}

}  // namespace tokmeter::engine
