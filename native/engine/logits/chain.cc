// Builds and validates the processor chain (order documented in processor.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine/logits/processor.h"
#include "util/error.h"

namespace tokmeter::engine {
namespace {
[[noreturn]] void Bad(const std::string& field, const std::string& expected, double got) {
  throw Error(codes::kInvalidArgument, "expected " + expected + " for " + field + ", got " + std::to_string(got));
}
}  // namespace

// The bounds of the TypeScript option table (src/usage/generate-options.ts), on the float32 values the engine holds;
// test/model/options-bounds.test.ts holds the two equal.
void ValidateSamplingOptions(const SamplingOptions& o) {
  if (!(o.temperature >= 0 && o.temperature <= 2)) Bad("temperature", "a number in [0, 2]", o.temperature);
  if (o.topK < 0) Bad("topK", "an integer >= 0", o.topK);
  if (!(o.topP > 0 && o.topP <= 1)) Bad("topP", "a number in (0, 1]", o.topP);
  if (!(o.minP >= 0 && o.minP <= 1)) Bad("minP", "a number in [0, 1]", o.minP);
  if (!(o.repetitionPenalty > 0 && o.repetitionPenalty <= 100))
    Bad("repetitionPenalty", "a number in (0, 100]", o.repetitionPenalty);
  if (!(o.presencePenalty >= -2 && o.presencePenalty <= 2))
    Bad("presencePenalty", "a number in [-2, 2]", o.presencePenalty);
  if (!(o.frequencyPenalty >= -2 && o.frequencyPenalty <= 2))
    Bad("frequencyPenalty", "a number in [-2, 2]", o.frequencyPenalty);
}

void ApplyTokenMask(std::span<float> logits, const TokenMask& mask) noexcept {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (const TokenRange& r : mask) {
    const size_t end = std::min<size_t>(r.end, logits.size());
    for (size_t i = r.begin; i < end; ++i) logits[i] = neg_inf;
  }
}

void ValidateTokenMask(const TokenMask& mask, size_t vocab) {
  size_t masked = 0;
  uint32_t last = 0;
  for (const TokenRange& r : mask) {
    if (r.begin >= r.end || r.begin < last || r.end > vocab)
      throw Error(codes::kInvalidArgument,
                  "masked token ranges must be sorted, disjoint and within the vocabulary of " + std::to_string(vocab));
    masked += r.end - r.begin;
    last = r.end;
  }
  if (vocab > 0 && masked >= vocab)
    throw Error(codes::kInvalidArgument, "every token id of the vocabulary is masked: nothing can be sampled");
}

std::vector<std::unique_ptr<LogitsProcessor>> MakeProcessorChain(const SamplingOptions& o) {
  ValidateSamplingOptions(o);
  std::vector<std::unique_ptr<LogitsProcessor>> chain;
  if (o.repetitionPenalty != 1.0f) chain.push_back(MakeRepetitionPenalty(o.repetitionPenalty));
  if (o.presencePenalty != 0.0f || o.frequencyPenalty != 0.0f)
    chain.push_back(MakePresenceFrequencyPenalty(o.presencePenalty, o.frequencyPenalty));
  if (o.greedy()) return chain;  // warpers do not change the argmax
  if (o.temperature != 1.0f) chain.push_back(MakeTemperature(o.temperature));
  if (o.topK > 0) chain.push_back(MakeTopK(o.topK));
  if (o.topP < 1.0f) chain.push_back(MakeTopP(o.topP));
  if (o.minP > 0.0f) chain.push_back(MakeMinP(o.minP));
  return chain;
}

}  // namespace tokmeter::engine
