// The prompt-prefix KV cache (prefix_cache.h) over real KvCache buffers: what a hit copies (layout, length),
// the cap at prompt.size() - 1, LRU eviction under the byte budget, prompts larger than the budget, entries
// replaced by longer prompts; and the generator's use of it (cachedTokens, what is fed) through a double. Every
// test runs over host memory and over fenced memory (fenced_memory.h), where host access outside KvMemory faults.
#include <cstring>
#include <vector>

#include "engine/generator.h"
#include "engine/kv_cache.h"
#include "engine/prefix_cache.h"
#include "fenced_memory.h"
#include "test/test_util.h"

using namespace tokmeter::engine;

namespace {

GraphSpec Spec() {
  GraphSpec s;
  s.numLayers = 2;  // 4 tensors
  s.numKvHeads = 2;
  s.headDim = 3;
  s.vocabSize = 100;
  s.kvDtype = DType::kFloat32;
  return s;
}
constexpr size_t kHeads = 2, kDim = 3, kTensors = 4;
constexpr size_t kBytesPerToken = kTensors * kHeads * kDim * sizeof(float);  // 96

// The value a prefill writes at (tensor, head, position, d): depends on the token at that position, so equal
// prefixes have equal KV, as in a real model.
float Value(size_t t, size_t h, uint32_t token, size_t d) {
  return static_cast<float>(t * 1000 + h * 100 + token + d * 0.25);
}

// Simulates a prefill of `tokens`: writes present as [heads, n, dim] and advances.
void Prefill(KvCache& cache, const std::vector<uint32_t>& tokens) {
  et::Direct direct;
  const size_t n = tokens.size();
  for (size_t t = 0; t < kTensors; ++t) {
    auto* out = static_cast<float*>(cache.present(t));
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t p = 0; p < n; ++p)
        for (size_t d = 0; d < kDim; ++d) out[(h * n + p) * kDim + d] = Value(t, h, tokens[p], d);
  }
  cache.Advance(n);
}

// Checks that the past of `cache` (length n) holds the KV of tokens[0, n).
bool PastHolds(KvCache& cache, const std::vector<uint32_t>& tokens, size_t n) {
  if (cache.length() != n) return false;
  et::Direct direct;
  for (size_t t = 0; t < kTensors; ++t) {
    const auto* past = static_cast<const float*>(cache.past(t));
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t p = 0; p < n; ++p)
        for (size_t d = 0; d < kDim; ++d)
          if (past[(h * n + p) * kDim + d] != Value(t, h, tokens[p], d)) return false;
  }
  return true;
}

size_t StoreAfterPrefill(PrefixCache& pc, const std::vector<uint32_t>& prompt) {
  KvCache cache(Spec(), 64, *et::kv_memory);
  Prefill(cache, prompt);
  pc.Store(cache, prompt);
  return pc.stats().bytes;
}

size_t LoadInto(PrefixCache& pc, const std::vector<uint32_t>& prompt, const std::vector<uint32_t>& expectedTokens) {
  KvCache cache(Spec(), 64, *et::kv_memory);
  const size_t n = pc.Load(cache, prompt);
  CHECK(PastHolds(cache, expectedTokens, n));
  return n;
}

}  // namespace

TEST(miss_then_hit_copies_the_common_prefix) {
  PrefixCache pc(1 << 20, *et::kv_memory);
  const std::vector<uint32_t> a = {1, 10, 11, 12, 13, 14};
  const std::vector<uint32_t> b = {1, 10, 11, 12, 40, 41, 42};
  CHECK_EQ(LoadInto(pc, a, a), 0u);
  CHECK_EQ(StoreAfterPrefill(pc, a), a.size() * kBytesPerToken);
  CHECK_EQ(LoadInto(pc, b, a), 4u);  // {1, 10, 11, 12}: per head, positions 0..3 of a 6-position entry
  auto s = pc.stats();
  CHECK_EQ(s.hits, 1u);
  CHECK_EQ(s.misses, 1u);
  CHECK_EQ(s.cachedTokens, 4u);
  CHECK_EQ(s.entries, 1u);
}

