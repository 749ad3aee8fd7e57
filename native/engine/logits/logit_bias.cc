// Logit bias: adds a fixed bias to the logits of chosen ids (OpenAI's logit_bias). A bias of -100 effectively bans
// the id and +100 effectively forces it; -infinity (a masked id) stays -infinity. Ids past the row are skipped (the
// Generator refuses them up front with ValidateLogitBias). An id listed twice gets the sum of its biases.
#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class LogitBias final : public LogitsProcessor {
 public:
  explicit LogitBias(std::vector<TokenBias> bias) : bias_(std::move(bias)) {}
  void Apply(std::span<float> logits, const LogitsContext&) override {
    for (const TokenBias& b : bias_)
      if (b.id < logits.size()) logits[b.id] += b.bias;
  }
  const char* name() const noexcept override { return "logitBias"; }

 private:
  std::vector<TokenBias> bias_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeLogitBias(std::vector<TokenBias> bias) {
  return std::make_unique<LogitBias>(std::move(bias));
}
}  // namespace tokmeter::engine
