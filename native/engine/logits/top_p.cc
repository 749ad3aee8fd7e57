// Top-p (nucleus): keeps the smallest set of most probable tokens whose probabilities sum to at least p; always keeps
// the most probable token. Same rule as transformers' TopPLogitsWarper (remove a token when the cumulative
// probability of the tokens less probable than or equal to it is <= 1 - p).
//
// Cost: sorts only the tokens still alive (finite logits). After top-k that is k tokens; without top-k it is a full
// sort of the vocabulary (~1 ms for 32k entries on this machine), which is the price of the exact rule.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class TopP final : public LogitsProcessor {
 public:
  explicit TopP(float p) : p_(p) {}
  void Apply(std::span<float> logits, const LogitsContext&) override {
    order_.clear();
    float max = -std::numeric_limits<float>::infinity();
    for (uint32_t i = 0; i < logits.size(); ++i) {
      if (std::isfinite(logits[i])) {
        order_.push_back(i);
        max = std::max(max, logits[i]);
      }
    }
    if (order_.size() <= 1) return;
    // Descending by logit; ties by index so the result does not depend on the sort's stability.
    std::sort(order_.begin(), order_.end(),
              [&](uint32_t a, uint32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    double total = 0;
    for (uint32_t i : order_) total += std::exp(static_cast<double>(logits[i] - max));
    // Keep tokens while the probability mass before them is < p (equivalently: the tail including them is > 1 - p).
    double before = 0;
    size_t keep = 0;
    for (; keep < order_.size(); ++keep) {
      if (keep > 0 && before / total >= p_) break;
      before += std::exp(static_cast<double>(logits[order_[keep]] - max));
    }
    for (size_t j = keep; j < order_.size(); ++j) logits[order_[j]] = -std::numeric_limits<float>::infinity();
  }
  const char* name() const noexcept override { return "topP"; }

 private:
  double p_;
  std::vector<uint32_t> order_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeTopP(float p) { return std::make_unique<TopP>(p); }
}  // namespace tokmeter::engine
