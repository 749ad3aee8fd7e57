// The engine object (engine.h) built as the addon builds it — EngineOptions in, Engine::Create over the model (what
// Engine::Load does after CausalLm::Load) — over the scripted model: a generation, a batched pair, the KV capacity
// and budget rules, the request checks (the TypeScript option table's bounds), a failure mid-generation and
// shutdown.
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "scripted_model.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
using namespace tokmeter::engine::testing;

namespace {

// What the addon's loadModel() passes for `Model.load(dir, {maxBatch, kvCacheBytes, prefixCache})` (the folder
// fields are ignored by Create).
EngineOptions AddonOptions(size_t maxBatch, size_t kvCacheBytes = 0, bool prefixCache = false) {
  EngineOptions o;
  o.dir = "unused";
  o.maxBatch = maxBatch;
  o.kvCacheBytes = kvCacheBytes;
  o.prefixCache = prefixCache;
  o.prefillChunk = 256;
  return o;
}

GenerationRequest Greedy(std::vector<uint32_t> prompt, size_t maxNew) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.params.sampling.temperature = 0;
  r.params.maxNewTokens = maxNew;
  return r;
}

struct Started {
  RecordingSink* sink;
  std::shared_ptr<GenerationStream> stream;
};

Started Start(Engine& engine, GenerationRequest r, size_t window = 64) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* s = sink.get();
  return {s, engine.Start(std::move(r), std::move(sink), window)};
}

}  // namespace

TEST(one_generation_streams_its_tokens_and_usage) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto engine = Engine::Create(m, AddonOptions(1));
  auto g = Start(*engine, Greedy({3, 4, 5}, 4));
  CHECK(WaitFor([&] { return g.sink->done.load(); }));
  CHECK((g.sink->tokens == std::vector<uint32_t>{6, 7, 8, 9}));
  CHECK(!g.sink->outcome.failed);
  CHECK_EQ(std::string(FinishReasonName(g.sink->outcome.finishReason)), std::string("length"));
  const Usage u = g.sink->outcome.usage;
  CHECK_EQ(u.promptTokens, size_t{3});
  CHECK_EQ(u.completionTokens, size_t{4});
  CHECK_EQ(u.totalTokens, size_t{7});
  CHECK_EQ(u.cachedTokens, size_t{0});
  CHECK(WaitFor([&] { return engine->stats().scheduler.running == 0 && m->live.load() == 0; }));
}

TEST(a_batched_pair_runs_in_one_batch_each_as_alone) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 1ms;
  auto engine = Engine::Create(m, AddonOptions(2));
  CHECK_EQ(engine->stats().scheduler.maxBatch, size_t{2});
  auto a = Start(*engine, Greedy({1, 2}, 12));
  auto b = Start(*engine, Greedy({20, 21, 22}, 12));
  CHECK(WaitFor([&] { return a.sink->done.load() && b.sink->done.load(); }));
  for (uint32_t i = 0; i < 12; ++i) {
    CHECK_EQ(a.sink->tokens[i], (3 + i) % 50);
    CHECK_EQ(b.sink->tokens[i], (23 + i) % 50);
  }
  CHECK_EQ(m->MaxBatchSeen(), size_t{2});
  const EngineStats s = engine->stats();
  CHECK(s.scheduler.steps > 0 && s.scheduler.rows > s.scheduler.steps);  // mean batch > 1
  CHECK_EQ(a.sink->outcome.usage.totalTokens, size_t{14});
  CHECK_EQ(b.sink->outcome.usage.totalTokens, size_t{15});
}

TEST(max_batch_is_clamped_to_what_the_model_batches) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  m->max_rows = 1;
  auto engine = Engine::Create(m, AddonOptions(8));
  CHECK_EQ(engine->stats().scheduler.maxBatch, size_t{1});
  CHECK(!engine->info().batchable);
  CHECK_ERROR(Engine::Create(m, AddonOptions(0)), "ERR_INVALID_ARGUMENT", "maxBatch");
}