TEST(the_last_prompt_token_is_never_served_from_the_cache) {
  PrefixCache pc(1 << 20, *et::kv_memory);
  const std::vector<uint32_t> a = {5, 6, 7, 8};
  StoreAfterPrefill(pc, a);
  CHECK_EQ(LoadInto(pc, a, a), 3u);             // the same prompt: all but its last token
  CHECK_EQ(LoadInto(pc, {5, 6}, a), 1u);        // a shorter prompt inside the entry
  CHECK_EQ(LoadInto(pc, {5}, a), 0u);           // one token: nothing to reuse
  CHECK_EQ(LoadInto(pc, {9, 6, 7, 8}, a), 0u);  // differs at the first token
  CHECK_EQ(pc.stats().cachedTokens, 4u);
}

TEST(lru_eviction_keeps_the_byte_budget) {
  // Room for 10 tokens: two 4-token prompts fit, a third evicts the least recently used one.
  PrefixCache pc(10 * kBytesPerToken, *et::kv_memory);
  const std::vector<uint32_t> a = {1, 2, 3, 4}, b = {2, 3, 4, 5}, c = {3, 4, 5, 6};
  StoreAfterPrefill(pc, a);
  StoreAfterPrefill(pc, b);
  CHECK_EQ(LoadInto(pc, a, a), 3u);  // touches a: b is now the least recent
  StoreAfterPrefill(pc, c);
  auto s = pc.stats();
  CHECK_EQ(s.entries, 2u);
  CHECK_EQ(s.evictions, 1u);
  CHECK_EQ(s.bytes, 8 * kBytesPerToken);
  CHECK(s.bytes <= s.budget);
  CHECK_EQ(LoadInto(pc, b, b), 0u);  // evicted
  CHECK_EQ(LoadInto(pc, a, a), 3u);
  CHECK_EQ(LoadInto(pc, c, c), 3u);
}

TEST(a_prompt_larger_than_the_budget_is_not_kept) {
  PrefixCache pc(3 * kBytesPerToken, *et::kv_memory);
  const std::vector<uint32_t> a = {1, 2, 3, 4};
  CHECK_EQ(StoreAfterPrefill(pc, a), 0u);
  auto s = pc.stats();
  CHECK_EQ(s.oversized, 1u);
  CHECK_EQ(s.entries, 0u);
  CHECK_EQ(LoadInto(pc, a, a), 0u);
}

TEST(a_longer_prompt_replaces_the_entry_it_extends) {
  PrefixCache pc(1 << 20, *et::kv_memory);
  const std::vector<uint32_t> turn1 = {1, 2, 3}, turn2 = {1, 2, 3, 4, 5, 6};
  StoreAfterPrefill(pc, turn1);
  StoreAfterPrefill(pc, turn2);
  auto s = pc.stats();
  CHECK_EQ(s.entries, 1u);
  CHECK_EQ(s.bytes, turn2.size() * kBytesPerToken);
  StoreAfterPrefill(pc, turn1);  // covered by turn2's entry: nothing added
  CHECK_EQ(pc.stats().entries, 1u);
  CHECK_EQ(LoadInto(pc, {1, 2, 3, 4, 5, 6, 7}, turn2), 6u);
}

TEST(loading_needs_an_empty_sequence) {
  PrefixCache pc(1 << 20, *et::kv_memory);
  const std::vector<uint32_t> a = {1, 2, 3, 4};
  StoreAfterPrefill(pc, a);
  KvCache cache(Spec(), 64, *et::kv_memory);
  Prefill(cache, {1});
  CHECK_EQ(pc.Load(cache, a), 0u);
  CHECK_EQ(cache.length(), 1u);
}

