#include "engine/engine.h"

#include <algorithm>
#include <string_view>

#include "util/error.h"

namespace tokmeter::engine {

namespace {

void CheckRequest(const GenerationRequest& request, size_t window) {
  const GenerationParams& p = request.params;
  if (p.maxNewTokens > kMaxNewTokensLimit) {
    throw Error(codes::kInvalidArgument, "expected an integer in [1, " + std::to_string(kMaxNewTokensLimit) +
                                             "] for maxNewTokens, got " + std::to_string(p.maxNewTokens));
  }
  if (window < 1 || window > kMaxWindow) {
    throw Error(codes::kInvalidArgument, "expected an integer in [1, " + std::to_string(kMaxWindow) +
                                             "] for highWaterMark, got " + std::to_string(window));
  }
  if (p.stopStrings.size() > kMaxStopStrings) {
    throw Error(codes::kInvalidArgument, "expected at most " + std::to_string(kMaxStopStrings) +
                                             " strings for stop, got " + std::to_string(p.stopStrings.size()));
  }
  for (const auto& s : p.stopStrings)
    if (s.empty()) throw Error(codes::kInvalidArgument, "expected non-empty stop strings");
  if (!p.stopStrings.empty() && !request.detokenizer)
    throw Error(codes::kInvalidArgument, "stop strings need a tokenizer to turn tokens into text");
  ValidateSamplingOptions(p.sampling);
  if (p.topLogprobs > kMaxTopLogprobs) {
    throw Error(codes::kInvalidArgument, "expected an integer in [0, " + std::to_string(kMaxTopLogprobs) +
                                             "] for topLogprobs, got " + std::to_string(p.topLogprobs));
  }
}

}  // namespace

Engine::Engine(std::shared_ptr<LanguageModel> model, const EngineOptions& options) : model_(std::move(model)) {
  if (options.maxBatch < 1) throw Error(codes::kInvalidArgument, "expected maxBatch >= 1");
  info_.model = model_->Describe();
  info_.vocabSize = model_->vocabSize();
  info_.contextLength = model_->contextLength();
  info_.kvBytesPerToken = model_->kvBytesPerToken();
  info_.batchable = model_->maxBatchRows() > 1;
  info_.onHost = std::string_view(info_.model.device) == "cpu";
  budget_ = KvBudget(options.kvCacheBytes, info_.contextLength, info_.kvBytesPerToken);
  if (options.prefixCache) {
    KvMemory* memory = model_->kvMemory();
    info_.prefixCacheOffReason = memory ? model_->prefixCacheRefusal() : "this model keeps no prefix cache";
    if (info_.prefixCacheOffReason.empty()) {
      prefix_cache_ = std::make_shared<PrefixCache>(PrefixCacheBound(budget_, options.prefixCacheBytes), *memory);
      // Hits are meant to cost a decode step, not first touches of fresh pages.
      model_->PrefaultKvMemory();
    }
  }
  SchedulerOptions scheduler;
  scheduler.maxQueue = options.maxQueue;
  scheduler.maxBatch = options.maxBatch;  // the scheduler clamps it to maxBatchRows()
  scheduler.kvBudgetBytes = budget_;
  scheduler.prefillChunk = options.prefillChunk;
  scheduler.prefixCache = prefix_cache_;
  scheduler_ = std::make_unique<Scheduler>(model_, scheduler);
}

std::shared_ptr<Engine> Engine::Create(std::shared_ptr<LanguageModel> model, const EngineOptions& options) {
  if (!model) throw Error(codes::kInternal, "Engine::Create without a model");
  return std::shared_ptr<Engine>(new Engine(std::move(model), options));
}

Engine::~Engine() { Shutdown(); }

void Engine::Shutdown() {
  if (scheduler_) scheduler_->Shutdown();
}

size_t Engine::capacityOf(size_t promptTokens, size_t maxNewTokens) const noexcept {
  return KvCapacity(info_.contextLength, promptTokens, maxNewTokens);
}

size_t Engine::kvHostBytes(const GenerationRequest& request) const noexcept {
  if (!info_.onHost) return 0;
  return KvReservation(info_.kvBytesPerToken, 1, capacityOf(request.prompt.size(), request.params.maxNewTokens));
}

std::shared_ptr<GenerationStream> Engine::Start(GenerationRequest request, std::unique_ptr<StreamSink> sink,
                                                size_t window) {
  CheckRequest(request, window);
  ValidateLogitBias(request.params.sampling.logitBias, info_.vocabSize);
  auto stream = std::make_shared<GenerationStream>(std::move(sink), window);
  request.stream = stream;
  scheduler_->Submit(std::move(request));
  return stream;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.scheduler = scheduler_->stats();
  s.prefixCache = prefix_cache_ != nullptr;
  if (prefix_cache_) s.cache = prefix_cache_->stats();
  s.kvBudgetBytes = budget_;
  s.kvArena = model_->kvArenaStats();
  return s;
}

}  // namespace tokmeter::engine
