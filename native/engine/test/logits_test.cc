// Each logits processor and the sampler, against hand-computed expectations. Every test would fail if the
// processor did nothing.
#include <cmath>
#include <limits>
#include <map>

#include "engine/logits/processor.h"
#include "engine/sampler.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
LogitsContext Ctx(const std::vector<uint32_t>& history, size_t prompt) {
  return LogitsContext{std::span<const uint32_t>(history), prompt};
}
bool Removed(float x) { return x == kNegInf; }
}  // namespace

TEST(temperature_scales_logits) {
  std::vector<float> l = {1, 2, -4};
  MakeTemperature(0.5f)->Apply(l, Ctx({}, 0));
  CHECK_NEAR(l[0], 2, 1e-6);
  CHECK_NEAR(l[1], 4, 1e-6);
  CHECK_NEAR(l[2], -8, 1e-6);
}

TEST(top_k_keeps_k_highest_and_ties) {
  std::vector<float> l = {0.1f, 3, 2, 2, -1, 5};
  MakeTopK(3)->Apply(l, Ctx({}, 0));
  // 5, 3, 2 are the top 3; the other 2 ties with the 3rd and is kept (transformers' rule).
  CHECK(Removed(l[0]) && !Removed(l[1]) && !Removed(l[2]) && !Removed(l[3]) && Removed(l[4]) && !Removed(l[5]));
  std::vector<float> m = {1, 2, 3};
  MakeTopK(5)->Apply(m, Ctx({}, 0));
  CHECK(!Removed(m[0]) && !Removed(m[1]) && !Removed(m[2]));
}

TEST(top_p_keeps_nucleus) {
  // probabilities 0.5, 0.25, 0.125, 0.125 (log-space logits)
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
  auto a = l;
  MakeTopP(0.7f)->Apply(a, Ctx({}, 0));  // 0.5 < 0.7 → keep the 2nd; 0.75 >= 0.7 → stop
  CHECK(!Removed(a[0]) && !Removed(a[1]) && Removed(a[2]) && Removed(a[3]));
  auto b = l;
  MakeTopP(0.5f)->Apply(b, Ctx({}, 0));  // the top token alone reaches 0.5
  CHECK(!Removed(b[0]) && Removed(b[1]) && Removed(b[2]) && Removed(b[3]));
  auto c = l;
  MakeTopP(0.1f)->Apply(c, Ctx({}, 0));  // always keeps the top token
  CHECK(!Removed(c[0]) && Removed(c[1]));
}

TEST(min_p_removes_below_fraction_of_top) {
  std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.05f), std::log(0.05f)};
  MakeMinP(0.2f)->Apply(l, Ctx({}, 0));  // threshold 0.12
  CHECK(!Removed(l[0]) && !Removed(l[1]) && Removed(l[2]) && Removed(l[3]));
}

TEST(repetition_penalty_divides_positive_multiplies_negative_once) {
  std::vector<float> l = {2, -2, 2, 1};
  std::vector<uint32_t> history = {0, 1, 0, 0};
  MakeRepetitionPenalty(2.0f)->Apply(l, Ctx(history, 2));
  CHECK_NEAR(l[0], 1, 1e-6);   // once, not three times
  CHECK_NEAR(l[1], -4, 1e-6);  // prompt tokens count too
  CHECK_NEAR(l[2], 2, 1e-6);
  CHECK_NEAR(l[3], 1, 1e-6);
}

TEST(presence_and_frequency_penalties_count_sampled_tokens_only) {
  std::vector<float> l = {0, 0, 0};
  std::vector<uint32_t> history = {2, 2, /*sampled:*/ 0, 0, 1};
  MakePresenceFrequencyPenalty(0.5f, 0.25f)->Apply(l, Ctx(history, 2));
  CHECK_NEAR(l[0], -(0.5 + 0.25 * 2), 1e-6);
  CHECK_NEAR(l[1], -(0.5 + 0.25 * 1), 1e-6);
  CHECK_NEAR(l[2], 0, 1e-6);  // only in the prompt
}

