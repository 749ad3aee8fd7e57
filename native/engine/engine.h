// Engine — one loaded model ready to generate: the model (a LanguageModel; CausalLm for a real folder), its
// inference thread (scheduler.h), the KV budget (kv_budget.h) and the prompt-prefix cache (prefix_cache.h). Everything
// the binding needs is here as plain C++, so a C++ test builds an engine exactly as the addon does:
//
//   auto engine = Engine::Load(options);                 // blocking (ORT session, graph scan): a worker thread
//   auto engine = Engine::Create(model, options);        // the same policy over a model already made (tests)
//   auto stream = engine->Start(std::move(request), std::move(sink), window);   // queued, runs on the thread
//   engine->stats(); engine->info(); stream->Abort(); engine->Shutdown();
//
// Policy, in this one place:
// - maxBatch is clamped to what the model can batch (LanguageModel::maxBatchRows()); every live sequence holds a
//   device sampler slot, so the model is loaded with maxSequences = maxBatch.
// - The KV budget is KvBudget(kvCacheBytes, context, kvBytesPerToken) (kv_budget.h), shared by the running
//   generations (the scheduler charges KvReservation) and the prefix cache: made when asked for and the model allows
//   it (LanguageModel::prefixCacheRefusal, kvMemory), bounded by PrefixCacheBound(budget, prefixCacheBytes), its
//   entries in the model's KV memory (made resident at once), and holding what the running generations leave.
// - A request's checks mirror the TypeScript option table (src/usage/generate-options.ts): maxNewTokens in
//   [1, 2^31 - 1] or 0 (until the context is full), window in [1, 2^30], at most 16 stop strings, each non-empty;
//   sampling options in engine/logits (ValidateSamplingOptions). A refusal throws ERR_INVALID_ARGUMENT; nothing ran.
// Ownership: Engine is shared (std::shared_ptr) by the binding's model object and every generation handle, so the
// model and its thread outlive every stream. Shutdown() (idempotent; the destructor calls it) ends queued and
// running generations as aborted — each sink still gets OnDone with the usage of what was processed — and joins the
// thread: it blocks, so the binding calls it off the JS thread. Start after Shutdown throws ERR_DISPOSED.
// Thread affinity: Start, stats, info, kvHostBytes from any thread; sinks are called on the inference thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "engine/kv_budget.h"
#include "engine/language_model.h"
#include "engine/model_config.h"
#include "engine/prefix_cache.h"
#include "engine/scheduler.h"

namespace tokmeter::engine {

// Request bounds shared with the TypeScript option table (src/usage/generate-options.ts).
inline constexpr size_t kMaxNewTokensLimit = 2147483647;  // 2^31 - 1
inline constexpr size_t kMaxWindow = size_t{1} << 30;
inline constexpr size_t kMaxStopStrings = 16;

struct EngineOptions {
  // The model folder (Load only).
  std::string dir;
  std::string dtype = "fp32";
  int threads = 0;             // ORT intra-op threads; 0: ORT's default
  std::string device = "cpu";  // "cpu" or "cuda"
  int deviceId = 0;
  ModelConfig config;
  // The engine.
  bool prefixCache = false;     // keep prompt KV for reuse by later prompts (prefix_cache.h)
  size_t kvCacheBytes = 0;      // KV budget, running generations + prefix cache; 0: kv_budget.h's default
  size_t prefixCacheBytes = 0;  // most the prefix cache keeps, within the budget; 0: all of it
  size_t maxQueue = 0;          // most generations waiting (0: unbounded); past it Start throws ERR_QUEUE_FULL
  size_t maxBatch = 1;          // most generations running together
  size_t prefillChunk = 256;    // most prompt tokens prefilled per step while others decode
};

struct EngineInfo {
  ModelInfo model;
  size_t vocabSize = 0;
  size_t contextLength = 0;
  size_t kvBytesPerToken = 0;
  bool batchable = true;
  bool onHost = true;                // KV and weights in host memory (device 'cpu')
  std::string prefixCacheOffReason;  // a prefix cache was asked for and the model cannot keep one; else ""
};

struct EngineStats {
  SchedulerStats scheduler;
  bool prefixCache = false;
  PrefixCacheStats cache;  // zeros without a prefix cache
  size_t kvBudgetBytes = 0;
  KvArenaStats kvArena;  // the model's host KV arena (all zero without one)
};

class Engine {
 public:
  // Loads the folder (CausalLm) and builds the engine over it. Blocks for seconds: never on the JS thread.
  // Throws the model's load errors (ERR_MODEL_FILE, ERR_MODEL_INVALID, ERR_CUDA_*, ...) and ERR_INVALID_ARGUMENT.
  static std::shared_ptr<Engine> Load(const EngineOptions& options);
  // The engine over `model` with the same policy as Load (its folder fields are ignored).
  static std::shared_ptr<Engine> Create(std::shared_ptr<LanguageModel> model, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks `request` (see above), queues it and returns its stream (the sink gets every step and OnDone once).
  // Throws ERR_INVALID_ARGUMENT, ERR_KV_BUDGET (its reservation alone exceeds the budget), ERR_QUEUE_FULL,
  // ERR_DISPOSED; then nothing was queued and the sink was never called.
  std::shared_ptr<GenerationStream> Start(GenerationRequest request, std::unique_ptr<StreamSink> sink, size_t window);
  // Host bytes of KV `request` may hold (its capacity x 2 buffers), what the binding reports to V8; 0 off the host.
  size_t kvHostBytes(const GenerationRequest& request) const noexcept;
  // KV tokens a request with this prompt and maxNewTokens may hold (kv_budget.h).
  size_t capacityOf(size_t promptTokens, size_t maxNewTokens) const noexcept;
  size_t kvBudget() const noexcept { return budget_; }
  EngineStats stats() const;
  const EngineInfo& info() const noexcept { return info_; }
  ForwardTimings* timings() noexcept { return model_->timings(); }
  LanguageModel& model() noexcept { return *model_; }
  void Shutdown();

 private:
  Engine(std::shared_ptr<LanguageModel> model, const EngineOptions& options);
  std::shared_ptr<LanguageModel> model_;
  EngineInfo info_;
  size_t budget_ = 0;
  std::shared_ptr<PrefixCache> prefix_cache_;  // null: none; shared with the scheduler and its generators
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace tokmeter::engine
