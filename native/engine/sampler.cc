#include "engine/sampler.h"

#include <cmath>
#include <limits>

namespace tokmeter::engine {

uint32_t Sampler::Argmax(std::span<const float> logits) noexcept {
  uint32_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  for (uint32_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_value) {
      best_value = logits[i];
      best = i;
    }
  }
  return best;
}

uint32_t Sampler::Sample(std::span<const float> logits, bool greedy) {
  const uint32_t top = Argmax(logits);
  if (greedy) return top;
  const double max = logits[top];
  double total = 0;
  for (float x : logits)
    if (x != -std::numeric_limits<float>::infinity()) total += std::exp(static_cast<double>(x) - max);
  const double target = NextUniform() * total;
  double acc = 0;
  uint32_t last = top;
  for (uint32_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == -std::numeric_limits<float>::infinity()) continue;
    acc += std::exp(static_cast<double>(logits[i]) - max);
    last = i;
    if (acc > target) return i;
  }
  return last;  // rounding left target at the very end
}

float Sampler::LogProb(std::span<const float> logits, uint32_t id) noexcept {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double total = 0;
  for (float x : logits) total += std::exp(static_cast<double>(x) - max);
  return static_cast<float>(static_cast<double>(logits[id]) - max - std::log(total));
}

}  // namespace tokmeter::engine
