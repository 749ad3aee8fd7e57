// Logits processors — small, independent transformations of one step's logits, applied in a fixed chain before the
// sampler (one concern per processor; the split mirrors transformers.js generation/logits_process.js).
//
// Contract: Apply() receives the full-vocabulary logits of one sequence (float32, already converted from fp16) and
// edits them in place. "Removing" a token sets its logit to -infinity; a processor never removes every token (the
// top-scoring one always survives). `history` is the sequence so far (prompt + sampled tokens); `promptLength` says
// where the sampled part starts. Processors are immutable after construction and hold only per-call scratch space,
// so one chain serves one sequence at a time (a scheduler gives each sequence its own chain).
// Thread affinity: none; no ORT, no N-API — unit-tested in native/engine/test/logits_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace tokmeter::engine {

// Ids that are never sampled: half-open ranges [begin, end), sorted, disjoint, within the vocabulary. A model whose
// vocabulary is padded past its tokenizer's (to a multiple of 64 or 128) has logits for ids no tokenizer can turn into
// text; they are masked to -infinity before the processors, the sampler and the log-probabilities, on the host
// (Generator) and on the device (CudaDevice::Sample) alike.
struct TokenRange {
  uint32_t begin = 0;
  uint32_t end = 0;
};
using TokenMask = std::vector<TokenRange>;
// Sets the masked ids' logits to -infinity. Ranges past logits.size() are clipped.
void ApplyTokenMask(std::span<float> logits, const TokenMask& mask) noexcept;
// Checks that `mask` is sorted, disjoint, within `vocab` and leaves at least one id (ERR_INVALID_ARGUMENT).
void ValidateTokenMask(const TokenMask& mask, size_t vocab);

struct LogitsContext {
  std::span<const uint32_t> history;  // prompt tokens followed by sampled tokens
  size_t promptLength = 0;
};

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  virtual void Apply(std::span<float> logits, const LogitsContext& context) = 0;
  virtual const char* name() const noexcept = 0;
};

// One logit-bias entry: `bias` in [-100, 100] is added to the raw logit of `id` (OpenAI's logit_bias).
struct TokenBias {
  uint32_t id = 0;
  float bias = 0;
};

// Sampling options that select processors. Neutral values (the defaults) add no processor.
struct SamplingOptions {
  float temperature = 1.0f;          // 0: greedy (argmax of the processed logits)
  int32_t topK = 0;                  // 0: off
  float topP = 1.0f;                 // 1: off
  float minP = 0.0f;                 // 0: off
  float repetitionPenalty = 1.0f;    // 1: off (HF/CTRL rule over prompt + sampled tokens)
  float presencePenalty = 0.0f;      // 0: off (OpenAI rule over sampled tokens)
  float frequencyPenalty = 0.0f;     // 0: off (OpenAI rule over sampled tokens)
  std::vector<TokenBias> logitBias;  // empty: off; applied before every other processor
  uint64_t seed = 0;
  std::shared_ptr<const TokenMask> masked;  // null: every id may be sampled
  bool greedy() const noexcept { return temperature == 0.0f; }
};

std::unique_ptr<LogitsProcessor> MakeLogitBias(std::vector<TokenBias> bias);
std::unique_ptr<LogitsProcessor> MakeTemperature(float temperature);
std::unique_ptr<LogitsProcessor> MakeTopK(int32_t k);
std::unique_ptr<LogitsProcessor> MakeTopP(float p);
std::unique_ptr<LogitsProcessor> MakeMinP(float minP);
std::unique_ptr<LogitsProcessor> MakeRepetitionPenalty(float penalty);
std::unique_ptr<LogitsProcessor> MakePresenceFrequencyPenalty(float presence, float frequency);

// The chain: logit bias first (OpenAI adds it to the logits before sampling), then in transformers' order repetition
// penalty, presence/frequency penalties, then (only when sampling) temperature, top-k, top-p, min-p. Validates the
// options (tokmeter::Error ERR_INVALID_ARGUMENT naming the field).
std::vector<std::unique_ptr<LogitsProcessor>> MakeProcessorChain(const SamplingOptions& options);
void ValidateSamplingOptions(const SamplingOptions& options);
// Checks that every logit-bias id is within `vocab` (ERR_INVALID_ARGUMENT naming the first id that is not).
void ValidateLogitBias(const std::vector<TokenBias>& bias, size_t vocab);

}  // namespace tokmeter::engine