TEST(chain_order_and_validation) {
  SamplingOptions o;
  CHECK(MakeProcessorChain(o).empty());
  o.temperature = 0;  // greedy: warpers are skipped, penalties stay
  o.topK = 3;
  o.repetitionPenalty = 1.1f;
  auto greedy = MakeProcessorChain(o);
  CHECK_EQ(greedy.size(), size_t{1});
  CHECK_EQ(std::string(greedy[0]->name()), std::string("repetitionPenalty"));
  o.temperature = 0.7f;
  o.topP = 0.9f;
  o.minP = 0.05f;
  o.presencePenalty = 0.1f;
  auto chain = MakeProcessorChain(o);
  std::vector<std::string> names;
  for (auto& p : chain) names.push_back(p->name());
  CHECK((names == std::vector<std::string>{"repetitionPenalty", "presenceFrequencyPenalty", "temperature", "topK",
                                           "topP", "minP"}));
  SamplingOptions bad;
  bad.topP = 0;
  CHECK_ERROR(MakeProcessorChain(bad), "ERR_INVALID_ARGUMENT", "topP");
  bad = {};
  bad.temperature = -1;
  CHECK_ERROR(MakeProcessorChain(bad), "ERR_INVALID_ARGUMENT", "temperature");
  bad = {};
  bad.repetitionPenalty = 0;
  CHECK_ERROR(MakeProcessorChain(bad), "ERR_INVALID_ARGUMENT", "repetitionPenalty");
}

TEST(token_mask_removes_ranges_and_is_validated) {
  std::vector<float> l = {1, 9, 2, 8, 7, 3};
  const TokenMask mask = {{1, 2}, {3, 5}};
  ValidateTokenMask(mask, l.size());
  ApplyTokenMask(l, mask);
  CHECK(!Removed(l[0]) && Removed(l[1]) && !Removed(l[2]) && Removed(l[3]) && Removed(l[4]) && !Removed(l[5]));
  Sampler s(1);
  CHECK_EQ(s.Sample(l, true), 5u);  // the argmax among the ids left
  CHECK_ERROR(ValidateTokenMask({{3, 5}, {1, 2}}, 6), "ERR_INVALID_ARGUMENT", "sorted");
  CHECK_ERROR(ValidateTokenMask({{4, 7}}, 6), "ERR_INVALID_ARGUMENT", "within");
  CHECK_ERROR(ValidateTokenMask({{0, 6}}, 6), "ERR_INVALID_ARGUMENT", "every token");
}

TEST(sampler_greedy_and_seeded_draws) {
  std::vector<float> l = {0, 3, 3, 1};
  CHECK_EQ(Sampler::Argmax(l), 1u);  // ties go to the lowest id
  Sampler s1(42), s2(42), s3(7);
  std::vector<uint32_t> a, b, c;
  std::vector<float> flat = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 64; ++i) {
    a.push_back(s1.Sample(flat, false));
    b.push_back(s2.Sample(flat, false));
    c.push_back(s3.Sample(flat, false));
  }
  CHECK(a == b);
  CHECK(a != c);
  // Frequencies follow the distribution: p = {0.75, 0.25}.
  std::vector<float> two = {std::log(0.75f), std::log(0.25f)};
  Sampler s(1);
  int zeros = 0;
  for (int i = 0; i < 20000; ++i) zeros += s.Sample(two, false) == 0;
  CHECK(zeros > 14700 && zeros < 15300);
  // Removed tokens are never drawn.
  std::vector<float> masked = {kNegInf, 0, kNegInf};
  for (int i = 0; i < 100; ++i) CHECK_EQ(s.Sample(masked, false), 1u);
  CHECK_NEAR(Sampler::LogProb(two, 1), std::log(0.25), 1e-6);
}

TEST(sampler_draws_with_an_injected_uniform_source) {
  // p = {0.5, 0.25, 0, 0.25}: the inverse CDF in id order, -inf skipped.
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), kNegInf, std::log(0.25f)};
  std::vector<double> uniforms = {0.0, 0.49, 0.51, 0.74, 0.76, 0.999999};
  size_t next = 0;
  Sampler s([&] { return uniforms[next++]; });
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < uniforms.size(); ++i) ids.push_back(s.Sample(l, false));
  CHECK((ids == std::vector<uint32_t>{0, 0, 1, 1, 3, 3}));
  CHECK_EQ(s.Sample(l, true), 0u);  // greedy draws no uniform
  CHECK_EQ(next, uniforms.size());
  // The seeded sampler is this sampler over SeededUniform.
  Sampler seeded(42), injected(SeededUniform(42));
  std::vector<float> flat(16, 0.0f);
  for (int i = 0; i < 64; ++i) CHECK_EQ(seeded.Sample(flat, false), injected.Sample(flat, false));
}

TEST_MAIN()
