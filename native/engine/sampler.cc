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

LogSoftmaxNorm Sampler::Norm(std::span<const float> logits) noexcept {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double total = 0;
  for (float x : logits) total += std::exp(static_cast<double>(x) - max);
  return LogSoftmaxNorm{max, std::log(total)};
}

float Sampler::LogProb(std::span<const float> logits, uint32_t id) noexcept { return Norm(logits).At(logits[id]); }

void Sampler::TopLogProbs(std::span<const float> logits, const LogSoftmaxNorm& norm, size_t n,
                          std::vector<TokenLogprob>& out) {
  out.clear();
  if (n == 0) return;
  out.reserve(n);
  // `out` holds logits (not yet log-probabilities) in descending order; an id enters only when strictly above the
  // last kept one (or while fewer than n are kept), so among equal logits the lower id, scanned first, stays ahead.
  for (uint32_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (x == -std::numeric_limits<float>::infinity() || std::isnan(x)) continue;
    if (out.size() == n) {
      if (!(x > out.back().logprob)) continue;
      out.pop_back();
    }
    auto at = out.end();
    while (at != out.begin() && (at - 1)->logprob < x) --at;
    out.insert(at, TokenLogprob{i, x});
  }
  for (TokenLogprob& t : out) t.logprob = norm.At(t.logprob);
}

}  // namespace tokmeter::engine