TEST(capacity_is_prompt_plus_max_new_tokens_within_the_context) {
  CHECK_EQ(KvCapacity(100, 3, 4), size_t{7});
  CHECK_EQ(KvCapacity(100, 90, 50), size_t{100});  // within the context
  CHECK_EQ(KvCapacity(100, 3, 0), size_t{100});    // no maxNewTokens: the whole context
  CHECK_EQ(KvCapacity(0, 0, 0), size_t{1});        // never 0
  auto m = std::make_shared<ScriptedModel>(50, 100);
  m->per_token = 10;
  auto engine = Engine::Create(m, AddonOptions(1));
  CHECK_EQ(engine->capacityOf(3, 4), size_t{7});
  // What the addon reports to V8 for a request on the host: 2 buffers x 10 bytes x 7 tokens.
  CHECK_EQ(engine->kvHostBytes(Greedy({1, 2, 3}, 4)), size_t{140});
  // The generator's sequence holds exactly that capacity.
  Generator g(m, {1, 2, 3}, Greedy({}, 4).params, nullptr);
  CHECK_EQ(g.capacity(), size_t{7});
  CHECK_EQ(g.kvCapacity(), size_t{7});
}

TEST(the_budget_default_covers_one_full_context_and_is_shared_by_the_running) {
  auto small = std::make_shared<ScriptedModel>(50, 100);
  small->per_token = 10;
  CHECK_EQ(Engine::Create(small, AddonOptions(1))->kvBudget(), kDefaultKvBudget);  // 256 MiB > 2 x 100 x 10
  auto wide = std::make_shared<ScriptedModel>(50, 1000);
  wide->per_token = size_t{1} << 20;  // one full context: 2 x 1000 x 1 MiB > 256 MiB
  auto engine = Engine::Create(wide, AddonOptions(1));
  CHECK_EQ(engine->kvBudget(), size_t{2000} << 20);
  CHECK_EQ(engine->stats().kvBudgetBytes, size_t{2000} << 20);
  // A lone full-context request is never refused by default.
  auto full = Start(*engine, Greedy({1, 2}, 0));
  full.stream->Abort();
  CHECK(WaitFor([&] { return full.sink->done.load(); }));
  CHECK(!full.sink->outcome.failed);

  // Given: the budget as is. Reservation = 2 x 10 x n x the largest capacity.
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->per_token = 10;
  m->delay = 1ms;
  auto budgeted = Engine::Create(m, AddonOptions(4, 500));
  CHECK_EQ(budgeted->kvBudget(), size_t{500});
  CHECK_ERROR(Start(*budgeted, Greedy({1, 1, 1, 1}, 22)), "ERR_KV_BUDGET", "kvCacheBytes budget of 500");
  auto held = Start(*budgeted, Greedy({1, 1, 1, 1}, 16), 1);  // 400 bytes, parked after one token
  CHECK(WaitFor([&] { return budgeted->stats().scheduler.running == 1; }));
  CHECK_EQ(budgeted->stats().scheduler.kvReservedBytes, KvReservation(10, 1, 20));
  auto next = Start(*budgeted, Greedy({2, 2, 2, 2}, 16));
  std::this_thread::sleep_for(20ms);
  CHECK_EQ(budgeted->stats().scheduler.queued, size_t{1});  // fits alone, not next to the first: waits
  held.stream->Acknowledge(1000);
  CHECK(WaitFor([&] { return held.sink->done.load() && next.sink->done.load(); }));
  CHECK(WaitFor([&] { return budgeted->stats().scheduler.kvReservedBytes == 0; }));
}

TEST(a_prefix_cache_the_model_cannot_keep_is_reported_off) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto engine = Engine::Create(m, AddonOptions(1, 0, true));
  CHECK(!engine->info().prefixCacheOffReason.empty());
  CHECK(!engine->stats().prefixCache);
  CHECK(Engine::Create(m, AddonOptions(1))->info().prefixCacheOffReason.empty());  // not asked for: no reason
}

