// Repetition penalty (CTRL paper, transformers' RepetitionPenaltyLogitsProcessor): for every distinct token already
// in the sequence (prompt and sampled), a positive logit is divided by the penalty and a negative one multiplied by
// it. Each token is penalised once however often it occurs.
#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class RepetitionPenalty final : public LogitsProcessor {
 public:
  explicit RepetitionPenalty(float penalty) : penalty_(penalty) {}
  void Apply(std::span<float> logits, const LogitsContext& context) override {
    seen_.assign(logits.size(), 0);
    for (uint32_t id : context.history) {
      if (id >= logits.size() || seen_[id]) continue;
      seen_[id] = 1;
      float& x = logits[id];
      x = x > 0 ? x / penalty_ : x * penalty_;
    }
  }
  const char* name() const noexcept override { return "repetitionPenalty"; }

 private:
  float penalty_;
  std::vector<uint8_t> seen_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeRepetitionPenalty(float penalty) {
  return std::make_unique<RepetitionPenalty>(penalty);
}
}  // namespace tokmeter::engine