// ---- the generator's side: a double whose sequences own real KvCaches, and the real PrefixCache ----
namespace {
class PrefixModel final : public LanguageModel {
 public:
  struct Seq final : SequenceState {
    KvCache cache{Spec(), 64, *et::kv_memory};
    size_t length() const noexcept override { return cache.length(); }
    size_t capacity() const noexcept override { return 64; }
    void Terminate() noexcept override {}
  };
  size_t vocabSize() const noexcept override { return 50; }
  size_t contextLength() const noexcept override { return 64; }
  std::unique_ptr<SequenceState> NewSequence(size_t) override { return std::make_unique<Seq>(); }
  // Writes each fed token's KV (as Prefill above) after what the sequence holds, so reused and computed KV agree.
  void Forward(SequenceState& s, std::span<const uint32_t> tokens, std::span<float> logits) override {
    fed.emplace_back(tokens.begin(), tokens.end());
    KvCache& cache = static_cast<Seq&>(s).cache;
    const size_t past = cache.length(), n = tokens.size(), total = past + n;
    {
      et::Direct direct;
      for (size_t t = 0; t < kTensors; ++t) {
        auto* out = static_cast<float*>(cache.present(t));
        const auto* in = past ? static_cast<const float*>(cache.past(t)) : nullptr;
        for (size_t h = 0; h < kHeads; ++h) {
          for (size_t p = 0; p < past; ++p)
            for (size_t d = 0; d < kDim; ++d) out[(h * total + p) * kDim + d] = in[(h * past + p) * kDim + d];
          for (size_t p = 0; p < n; ++p)
            for (size_t d = 0; d < kDim; ++d) out[(h * total + past + p) * kDim + d] = Value(t, h, tokens[p], d);
        }
      }
    }
    cache.Advance(n);
    std::fill(logits.begin(), logits.end(), 0.0f);
    logits[(tokens.back() + 1) % 50] = 1.0f;
  }
  KvMemory* kvMemory() noexcept override { return et::kv_memory; }
  KvCache* kvCacheOf(SequenceState& s) noexcept override { return &static_cast<Seq&>(s).cache; }
  ForwardTimings* timings() noexcept override { return &phases; }
  std::vector<std::vector<uint32_t>> fed;
  ForwardTimings phases;
};

Usage Generate(const std::shared_ptr<PrefixModel>& model, const std::shared_ptr<PrefixCache>& cache,
               std::vector<uint32_t> prompt) {
  GenerationParams params;
  params.maxNewTokens = 2;
  params.sampling.temperature = 0;  // greedy: the token after t is t + 1
  Generator g(model, std::move(prompt), params, nullptr);
  g.UsePrefixCache(cache);
  while (!g.done()) g.Step();
  return g.usage();
}
}  // namespace

TEST(generator_feeds_only_what_the_prefix_cache_lacks) {
  auto model = std::make_shared<PrefixModel>();
  auto cache = std::make_shared<PrefixCache>(1 << 20, *et::kv_memory);
  Usage first = Generate(model, cache, {1, 2, 3, 4, 5});
  CHECK_EQ(first.cachedTokens, 0u);
  CHECK(model->fed[0] == (std::vector<uint32_t>{1, 2, 3, 4, 5}));
  CHECK_EQ(cache->stats().entries, 1u);  // the prompt was kept after its prefill
  model->fed.clear();
  Usage second = Generate(model, cache, {1, 2, 3, 9, 10});
  CHECK_EQ(model->fed.size(), 2u);
  CHECK(model->fed[0] == (std::vector<uint32_t>{9, 10}));  // {1, 2, 3} came from the cache
  CHECK(model->fed[1] == (std::vector<uint32_t>{11}));
  CHECK_EQ(second.promptTokens, 5u);
  CHECK_EQ(second.cachedTokens, 3u);
  CHECK_EQ(second.completionTokens, 2u);
  CHECK_EQ(model->phases.prefixLoad.count.load(), 2u);  // timed in the model's phases
  CHECK_EQ(model->phases.prefixStore.count.load(), 2u);
}

TEST(generator_without_a_prefix_cache_feeds_the_whole_prompt) {
  auto model = std::make_shared<PrefixModel>();
  auto cache = std::make_shared<PrefixCache>(1 << 20, *et::kv_memory);
  Generate(model, cache, {1, 2, 3, 4, 5});
  model->fed.clear();
  Usage u = Generate(model, nullptr, {1, 2, 3, 9, 10});
  CHECK(model->fed[0] == (std::vector<uint32_t>{1, 2, 3, 9, 10}));
  CHECK_EQ(u.cachedTokens, 0u);
}

int main() { return et::RunOverBothMemories(); }
