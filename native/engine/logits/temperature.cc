// Temperature: logits / T. T < 1 sharpens, T > 1 flattens. T == 0 means greedy and adds no processor.
#include "engine/logits/processor.h"

namespace tokmeter::engine {
namespace {
class Temperature final : public LogitsProcessor {
 public:
  explicit Temperature(float t) : inv_(1.0f / t) {}
  void Apply(std::span<float> logits, const LogitsContext&) override {
    for (float& x : logits) x *= inv_;
  }
  const char* name() const noexcept override { return "temperature"; }

 private:
  float inv_;
};
}  // namespace

std::unique_ptr<LogitsProcessor> MakeTemperature(float temperature) {
  return std::make_unique<Temperature>(temperature);
}
}  // namespace tokmeter::engine
