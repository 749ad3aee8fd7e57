// CausalLm — a decoder-only ONNX model (Hugging Face / Optimum layout) behind the LanguageModel interface.
//
// Load: resolves the file for the dtype (model_files.h), opens an ORT session with the thread count asked for,
// discovers the KV layout (graph_spec.h) and checks it against the config. Construction blocks (seconds for big
// models): call it on a worker thread, never on the JS thread.
// Forward: one ORT Run through IO binding. Inputs (ids, mask, positions) live in per-sequence scratch vectors, the
// KV cache in the sequence's ping-pong buffers (kv_cache.h), the logits in a per-sequence [n, vocab] buffer (the
// prefill's is freed right after it; decode steps reuse one [1, vocab] buffer); all are bound as preallocated ORT
// values, so a decode step allocates nothing but the small Ort::Value/IoBinding handles.
// Lifetime: shared_ptr, owned by the model and every live sequence. Thread affinity: Forward may run on several
// threads for different sequences (ORT sessions allow concurrent Run); tokmeter runs them on one inference thread.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <memory>
#include <string>

#include "engine/graph_spec.h"
#include "engine/language_model.h"
#include "engine/model_config.h"
#include "engine/prefix_cache.h"
#include "engine/session.h"

namespace tokmeter::engine {

struct LoadOptions {
  std::string dir;
  std::string dtype = "fp32";
  int threads = 0;           // ORT intra-op threads; 0: ORT's default
  bool prefixCache = false;  // keep prompt KV for reuse by later prompts (prefix_cache.h)
  size_t kvCacheBytes = 0;   // the prefix cache's byte budget
};

// Time spent in ORT's Run and in the whole Forward, for the benchmark's overhead figure; the decode* counters
// cover only decode steps (one-token Forwards after a sequence's first), so a prefill never blurs the per-step split.
struct ForwardTimings {
  std::atomic<uint64_t> runNanos{0};
  std::atomic<uint64_t> forwardNanos{0};
  std::atomic<uint64_t> forwards{0};
  std::atomic<uint64_t> decodeRunNanos{0};
  std::atomic<uint64_t> decodeForwardNanos{0};
  std::atomic<uint64_t> decodeForwards{0};
  // Between one Forward of a sequence returning and its next decode Forward starting: sampling, detokenizing,
  // stop checks, handing the step to the stream (and any backpressure wait).
  std::atomic<uint64_t> decodeGapNanos{0};
};

class CausalLm final : public LanguageModel {
 public:
  static std::shared_ptr<CausalLm> Load(const LoadOptions& options, const ModelConfig& config);

  size_t vocabSize() const noexcept override { return static_cast<size_t>(spec_.vocabSize); }
  size_t contextLength() const noexcept override { return context_; }
  std::unique_ptr<SequenceState> NewSequence(size_t capacity) override;
  void Forward(SequenceState& sequence, std::span<const uint32_t> tokens, std::span<float> lastLogits) override;
  size_t ReusePrefix(SequenceState& sequence, std::span<const uint32_t> prompt) override;
  void KeepPrefix(SequenceState& sequence, std::span<const uint32_t> prompt) override;
  // Null when loaded without prefixCache.
  const PrefixCache* prefixCache() const noexcept { return prefix_cache_.get(); }

  const GraphSpec& spec() const noexcept { return spec_; }
  const std::string& file() const noexcept { return file_; }
  uint64_t fileBytes() const noexcept { return file_bytes_; }
  ForwardTimings& timings() noexcept { return timings_; }

 private:
  CausalLm(std::unique_ptr<Ort::Session> session, GraphSpec spec, size_t context, std::string file, uint64_t bytes);
  std::unique_ptr<Ort::Session> session_;
  GraphSpec spec_;
  size_t context_;
  std::string file_;
  uint64_t file_bytes_;
  Ort::MemoryInfo memory_;
  ForwardTimings timings_;
  std::unique_ptr<PrefixCache> prefix_cache_;
};

}  // namespace tokmeter::engine
