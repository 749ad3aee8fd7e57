// Top-k: keeps the k highest logits (ties with the k-th are kept, as transformers does), removes the rest. O(V)
// with nth_element on a scratch copy.
#include <algorithm>
#include <functional>
#include <limits>

#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class TopK final : public LogitsProcessor {
 public:
  explicit TopK(int32_t k) : k_(static_cast<size_t>(k)) {}
  void Apply(std::span<float> logits, const LogitsContext&) override {
    if (k_ >= logits.size()) return;
    scratch_.assign(logits.begin(), logits.end());
    std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(k_ - 1), scratch_.end(),
                     std::greater<float>());
    const float kth = scratch_[k_ - 1];
    for (float& x : logits)
      if (x < kth) x = -std::numeric_limits<float>::infinity();
  }
  const char* name() const noexcept override { return "topK"; }

 private:
  size_t k_;
  std::vector<float> scratch_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeTopK(int32_t k) { return std::make_unique<TopK>(k); }
}  // namespace tokmeter::engine
