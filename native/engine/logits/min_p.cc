// Min-p: removes tokens whose probability is below minP times the probability of the most likely token
// (p_i < minP * p_max  <=>  logit_i < logit_max + ln(minP)). Keeps the top token always.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class MinP final : public LogitsProcessor {
 public:
  explicit MinP(float minP) : log_min_p_(std::log(minP)) {}
  void Apply(std::span<float> logits, const LogitsContext&) override {
    float max = -std::numeric_limits<float>::infinity();
    for (float x : logits) max = std::max(max, x);
    const float threshold = max + log_min_p_;
    for (float& x : logits)
      if (x < threshold) x = -std::numeric_limits<float>::infinity();
  }
  const char* name() const noexcept override { return "minP"; }

 private:
  float log_min_p_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeMinP(float minP) { return std::make_unique<MinP>(minP); }
}  // namespace tokmeter::engine