TEST(requests_are_checked_with_the_option_tables_bounds) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto engine = Engine::Create(m, AddonOptions(1));
  auto refused = [&](GenerationRequest r, size_t window, const char* part) {
    auto sink = std::make_unique<RecordingSink>();
    RecordingSink* s = sink.get();
    CHECK_ERROR(engine->Start(std::move(r), std::move(sink), window), "ERR_INVALID_ARGUMENT", part);
    CHECK(!s->done.load());
  };
  refused(Greedy({1}, kMaxNewTokensLimit + 1), 64, "maxNewTokens");
  refused(Greedy({1}, 1), 0, "highWaterMark");
  refused(Greedy({1}, 1), kMaxWindow + 1, "highWaterMark");
  auto stops = Greedy({1}, 1);
  stops.params.stopStrings.assign(kMaxStopStrings + 1, "x");
  stops.detokenizer = [] { return std::unique_ptr<Detokenizer>(); };
  refused(stops, 64, "at most 16 strings for stop");
  auto empty = Greedy({1}, 1);
  empty.params.stopStrings = {""};
  empty.detokenizer = stops.detokenizer;
  refused(empty, 64, "non-empty");
  auto untokenized = Greedy({1}, 1);
  untokenized.params.stopStrings = {"x"};
  refused(untokenized, 64, "need a tokenizer");
  auto hot = Greedy({1}, 1);
  hot.params.sampling.temperature = 2.001f;
  refused(hot, 64, "temperature");
  auto rep = Greedy({1}, 1);
  rep.params.sampling.repetitionPenalty = 100.001f;
  refused(rep, 64, "repetitionPenalty");
  // The bounds themselves are accepted.
  auto edge = Greedy({1}, kMaxNewTokensLimit);
  edge.params.sampling.temperature = 2;
  edge.params.sampling.repetitionPenalty = 100;
  auto ok = Start(*engine, std::move(edge), kMaxWindow);
  ok.stream->Abort();
  CHECK(WaitFor([&] { return ok.sink->done.load(); }));
  CHECK(!ok.sink->outcome.failed);
}

TEST(a_failure_mid_generation_reports_the_engines_usage) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  m->fail_at = 7;  // prompt 3, then 3 decode steps succeed (tokens 4..6 in the cache), the 4th throws
  auto engine = Engine::Create(m, AddonOptions(2));
  auto g = Start(*engine, Greedy({3, 4, 5}, 20));
  CHECK(WaitFor([&] { return g.sink->done.load(); }));
  CHECK(g.sink->outcome.failed);
  CHECK_EQ(g.sink->outcome.errorCode, std::string("ERR_INFERENCE"));
  // Sampled: the prefill's token and one per successful decode step (3 + 3 = 6 tokens went in).
  CHECK_EQ(g.sink->tokens.size(), size_t{4});
  const Usage u = g.sink->outcome.usage;
  CHECK_EQ(u.promptTokens, size_t{3});
  CHECK_EQ(u.completionTokens, size_t{4});
  CHECK_EQ(u.totalTokens, size_t{7});
  CHECK(WaitFor([&] { return engine->stats().scheduler.running == 0 && m->live.load() == 0; }));
}

TEST(shutdown_settles_everything_and_refuses_later_starts) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 1ms;
  auto engine = Engine::Create(m, AddonOptions(1));
  auto running = Start(*engine, Greedy({1, 2}, 0));
  auto queued = Start(*engine, Greedy({3, 4}, 0));
  CHECK(WaitFor([&] { return running.sink->tokens.size() >= 2; }));
  engine->Shutdown();
  engine->Shutdown();  // idempotent
  CHECK(running.sink->done.load() && queued.sink->done.load());
  CHECK_EQ(std::string(FinishReasonName(running.sink->outcome.finishReason)), std::string("abort"));
  CHECK(running.sink->outcome.usage.completionTokens >= 2);
  CHECK_EQ(running.sink->outcome.usage.totalTokens, running.sink->outcome.usage.completionTokens + 2);
  CHECK_EQ(queued.sink->outcome.usage.totalTokens, size_t{0});
  CHECK_ERROR(Start(*engine, Greedy({1}, 1)), "ERR_DISPOSED", "disposed");
  CHECK_EQ(m->live.load(), 0);
}

TEST_MAIN()
