// Presence and frequency penalties (OpenAI's rule): over the tokens sampled so far (not the prompt),
// logit[t] -= presence * (count[t] > 0) + frequency * count[t]. Negative values encourage repetition.
#include <unordered_map>

#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class PresenceFrequencyPenalty final : public LogitsProcessor {
 public:
  PresenceFrequencyPenalty(float presence, float frequency) : presence_(presence), frequency_(frequency) {}
  void Apply(std::span<float> logits, const LogitsContext& context) override {
    counts_.clear();
    for (size_t i = context.promptLength; i < context.history.size(); ++i) ++counts_[context.history[i]];
    for (const auto& [id, count] : counts_) {
      if (id >= logits.size()) continue;
      logits[id] -= presence_ + frequency_ * static_cast<float>(count);
    }
  }
  const char* name() const noexcept override { return "presenceFrequencyPenalty"; }

 private:
  float presence_;
  float frequency_;
  std::unordered_map<uint32_t, uint32_t> counts_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakePresenceFrequencyPenalty(float presence, float frequency) {
  return std::make_unique<PresenceFrequencyPenalty>(presence, frequency);
}
}  // namespace tokmeter::engine
